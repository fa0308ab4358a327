"""Open the SQL storage that every worker of a search shares.

``open_storage(url)`` returns an Optuna :class:`~optuna.storages.RDBStorage` that is
safe to share between many worker processes on one machine (SQLite) or on many
machines (PostgreSQL, MySQL), with heartbeats so that a killed worker's trial is
failed and retried::

    storage = open_storage("postgresql+psycopg://lars:secret@db-host/lars")
    storage = open_storage(None)          # $LARS_SEARCH_STORAGE or sqlite:///lars-search.db
    reader = open_reader("sqlite:///lars-search.db")   # status, compare, export, dashboard

``open_reader`` never creates or alters a database: the SQLite file must exist and hold
Optuna's tables, it is opened read-only (``mode=ro``), and no lock file is made.

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
  loss or OS crash can drop the last commits; it avoids an fsync per commit (a trial
  makes about 25 writes; ``benchmarks/RESULTS.md``, Storage throughput);
* **the table-creation race** (optuna#4621: all workers start at once on a fresh file
  and collide in ``CREATE TABLE``): the schema is created under an exclusive file
  lock (``<db file>.lock``, an ``fcntl.flock`` released by the kernel even on
  SIGKILL), and construction is retried on transient errors;
* **transient errors during the study** ("database is locked" after the timeout, a
  PostgreSQL server that restarts, a dropped connection): every storage call is
  retried with exponential back-off for up to ``retry_timeout`` seconds (logged, URL
  masked, :func:`retry`); a connection that died with a restarted PostgreSQL/MySQL server fails
  once, SQLAlchemy replaces the pool's connections, and the retry reconnects. The
  heartbeat thread (see :mod:`search.storage.budget`) survives such errors instead of dying
  with them (optuna#4994).

Heartbeats: ``heartbeat_interval`` (``$LARS_SEARCH_HEARTBEAT_INTERVAL``, default 60 s)
and ``grace_period`` (``$LARS_SEARCH_HEARTBEAT_GRACE``, default twice the interval).
A RUNNING trial whose last heartbeat is older than the grace period is set to FAIL by
the next worker that claims a trial, and Optuna's retry callback
(``RetryHeartbeatStaleTrialCallback``, formerly ``RetryFailedTrialCallback``) enqueues
the same parameters again as a WAITING trial, at most ``max_retry`` times (a config
that kills its worker every time, e.g. through the kernel's OOM killer, must not loop
forever).

Errors: a malformed, unreachable or unauthorised URL, an in-memory SQLite database
(``sqlite://``: workers cannot share it and a rerun cannot resume it) or a SQLite path
whose directory cannot hold the file (``/proc/x.db``) raises :class:`StorageError` with
one line and the password masked (``postgresql+psycopg://lars:***@host/db``); nothing
is written to the database in that case.

Optuna's private names are used only through :mod:`search.storage.optuna_internals`.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import sqlite3
import threading
import time
import urllib.parse
import warnings
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import optuna
import sqlalchemy
import sqlalchemy.exc

from search.errors import StorageError
from search.storage import optuna_internals
from search.storage._retry import is_transient_error, retry
from search.storage.url import (
    default_storage_url,
    mask_url,
    normalise,
    one_line,
    sqlite_file,
)

__all__ = ["open_storage", "open_reader", "storage_lock"]

_logger = logging.getLogger(__name__)
T = TypeVar("T")


# ------------------------------------------------------------------ the retrying storage
def _retried_methods() -> tuple[str, ...]:
    """Every public method of Optuna's ``BaseStorage``, ``record_heartbeat`` and the private
    ``RDBStorage`` methods Optuna itself calls (:mod:`search.storage.optuna_internals`)."""
    public = [n for n, v in vars(optuna.storages.BaseStorage).items() if not n.startswith("_") and callable(v)]
    return (*public, "record_heartbeat", *optuna_internals.PRIVATE_STORAGE_CALLS)


class _RetryingRDBStorage(optuna.storages.RDBStorage):
    """RDBStorage whose calls are retried on transient errors (see module docstring).

    A retried write whose first attempt committed but lost its reply (the server died
    between commit and answer) may be applied twice; this is the one case the retry
    cannot tell apart, and it needs a server crash at that exact instant.
    """

    retry_timeout: float = 60.0
    #: ``time.monotonic()`` since when this process has reached the database without a
    #: transient error (see :func:`search.storage.budget.claim_trial`: stale trials are judged only
    #: after a full grace period of good health, so an outage of the database, which
    #: stops every worker's heartbeat at once, does not fail every running trial).
    healthy_since: float = 0.0

    def note_transient_error(self) -> None:
        self.healthy_since = time.monotonic()

    def __setstate__(self, state: dict[Any, Any]) -> None:  # unpickled in another process
        super().__setstate__(state)
        _configure_engine(self)

    def _with_retry(self, name: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return retry(lambda: fn(*args, **kwargs), what=name, url=self.url, timeout=self.retry_timeout,
                     on_retry=self.note_transient_error)  # fmt: skip


def _make_retrying(name: str) -> Any:
    original = getattr(optuna.storages.RDBStorage, name)  # an AttributeError here: Optuna renamed it

    def method(self: _RetryingRDBStorage, *args: Any, **kwargs: Any) -> Any:
        return self._with_retry(name, original, self, *args, **kwargs)

    method.__name__ = name
    method.__doc__ = original.__doc__
    return method


for _name in _retried_methods():
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


# ---------------------------------------------------------------------- file lock
_thread_locks: dict[str, threading.Lock] = {}
_thread_locks_guard = threading.Lock()


@contextlib.contextmanager
def storage_lock(url: str, key: str = "schema") -> Iterator[None]:
    """An exclusive lock shared by all local processes writing the same SQLite file.

    ``fcntl.flock`` on ``<db file>.lock`` (the kernel releases it when the holder dies,
    SIGKILL included), plus a per-process mutex for threads. ``key`` is for readers;
    one lock serves all keys. Only writers take it (:func:`open_storage`, claims).
    """
    path = sqlite_file(url)
    if path is None:
        raise ValueError(f"storage_lock needs a sqlite:/// URL, got {mask_url(url)!r}")
    with _thread_locks_guard:
        mutex = _thread_locks.setdefault(path, threading.Lock())
    with mutex:
        try:
            fd = os.open(path + ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as error:
            raise StorageError(f"cannot open storage {mask_url(url)}: cannot create {path}.lock "
                               f"({error.strerror or error})") from None  # fmt: skip
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


def _heartbeat_kwargs(interval: int | None, grace: int | None, max_retry: int | None) -> dict[str, Any]:
    """RDBStorage's heartbeat keywords, with Optuna's public retry-stale-trial callback."""
    interval = interval or _env_seconds("LARS_SEARCH_HEARTBEAT_INTERVAL", 60)
    grace = grace or _env_seconds("LARS_SEARCH_HEARTBEAT_GRACE", None) or 2 * interval
    if grace <= interval:
        raise StorageError(
            f"grace_period must be longer than heartbeat_interval, got "
            f"grace_period={grace} and heartbeat_interval={interval}"
        )
    # RetryHeartbeatStaleTrialCallback is the name since Optuna 4.9, RetryFailedTrialCallback before.
    stale = getattr(optuna.storages, "RetryHeartbeatStaleTrialCallback", None)
    key = "heartbeat_stale_trial_callback" if stale is not None else "failed_trial_callback"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        callback = (stale or optuna.storages.RetryFailedTrialCallback)(max_retry=max_retry)
    return {"heartbeat_interval": interval, "grace_period": grace, key: callback}


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


def _check_reachable(url: str, engine_kwargs: dict[str, Any]) -> bool:
    """Connect once, without retries: a bad host or password fails here, in one line.

    Returns whether the database holds Optuna's ``studies`` table.
    """
    engine = sqlalchemy.create_engine(url, **engine_kwargs)
    try:
        with engine.connect() as connection:
            return sqlalchemy.inspect(connection).has_table("studies")
    except Exception as error:
        raise StorageError(f"cannot connect to storage {mask_url(url)}: {one_line(error, url)}") from None
    finally:
        engine.dispose()


def _check_sqlite_directory(url: str) -> None:
    """The file's directory exists and can hold a new file (not /proc, /sys, a read-only mount)."""
    path = sqlite_file(url)
    directory = os.path.dirname(path)
    if not os.path.isdir(directory):
        raise StorageError(f"cannot open storage {mask_url(url)}: directory {directory!r} does not exist")
    if os.path.exists(path):
        return
    probe = os.path.join(directory, f".lars-search-probe-{os.getpid()}-{threading.get_ident()}")
    try:
        os.close(os.open(probe, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644))
        os.remove(probe)
    except OSError as error:
        raise StorageError(f"cannot open storage {mask_url(url)}: cannot create a file in directory "
                           f"{directory!r} ({error.strerror or error})") from None  # fmt: skip


def _prepare_sqlite_file(url: str, busy_timeout: float) -> None:
    """Switch the file to WAL (persistent; called under the file lock)."""
    try:
        connection = sqlite3.connect(sqlite_file(url), timeout=busy_timeout)
        try:
            connection.execute("PRAGMA journal_mode=WAL")
        finally:
            connection.close()
    except sqlite3.Error as error:
        raise StorageError(f"cannot open storage {mask_url(url)}: {error}") from None


def _schema_error(error: BaseException) -> bool:
    """Errors of several processes creating the schema at once (optuna#4621): retry them."""
    return isinstance(error, (sqlalchemy.exc.SQLAlchemyError, optuna.exceptions.StorageInternalError))


def _build(url: str, *, retry_timeout: float, **kwargs: Any) -> _RetryingRDBStorage:
    """Construct the storage (creating the schema if needed), retrying collisions with other processes."""

    def construct() -> _RetryingRDBStorage:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            warnings.simplefilter("ignore", FutureWarning)
            try:
                return _RetryingRDBStorage(url, **kwargs)
            except RuntimeError as error:  # Optuna's schema-version check
                if "version" in str(error).lower() and not is_transient_error(error):
                    raise StorageError(f"storage {mask_url(url)}: {one_line(error, url)}") from None
                raise

    try:
        storage = retry(construct, what="opening the storage", url=url, timeout=retry_timeout,
                        retryable=_schema_error, max_delay=1.0)  # fmt: skip
    except StorageError:
        raise
    except Exception as error:
        if not _schema_error(error):
            raise
        raise StorageError(f"cannot open storage {mask_url(url)}: {one_line(error, url)}") from None
    storage.retry_timeout = retry_timeout
    storage.healthy_since = time.monotonic()
    _configure_engine(storage)
    return storage


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
    """Open (creating the database and schema if needed) the storage at ``url``, to run studies.

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
        StorageError: malformed URL, in-memory SQLite, missing driver, unreachable
            server, bad credentials, missing or unwritable directory, incompatible
            schema; one line, no password.
    """
    url, parsed = normalise(url or default_storage_url())
    engine_kwargs = _engine_kwargs(parsed, busy_timeout)
    kwargs = _heartbeat_kwargs(heartbeat_interval, grace_period, max_retry) if heartbeat else {}
    if parsed.get_backend_name() != "sqlite":
        _check_reachable(url, engine_kwargs)
        return _build(url, retry_timeout=retry_timeout, engine_kwargs=engine_kwargs, **kwargs)
    _check_sqlite_directory(url)
    with storage_lock(url):
        _prepare_sqlite_file(url, busy_timeout)
        return _build(url, retry_timeout=retry_timeout, engine_kwargs=engine_kwargs, **kwargs)


def _sqlite_has_schema(url: str, path: str) -> None:
    """Raise StorageError unless ``path`` is an existing SQLite file holding Optuna's tables (read-only)."""
    if not os.path.isfile(path):
        raise StorageError(f"no storage at {mask_url(url)} (file {path} does not exist); run a study first: "
                           "lars-search run STUDY.yaml, or pass --storage")  # fmt: skip
    try:
        connection = sqlite3.connect(f"file:{urllib.parse.quote(path)}?mode=ro", uri=True)
        try:
            found = connection.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='studies'").fetchone()
        finally:
            connection.close()
    except sqlite3.Error as error:
        raise StorageError(f"cannot read storage {mask_url(url)}: {error}") from None
    if not found:
        raise StorageError(f"storage {mask_url(url)} holds no lars-search studies (no Optuna tables in {path})")


def open_reader(
    url: str | None = None, *, writable: bool = False, retry_timeout: float = 60.0
) -> optuna.storages.RDBStorage:
    """Open an existing storage for reading (``status``, ``compare``, ``export``, ``dashboard``).

    Never creates or alters a database: the schema must be there already (a SQLite file
    must exist and hold Optuna's tables, another database must have them), no table is
    created, the journal mode is left alone and no lock file is made. A SQLite file is
    opened read-only unless ``writable`` (the dashboard on this machine: notes, deletions).
    Calls are retried on transient errors, as :func:`open_storage`'s; no heartbeat.

    Raises:
        StorageError: as :func:`open_storage`, plus a missing file or a database without
            Optuna's tables; one line, no password.
    """
    url, parsed = normalise(url or default_storage_url())
    kwargs: dict[str, Any] = {"skip_table_creation": True}
    if parsed.get_backend_name() == "sqlite":
        path = sqlite_file(url)
        _sqlite_has_schema(url, path)
        kwargs["engine_kwargs"] = {"connect_args": {"timeout": 60.0}}
        if not writable:
            uri = f"file:{urllib.parse.quote(path)}?mode=ro"
            kwargs["engine_kwargs"] = {"creator": lambda: sqlite3.connect(uri, uri=True, timeout=60.0,
                                                                          check_same_thread=False)}  # fmt: skip
        return _build(url, retry_timeout=retry_timeout, **kwargs)
    kwargs["engine_kwargs"] = _engine_kwargs(parsed, 60.0)
    if not _check_reachable(url, kwargs["engine_kwargs"]):
        raise StorageError(f"storage {mask_url(url)} holds no lars-search studies (no Optuna tables)")
    return _build(url, retry_timeout=retry_timeout, **kwargs)
