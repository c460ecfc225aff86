"""Helpers the tests share, imported as a library (conftest modules only declare fixtures)."""
