"""The table definitions (SQLAlchemy Core), one module per area; migrations create them as frozen DDL."""
