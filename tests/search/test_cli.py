"""The lars-search command: help, one-line user errors, Ctrl-C, and run/status/compare/export/train end to end."""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import platform
import re
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import optuna
import pytest
import yaml
from search_fakes import FakeTrain, lr_curve, write_study

from search.cli.command import COMMANDS, main
from search.errors import StorageError
from search.storage.database import open_storage

FASHION = Path("/usr/share/datasets/fashion-mnist")
needs_data = pytest.mark.skipif(
    not (FASHION / "train-images-idx3-ubyte.gz").exists() and not os.environ.get("LARS_SEARCH_DATA"),
    reason="Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)",
)

FAKE_STUDY = """\
name: c
objective: {epochs: 2}
arms: [sgd, adam+lars]
budget: {trials: 2}
"""

TINY_REAL = """\
name: tiny
objective: {dataset: fashion_mnist, model: vgg16, width: 0.0625, n_train: 192, val_size: 64,
            epochs: %(epochs)d, batch_size: 64, device: cpu}
arms: [sgd, sgd+lars]
space: {lr: {low: 0.01, high: 0.1, log: true}, warmup_epochs: 0.0, schedule: cosine}
budget: {trials: %(trials)d}
pruner: none
"""


def cli(*args, cwd, env_extra=None, timeout=300):
    env = {**os.environ, "OMP_NUM_THREADS": "1", **(env_extra or {})}
    return subprocess.run(["lars-search", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def test_top_level_help_names_the_environment_variables_and_examples(tmp_path):
    done = cli("--help", cwd=tmp_path)
    assert done.returncode == 0
    for text in ("LARS_SEARCH_STORAGE", "LARS_SEARCH_DATA", "lars-search run studies/quickstart.yaml", *COMMANDS):
        assert text in done.stdout


def test_version_names_the_installed_torch_and_optuna(tmp_path):
    done = cli("--version", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    expected = ", ".join(
        f"{d} {importlib.metadata.version(d)}"
        for d in ("lars-search", "torch", "torchvision", "optuna", "optuna-dashboard")
    )
    assert done.stdout.startswith(f"{expected}, scipy {importlib.metadata.version('scipy')}, "), done.stdout
    assert done.stdout.endswith(f", Python {platform.python_version()}\n")


@pytest.mark.parametrize("verb", list(COMMANDS))
def test_every_verb_has_help_with_an_example(verb, capsys):
    with pytest.raises(SystemExit) as info:
        main([verb, "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert f"examples:\n  lars-search {verb}" in out and "LARS_SEARCH_STORAGE" in out


def test_no_verb_prints_help_and_returns_1(capsys):
    assert main([]) == 1
    assert "usage: lars-search" in capsys.readouterr().err


def test_a_bad_study_file_is_one_line_and_the_database_is_untouched(tmp_path, capsys):
    path = write_study(tmp_path, FAKE_STUDY + "space: {lr: {low: 0, high: 1, log: true}}\n")
    db = tmp_path / "untouched.db"
    assert main(["run", str(path), "--storage", f"sqlite:///{db}"], train_fn=FakeTrain()) == 2
    err = capsys.readouterr().err
    assert err == f"lars-search: error: {path}: space.lr.low: must be a number > 0, got 0.0\n"
    assert not db.exists()


def test_bad_overrides_and_unknown_storage_are_one_line(tmp_path, capsys):
    path = write_study(tmp_path, FAKE_STUDY)
    assert main(["run", str(path), "--n-trials", "0", "--storage", f"sqlite:///{tmp_path}/x.db"]) == 2
    assert (
        capsys.readouterr().err == "lars-search: error: --n-trials must be a positive integer (trials per arm), got 0\n"
    )
    # #26 item 10: --timeout 0 ran nothing and exited 0; the study file's budget.timeout: 0 is refused with a reason
    assert main(["run", str(path), "--timeout", "0", "--storage", f"sqlite:///{tmp_path}/x.db"]) == 2
    assert capsys.readouterr().err == (
        "lars-search: error: --timeout must be > 0 seconds (0 would run nothing; leave it out for no limit), got 0\n"
    )
    assert not (tmp_path / "x.db").exists()
    assert main(["status", "--storage", "nosuchdb://user:secret@host/db"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "secret" not in err and err.startswith("lars-search: error: storage URL")
    with pytest.raises(StorageError):  # --debug: the exception itself, with its traceback
        main(["status", "--storage", "nosuchdb://user:secret@host/db", "--debug"])


def test_fake_study_run_status_compare(tmp_path, capsys):
    path = write_study(tmp_path, FAKE_STUDY)
    db = f"sqlite:///{tmp_path / 'c.db'}"
    assert main(["run", str(path), "--storage", db], train_fn=FakeTrain()) == 0
    out = capsys.readouterr().out
    assert (
        "study c: 2 arms (sgd, adam+lars), 2 trials per arm x 1 replicate, each incumbent retrained with 3 seeds;"
        in out
    )
    assert out.count("c/sgd trial ") == 2 and out.count("c/adam+lars trial ") == 2
    assert "compare c: final evaluation" in out and "winner: " not in out  # issue 12
    assert "\nmeasured (1 replicate x " in out  # one replicate: no verdict (issue 23)
    assert main(["status", "c", "--storage", db]) == 0
    status = capsys.readouterr().out.splitlines()
    assert [line.split()[:4] for line in status[3:]] == [["sgd", "2", "0", "0"], ["adam+lars", "2", "0", "0"]]


def test_ctrl_c_in_main_exits_130_with_one_line(tmp_path, capsys):
    path = write_study(tmp_path, FAKE_STUDY)
    db = f"sqlite:///{tmp_path / 'i.db'}"

    def curve(config, epoch):
        if config["optimizer"] == "adam":
            raise KeyboardInterrupt
        return lr_curve(config, epoch)

    assert main(["run", str(path), "--storage", db, "-q"], train_fn=FakeTrain(curve)) == 130
    err = capsys.readouterr().err
    assert err == (
        f"lars-search: interrupted; the running trial was marked FAIL, finished trials are kept in {db}; "
        "run the same command again to resume\n"
    )
    study = optuna.load_study(study_name="c/adam+lars", storage=open_storage(db, heartbeat=False))
    assert [t.state.name for t in study.trials] == ["FAIL", "WAITING"]  # the retry runs on resume
    assert main(["status", "c", "--storage", db]) == 0  # #16 item 13: the waiting retry is not "running"
    rows = {line.split()[0]: line.split()[1:5] for line in capsys.readouterr().out.splitlines()[3:]}
    assert rows["adam+lars"] == ["0", "0", "1", "0"]


@pytest.mark.slow
@needs_data
def test_end_to_end_on_a_tiny_real_objective(tmp_path):
    study = write_study(tmp_path, TINY_REAL % {"epochs": 1, "trials": 1})
    db = f"sqlite:///{tmp_path / 'tiny.db'}"
    run = cli("run", str(study), "--storage", db, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr
    assert "compare tiny: final evaluation = each search's best trial (validation) retrained with " in run.stdout
    assert "\nmeasured (1 replicate x " in run.stdout  # issue 12; one replicate: no verdict (issue 23)
    status = cli("status", "--storage", db, cwd=tmp_path)
    assert status.returncode == 0
    rows = [line.split() for line in status.stdout.splitlines()[3:]]
    assert [r[:5] for r in rows] == [["sgd", "1", "0", "0", "0"], ["sgd+lars", "1", "0", "0", "0"]]
    compare = cli("compare", "tiny", "--storage", db, cwd=tmp_path)
    assert compare.returncode == 0 and "sgd+lars vs sgd:" in compare.stdout
    export = cli("export", "tiny", "--arm", "sgd+lars", "--storage", db, "-o", "best.yaml", cwd=tmp_path)
    assert export.returncode == 0, export.stderr
    exported = yaml.safe_load((tmp_path / "best.yaml").read_text())
    best = optuna.load_study(study_name="tiny/sgd+lars", storage=open_storage(db, heartbeat=False))
    assert exported == best.best_trial.user_attrs["config"]
    train = cli("train", "best.yaml", "--seeds", "2", "-q", cwd=tmp_path)
    assert train.returncode == 0, train.stderr
    lines = train.stdout.splitlines()
    assert lines[0].startswith("seed 0: test accuracy ") and lines[1].startswith("seed 1: test accuracy ")
    assert lines[2].startswith("test accuracy: ") and " over 2 seeds" in lines[2]
    # seed 0 retrains the exported trial's config: the same validation accuracy
    assert f"validation {100 * best.best_value:.2f}%" in lines[0]


def _first_epoch_stored(path: Path) -> bool:
    """Readiness: the running trial has reported an epoch to the database."""
    if not path.exists():
        return False
    with contextlib.closing(sqlite3.connect(path)) as db:
        try:
            return bool(db.execute("select count(*) from trial_intermediate_values").fetchone()[0])
        except sqlite3.OperationalError:  # tables not created yet, or the writer holds the lock
            return False


@pytest.mark.slow
@needs_data
def test_sigint_marks_the_running_trial_failed_and_exits_130_without_traceback(tmp_path):
    """#15 item 4: run as a background job (SIGINT ignored), it once finished the study instead.

    The child starts with SIGINT ignored, as a shell's background job does; ``main`` sets its
    own disposition. The test signals once the first epoch is in the database (readiness)."""
    study = write_study(tmp_path, TINY_REAL % {"epochs": 30, "trials": 1})
    path = tmp_path / "sig.db"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(["lars-search", "run", str(study), "--storage", f"sqlite:///{path}", "-q"], cwd=tmp_path,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))  # fmt: skip
    try:
        while not _first_epoch_stored(path):
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.2)  # a poll of the database's state, not a wait on time
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert err.strip().endswith("run the same command again to resume")
    trials = optuna.load_study(study_name="tiny/sgd", storage=open_storage(f"sqlite:///{path}", heartbeat=False)).trials
    assert [t.state.name for t in trials] == ["FAIL", "WAITING"]  # the interrupted config runs again on resume
    assert trials[1].params == trials[0].params
    assert trials[0].user_attrs["fail_reason"].startswith("interrupted (Ctrl-C) during epoch ")


def test_worker_verb_runs_one_worker_until_every_arm_has_its_budget(tmp_path, capsys):
    path = write_study(tmp_path, FAKE_STUDY)
    db = f"sqlite:///{tmp_path / 'w.db'}"
    assert main(["worker", str(path), "--storage", db, "--worker-id", "3"], train_fn=FakeTrain()) == 0
    out = capsys.readouterr().out
    assert out.count("[worker 3] c/") == 4 + 2 * 3  # 2 trials and 3 final-evaluation seeds per arm (issue 12)
    assert out.rstrip().endswith("worker done: every arm of c has its budget")


def test_bad_workers_and_gpus_are_one_line(tmp_path, capsys):
    path = write_study(tmp_path, FAKE_STUDY)
    db = f"sqlite:///{tmp_path / 'g.db'}"
    assert main(["run", str(path), "--storage", db, "--gpus", "0,x"]) == 2
    assert (
        capsys.readouterr().err
        == "lars-search: error: --gpus must be a comma-separated list of GPU indices like 0,1,2, got '0,x'\n"
    )
    assert main(["run", str(path), "--storage", db, "--gpus", "0,1", "--workers", "3"]) == 2
    assert capsys.readouterr().err == "lars-search: error: --workers must equal the number of --gpus (2), got 3\n"


def test_missing_data_is_reported_before_any_trial_starts(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("LARS_SEARCH_OFFLINE", "1")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    path = write_study(
        tmp_path,
        FAKE_STUDY.replace(
            "objective: {epochs: 2}", f"objective: {{epochs: 2, dataset: cifar10, data_dir: {tmp_path / 'none'}}}"
        ),
    )
    db = tmp_path / "nodata.db"
    assert main(["run", str(path), "--storage", f"sqlite:///{db}"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lars-search: error: cifar10 data not found. Looked in:\n")
    assert "To get it:" in err and "Traceback" not in err
    assert not db.exists()  # the database was not touched


def test_reading_verbs_do_not_create_a_missing_sqlite_file(tmp_path, capsys):
    db = tmp_path / "absent.db"
    for verb in (["status"], ["compare", "x"], ["export", "x"]):
        assert main([*verb, "--storage", f"sqlite:///{db}"]) == 2
        assert capsys.readouterr().err == (
            f"lars-search: error: no storage at sqlite:///{db} (file {db} does not exist); "
            "run a study first: lars-search run STUDY.yaml, or pass --storage\n"
        )
    assert not db.exists()


def test_train_rejects_a_broken_config_file_in_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("lr: [unclosed\n")
    assert main(["train", str(bad)], train_fn=FakeTrain()) == 2
    assert capsys.readouterr().err.startswith(f"lars-search: error: {bad}: not valid YAML: line 2, column 1: ")
    bad.write_text("lr: 0.1\nlearning_rate: 0.1\n")
    assert main(["train", str(bad)], train_fn=FakeTrain()) == 2
    assert capsys.readouterr().err == f"lars-search: error: {bad}: config key 'learning_rate' is not a known key\n"


def test_compare_plot_writes_the_picture(tmp_path, capsys):
    db = f"sqlite:///{tmp_path / 'p.db'}"
    assert main(["run", str(write_study(tmp_path, FAKE_STUDY)), "--storage", db, "-q"], train_fn=FakeTrain()) == 0
    png = tmp_path / "compare.png"
    assert main(["compare", "c", "--storage", db, "--plot", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert capsys.readouterr().out.rstrip().endswith(f"wrote {png}")


def test_cuda_without_cuda_is_one_line_before_any_trial(tmp_path, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: the error cannot happen here")
    path = write_study(tmp_path, FAKE_STUDY)
    db = tmp_path / "nocuda.db"
    assert main(["run", str(path), "--storage", f"sqlite:///{db}", "--device", "cuda"]) == 2
    assert capsys.readouterr().err == (
        "lars-search: error: --device cuda, but CUDA is not available on this machine (use --device cpu or auto)\n"
    )
    assert not db.exists()


# ------------------------------------------------------------------ issue 16: signals, user mistakes, messages
def _states(db: str, arm: str) -> list[str]:
    return [
        t.state.name for t in optuna.load_study(study_name=f"c/{arm}", storage=open_storage(db, heartbeat=False)).trials
    ]


def test_a_second_ctrl_c_while_the_trial_is_recorded_keeps_its_retry(tmp_path, capsys, monkeypatch):
    """#16 item 2: two SIGINTs 50 ms apart lost the retry."""
    path = write_study(tmp_path, FAKE_STUDY)
    db = f"sqlite:///{tmp_path / 'ii.db'}"

    def curve(config, epoch):
        if config["optimizer"] == "adam":
            raise KeyboardInterrupt  # the first Ctrl-C
        return lr_curve(config, epoch)

    tell = optuna.Study.tell

    def tell_during_second_ctrl_c(self, *args, **kwargs):
        if kwargs.get("state") == optuna.trial.TrialState.FAIL:
            os.kill(os.getpid(), signal.SIGINT)  # the second one, while the interrupted trial is recorded
        return tell(self, *args, **kwargs)

    monkeypatch.setattr(optuna.Study, "tell", tell_during_second_ctrl_c)
    assert main(["run", str(path), "--storage", db, "-q"], train_fn=FakeTrain(curve)) == 130
    assert "Traceback" not in capsys.readouterr().err
    monkeypatch.setattr(optuna.Study, "tell", tell)
    assert _states(db, "adam+lars") == ["FAIL", "WAITING"]


def test_sigterm_is_handled_as_ctrl_c_and_exits_143(tmp_path, capsys):
    """#16 item 3: SIGTERM left the trial RUNNING and exited 143 without a word."""
    path = write_study(tmp_path, FAKE_STUDY)
    db = f"sqlite:///{tmp_path / 't.db'}"

    def curve(config, epoch):
        if config["optimizer"] == "adam":
            os.kill(os.getpid(), signal.SIGTERM)
        return lr_curve(config, epoch)

    assert main(["run", str(path), "--storage", db, "-q"], train_fn=FakeTrain(curve)) == 143
    assert capsys.readouterr().err == (
        f"lars-search: terminated (SIGTERM); the running trial was marked FAIL, finished "
        f"trials are kept in {db}; run the same command again to resume\n"
    )
    assert _states(db, "adam+lars") == ["FAIL", "WAITING"]
    trial = optuna.load_study(study_name="c/adam+lars", storage=open_storage(db, heartbeat=False)).trials[0]
    assert trial.user_attrs["fail_reason"] == "interrupted (SIGTERM) during epoch 1"
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # restored for the rest of the process


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:"])
def test_in_memory_sqlite_is_refused_at_once(tmp_path, capsys, url):
    """#16 item 4: 68 s of retries, then an internal error."""
    path = write_study(tmp_path, FAKE_STUDY)
    assert main(["run", str(path), "--storage", url], train_fn=FakeTrain()) == 2
    assert capsys.readouterr().err == (
        f"lars-search: error: storage URL {url!r} is an in-memory SQLite database, "
        "which workers cannot share and a rerun cannot resume; use a file, e.g. "
        "sqlite:///lars-search.db\n"
    )


def test_reading_verbs_never_alter_an_unrelated_sqlite_file(tmp_path, capsys):
    """#16 item 5: status added Optuna's tables to any SQLite file, switched it to WAL, left .lock files."""
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE notes (x)")
    before = other.read_bytes()
    for verb in (["status"], ["compare", "x"], ["export", "x"]):
        assert main([*verb, "--storage", f"sqlite:///{other}"]) == 2
        assert capsys.readouterr().err == (
            f"lars-search: error: storage sqlite:///{other} holds no lars-search studies "
            f"(no Optuna tables in {other})\n"
        )
    assert other.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.db"]
    with sqlite3.connect(other) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "delete"


@pytest.mark.parametrize("directory", ["/proc", "/sys"])
def test_a_storage_path_that_cannot_hold_a_file_is_one_line(tmp_path, capsys, directory):
    path = write_study(tmp_path, FAKE_STUDY)
    assert main(["run", str(path), "--storage", f"sqlite:///{directory}/x.db"], train_fn=FakeTrain()) == 2
    err = capsys.readouterr().err
    assert (
        err.startswith(
            f"lars-search: error: cannot open storage sqlite:///{directory}/x.db: cannot create a file in "
            f"directory '{directory}' ("
        )
        and err.count("\n") == 1
    )


def test_compare_plot_path_is_checked_before_anything_is_printed(tmp_path, capsys):
    db = f"sqlite:///{tmp_path / 'p.db'}"
    assert main(["run", str(write_study(tmp_path, FAKE_STUDY)), "--storage", db, "-q"], train_fn=FakeTrain()) == 0
    capsys.readouterr()
    assert main(["compare", "c", "--storage", db, "--plot", str(tmp_path / "nodir" / "x.png")]) == 2
    out, err = capsys.readouterr()
    assert (
        out == ""
        and err == f"lars-search: error: --plot {tmp_path}/nodir/x.png: directory '{tmp_path}/nodir' does not exist\n"
    )
    assert main(["compare", "c", "--storage", db, "--plot", "c.txt"]) == 2
    out, err = capsys.readouterr()
    assert (
        out == ""
        and err == "lars-search: error: --plot c.txt: the file name must end in one of .png, .pdf, .svg, .jpg, .jpeg\n"
    )


def test_a_negative_worker_id_is_one_line(tmp_path, capsys):
    path = write_study(tmp_path, FAKE_STUDY)
    assert main(["worker", str(path), "--storage", f"sqlite:///{tmp_path / 'w.db'}", "--worker-id", "-1"]) == 2
    assert capsys.readouterr().err == "lars-search: error: --worker-id must be an integer >= 0, got -1\n"
    assert not (tmp_path / "w.db").exists()


def test_quiet_and_debug_before_the_verb_are_kept(tmp_path, capsys):
    """#16 item 11: the verb's own defaults overwrote them."""
    path = write_study(tmp_path, FAKE_STUDY)
    assert main(["-q", "run", str(path), "--storage", f"sqlite:///{tmp_path / 'q.db'}"], train_fn=FakeTrain()) == 0
    out, err = capsys.readouterr()
    assert "c/sgd trial" not in out and "study c:" not in out and err == ""
    with pytest.raises(StorageError):
        main(["--debug", "status", "--storage", "nosuchdb://user:secret@host/db"])


def test_a_trial_that_finished_its_last_epoch_is_never_pruned(tmp_path, capsys):
    """#16 item 9: with epochs a multiple of the pruner's interval, the last epoch was judged."""
    path = write_study(
        tmp_path,
        """\
        name: c
        objective: {epochs: 1}
        arms: [sgd]
        space: {warmup_epochs: 0.0, schedule: constant}
        budget: {trials: 3}
        pruner: {type: median, n_startup_trials: 1, interval_steps: 1}
        """,
    )
    accuracies = iter([0.9, 0.5, 0.4])  # each trial below the median of the earlier ones
    db = f"sqlite:///{tmp_path / 'pr.db'}"
    assert (
        main(["run", str(path), "--storage", db, "-q"], train_fn=FakeTrain(lambda config, epoch: next(accuracies))) == 0
    )
    assert _states(db, "sgd") == ["COMPLETE"] * 3


def test_a_rerun_with_the_budget_met_says_nothing_to_do(tmp_path, capsys):
    """#16 item 14: it showed an empty progress bar, `0trial [00:00, ?trial/s]`."""
    path = write_study(
        tmp_path, FAKE_STUDY.replace("arms: [sgd, adam+lars]", "arms: [sgd]").replace("trials: 2", "trials: 1")
    )
    db = f"sqlite:///{tmp_path / 'n.db'}"
    assert main(["run", str(path), "--storage", db], train_fn=FakeTrain()) == 0
    out = capsys.readouterr().out
    assert "study c: 1 arm (sgd), 1 trial per arm" in out
    assert main(["run", str(path), "--storage", db], train_fn=FakeTrain()) == 0
    out, err = capsys.readouterr()
    assert "nothing to do: every arm of c already has its 1 trial; raise --n-trials to run more" in out
    assert "trial/s" not in err and "c/sgd trial" not in out


def test_train_with_one_seed_shows_no_spread(tmp_path, capsys):
    config = tmp_path / "one.yaml"
    config.write_text("epochs: 1\nlr: 0.03\n")
    assert main(["train", str(config), "--seeds", "1", "-q"], train_fn=FakeTrain()) == 0
    last = capsys.readouterr().out.splitlines()[-1]
    assert re.fullmatch(r"test accuracy: \d+\.\d\d% over 1 seed \(validation \d+\.\d\d%\)", last), last


def test_after_n_trials_above_the_files_budget_the_advice_names_the_n_trials_that_will_work(tmp_path, capsys):
    """#26 item 7: "run the study again" was followed literally, and the rerun trained nothing."""
    path = write_study(tmp_path, FAKE_STUDY)  # budget: {trials: 2}
    db = f"sqlite:///{tmp_path / 'n.db'}"
    assert main(["run", str(path), "--storage", db, "-q"], train_fn=FakeTrain()) == 0

    def slow(config, epoch):
        time.sleep(0.6)
        return lr_curve(config, epoch)

    capsys.readouterr()
    # the timeout ends the run after sgd's third trial: sgd 3, adam+lars 2
    assert main(["run", str(path), "--storage", db, "-q", "--n-trials", "3", "--timeout", "0.5"],
                train_fn=FakeTrain(slow)) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert (
        "note: arms have unequal finished trials (sgd 3, adam+lars 2): not comparable yet; run the study again "
        "with --n-trials 3 to give every arm 3 finished trials (the study file's budget.trials, 2, is met)"
    ) in out.splitlines()


def test_train_given_a_study_file_says_so_and_what_to_run(tmp_path, capsys):
    """#26 item 13: it said "config key 'name' is not a known key"."""
    path = write_study(tmp_path, FAKE_STUDY)
    assert main(["train", str(path)], train_fn=FakeTrain()) == 2
    assert capsys.readouterr().err == (
        f"lars-search: error: {path}: a study file (it has `name` and `objective`), not a config; run it with "
        f"`lars-search run {path}`, or train the config `lars-search export c -o best.yaml` writes\n"
    )


def test_compare_into_a_closed_pipe_exits_quietly(tmp_path):
    """#26 item 13: `compare ... | head` ended with `internal error: BrokenPipeError`."""
    db = f"sqlite:///{tmp_path / 'p.db'}"
    assert main(["run", str(write_study(tmp_path, FAKE_STUDY)), "--storage", db, "-q"], train_fn=FakeTrain()) == 0
    read, write = os.pipe()
    os.close(read)  # the reader (head) has gone: every write fails with EPIPE
    try:
        done = subprocess.run(["lars-search", "compare", "c", "--storage", db], stdout=write, stderr=subprocess.PIPE,
                              text=True, timeout=120, env={**os.environ, "OMP_NUM_THREADS": "1"})  # fmt: skip
    finally:
        os.close(write)
    assert (done.returncode, done.stderr) == (141, "")  # 128 + SIGPIPE, as a shell reports a reader gone


TORCH_PROBE = """\
import sys
from search.cli.command import main
try:
    main(sys.argv[1:])
finally:  # --help leaves through argparse's SystemExit
    print("modules:", " ".join(m for m in ("torch", "optuna", "scipy") if m in sys.modules), file=sys.stderr)
"""


def test_help_status_and_compare_never_import_torch(tmp_path):
    """Issue 25 item 4: reading verbs start in a fraction of torch's import time; --help not even Optuna's."""
    db = f"sqlite:///{tmp_path / 'c.db'}"
    assert main(["run", str(write_study(tmp_path, FAKE_STUDY)), "--storage", db, "-q"], train_fn=FakeTrain()) == 0
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    loaded = {}
    for argv in (["--help"], ["status", "c", "--storage", db], ["compare", "c", "--storage", db]):
        run = subprocess.run(["python", "-c", TORCH_PROBE, *argv], env=env, capture_output=True, text=True, timeout=120)
        loaded[argv[0]] = run.stderr.strip().splitlines()[-1].split()[1:]
    assert loaded["--help"] == []  # neither torch nor Optuna nor scipy
    assert "torch" not in loaded["status"] and "torch" not in loaded["compare"]
