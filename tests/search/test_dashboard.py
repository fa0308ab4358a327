"""search.results.dashboard: optuna-dashboard served for a lars-search storage, seen in a real browser."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import threading
import urllib.error
import urllib.request
from pathlib import Path

import optuna
import pytest
from browser import CHROMIUM, chromium

from search.errors import DashboardError, StorageError
from search.results.dashboard import make_server

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
ARMS = ("sgd", "sgd+lars", "adam+lars")
NAME = "dash-demo"

# A full plain config as objectives.train receives it (the contract's keys); its JSON is
# under optuna-dashboard's 1024-character attribute limit, so it is shown whole.
CONFIG = {
    "dataset": "fashion_mnist",
    "data_dir": None,
    "n_train": 2000,
    "val_size": 1000,
    "model": "vgg16",
    "width": 0.25,
    "epochs": 3,
    "batch_size": 128,
    "optimizer": "sgd",
    "lr": 0.1,
    "momentum": 0.9,
    "nesterov": False,
    "weight_decay": 5e-4,
    "lars": True,
    "trust_coefficient": 0.001,
    "lars_eps": 1e-8,
    "lars_mode": None,
    "lars_clip": False,
    "schedule": "cosine",
    "schedule_params": {"final_lr_ratio": 0.0},
    "warmup_epochs": 1.0,
    "seed": 0,
    "device": "cpu",
    "precision": "fp32",
    "compile": False,
    "evaluate_test": False,
    "progress": False,
}


def _make_storage(path: Path) -> str:
    """Three arms, three trials each: two complete (3 epochs reported), one failed with a reason."""
    url = f"sqlite:///{path}"
    storage = optuna.storages.RDBStorage(url)
    for arm in ARMS:
        study = optuna.create_study(study_name=f"{NAME}/{arm}", storage=storage, direction="maximize")
        study.set_user_attr("arm", arm)
        study.set_user_attr("spec_version", 1)
        for number in range(3):
            trial = study.ask()
            lr = trial.suggest_float("lr", 1e-3, 1.0, log=True)
            config = dict(CONFIG, optimizer=arm.split("+")[0], lars=arm.endswith("+lars"), lr=lr, seed=number)
            trial.set_user_attr("config", config)
            if number == 2:
                trial.set_user_attr("fail_reason", "diverged: training loss is nan at epoch 1")
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
                continue
            for epoch in (1, 2, 3):
                trial.report(0.5 + 0.1 * epoch + 0.01 * number, epoch)
            trial.set_user_attr("wall_time_s", 12.5 + number)
            trial.set_user_attr("images_per_s", 480.0 + number)
            study.tell(trial, 0.8 + 0.01 * number)
    return url


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory):
    """A dashboard server on a free port of 127.0.0.1, serving in a thread."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    url = _make_storage(tmp_path_factory.mktemp("dash") / "studies.db")
    server = make_server(url, port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def _get_json(server, path: str):
    root = server.url.removesuffix("/dashboard")
    with urllib.request.urlopen(root + path, timeout=10) as response:
        return json.loads(response.read())


def test_make_server_binds_loopback_and_finds_every_arm(dashboard):
    assert dashboard.url.startswith("http://127.0.0.1:")
    assert dashboard.study_names == sorted(f"{NAME}/{arm}" for arm in ARMS)


def test_api_lists_one_study_per_arm(dashboard):
    names = [s["study_name"] for s in _get_json(dashboard, "/api/studies")["study_summaries"]]
    assert sorted(names) == sorted(f"{NAME}/{arm}" for arm in ARMS)


def test_api_shows_trial_user_attrs(dashboard):
    studies = _get_json(dashboard, "/api/studies")["study_summaries"]
    study_id = next(s["study_id"] for s in studies if s["study_name"] == f"{NAME}/sgd+lars")
    detail = _get_json(dashboard, f"/api/studies/{study_id}")
    trials = sorted(detail["trials"], key=lambda t: t["number"])
    assert [t["state"] for t in trials] == ["Complete", "Complete", "Fail"]
    attrs = [{a["key"]: a["value"] for a in t["user_attrs"]} for t in trials]
    config = json.loads(attrs[1]["config"])  # the whole config, not truncated
    assert config["optimizer"] == "sgd" and config["lars"] is True and config["seed"] == 1
    assert set(config) == set(CONFIG)
    assert (attrs[1]["wall_time_s"], attrs[1]["images_per_s"]) == ("13.5", "481.0")
    assert attrs[2]["fail_reason"] == "diverged: training loss is nan at epoch 1"
    assert sorted(a["key"] for a in detail["union_user_attrs"]) == [
        "config",
        "fail_reason",
        "images_per_s",
        "wall_time_s",
    ]


def test_busy_port_is_one_clear_line(dashboard):
    port = int(dashboard.url.rsplit(":", 1)[1].split("/")[0])
    with pytest.raises(
        DashboardError, match=rf"^port {port} on 127.0.0.1 is already in use; pick another with --port$"
    ):
        make_server("sqlite:///unused.db", port=port)


def test_busy_port_is_detected_before_the_storage_is_opened(tmp_path):
    with contextlib.closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        with pytest.raises(DashboardError, match="already in use"):
            make_server(f"sqlite:///{tmp_path / 'missing.db'}", port=port)
    assert not (tmp_path / "missing.db").exists()


def test_missing_sqlite_file_is_reported_not_created(tmp_path):
    path = tmp_path / "nothing-here.db"
    with pytest.raises(
        StorageError,
        match=r"^no storage at sqlite:///.*nothing-here\.db \(file .* does not exist\); "
        r"run a study first: lars-search run STUDY.yaml, or pass --storage$",
    ):
        make_server(f"sqlite:///{path}", port=0)
    assert list(tmp_path.iterdir()) == []  # no database, no lock file


def _request(server, method: str, path: str) -> int:
    root = server.url.replace("0.0.0.0", "127.0.0.1").removesuffix("/dashboard")
    try:
        with urllib.request.urlopen(urllib.request.Request(root + path, method=method), timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


@contextlib.contextmanager
def _serving(url: str, **kwargs):
    server = make_server(url, port=0, **kwargs)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.mark.parametrize(("host", "allow_writes", "deletes"), [
    ("0.0.0.0", False, False), ("0.0.0.0", True, True), ("127.0.0.1", False, True)])  # fmt: skip
def test_dashboard_beyond_loopback_is_read_only_unless_asked(tmp_path, host, allow_writes, deletes):
    """#12 item 7: whoever reaches a dashboard on 0.0.0.0 could delete studies."""
    url = _make_storage(tmp_path / "rw.db")
    with _serving(url, host=host, allow_writes=allow_writes) as server:
        assert server.read_only is not deletes
        assert _request(server, "GET", "/api/studies") == 200
        study_id = optuna.storages.RDBStorage(url).get_study_id_from_name(f"{NAME}/sgd")
        assert _request(server, "DELETE", f"/api/studies/{study_id}") == (204 if deletes else 403)
    names = {s.study_name for s in optuna.storages.RDBStorage(url).get_all_studies()}
    assert (f"{NAME}/sgd" in names) is not deletes


def test_read_only_dashboard_says_so_in_one_line(tmp_path, monkeypatch):
    import io

    from search.results.dashboard import DashboardServer, serve

    url = _make_storage(tmp_path / "ro.db")
    monkeypatch.setattr(DashboardServer, "serve_forever", lambda self: None)  # return at once
    out = io.StringIO()
    serve(url, host="0.0.0.0", port=0, out=out)
    lines = out.getvalue().splitlines()
    assert lines[1] == (
        "read-only: 0.0.0.0 is reachable from other machines, so deleting studies and writing notes "
        "are refused (--allow-writes to allow them)"
    )
    assert lines[2] == f"3 studies: {NAME}/adam+lars, {NAME}/sgd, {NAME}/sgd+lars"
    out = io.StringIO()
    serve(url, host="127.0.0.1", port=0, out=out)
    assert "read-only" not in out.getvalue()


def test_dashboard_neither_creates_nor_alters_an_unrelated_sqlite_file(tmp_path):
    import sqlite3

    other = tmp_path / "other.db"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE notes (x)")
    before = other.read_bytes()
    with pytest.raises(StorageError, match="holds no lars-search studies"):
        make_server(f"sqlite:///{other}", port=0)
    assert other.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["other.db"]


def test_dashboard_reading_a_live_study_never_locks_the_writer(tmp_path):
    """optuna-dashboard#545: a dashboard on a running SQLite study made the study fail with
    "database is locked". Here a writer adds trials while the API is read in a loop."""
    from search.storage.database import open_storage

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    url = f"sqlite:///{tmp_path / 'live.db'}"
    study = optuna.create_study(study_name="live/sgd", storage=open_storage(url, heartbeat=False), direction="maximize")
    server = make_server(url, port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    stop, reads, errors = threading.Event(), [], []

    def read() -> None:
        while not stop.is_set():
            try:
                reads.append(len(_get_json(server, "/api/studies/1")["trials"]))
            except Exception as exc:  # noqa: BLE001 (collected and asserted below)
                errors.append(exc)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        for number in range(30):
            trial = study.ask()
            trial.report(0.5, 1)
            trial.set_user_attr("wall_time_s", 1.0)
            study.tell(trial, 0.5 + number / 100)
    finally:
        stop.set()
        reader.join(timeout=10)
        server.shutdown()
        server.server_close()
    assert errors == []
    assert len(study.trials) == 30 and all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)
    assert reads and reads == sorted(reads)  # the dashboard saw the study grow


@pytest.mark.parametrize("port", [-1, 65536, "8080", True])
def test_port_out_of_range_is_rejected(port):
    with pytest.raises(DashboardError, match=r"port must be an integer in \[0, 65535\], got"):
        make_server("sqlite:///unused.db", port=port)


@pytest.mark.browser
@pytest.mark.slow  # about 2 s on idle cores, 10-15 s on busy ones
@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (apt-get install chromium)")
def test_headless_chromium_shows_every_arm_and_saves_a_screenshot(dashboard, tmp_path):
    dom = chromium(tmp_path, "--dump-dom", dashboard.url).stdout
    for arm in ARMS:
        assert f"{NAME}/{arm}" in dom, f"study {NAME}/{arm} not rendered by the dashboard"
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "dashboard-studies.png"
    if shot.exists():
        os.remove(shot)
    chromium(tmp_path, f"--screenshot={shot}", "--window-size=1280,900", dashboard.url)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 5000  # a rendered page, not a blank one


@pytest.mark.browser
@pytest.mark.slow  # about 2 s on idle cores, 10-15 s on busy ones
@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (apt-get install chromium)")
def test_headless_chromium_shows_trial_user_attrs(dashboard, tmp_path):
    studies = _get_json(dashboard, "/api/studies")["study_summaries"]
    study_id = next(s["study_id"] for s in studies if s["study_name"] == f"{NAME}/sgd+lars")
    page = f"{dashboard.url}/studies/{study_id}/trials?numbers=1,2"  # the last complete and the failed trial
    dom = chromium(tmp_path, "--dump-dom", page).stdout
    for text in (
        "fail_reason",
        "diverged: training loss is nan at epoch 1",
        "wall_time_s",
        "13.5",
        "images_per_s",
        "481.0",
        "trust_coefficient",
    ):
        assert text in dom, f"{text!r} not shown on the trial page"
    ARTIFACTS.mkdir(exist_ok=True)
    chromium(tmp_path, f"--screenshot={ARTIFACTS / 'dashboard-trials.png'}", "--window-size=1280,900", page)


@pytest.mark.slow  # the CLI's error path imports objectives (torch, torchvision)
def test_cli_dashboard_busy_port_is_one_line_exit_2(dashboard, capsys):
    from search.cli.command import main

    port = int(dashboard.url.rsplit(":", 1)[1].split("/")[0])
    assert main(["dashboard", "--storage", "sqlite:///unused.db", "--port", str(port)]) == 2
    assert capsys.readouterr().err == (
        f"lars-search: error: port {port} on 127.0.0.1 is already in use; pick another with --port\n"
    )


def _ignore_sigint() -> None:
    """What a shell does to a background job: the child starts with SIGINT ignored."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.mark.slow  # a real `lars-search` process: imports and start-up take a few seconds
def test_console_script_serves_until_ctrl_c(tmp_path):
    """#15 item 4: it once ignored Ctrl-C when started as a background job. The test waits on the
    server's own "Ctrl-C to stop." line (ready), then on its exit; no timing."""
    import signal
    import sys

    url = _make_storage(tmp_path / "cli.db")
    command = [
        sys.executable,
        "-c",
        "import sys; from search.cli.command import main; sys.exit(main())",
        "dashboard",
        "--storage",
        url,
        "--port",
        "0",
    ]
    process = subprocess.Popen(
        command,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        preexec_fn=_ignore_sigint,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    try:
        first = process.stderr.readline()
        assert first.startswith(f"optuna-dashboard for {url} on http://127.0.0.1:")
        port = int(first.rsplit(":", 1)[1].split("/")[0])
        assert process.stderr.readline() == f"3 studies: {NAME}/adam+lars, {NAME}/sgd, {NAME}/sgd+lars\n"
        assert process.stderr.readline() == "Ctrl-C to stop.\n"  # bound and about to serve
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies", timeout=30) as response:
            names = sorted(s["study_name"] for s in json.loads(response.read())["study_summaries"])
        assert names == sorted(f"{NAME}/{arm}" for arm in ARMS)
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stderr.close()


def test_many_studies_are_listed_per_study_file_at_start():
    from search.results.dashboard import studies_line

    names = sorted(f"ax-b{b}/{arm}{r}" for b in (64, 256) for arm in ("sgd", "sgd+lars") for r in ("", "/r1", "/eval"))
    assert studies_line(names[:3]) == "3 studies: ax-b256/sgd, ax-b256/sgd+lars, ax-b256/sgd+lars/eval"
    assert studies_line(names) == "12 studies of 2 study files: ax-b256 (6), ax-b64 (6)"
    assert studies_line(["a/sgd"]) == "1 study: a/sgd"
