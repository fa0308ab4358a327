"""Many workers on a real PostgreSQL server (Debian's ``postgresql``, started by the suite).

One throwaway server per session (``postgres_fixture.PostgresServer``: initdb on a temp
directory, 127.0.0.1 on a free port, a role with a password); each test uses its own
study name. Workers are real ``python -m search.cli worker`` processes running the fast
fake objective (``fake_objective.py``), with 1 s heartbeats and a 3 s grace period.
"""

from __future__ import annotations

import signal
import time

import optuna
import pytest
import sqlalchemy
from optuna.trial import TrialState
from postgres_fixture import PostgresServer, postgres_binaries
from worker_harness import (
    assert_exact_budget,
    load_arm,
    start_workers,
    wait_all,
    wait_for_file,
    worker_logs,
    write_study,
)

from search import exit_codes
from search.cli.command import main
from search.errors import StorageError
from search.storage import budget as B
from search.storage.database import open_storage

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(
        postgres_binaries() is None,
        reason="PostgreSQL server binaries (initdb, pg_ctl) not found: apt-get install postgresql",
    ),
]


@pytest.fixture(scope="session")
def pg():
    server = PostgresServer().start()
    try:
        yield server
    finally:
        server.stop()


def _row_counts(url: str) -> dict[str, int]:
    engine = sqlalchemy.create_engine(url)
    try:
        with engine.connect() as c:
            return {t: c.execute(sqlalchemy.text(f"SELECT count(*) FROM {t}")).scalar()
                    for t in ("studies", "trials", "trial_params", "trial_values", "study_user_attributes")}  # fmt: skip
    finally:
        engine.dispose()


# ------------------------------------------------------------------ storage on PostgreSQL
def test_open_storage_on_postgres_has_heartbeat(pg):
    storage = open_storage(pg.url, heartbeat_interval=1, grace_period=3)
    assert storage.get_heartbeat_interval() == 1 and storage.grace_period == 3
    assert storage.engine.dialect.name == "postgresql"


def test_bare_postgresql_url_uses_psycopg_when_psycopg2_is_absent(pg):
    pytest.importorskip("psycopg")
    try:
        import psycopg2  # noqa: F401

        pytest.skip("psycopg2 installed: the bare URL keeps SQLAlchemy's default driver")
    except ImportError:
        pass
    bare = pg.url.replace("postgresql+psycopg://", "postgresql://")
    assert open_storage(bare, heartbeat=False).url.startswith("postgresql+psycopg://")


def test_bad_credentials_are_one_line_without_password_and_write_nothing(pg):
    open_storage(pg.url, heartbeat=False)  # schema exists
    before = _row_counts(pg.url)
    with pytest.raises(StorageError) as info:
        open_storage(pg.url_with(password="wrong-pw-123"))
    message = str(info.value)
    assert message.startswith(f"cannot connect to storage postgresql+psycopg://lars:***@127.0.0.1:{pg.port}/lars: ")
    assert 'password authentication failed for user "lars"' in message
    assert "wrong-pw-123" not in message and "\n" not in message
    with pytest.raises(StorageError, match=r'database "nodb" does not exist'):
        open_storage(pg.url_with(database="nodb"))
    assert _row_counts(pg.url) == before


def _run_worker_main(study, url, tmp_path, capsys, monkeypatch) -> tuple[int, str]:
    """The ``worker`` verb in this process (what ``python -m search.cli worker`` runs): exit code and stderr."""
    monkeypatch.setenv("FAKE_OBJECTIVE_DIR", str(tmp_path))
    monkeypatch.setenv("FAKE_OBJECTIVE_SLEEP", "0")
    capsys.readouterr()
    code = main(["worker", str(study), "--storage", url, "--objective", "fake_objective:train"])
    return code, capsys.readouterr().err


def test_worker_with_bad_credentials_exits_2_before_training(pg, tmp_path, capsys, monkeypatch):
    study = write_study(tmp_path, name="pg-badpw", trials=2)
    code, err = _run_worker_main(study, pg.url_with(password="hunter2"), tmp_path, capsys, monkeypatch)
    assert code == exit_codes.USER_ERROR
    assert len(err.strip().splitlines()) == 1
    assert "lars:***@" in err and 'password authentication failed for user "lars"' in err
    assert "hunter2" not in err
    assert not (tmp_path / "trials.log").exists()


def test_concurrent_claims_in_threads_never_exceed_budget(pg):
    """8 threads, each with its own storage (own connections), race for 25 slots."""
    name = "pg-threads/sgd"
    optuna.create_study(study_name=name, storage=open_storage(pg.url, heartbeat=False))
    numbers, errors = [], []

    def claim_all():
        try:
            study = optuna.load_study(study_name=name, storage=open_storage(pg.url, heartbeat=False))
            while (trial := B.claim_trial(study, 25)) is not None:
                numbers.append(trial.number)
                study.tell(trial, 1.0)
        except Exception as error:  # asserted below
            errors.append(repr(error))

    import threading

    threads = [threading.Thread(target=claim_all) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    assert sorted(numbers) == list(range(25))


# ------------------------------------------------------------------ many workers
@pytest.mark.slow
def test_four_workers_meet_budget_exactly_on_postgres(pg, tmp_path):
    study = write_study(tmp_path, name="pg-four", trials=40, pruner="median")
    codes = wait_all(start_workers(study, pg.url, 4, tmp_path))
    logs = worker_logs(tmp_path)
    assert codes == [0, 0, 0, 0], logs
    assert "Traceback" not in logs
    assert_exact_budget(pg.url, "pg-four", ("sgd", "sgd+lars"), 40)
    assert all(f"[worker {i}]" in logs for i in range(4))


@pytest.mark.slow
def test_sigkilled_worker_on_postgres_is_retried_and_budget_is_exact(pg, tmp_path):
    study = write_study(tmp_path, name="pg-kill", arms=("sgd",), trials=20)
    [victim] = start_workers(study, pg.url, 1, tmp_path)  # alone first: it cannot miss the study
    (tmp_path / f"hang-{victim.pid}").write_text("")
    lr = wait_for_file(tmp_path / f"hung-{victim.pid}")
    others = start_workers(study, pg.url, 3, tmp_path, first_id=1)
    victim.send_signal(signal.SIGKILL)
    codes = wait_all([victim, *others])
    assert codes[0] == -signal.SIGKILL and codes[1:] == [0, 0, 0], worker_logs(tmp_path)
    states = assert_exact_budget(pg.url, "pg-kill", ("sgd",), 20, allow_retried_failures=1)
    assert states["sgd"]["FAIL"] == 1
    trials = load_arm(pg.url, "pg-kill/sgd").trials
    failed = next(t for t in trials if t.state == TrialState.FAIL)
    assert repr(failed.params["lr"]) == lr
    retry = next(t for t in trials if t.system_attrs.get("failed_trial") == failed.number)
    assert retry.state == TrialState.COMPLETE and retry.params == failed.params


def _wait_for_complete_trials(url: str, study_name: str, n: int, timeout: float = 300.0) -> list:
    """Poll the study's state until ``n`` trials are COMPLETE (the timeout only guards a hang)."""
    storage = open_storage(url, heartbeat=False)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            done = [t for t in optuna.load_study(study_name=study_name, storage=storage).trials
                    if t.state == TrialState.COMPLETE]  # fmt: skip
        except KeyError:
            done = []
        if len(done) >= n:
            return done
        time.sleep(0.1)
    raise TimeoutError(f"{study_name}: fewer than {n} complete trials after {timeout} s")


@pytest.mark.slow
def test_postgres_restart_mid_study_loses_nothing(pg, tmp_path):
    study = write_study(tmp_path, name="pg-restart", arms=("sgd",), trials=30)
    procs = start_workers(study, pg.url, 4, tmp_path, sleep=0.03)
    before = {}
    try:
        done = _wait_for_complete_trials(pg.url, "pg-restart/sgd", 10)  # the study is well under way
        before = {t.number: (t.params, t.value) for t in done}
        pg.restart(down_s=2.0)
    finally:  # a failure here must not leave workers writing into the next test's counts
        for p in procs:
            if p.poll() is None and not before:
                p.kill()
    codes = wait_all(procs)
    logs = worker_logs(tmp_path)
    assert codes == [0, 0, 0, 0], logs
    assert "retrying" in logs  # the workers did lose the server, and came back
    assert "lars-test-pw" not in logs  # warnings name the storage with the password masked
    after = {t.number: t for t in load_arm(pg.url, "pg-restart/sgd").trials}
    for number, (params, value) in before.items():  # finished trials are all still there, unchanged
        assert after[number].state == TrialState.COMPLETE
        assert (after[number].params, after[number].value) == (params, value)
    study_ = load_arm(pg.url, "pg-restart/sgd")
    assert B.count_slots(study_) == 30
    numbers = sorted(after)
    assert numbers == list(range(len(numbers)))
    assert not [t for t in after.values() if t.state in (TrialState.RUNNING, TrialState.WAITING)]


def test_conflicting_study_file_on_postgres_is_refused_and_database_untouched(pg, tmp_path, capsys, monkeypatch):
    study = write_study(tmp_path, name="pg-conflict", trials=2)
    assert _run_worker_main(study, pg.url, tmp_path, capsys, monkeypatch)[0] == 0
    before = _row_counts(pg.url)
    changed = write_study(tmp_path, name="pg-conflict", trials=2, filename="changed.yaml")
    changed.write_text(changed.read_text().replace("model: vgg11", "model: vgg16"))
    code, err = _run_worker_main(changed, pg.url, tmp_path, capsys, monkeypatch)
    assert code == exit_codes.USER_ERROR
    assert "conflicts with the stored study 'pg-conflict/sgd'" in err
    assert "objective.model was 'vgg11', now 'vgg16'" in err
    assert "lars:***@" in err and "lars-test-pw" not in err
    assert _row_counts(pg.url) == before
