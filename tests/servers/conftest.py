"""Server fixtures are registered suite-wide in tests/conftest.py."""
