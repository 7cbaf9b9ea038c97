"""Suite-wide: the ``pytester`` fixture, with which tests/pytest_plugin runs a user's test files."""

pytest_plugins = ["pytester"]
