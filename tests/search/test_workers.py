"""search.run.workers on SQLite: N workers, exact budgets, a SIGKILLed worker, the dashboard, bad input.

Workers are real ``python -m search.cli worker`` processes with the fast fake objective of
``fake_objective.py`` (no torch) and 1 s heartbeats with a 3 s grace period.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import threading
import urllib.request
from pathlib import Path
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import optuna
import pytest
from optuna.trial import TrialState
from worker_harness import (
    assert_exact_budget,
    load_arm,
    start_workers,
    wait_all,
    wait_for_file,
    worker_env,
    worker_logs,
    write_study,
)

from search import exit_codes
from search.cli.command import main
from search.run import workers as W


# ------------------------------------------------------------------ units
def test_parse_gpus_accepts_indices_and_rejects_bad_lists():
    assert W.parse_gpus("0,1, 3") == ["0", "1", "3"]
    assert W.parse_gpus([2, 5]) == ["2", "5"]
    assert W.parse_gpus(None) is None
    with pytest.raises(
        ValueError, match=r"--gpus must be a comma-separated list of GPU indices like 0,1,2, got '0,,1'"
    ):
        W.parse_gpus("0,,1")
    with pytest.raises(ValueError, match=r"--gpus must not repeat a GPU, got '1,1'"):
        W.parse_gpus("1,1")


def test_load_objective_resolves_module_function_and_validator():
    train, validate = W.load_objective("fake_objective:train")
    assert train.__module__ == "fake_objective" and validate({"a": 1}) == {"a": 1}
    assert W.load_objective(None) == (None, None)
    with pytest.raises(ValueError, match=r"--objective must be module:function, got 'fake_objective'"):
        W.load_objective("fake_objective")
    with pytest.raises(ValueError, match=r"module 'fake_objective' has no function 'nope'"):
        W.load_objective("fake_objective:nope")
    with pytest.raises(ValueError, match=r"cannot import module 'no_such_module_xyz'"):
        W.load_objective("no_such_module_xyz:train")


def test_worker_command_passes_every_option():
    argv = W.worker_command("s.yaml", worker_id=3, n_trials=5, timeout=60.0, device="cuda", objective="m:f",
                            python="py")  # fmt: skip
    assert argv == ["py", "-m", "search.cli", "worker", "s.yaml", "--storage-env", W.STORAGE_ENV, "--worker-id", "3",
                    "--n-trials", "5", "--timeout", "60.0", "--device", "cuda", "--objective", "m:f"]  # fmt: skip


def test_the_storage_url_reaches_workers_through_the_environment_not_argv(tmp_path):
    """#26 item 2: `ps -eo args` showed each worker's --storage URL, password included."""
    study = write_study(tmp_path, trials=2)
    url = f"sqlite:///{tmp_path}/x.db"
    fake_python = tmp_path / "fake-python"
    fake_python.write_text(
        '#!/bin/sh\nline=$(tr "\\0" " " < /proc/$$/cmdline)\necho "$line" >> "$RECORD"\n'  # one write per worker
        f'echo "${W.STORAGE_ENV}" >> "$RECORD.env"\n'
    )
    fake_python.chmod(0o755)
    code = W.launch_workers(str(study), storage_url=url, n_workers=2, env={"RECORD": str(tmp_path / "record")},
                            python=str(fake_python), log=lambda line: None)  # fmt: skip
    assert code == 0
    command_lines = (tmp_path / "record").read_text().splitlines()
    assert len(command_lines) == 2 and all("-m search.cli worker" in line for line in command_lines)
    assert not any(url in line or "x.db" in line for line in command_lines)
    assert (tmp_path / "record.env").read_text().splitlines() == [url, url]


def test_launch_workers_gives_each_gpu_worker_its_own_device(tmp_path, monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    study = write_study(tmp_path, trials=2)
    fake_python = tmp_path / "fake-python"
    fake_python.write_text(
        '#!/bin/sh\necho "$CUDA_VISIBLE_DEVICES $*" >> "$RECORD"\necho "$OMP_NUM_THREADS" >> "$RECORD.omp"\n'
    )
    fake_python.chmod(0o755)
    lines = []
    code = W.launch_workers(str(study), storage_url=f"sqlite:///{tmp_path}/x.db", gpus="1,3",
                            env={"RECORD": str(tmp_path / "record")}, python=str(fake_python), log=lines.append)  # fmt: skip
    assert code == 0
    record = sorted((tmp_path / "record").read_text().splitlines())
    assert record[0].startswith(f"1 -m search.cli worker {study} --storage-env {W.STORAGE_ENV} --worker-id 0")
    assert record[1].startswith(f"3 -m search.cli worker {study} --storage-env {W.STORAGE_ENV} --worker-id 1")
    assert all(r.endswith("--device cuda") for r in record)
    assert lines == [f"mw: starting 2 workers on GPUs 1,3 on sqlite:///{tmp_path}/x.db"]
    assert (tmp_path / "record.omp").read_text().split() == [str(W.cpu_threads_per_worker(2))] * 2
    with pytest.raises(ValueError, match=r"--workers must equal the number of --gpus \(2\), got 3"):
        W.launch_workers(str(study), storage_url=f"sqlite:///{tmp_path}/x.db", gpus="0,1", n_workers=3)


def test_cpu_threads_are_shared_out_between_local_workers():
    assert [W.cpu_threads_per_worker(n, cores=16) for n in (1, 2, 3, 4, 16, 32)] == [16, 8, 5, 4, 1, 1]
    assert W.cpu_threads_per_worker(4, cores=2) == 1


# ------------------------------------------------------------------ many workers
@pytest.mark.slow
def test_four_workers_started_at_once_on_fresh_sqlite_file_meet_budget_exactly(tmp_path):
    """4 workers x 40 trials per arm on a file that does not exist yet (optuna#4621, #4994)."""
    url = f"sqlite:///{tmp_path}/fresh.db"
    study = write_study(tmp_path, trials=40, pruner="median")
    procs = start_workers(study, url, 4, tmp_path)
    codes = wait_all(procs)
    logs = worker_logs(tmp_path)
    assert codes == [0, 0, 0, 0], logs
    assert "database is locked" not in logs and "Traceback" not in logs
    assert_exact_budget(url, "mw", ("sgd", "sgd+lars"), 40)
    # each worker trained some of them: the work was shared
    assert all(f"[worker {i}]" in logs for i in range(4))


@pytest.mark.slow
def test_launch_workers_runs_the_budget_with_n_processes(tmp_path):
    url = f"sqlite:///{tmp_path}/x.db"
    study = write_study(tmp_path, arms=("sgd",), trials=8)
    lines = []
    code = W.launch_workers(str(study), storage_url=url, n_workers=2, objective="fake_objective:train",
                            env=worker_env(tmp_path), log=lines.append)  # fmt: skip
    assert code == 0
    assert_exact_budget(url, "mw", ("sgd",), 8)
    # every worker line arrives whole and tagged, and Optuna's [I ...] log lines stay out (#16 item 14)
    assert lines[0] == f"mw: starting 2 workers on {url}"
    assert len(lines) > 8 and all(re.fullmatch(r"\[worker [01]\] (?!.*\[worker ).*", line) for line in lines[1:]), lines
    assert sum("mw/sgd trial " in line for line in lines) == 8
    assert not any("[I " in line for line in lines)
    # a second run resumes: nothing to do, nothing duplicated
    assert W.launch_workers(str(study), storage_url=url, n_workers=2, objective="fake_objective:train",
                            env=worker_env(tmp_path), log=lines.append) == 0  # fmt: skip
    assert_exact_budget(url, "mw", ("sgd",), 8)


def test_workers_on_an_axis_create_only_each_batchs_studies(tmp_path):
    """The file's own, unscaled studies (``mw/sgd`` at the reference batch) are never created: they
    showed in the dashboard and `status` as studies with a waiting recipe trial that no run would train."""
    url = f"sqlite:///{tmp_path}/x.db"
    study = write_study(tmp_path, arms=("sgd",), trials=2)
    study.write_text(study.read_text() + "axis: {batch_size: [64, 256]}\nevaluation: {seeds: 1}\n")
    lines = []
    code = W.launch_workers(str(study), storage_url=url, n_workers=2, objective="fake_objective:train",
                            env=worker_env(tmp_path), log=lines.append)  # fmt: skip
    assert code == 0, lines
    names = sorted(s.study_name for s in optuna.get_all_study_summaries(url))
    assert names == ["mw-b256/sgd", "mw-b256/sgd/eval", "mw-b64/sgd", "mw-b64/sgd/eval"]
    for batch in (64, 256):
        assert_exact_budget(url, f"mw-b{batch}", ("sgd",), 2)


def _kill_one_worker_mid_trial(study: Path, url: str, tmp_path: Path, n: int = 4) -> tuple[list[int], str]:
    """The victim starts alone and hangs in a trial before the others start: it cannot miss the
    study (on a busy machine the others once finished every trial before it had imported)."""
    [victim] = start_workers(study, url, 1, tmp_path)
    (tmp_path / f"hang-{victim.pid}").write_text("")
    lr = wait_for_file(tmp_path / f"hung-{victim.pid}")
    others = start_workers(study, url, n - 1, tmp_path, first_id=1)
    os.kill(victim.pid, signal.SIGKILL)
    codes = wait_all([victim, *others])
    return codes, lr


@pytest.mark.slow
def test_sigkilled_worker_trial_fails_is_retried_and_budget_is_exact(tmp_path):
    url = f"sqlite:///{tmp_path}/x.db"
    study = write_study(tmp_path, arms=("sgd",), trials=20)
    codes, lr = _kill_one_worker_mid_trial(study, url, tmp_path)
    assert codes[0] == -signal.SIGKILL and codes[1:] == [0, 0, 0], worker_logs(tmp_path)
    states = assert_exact_budget(url, "mw", ("sgd",), 20, allow_retried_failures=1)
    assert states["sgd"]["FAIL"] == 1
    trials = load_arm(url, "mw/sgd").trials
    failed = next(t for t in trials if t.state == TrialState.FAIL)
    retry = next(t for t in trials if t.system_attrs.get("failed_trial") == failed.number)
    assert retry.state == TrialState.COMPLETE
    assert retry.params == failed.params and repr(failed.params["lr"]) == lr


# ------------------------------------------------------------------ the dashboard reading a live file
class _ThreadedServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 (wsgiref's name)
        pass


@pytest.mark.slow
def test_optuna_dashboard_polling_live_sqlite_file_does_not_fail_workers(tmp_path):
    """optuna-dashboard#545: the dashboard once crashed a running study."""
    import optuna_dashboard

    url = f"sqlite:///{tmp_path}/x.db"
    study = write_study(tmp_path, arms=("sgd",), trials=40)
    W._prepare(str(study), url)  # schema and studies exist before the dashboard opens the file
    server = make_server(
        "127.0.0.1", 0, optuna_dashboard.wsgi(url), server_class=_ThreadedServer, handler_class=_QuietHandler
    )
    serving = threading.Thread(target=server.serve_forever, daemon=True)
    serving.start()
    base = f"http://127.0.0.1:{server.server_port}"
    responses, errors, done = [], [], threading.Event()

    def poll():
        while not done.is_set():
            try:
                studies = json.load(urllib.request.urlopen(f"{base}/api/studies", timeout=30))["study_summaries"]
                for s in studies:
                    detail = json.load(urllib.request.urlopen(f"{base}/api/studies/{s['study_id']}", timeout=30))
                    responses.append(len(detail["trials"]))
            except Exception as error:  # recorded, asserted below
                errors.append(repr(error))

    pollers = [threading.Thread(target=poll) for _ in range(2)]
    try:
        for p in pollers:
            p.start()
        codes = wait_all(start_workers(study, url, 4, tmp_path))
    finally:
        done.set()
        for p in pollers:
            p.join(30)
        server.shutdown()
    logs = worker_logs(tmp_path)
    assert codes == [0, 0, 0, 0], logs
    assert "database is locked" not in logs
    assert errors == []
    assert len(responses) >= 4 and max(responses) > 0
    assert_exact_budget(url, "mw", ("sgd",), 40)


# ------------------------------------------------------------------ bad input loses nothing
def _run_worker_main(study: Path, url: str, tmp_path: Path, capsys, monkeypatch) -> tuple[int, str]:
    """The ``worker`` verb in this process (what ``python -m search.cli worker`` runs): exit code and stderr."""
    monkeypatch.setenv("FAKE_OBJECTIVE_DIR", str(tmp_path))
    monkeypatch.setenv("FAKE_OBJECTIVE_SLEEP", "0")
    capsys.readouterr()
    code = main(["worker", str(study), "--storage", url, "--objective", "fake_objective:train"])
    return code, capsys.readouterr().err


def test_worker_with_bad_storage_url_exits_2_with_one_masked_line(tmp_path, capsys, monkeypatch):
    study = write_study(tmp_path, trials=2)
    code, err = _run_worker_main(
        study, "postgresql+psycopg://lars:hunter2@127.0.0.1:1/lars", tmp_path, capsys, monkeypatch
    )
    assert code == exit_codes.USER_ERROR
    assert len(err.strip().splitlines()) == 1
    assert err.startswith(
        "lars-search: error: cannot connect to storage postgresql+psycopg://lars:***@127.0.0.1:1/lars: "
    )
    assert "hunter2" not in err
    assert not (tmp_path / "trials.log").exists()  # nothing trained


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_conflicting_study_file_is_refused_and_database_untouched(tmp_path, capsys, monkeypatch):
    import sqlite3

    url = f"sqlite:///{tmp_path}/x.db"
    study = write_study(tmp_path, trials=3)
    assert _run_worker_main(study, url, tmp_path, capsys, monkeypatch)[0] == 0
    changed = write_study(tmp_path, trials=3, filename="changed.yaml")
    changed.write_text(changed.read_text().replace("epochs: 4", "epochs: 5"))
    # checkpoint the WAL so that the main file holds everything, then compare bytes
    sqlite3.connect(tmp_path / "x.db").execute("PRAGMA wal_checkpoint(TRUNCATE)").close()
    before = _digest(tmp_path / "x.db")
    code, err = _run_worker_main(changed, url, tmp_path, capsys, monkeypatch)
    assert code == exit_codes.USER_ERROR
    assert "conflicts with the stored study 'mw/sgd'" in err and "objective.epochs was 4, now 5" in err
    assert len(err.strip().splitlines()) == 1
    sqlite3.connect(tmp_path / "x.db").execute("PRAGMA wal_checkpoint(TRUNCATE)").close()
    assert _digest(tmp_path / "x.db") == before
    assert_exact_budget(url, "mw", ("sgd", "sgd+lars"), 3)


def test_sigterm_to_the_parent_is_passed_on_to_every_worker(tmp_path, monkeypatch):
    """#16 item 3: the workers of `run --workers` must hear a SIGTERM sent to the parent (not their group)."""
    from search.errors import Terminated

    study = write_study(tmp_path, trials=2)
    fake_python = tmp_path / "fake-python"
    fake_python.write_text('#!/bin/sh\ntrap \'echo term > "$RECORD.$$"; exit 0\' TERM\ntouch "$RECORD.ready.$$"\n'
                           'while :; do sleep 0.05; done\n')  # fmt: skip
    fake_python.chmod(0o755)

    def terminated_once_ready(procs, log):
        for p in procs:
            wait_for_file_or_empty(tmp_path / f"record.ready.{p.pid}")
        raise Terminated()

    monkeypatch.setattr(W, "_wait_all", terminated_once_ready)
    with pytest.raises(Terminated):
        W.launch_workers(str(study), storage_url=f"sqlite:///{tmp_path}/x.db", n_workers=2, log=lambda line: None,
                         env={"RECORD": str(tmp_path / "record")}, python=str(fake_python))  # fmt: skip
    terms = sorted(p.read_text() for p in tmp_path.glob("record.[0-9]*"))
    assert terms == ["term\n", "term\n"]


def wait_for_file_or_empty(path: Path) -> None:
    """Readiness of a shell stand-in: the (empty) file it touches once its trap is set."""
    while not path.exists():
        threading.Event().wait(0.02)
