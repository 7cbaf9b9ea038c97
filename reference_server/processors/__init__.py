"""Payment processors behind one contract (:mod:`.contract`): ``local/`` and ``stripe/``."""
