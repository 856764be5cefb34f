"""etprof's version, in one place (pyproject.toml reads the same figure)."""

__version__ = "0.1.0"
