"""The one retry loop of lars-search: storage calls, schema creation and trial claims.

A transient error (a locked SQLite file past its busy timeout, a lost connection, a
restarted PostgreSQL server) is retried with jittered exponential back-off; anything
else is raised at once. See :mod:`search.storage.database` for why and where.
"""

from __future__ import annotations

import logging
import random
import sqlite3
import threading
import time
from collections.abc import Callable
from typing import TypeVar

import sqlalchemy.exc

from search.storage.url import mask_url, one_line

__all__ = ["is_transient_error", "retry"]

_logger = logging.getLogger("search.storage.database")
T = TypeVar("T")

# Storages (masked URL) that failed and have not answered since -> when the outage began.
# One warning when an outage begins, one when the storage answers again, whichever calls
# (of any thread of this process) meet it: a 20 s server restart logged 54 lines.
_outages: dict[str, float] = {}
_outages_lock = threading.Lock()


def _outage_begins(label: str) -> bool:
    with _outages_lock:
        if label in _outages:
            return False
        _outages[label] = time.monotonic()
        return True


def _outage_ends(label: str) -> None:
    with _outages_lock:
        began = _outages.pop(label, None)
    if began is not None:
        _logger.warning("storage %s: answers again after %.1f s", label, time.monotonic() - began)


def is_transient_error(error: BaseException) -> bool:
    """True for errors that a retry can cure: locks, lost connections, server restarts.

    Walks the ``__cause__`` chain, since Optuna wraps SQLAlchemy errors in
    ``StorageInternalError``. Integrity and data errors are not transient.
    """
    seen = set()
    e: BaseException | None = error
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if "readonly database" in str(e):  # a read-only storage (open_reader) stays read-only
            return False
        if isinstance(e, sqlalchemy.exc.DBAPIError) and e.connection_invalidated:
            return True
        if isinstance(e, (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError)):
            return True
        if isinstance(e, sqlite3.OperationalError):
            return True
        if isinstance(e, sqlalchemy.exc.TimeoutError):  # pool exhausted
            return True
        e = e.__cause__ or e.__context__
    return False


def retry(
    fn: Callable[[], T],
    *,
    what: str,
    url: str,
    timeout: float,
    retryable: Callable[[BaseException], bool] = is_transient_error,
    on_retry: Callable[[], None] | None = None,
    first_delay: float = 0.05,
    max_delay: float = 2.0,
) -> T:
    """``fn()``, called again with jittered exponential back-off while it raises a retryable error.

    The one retry loop of lars-search (storage calls, schema creation, trial claims). An
    outage is logged once when it begins (a warning naming ``what`` and the storage,
    password masked) and once when the storage answers again, however many calls and
    retries meet it; ``on_retry`` runs before each wait. After ``timeout`` seconds the last
    error is raised.
    """
    deadline = time.monotonic() + timeout
    delay = first_delay
    label = mask_url(url)
    while True:
        try:
            result = fn()
        except Exception as error:
            if not retryable(error):
                raise
            if on_retry is not None:
                on_retry()
            if time.monotonic() >= deadline:
                raise
            if _outage_begins(label):
                _logger.warning("storage %s: %s failed (%s); retrying for up to %.0f s, quietly until it answers",
                                label, what, one_line(error, url), timeout)  # fmt: skip
            time.sleep(delay * (1.0 + random.random()))
            delay = min(delay * 2.0, max_delay)
            continue
        _outage_ends(label)
        return result
