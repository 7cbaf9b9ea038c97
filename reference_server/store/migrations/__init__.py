"""Alembic migration environment of the reference server (run programmatically on start)."""
