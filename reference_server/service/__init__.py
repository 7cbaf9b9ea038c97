"""Business operations: each takes a request context and a validated body and returns a response dict.

They open the transaction, load what they need through :mod:`reference_server.store`, let the pure
:mod:`reference_server.engine` decide, and write back.  The HTTP layer (:mod:`reference_server.api`)
only validates, authenticates and serializes.
"""
