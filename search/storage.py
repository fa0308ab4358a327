"""Open the SQL storage that every worker of a search shares.

``open_storage(url)`` returns an Optuna :class:`~optuna.storages.RDBStorage` that is
safe to share between many worker processes on one machine (SQLite) or on many
machines (PostgreSQL, MySQL), with heartbeats so that a killed worker's trial is
failed and retried::

    storage = open_storage("postgresql+psycopg://lars:secret@db-host/lars")
    storage = open_storage(None)          # $LARS_SEARCH_STORAGE or sqlite:///lars-search.db

Why an SQL storage, and SQLite rather than Optuna's JournalStorage
------------------------------------------------------------------
Optuna's FAQ suggests ``JournalStorage`` (an append-only log file) for several
processes on one machine, because SQLite with several writers can fail with
"database is locked" (optuna#820, #4994). We keep SQLite as the default for three
reasons: optuna-dashboard, ``lars-search status/compare/export`` and any SQL client
read the same file; the same code path serves PostgreSQL for several machines; and
the locking failures have known causes that we remove here:

* **busy timeout**: every connection waits up to ``busy_timeout`` seconds
  (``connect_args={"timeout": ...}``, default 60 s) for the write lock instead of
  SQLite's 5 s;
* **WAL journal**: ``PRAGMA journal_mode=WAL`` is set once on the file (the mode is
  persistent), so readers (the dashboard, ``status``) never block writers and
  writers never block readers; with WAL, ``PRAGMA synchronous=NORMAL`` on every
  connection, SQLite's recommended setting for WAL: a commit is still atomic and
  survives the crash or SIGKILL of any process (it is in the WAL file), only a power
  loss or OS crash can drop the last commits; it avoids an fsync per commit, which
  otherwise costs ~5 ms on each of the ~25 writes of a trial;
* **the table-creation race** (optuna#4621: all workers start at once on a fresh file
  and collide in ``CREATE TABLE``): the schema is created under an exclusive file
  lock (``<db file>.lock``, an ``fcntl.flock`` released by the kernel even on
  SIGKILL), and construction is retried on transient errors;
* **transient errors during the study** ("database is locked" after the timeout, a
  PostgreSQL server that restarts, a dropped connection): every storage call is
  retried with exponential back-off for up to ``retry_timeout`` seconds (logged, URL
  masked); a connection that died with a restarted PostgreSQL/MySQL server fails
  once, SQLAlchemy replaces the pool's connections, and the retry reconnects. The
  heartbeat thread (see :mod:`search.budget`) survives such errors instead of dying
  with them (optuna#4994).

Heartbeats: ``heartbeat_interval`` (``$LARS_SEARCH_HEARTBEAT_INTERVAL``, default 60 s)
and ``grace_period`` (``$LARS_SEARCH_HEARTBEAT_GRACE``, default twice the interval).
A RUNNING trial whose last heartbeat is older than the grace period is set to FAIL by
the next worker that claims a trial, and Optuna's retry callback
(``RetryHeartbeatStaleTrialCallback``, formerly ``RetryFailedTrialCallback``) enqueues
the same parameters again as a WAITING trial, at most ``max_retry`` times (a config
that kills its worker every time, e.g. through the kernel's OOM killer, must not loop
forever).

Errors: a malformed, unreachable or unauthorised URL raises :class:`StorageError`
with one line and the password masked (``postgresql+psycopg://lars:***@host/db``);
nothing is written to the database in that case.
"""

from __future__ import annotations

import contextlib
import fcntl
import inspect
import logging
import os
import random
import re
import sqlite3
import threading
import time
import warnings
from collections.abc import Iterator
from typing import Any

import optuna
import sqlalchemy
import sqlalchemy.exc
from sqlalchemy.engine import make_url

__all__ = [
    "StorageError",
    "DEFAULT_STORAGE_URL",
    "default_storage_url",
    "mask_url",
    "open_storage",
    "rdb_backend",
    "storage_lock",
    "is_transient_error",
    "one_line",
]

_logger = logging.getLogger(__name__)

DEFAULT_STORAGE_URL = "sqlite:///lars-search.db"
_SUPPORTED_BACKENDS = ("sqlite", "postgresql", "mysql")


class StorageError(Exception):
    """A storage URL that cannot be used: one line, password masked."""


# --------------------------------------------------------------------------- URLs
def default_storage_url() -> str:
    """``$LARS_SEARCH_STORAGE`` if set, else ``sqlite:///lars-search.db`` (in the cwd)."""
    return os.environ.get("LARS_SEARCH_STORAGE") or DEFAULT_STORAGE_URL


_USERINFO = re.compile(r"(?P<head>://[^/@:\s]*):(?P<password>[^@/\s]*)@")
_QUERY_SECRET = re.compile(r"(?P<key>[?&](?:password|passwd|pwd)=)[^&\s]*", re.IGNORECASE)


def mask_url(url: str | None) -> str:
    """``url`` with the password (userinfo or ``?password=``) replaced by ``***``.

    >>> mask_url("postgresql+psycopg://lars:s3cret@db:5432/lars?sslmode=require")
    'postgresql+psycopg://lars:***@db:5432/lars?sslmode=require'
    """
    if url is None:
        return "None"
    masked = _USERINFO.sub(lambda m: f"{m['head']}:***@", str(url))
    return _QUERY_SECRET.sub(lambda m: f"{m['key']}***", masked)


def _scrub(text: str, url: str) -> str:
    """Remove every occurrence of ``url``'s password from ``text`` (error messages)."""
    try:
        password = make_url(url).password
    except Exception:  # malformed URL: fall back to the regex mask
        password = None
    if password:
        text = text.replace(str(password), "***")
    return mask_url(text)


def one_line(error: BaseException, url: str) -> str:
    """The first useful line of the innermost database error, ``url``'s password removed."""
    inner: BaseException = error
    while True:
        nxt = getattr(inner, "orig", None) or inner.__cause__
        if nxt is None or nxt is inner:
            break
        inner = nxt
    lines = [ln.strip() for ln in str(inner).splitlines() if ln.strip()]
    text = lines[0] if lines else type(inner).__name__
    # psycopg puts the useful part ("password authentication failed ...") after FATAL:
    for ln in lines:
        if "FATAL" in ln or "failed" in ln.lower():
            text = ln
            break
    return _scrub(text, url)


# ------------------------------------------------------------------ transient errors
def is_transient_error(error: BaseException) -> bool:
    """True for errors that a retry can cure: locks, lost connections, server restarts.

    Walks the ``__cause__`` chain, since Optuna wraps SQLAlchemy errors in
    ``StorageInternalError``. Integrity and data errors are not transient.
    """
    seen = set()
    e: BaseException | None = error
    while e is not None and id(e) not in seen:
        seen.add(id(e))
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


_RETRIED_METHODS = (
    "create_new_study", "delete_study", "set_study_user_attr", "set_study_system_attr",
    "get_study_id_from_name", "get_study_name_from_id", "get_study_directions",
    "get_study_user_attrs", "get_study_system_attrs", "get_all_studies",
    "create_new_trial", "_create_new_trial", "set_trial_param", "_set_trial_param",
    "get_trial_param", "set_trial_state_values", "set_trial_intermediate_value",
    "set_trial_user_attr", "set_trial_system_attr", "get_trial_user_attrs",
    "get_trial_system_attrs", "get_trial_id_from_study_id_trial_number", "get_trial",
    "get_all_trials", "_get_trials", "get_best_trial", "_get_best_trial_id",
    "record_heartbeat", "_get_stale_trial_ids",
)


class _RetryingRDBStorage(optuna.storages.RDBStorage):
    """RDBStorage whose calls are retried on transient errors (see module docstring).

    A retried write whose first attempt committed but lost its reply (the server died
    between commit and answer) may be applied twice; this is the one case the retry
    cannot tell apart, and it needs a server crash at that exact instant.
    """

    retry_timeout: float = 60.0
    #: ``time.monotonic()`` since when this process has reached the database without a
    #: transient error (see :func:`search.budget.claim_trial`: stale trials are judged only
    #: after a full grace period of good health, so an outage of the database, which
    #: stops every worker's heartbeat at once, does not fail every running trial).
    healthy_since: float = 0.0

    def note_transient_error(self) -> None:
        self.healthy_since = time.monotonic()

    def __setstate__(self, state: dict[Any, Any]) -> None:  # unpickled in another process
        super().__setstate__(state)
        _configure_engine(self)

    def _with_retry(self, name: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        deadline = time.monotonic() + self.retry_timeout
        delay = 0.05
        while True:
            try:
                return fn(*args, **kwargs)
            except Exception as error:
                if not is_transient_error(error):
                    raise
                self.note_transient_error()
                if time.monotonic() >= deadline:
                    raise
                _logger.warning(
                    "storage %s: %s failed (%s); retrying in %.2f s",
                    mask_url(self.url), name, one_line(error, self.url), delay,
                )
                time.sleep(delay * (1.0 + random.random()))
                delay = min(delay * 2.0, 2.0)


def _make_retrying(name: str) -> Any:
    original = getattr(optuna.storages.RDBStorage, name)

    def method(self: _RetryingRDBStorage, *args: Any, **kwargs: Any) -> Any:
        return self._with_retry(name, original, self, *args, **kwargs)

    method.__name__ = name
    method.__doc__ = original.__doc__
    return method


for _name in _RETRIED_METHODS:
    if hasattr(optuna.storages.RDBStorage, _name):
        setattr(_RetryingRDBStorage, _name, _make_retrying(_name))


def _sqlite_on_connect(dbapi_connection: Any, connection_record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()


def _configure_engine(storage: optuna.storages.RDBStorage) -> None:
    """Per-connection SQLite settings (``synchronous=NORMAL``, see the module docstring)."""
    if storage.engine.dialect.name == "sqlite":
        sqlalchemy.event.listen(storage.engine, "connect", _sqlite_on_connect)
        storage.engine.dispose()  # connections opened while building lack the setting


def rdb_backend(storage: Any) -> optuna.storages.RDBStorage | None:
    """The RDBStorage behind ``storage`` (unwrapping Optuna's ``_CachedStorage``), or None."""
    for candidate in (storage, getattr(storage, "_backend", None)):
        if isinstance(candidate, optuna.storages.RDBStorage):
            return candidate
    return None


# ---------------------------------------------------------------------- file lock
_thread_locks: dict[str, threading.Lock] = {}
_thread_locks_guard = threading.Lock()


def _sqlite_path(url: str) -> str | None:
    """The database file of a sqlite URL, or None for an in-memory database."""
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file::memory:"):
        return None
    return os.path.abspath(database)


@contextlib.contextmanager
def storage_lock(url: str, key: str = "schema") -> Iterator[None]:
    """An exclusive lock shared by all local processes using the same SQLite file.

    ``fcntl.flock`` on ``<db file>.lock`` (the kernel releases it when the holder dies,
    SIGKILL included), plus a per-process mutex for threads. ``key`` is for readers;
    one lock serves all keys. For an in-memory database only the mutex is taken.
    """
    path = _sqlite_path(url)
    lock_key = path or f"memory:{url}"
    with _thread_locks_guard:
        mutex = _thread_locks.setdefault(lock_key, threading.Lock())
    with mutex:
        if path is None:
            yield
            return
        fd = os.open(path + ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the flock


# ------------------------------------------------------------------- open_storage
def _env_seconds(name: str, default: int | None) -> int | None:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise StorageError(f"${name} must be a positive integer of seconds, got {raw!r}") from None
    if value <= 0:
        raise StorageError(f"${name} must be a positive integer of seconds, got {raw!r}")
    return value


def _retry_callback(max_retry: int | None) -> tuple[str, Any]:
    """Optuna's retry-stale-trial callback and the RDBStorage keyword that takes it."""
    params = inspect.signature(optuna.storages.RDBStorage.__init__).parameters
    if "heartbeat_stale_trial_callback" in params and hasattr(
        optuna.storages, "RetryHeartbeatStaleTrialCallback"
    ):
        return "heartbeat_stale_trial_callback", optuna.storages.RetryHeartbeatStaleTrialCallback(
            max_retry=max_retry
        )
    return "failed_trial_callback", optuna.storages.RetryFailedTrialCallback(max_retry=max_retry)


def _normalise(url: str) -> tuple[str, sqlalchemy.engine.URL]:
    """Parse ``url``; map ``postgres://`` and a bare ``postgresql://`` to an installed driver."""
    try:
        parsed = make_url(url)
    except Exception:
        raise StorageError(
            f"storage URL {mask_url(url)!r} is not a valid SQLAlchemy URL "
            "(e.g. sqlite:///lars-search.db or postgresql+psycopg://user:password@host/db)"
        ) from None
    backend = parsed.get_backend_name()
    if backend == "postgres":
        parsed = parsed.set(drivername="postgresql" + parsed.drivername[len("postgres"):])
        backend = "postgresql"
    if backend not in _SUPPORTED_BACKENDS:
        raise StorageError(
            f"storage URL {mask_url(url)!r}: backend {backend!r} is not supported; "
            f"use one of {', '.join(_SUPPORTED_BACKENDS)}"
        )
    if parsed.drivername == "postgresql":
        try:
            import psycopg2  # noqa: F401
        except ImportError:
            parsed = parsed.set(drivername="postgresql+psycopg")
    try:
        parsed.get_dialect().import_dbapi()
    except Exception:
        extra = " (pip install 'lars-search[postgres]')" if backend == "postgresql" else ""
        raise StorageError(
            f"storage URL {mask_url(url)!r}: the database driver for "
            f"{parsed.drivername!r} is not installed{extra}"
        ) from None
    return parsed.render_as_string(hide_password=False), parsed


def _engine_kwargs(parsed: sqlalchemy.engine.URL, busy_timeout: float) -> dict[str, Any]:
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return {"connect_args": {"timeout": busy_timeout}}
    # No pool_pre_ping: it costs a round trip per storage call; a connection that died
    # with a restarted server fails once, SQLAlchemy then invalidates the whole pool,
    # and the retry (``_RetryingRDBStorage``) runs on fresh connections.
    kwargs: dict[str, Any] = {"pool_recycle": 3600}
    if backend == "postgresql" and "connect_timeout" not in parsed.query:
        kwargs["connect_args"] = {"connect_timeout": 10}
    return kwargs


def _check_reachable(url: str, engine_kwargs: dict[str, Any]) -> None:
    """Connect once, without retries: a bad host or password fails here, in one line."""
    engine = sqlalchemy.create_engine(url, **engine_kwargs)
    try:
        with engine.connect() as connection:
            connection.execute(sqlalchemy.text("SELECT 1"))
    except Exception as error:
        raise StorageError(f"cannot connect to storage {mask_url(url)}: {one_line(error, url)}") from None
    finally:
        engine.dispose()


def _check_sqlite_directory(url: str) -> None:
    path = _sqlite_path(url)
    if path is None:
        return
    directory = os.path.dirname(path)
    if not os.path.isdir(directory):
        raise StorageError(
            f"cannot open storage {mask_url(url)}: directory {directory!r} does not exist"
        )


def _prepare_sqlite_file(url: str, busy_timeout: float) -> None:
    """Switch the file to WAL (persistent; called under the file lock)."""
    path = _sqlite_path(url)
    if path is None:
        return
    try:
        connection = sqlite3.connect(path, timeout=busy_timeout)
        try:
            connection.execute("PRAGMA journal_mode=WAL")
        finally:
            connection.close()
    except sqlite3.Error as error:
        raise StorageError(f"cannot open storage {mask_url(url)}: {error}") from None


def open_storage(
    url: str | None = None,
    *,
    heartbeat: bool = True,
    heartbeat_interval: int | None = None,
    grace_period: int | None = None,
    max_retry: int | None = 2,
    busy_timeout: float = 60.0,
    retry_timeout: float = 60.0,
) -> optuna.storages.RDBStorage:
    """Open (creating the schema if needed) the storage at ``url``.

    Args:
        url: any SQLAlchemy URL of a SQLite, PostgreSQL or MySQL database; None means
            :func:`default_storage_url`. ``postgres://`` is read as ``postgresql://``,
            and a bare ``postgresql://`` uses psycopg (3) when psycopg2 is absent.
        heartbeat: record a heartbeat for every running trial and fail+retry stale ones.
        heartbeat_interval: seconds between heartbeats (default
            ``$LARS_SEARCH_HEARTBEAT_INTERVAL`` or 60).
        grace_period: seconds without heartbeat after which a RUNNING trial is stale
            (default ``$LARS_SEARCH_HEARTBEAT_GRACE`` or twice the interval).
        max_retry: how many times one stale trial is retried (None: forever).
        busy_timeout: SQLite busy timeout, seconds.
        retry_timeout: how long one storage call is retried on transient errors.

    Returns:
        an :class:`optuna.storages.RDBStorage` (pass it to ``optuna.create_study``).

    Raises:
        StorageError: malformed URL, missing driver, unreachable server, bad
            credentials, missing directory, incompatible schema; one line, no password.
    """
    raw = url if url else default_storage_url()
    url, parsed = _normalise(raw)
    engine_kwargs = _engine_kwargs(parsed, busy_timeout)
    backend = parsed.get_backend_name()

    kwargs: dict[str, Any] = {}
    if heartbeat:
        interval = heartbeat_interval or _env_seconds("LARS_SEARCH_HEARTBEAT_INTERVAL", 60)
        grace = grace_period or _env_seconds("LARS_SEARCH_HEARTBEAT_GRACE", None) or 2 * interval
        if grace <= interval:
            raise StorageError(
                f"grace_period must be longer than heartbeat_interval, got "
                f"grace_period={grace} and heartbeat_interval={interval}"
            )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            key, callback = _retry_callback(max_retry)
        kwargs = {"heartbeat_interval": interval, "grace_period": grace, key: callback}

    if backend != "sqlite":
        _check_reachable(url, engine_kwargs)

    def build() -> optuna.storages.RDBStorage:
        deadline = time.monotonic() + retry_timeout
        delay = 0.05
        while True:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                    warnings.simplefilter("ignore", FutureWarning)
                    storage = _RetryingRDBStorage(url, engine_kwargs=engine_kwargs, **kwargs)
                storage.retry_timeout = retry_timeout
                storage.healthy_since = time.monotonic()
                _configure_engine(storage)
                return storage
            except RuntimeError as error:  # Optuna's schema-version check
                if "version" in str(error).lower() and not is_transient_error(error):
                    raise StorageError(
                        f"storage {mask_url(url)}: {one_line(error, url)}"
                    ) from None
                raise
            except (sqlalchemy.exc.SQLAlchemyError, optuna.exceptions.StorageInternalError) as error:
                # Several machines creating the schema at once collide (optuna#4621).
                if time.monotonic() >= deadline:
                    raise StorageError(
                        f"cannot open storage {mask_url(url)}: {one_line(error, url)}"
                    ) from None
                _logger.warning(
                    "storage %s: creating the schema failed (%s); retrying",
                    mask_url(url), one_line(error, url),
                )
                time.sleep(delay * (1.0 + random.random()))
                delay = min(delay * 2.0, 1.0)

    if backend == "sqlite":
        _check_sqlite_directory(url)
        with storage_lock(url):
            _prepare_sqlite_file(url, busy_timeout)
            return build()
    return build()
