"""Every exception lars-search raises on purpose, in one place.

:class:`SearchError` is the base of the user's mistakes: a bad study file, an unknown study, a
storage that cannot be used, a plot or dashboard that cannot start. The CLI catches the base and
prints its first line with exit code 2 (``--debug`` shows the traceback). Two classes stand
apart: :class:`Terminated` is SIGTERM handled as Ctrl-C, and :class:`OptunaInternalsError` is
not the user's doing (the installed Optuna changed a private name we rely on), so it is an
internal error, exit code 1.

This module imports neither Optuna nor torch, only objectives' own torch-free errors (a config
objectives rejects, missing data), so any module can raise these and the CLI can name them
without importing what raises them.
"""

from __future__ import annotations

from objectives.errors import ConfigError, DataNotFoundError

__all__ = [
    "SearchError",
    "UserError",
    "SpecError",
    "RangeTestError",
    "SpecConflictError",
    "StorageError",
    "StudyNotFoundError",
    "PlotError",
    "DashboardError",
    "OptunaInternalsError",
    "Terminated",
    "is_user_error",
    "first_line",
]


class SearchError(Exception):
    """A mistake of the user's that lars-search reports as one line (exit code 2)."""


class UserError(SearchError):
    """A bad command-line value or combination (``--gpus``, ``--plot``, a study file given to ``train``)."""


class SpecError(SearchError, ValueError):
    """An invalid study file: ``"<file>: <key>: <what is wrong>"``."""

    def __init__(self, source: str, key: str, message: str):
        self.source, self.key, self.message = source, key, message
        super().__init__(f"{source}: {key}: {message}" if key else f"{source}: {message}")


class RangeTestError(SpecError):
    """An ``lr: auto`` arm whose range test found no usable range."""


class SpecConflictError(SearchError, ValueError):
    """The study file disagrees with the studies already stored under its name."""


class StorageError(SearchError):
    """A storage URL that cannot be used: one line, password masked."""


class StudyNotFoundError(SearchError, LookupError):
    """No study of that name in the storage (the message lists the names there are)."""


class PlotError(SearchError):
    """A reason why the plot cannot be drawn."""


class DashboardError(SearchError):
    """A reason why the dashboard cannot start."""


class OptunaInternalsError(ImportError):
    """The installed Optuna lacks a private name that lars-search relies on (not the user's mistake)."""


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled as Ctrl-C (the CLI raises it from its SIGTERM handler)."""


def is_user_error(exc: BaseException) -> bool:
    """Missing data or a config objectives rejects: every further trial would fail alike.

    A trial that raises one is FAIL plus a retry, and the error stops the run (:mod:`search.run.trial`);
    the CLI reports it as one line, as it does a :class:`SearchError`.
    """
    return isinstance(exc, (ConfigError, DataNotFoundError))


def first_line(exc: BaseException) -> str:
    """The first line of ``str(exc)`` ("" when it is empty): what a one-line report of ``exc`` shows."""
    text = str(exc)
    return text.splitlines()[0] if text else ""
