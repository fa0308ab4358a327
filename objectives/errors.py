"""The errors objectives raises for a user's mistake, importable without torch.

``search`` recognises them at module level (a trial that raises one is not retried in vain,
and the CLI prints it without a traceback), so they live apart from the torch modules that
raise them.
"""

from __future__ import annotations

__all__ = ["ConfigError", "DataNotFoundError"]


class ConfigError(ValueError):
    """A config key is unknown, missing a required part, or has a value outside its rule."""


class DataNotFoundError(FileNotFoundError):
    """The data set is in none of the places looked, and could not be downloaded."""
