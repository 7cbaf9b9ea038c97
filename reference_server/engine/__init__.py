"""Pure billing logic: no I/O, no database, no HTTP.

The store loads rows into the dataclasses of :mod:`reference_server.engine.entitlements`, the engine
decides (resets, deduction order, balance derivation, check decisions) and the store writes back
whatever the engine marked as changed.
"""
