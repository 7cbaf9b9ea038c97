"""Performance harness of the kit (issue 13): ``python -m bench`` prints figures and same-run ratios.

Each measured target runs in its own process (``bench.serve``); the load comes from ``wrk`` when it is
installed, else from a Python generator in its own process (``bench.loadgen``).  Figures are medians
of ``--runs`` runs; every ratio is taken inside one run against a baseline measured beside it.
"""
