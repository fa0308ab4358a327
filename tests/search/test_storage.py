"""search.storage.database: URLs, masking, errors, SQLite settings, the schema-creation race, retries."""

from __future__ import annotations

import multiprocessing
import re
import sqlite3
import time

import optuna
import pytest
import sqlalchemy.exc

from search.storage import database as S
from search.storage._retry import is_transient_error
from search.storage.optuna_internals import rdb_backend
from search.storage.url import default_storage_url, mask_url


# ------------------------------------------------------------------ mask_url
@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("postgresql+psycopg://lars:s3cret@db:5432/lars", "postgresql+psycopg://lars:***@db:5432/lars"),
        ("postgresql://u:p%40ss@h/d?sslmode=require", "postgresql://u:***@h/d?sslmode=require"),
        ("mysql://u:pw@h/d?charset=utf8&password=pw", "mysql://u:***@h/d?charset=utf8&password=***"),
        ("sqlite:///lars-search.db", "sqlite:///lars-search.db"),
        ("postgresql://user@host/db", "postgresql://user@host/db"),
        ("not a url://x:secret@", "not a url://x:***@"),
    ],
)
def test_mask_url_hides_password_in_userinfo_and_query(url, masked):
    assert mask_url(url) == masked


def test_default_storage_url_reads_environment(monkeypatch):
    monkeypatch.delenv("LARS_SEARCH_STORAGE", raising=False)
    assert default_storage_url() == "sqlite:///lars-search.db"
    monkeypatch.setenv("LARS_SEARCH_STORAGE", "sqlite:////tmp/x.db")
    assert default_storage_url() == "sqlite:////tmp/x.db"


def test_open_storage_none_uses_sqlite_file_in_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LARS_SEARCH_STORAGE", raising=False)
    storage = S.open_storage(None)
    assert storage.url == "sqlite:///lars-search.db"
    assert (tmp_path / "lars-search.db").exists()


# ------------------------------------------------------------------ errors
@pytest.mark.parametrize(
    ("url", "pattern"),
    [
        ("nonsense", r"^storage URL 'nonsense' is not a valid SQLAlchemy URL"),
        ("oracle://a:secret@c/d", r"backend 'oracle' is not supported; use one of sqlite, postgresql, mysql$"),
        ("mysql://u:secret@h/d", r"database driver for 'mysql' is not installed$"),
        ("sqlite:////nonexistent-dir/x.db", r"directory '/nonexistent-dir' does not exist$"),
        (
            "postgresql+psycopg://u:secret@127.0.0.1:1/db",
            r"^cannot connect to storage postgresql\+psycopg://u:\*\*\*@127.0.0.1:1/db: .*refused",
        ),
    ],
)
def test_open_storage_bad_url_is_one_line_without_password(url, pattern):
    with pytest.raises(S.StorageError, match=pattern) as info:
        S.open_storage(url)
    message = str(info.value)
    assert "\n" not in message
    assert "secret" not in message


def test_grace_period_must_exceed_interval(tmp_path):
    with pytest.raises(
        S.StorageError,
        match=r"grace_period must be longer than heartbeat_interval, got grace_period=2 and heartbeat_interval=2",
    ):
        S.open_storage(f"sqlite:///{tmp_path}/x.db", heartbeat_interval=2, grace_period=2)


def test_heartbeat_environment_must_be_positive_integer(tmp_path, monkeypatch):
    monkeypatch.setenv("LARS_SEARCH_HEARTBEAT_INTERVAL", "0")
    with pytest.raises(
        S.StorageError, match=r"\$LARS_SEARCH_HEARTBEAT_INTERVAL must be a positive integer of seconds, got '0'"
    ):
        S.open_storage(f"sqlite:///{tmp_path}/x.db")


# ------------------------------------------------------------------ settings
def test_sqlite_storage_has_wal_busy_timeout_and_heartbeat(tmp_path, monkeypatch):
    monkeypatch.setenv("LARS_SEARCH_HEARTBEAT_INTERVAL", "7")
    monkeypatch.delenv("LARS_SEARCH_HEARTBEAT_GRACE", raising=False)
    storage = S.open_storage(f"sqlite:///{tmp_path}/x.db", busy_timeout=42.0)
    assert storage.get_heartbeat_interval() == 7
    assert storage.grace_period == 14
    callback = storage.get_heartbeat_stale_trial_callback()
    assert type(callback).__name__ in ("RetryHeartbeatStaleTrialCallback", "RetryFailedTrialCallback")
    assert storage.engine_kwargs["connect_args"] == {"timeout": 42.0}
    mode = sqlite3.connect(tmp_path / "x.db").execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_heartbeat_off_leaves_storage_without_interval(tmp_path):
    storage = S.open_storage(f"sqlite:///{tmp_path}/x.db", heartbeat=False)
    assert storage.get_heartbeat_interval() is None


def test_rdb_backend_unwraps_optuna_cached_storage(tmp_path):
    storage = S.open_storage(f"sqlite:///{tmp_path}/x.db", heartbeat=False)
    study = optuna.create_study(storage=storage)
    assert rdb_backend(study._storage) is storage
    assert rdb_backend(optuna.storages.InMemoryStorage()) is None


# ------------------------------------------------------------------ transient errors and retries
def _operational(msg: str) -> sqlalchemy.exc.OperationalError:
    return sqlalchemy.exc.OperationalError("SELECT 1", {}, sqlite3.OperationalError(msg))


def test_is_transient_error_follows_optuna_wrapping():
    wrapped = optuna.exceptions.StorageInternalError("commit failed")
    wrapped.__cause__ = _operational("database is locked")
    assert is_transient_error(wrapped)
    assert is_transient_error(_operational("server closed the connection"))
    integrity = sqlalchemy.exc.IntegrityError("INSERT", {}, Exception("UNIQUE constraint failed"))
    assert not is_transient_error(integrity)
    assert not is_transient_error(ValueError("x"))


def test_storage_call_is_retried_on_transient_error(tmp_path, monkeypatch):
    storage = S.open_storage(f"sqlite:///{tmp_path}/x.db", heartbeat=False)
    calls = []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise _operational("database is locked")
        return "ok"

    assert storage._with_retry("flaky", flaky) == "ok"
    assert len(calls) == 3


def test_storage_call_gives_up_after_retry_timeout(tmp_path):
    storage = S.open_storage(f"sqlite:///{tmp_path}/x.db", heartbeat=False, retry_timeout=0.3)

    def always_locked():
        raise _operational("database is locked")

    start = time.monotonic()
    with pytest.raises(sqlalchemy.exc.OperationalError, match="database is locked"):
        storage._with_retry("always_locked", always_locked)
    assert time.monotonic() - start < 5.0


def test_storage_call_does_not_retry_integrity_errors(tmp_path):
    storage = S.open_storage(f"sqlite:///{tmp_path}/x.db", heartbeat=False)
    calls = []

    def duplicate():
        calls.append(1)
        raise sqlalchemy.exc.IntegrityError("INSERT", {}, Exception("UNIQUE"))

    with pytest.raises(sqlalchemy.exc.IntegrityError):
        storage._with_retry("duplicate", duplicate)
    assert calls == [1]


# ------------------------------------------------------------------ the creation race (optuna#4621)
def _open_at_barrier(url, barrier, results):
    barrier.wait()
    try:
        storage = S.open_storage(url, heartbeat_interval=1, grace_period=3)
        optuna.create_study(study_name="race/sgd", storage=storage, load_if_exists=True)
        results.put("ok")
    except Exception as error:  # reported to the parent
        results.put(f"{type(error).__name__}: {error}")


def test_many_processes_create_schema_on_fresh_file_at_once(tmp_path):
    url = f"sqlite:///{tmp_path}/fresh.db"
    ctx = multiprocessing.get_context("fork")
    barrier, results = ctx.Barrier(6), ctx.Queue()
    procs = [ctx.Process(target=_open_at_barrier, args=(url, barrier, results)) for _ in range(6)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    outcomes = [results.get(timeout=5) for _ in procs]
    assert outcomes == ["ok"] * 6
    storage = S.open_storage(url, heartbeat=False)
    assert [s.study_name for s in storage.get_all_studies()] == ["race/sgd"]


# ------------------------------------------------------------------ issue 16: URLs that cannot work, readers that write
@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:", "sqlite:///file::memory:?uri=true"])
def test_in_memory_sqlite_is_rejected_at_once(url):
    start = time.monotonic()
    with pytest.raises(
        S.StorageError,
        match=r"is an in-memory SQLite database, which workers cannot share and a "
        r"rerun cannot resume; use a file, e.g. sqlite:///lars-search.db$",
    ):
        S.open_storage(url)
    assert time.monotonic() - start < 10.0  # no retries: the URL alone says it cannot work


@pytest.mark.parametrize("directory", ["/proc", "/sys"])
def test_sqlite_file_in_a_directory_that_cannot_hold_it_is_one_line(directory):
    with pytest.raises(
        S.StorageError,
        match=rf"^cannot open storage sqlite:///{directory}/x.db: cannot create a file "
        rf"in directory '{directory}' \(.+\)$",
    ):
        S.open_storage(f"sqlite:///{directory}/x.db")


def test_every_public_storage_method_is_retried():
    for name in [n for n, v in vars(optuna.storages.BaseStorage).items() if not n.startswith("_") and callable(v)]:
        assert name in vars(S._RetryingRDBStorage), name
    assert "_get_trials" in vars(S._RetryingRDBStorage)


def _sqlite_state(path):
    """Everything a reader must leave alone: the bytes, the journal mode, the files beside it."""
    connection = sqlite3.connect(path)
    mode = connection.execute("PRAGMA journal_mode").fetchone()[0]
    connection.close()
    return path.read_bytes(), mode, sorted(p.name for p in path.parent.iterdir())


def test_reader_on_an_unrelated_sqlite_file_changes_nothing(tmp_path):
    other = tmp_path / "other.db"
    connection = sqlite3.connect(other)
    connection.execute("CREATE TABLE notes (x)")
    connection.commit()
    connection.close()
    before = _sqlite_state(other)
    with pytest.raises(
        S.StorageError, match=rf"^storage sqlite:///{other} holds no lars-search studies \(no Optuna tables"
    ):
        S.open_reader(f"sqlite:///{other}")
    assert _sqlite_state(other) == before
    assert before[1] == "delete" and before[2] == ["other.db"]


def test_reader_on_a_missing_file_creates_nothing(tmp_path):
    with pytest.raises(
        S.StorageError, match=r"^no storage at sqlite:///.*absent.db \(file .*absent.db does not exist\)"
    ):
        S.open_reader(f"sqlite:///{tmp_path}/absent.db")
    assert list(tmp_path.iterdir()) == []


def test_reader_reads_a_study_read_only_and_makes_no_lock_file(tmp_path):
    url = f"sqlite:///{tmp_path}/x.db"
    study = optuna.create_study(study_name="r/sgd", storage=S.open_storage(url, heartbeat=False))
    study.tell(study.ask(), 0.5)
    (tmp_path / "x.db.lock").unlink()
    reader = S.open_reader(url)
    assert [s.study_name for s in reader.get_all_studies()] == ["r/sgd"]
    assert len(reader.get_all_trials(reader.get_study_id_from_name("r/sgd"))) == 1
    with pytest.raises(optuna.exceptions.StorageInternalError) as info:
        reader.set_study_user_attr(reader.get_study_id_from_name("r/sgd"), "k", 1)
    assert "attempt to write a readonly database" in str(info.value.__cause__)
    assert not (tmp_path / "x.db.lock").exists()


def test_an_outage_is_one_line_when_it_starts_and_one_when_it_ends(caplog):
    """#26 item 13: a 20 s PostgreSQL outage logged 54 retry lines (every retry of every caller)."""
    import logging
    import sqlite3
    import threading
    import time

    from search.storage._retry import retry

    down = threading.Event()
    down.set()

    def call() -> str:
        if down.is_set():
            raise sqlite3.OperationalError("database is locked")
        return "ok"

    url = "postgresql+psycopg://lars:pw@db/lars"
    with caplog.at_level(logging.WARNING, logger="search.storage.database"):
        callers = [threading.Thread(target=retry, args=(call,), kwargs={"what": f"call {i}", "url": url,
                   "timeout": 30, "first_delay": 0.01, "max_delay": 0.05}) for i in range(3)]  # fmt: skip
        for caller in callers:
            caller.start()
        time.sleep(0.5)  # many retries each
        down.clear()
        for caller in callers:
            caller.join()
        assert retry(call, what="call 3", url=url, timeout=1) == "ok"
    lines = [r.getMessage() for r in caplog.records if r.name == "search.storage.database"]
    assert len(lines) == 2, lines
    assert re.fullmatch(r"storage postgresql\+psycopg://lars:\*\*\*@db/lars: call \d failed \(database is locked\); "
                        r"retrying for up to 30 s, quietly until it answers", lines[0])  # fmt: skip
    assert re.fullmatch(r"storage postgresql\+psycopg://lars:\*\*\*@db/lars: answers again after \d+\.\d s", lines[1])
