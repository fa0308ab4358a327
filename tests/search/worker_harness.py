"""Helpers shared by test_workers.py and test_postgres.py: study files, worker processes, checks."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import optuna
from optuna.trial import TrialState

from search.storage.budget import count_slots
from search.storage.database import open_storage

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]

STUDY_YAML = """\
name: {name}
objective: {{dataset: fashion_mnist, model: vgg11, epochs: 4, n_train: 512, batch_size: 64}}
arms: [{arms}]
budget: {{trials: {trials}}}
sampler: {{type: tpe, seed: 0}}
pruner: {pruner}
"""


def write_study(directory: Path, *, name: str = "mw", arms=("sgd", "sgd+lars"), trials: int = 40,
                pruner: str = "none", filename: str = "study.yaml") -> Path:  # fmt: skip
    path = Path(directory) / filename
    path.write_text(STUDY_YAML.format(name=name, arms=", ".join(arms), trials=trials, pruner=pruner))
    return path


def worker_env(directory: Path, *, sleep: float = 0.005, interval: int = 1, grace: int = 3) -> dict[str, str]:
    """Environment of a worker: fake objective importable, short heartbeats, 1 thread."""
    path = os.pathsep.join(p for p in (str(HERE), str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    return {
        **os.environ,
        "PYTHONPATH": path,
        "LARS_SEARCH_HEARTBEAT_INTERVAL": str(interval),
        "LARS_SEARCH_HEARTBEAT_GRACE": str(grace),
        "FAKE_OBJECTIVE_DIR": str(directory),
        "FAKE_OBJECTIVE_SLEEP": str(sleep),
        "OMP_NUM_THREADS": "1",
    }


def start_workers(study: Path, url: str, n: int, directory: Path, first_id: int = 0,
                  **env_kwargs) -> list[subprocess.Popen]:  # fmt: skip
    """Start ``n`` ``python -m search.cli worker`` processes at once (output in worker-<i>.log)."""
    env = worker_env(directory, **env_kwargs)
    procs = []
    for i in range(first_id, first_id + n):
        log = open(Path(directory) / f"worker-{i}.log", "w")
        argv = [sys.executable, "-m", "search.cli", "worker", str(study), "--storage", url,
                "--worker-id", str(i), "--objective", "fake_objective:train"]  # fmt: skip
        procs.append(subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=directory))
        log.close()
    return procs


def wait_all(procs: list[subprocess.Popen], timeout: float = 300.0) -> list[int]:
    """Exit codes; the timeout only guards against a hang (a loaded 2-core machine needs minutes)."""
    deadline = time.monotonic() + timeout
    codes = []
    for p in procs:
        try:
            codes.append(p.wait(max(0.1, deadline - time.monotonic())))
        except subprocess.TimeoutExpired:
            for q in procs:
                if q.poll() is None:
                    q.send_signal(signal.SIGKILL)
            raise
    return codes


def worker_logs(directory: Path) -> str:
    return "\n".join(p.read_text() for p in sorted(Path(directory).glob("worker-*.log")))


def wait_for_file(path: Path, timeout: float = 300.0) -> str:
    """The text of ``path`` once a worker has written it (a poll of the file's state; the timeout guards a hang)."""
    deadline = time.monotonic() + timeout
    while not (path.exists() and (text := path.read_text())):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} was not written in {timeout} s")
        time.sleep(0.02)
    return text


def load_arm(url: str, study_name: str) -> optuna.Study:
    return optuna.load_study(study_name=study_name, storage=open_storage(url, heartbeat=False))


def assert_exact_budget(url: str, name: str, arms, budget: int, *, allow_retried_failures: int = 0) -> dict:
    """Every arm has exactly ``budget`` slots, unique numbers, nothing in flight.

    Returns arm -> Counter of trial states. Failures are allowed only as trials that were
    retried (a killed worker's), at most ``allow_retried_failures`` in all.
    """
    retried_failures = 0
    states = {}
    for arm in arms:
        study = load_arm(url, f"{name}/{arm}")
        trials = study.get_trials(deepcopy=False)
        numbers = [t.number for t in trials]
        assert sorted(numbers) == list(range(len(trials))), f"{arm}: trial numbers {numbers}"
        assert count_slots(study) == budget, f"{arm}: {count_slots(study)} slots, budget {budget}"
        retried = {t.system_attrs["failed_trial"] for t in trials if "failed_trial" in t.system_attrs}
        for t in trials:
            assert t.state not in (TrialState.RUNNING, TrialState.WAITING), f"{arm}: trial {t.number} {t.state}"
            if t.state == TrialState.FAIL:
                assert t.number in retried, f"{arm}: trial {t.number} failed: {t.user_attrs.get('fail_reason')}"
                retried_failures += 1
        finished = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
        assert len(finished) == budget, f"{arm}: {len(finished)} complete+pruned, budget {budget}"
        states[arm] = Counter(t.state.name for t in trials)
    assert retried_failures <= allow_retried_failures
    return states
