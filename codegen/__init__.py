"""OpenAPI -> typed Python for the Autumn kit.

``python -m codegen`` reads the documents of ``spec/`` (:data:`codegen.spec.DEFAULT_SPECS`) and writes
``autumn_sdk/_generated/`` (models, operation table, resource classes); ``--check`` verifies the
committed output is current. Pipeline: :mod:`codegen.spec` loads, :mod:`codegen.collect` walks
operations and webhooks, :mod:`codegen.catalog` hoists, merges and names every object schema
(pinned names in :mod:`codegen.name_overrides`), and the ``emit_*`` modules render the models, the
operation table (each operation with its policy from :mod:`codegen.policy`) and the resources
package (a module per API group). :mod:`codegen.official_operations` is no part of the pipeline: run
with the official SDK's interpreter, it derives ``spec/autumn-sdk-1.2.0-operations.yml`` (whose
``x-official-arguments`` :mod:`codegen.overlay` adds to the requests of Autumn's spec).
"""
