"""The HTTP layer: routing from the generated operation table, auth, validation and error JSON."""
