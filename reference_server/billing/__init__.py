"""Billing use cases: attaching and changing plans, renewals, seats, invoices, free and paid alike.

Each module is one use case; they price changes with :mod:`reference_server.engine.billing`, keep
their rows through :mod:`reference_server.store` and move money through
:mod:`reference_server.processors`.
"""
