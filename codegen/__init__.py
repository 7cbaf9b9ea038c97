"""OpenAPI -> typed Python for the Autumn kit.

``python -m codegen`` reads ``openapi.yml`` and ``platform.yaml`` and writes
``autumn_sdk/_generated/`` (models, operation table, resource classes); ``--check`` verifies the
committed output is current. Pipeline: :mod:`codegen.spec` loads, :mod:`codegen.collect` walks
operations and webhooks, :mod:`codegen.catalog` hoists, merges and names every object schema
(pinned names in :mod:`codegen.name_overrides`), and the ``emit_*`` modules render the models, the
operation table (each operation with its policy from :mod:`codegen.policy`) and the resources
package (a module per API group).
"""
