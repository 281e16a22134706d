"""The single source of graphc's version string (read by pyproject and the CLI)."""

__version__ = "0.1.0"
