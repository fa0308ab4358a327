"""Storage throughput of lars-search's workers, and its overhead over a bare Optuna loop.

Two measurements, each on SQLite (a file in a temp directory) and on PostgreSQL (a
throwaway server started here, as the tests do: Debian's ``postgresql``, initdb on a
temp directory, 127.0.0.1):

1. **Trials per second with a no-op objective**, 1 and 4 worker processes
   (``search.run.workers.launch_workers``, ``python -m search.cli worker`` each): the objective
   returns at once after reporting each of the study's 4 epochs, so every trial costs
   only the framework's storage traffic (claim under the arm lock, heartbeat, TPE
   suggestions of the conditional space, 4 ``report``s, user attrs, ``tell``).
   Throughput is counted from the first trial's start to the last trial's completion
   (stored timestamps), so process start-up (importing torch) is excluded; the wall
   time including start-up is printed too.
2. **Overhead on a 1-second objective**: one in-process worker
   (``search.run.loop.run_studies`` on ``open_storage``: heartbeats, exact budgets) against
   a bare ``optuna.Study.optimize`` loop on the same storage URL (plain ``RDBStorage``,
   no heartbeat) whose objective suggests the same number of parameters, reports the
   same 4 epochs and sleeps the same 1 s. Overhead = (framework s/trial) / (bare
   s/trial) - 1; target <= 5 %. Rounds alternate framework, bare, framework, bare.

Run (about 3 minutes on 2 CPU cores)::

    python benchmarks/storage_throughput.py
    python benchmarks/storage_throughput.py --noop-trials 40 --overhead-trials 6 --no-postgres

Measured figures: ``benchmarks/RESULTS.md`` (section Storage throughput).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path[:0] = [str(REPO), str(REPO / "tests" / "search"), str(HERE)]

EPOCHS = 4
STUDY = """\
name: {name}
objective: {{dataset: fashion_mnist, model: vgg11, epochs: {epochs}, n_train: 512, batch_size: 64}}
arms: [sgd]
budget: {{trials: {trials}}}
sampler: {{type: tpe, seed: 0}}
pruner: none
"""


class _Result:
    def __init__(self, accuracy: float) -> None:
        self.val_accuracy = accuracy
        self.diverged = False
        self.images_per_s = None
        self.device = "cpu"
        self.epochs_completed = EPOCHS


def _accuracy(config: dict) -> float:
    import math

    return 0.9 - 0.1 * abs(math.log10(float(config.get("lr", 0.1))) + 1.5)


def noop_train(config: dict, report=None) -> _Result:
    """The no-op objective: report each epoch, no work."""
    accuracy = _accuracy(config)
    for epoch in range(1, EPOCHS + 1):
        if report is not None:
            report(epoch, {"val_accuracy": accuracy})
    return _Result(accuracy)


def one_second_train(config: dict, report=None) -> _Result:
    """The 1-second objective: 4 epochs of 0.25 s each."""
    accuracy = _accuracy(config)
    for epoch in range(1, EPOCHS + 1):
        time.sleep(0.25)
        if report is not None:
            report(epoch, {"val_accuracy": accuracy})
    return _Result(accuracy)


def _identity(config: dict) -> dict:
    return dict(config)


validate_config = _identity  # used by search.run.workers.load_objective for this module


def _write_study(directory: Path, name: str, trials: int) -> Path:
    path = directory / f"{name}.yaml"
    path.write_text(STUDY.format(name=name, trials=trials, epochs=EPOCHS))
    return path


def _rates(url: str, study_name: str) -> tuple[int, float, float]:
    """(trials, trials/s from first start to last end, steady trials/s over the last 75 %).

    The steady rate counts the completions after the first quarter of the trials, from the
    quarter mark to the end, when every worker has finished starting up.
    """
    import optuna

    from search.storage.database import open_storage

    trials = optuna.load_study(study_name=study_name, storage=open_storage(url, heartbeat=False)).trials
    starts = sorted(t.datetime_start for t in trials if t.datetime_start)
    ends = sorted(t.datetime_complete for t in trials if t.datetime_complete)
    span = (ends[-1] - starts[0]).total_seconds()
    quarter = len(ends) // 4
    steady = (len(ends) - quarter) / (ends[-1] - ends[quarter - 1]).total_seconds()
    return len(trials), len(trials) / span, steady


def noop_throughput(url: str, directory: Path, tag: str, workers: int, trials: int) -> dict:
    from search.run.workers import launch_workers

    name = f"noop-{tag}-{workers}w"
    study = _write_study(directory, name, trials)
    env = {"PYTHONPATH": os.pathsep.join([str(REPO), str(HERE)]), "OMP_NUM_THREADS": "1"}
    start = time.perf_counter()
    code = launch_workers(str(study), storage_url=url, n_workers=workers, objective="storage_throughput:noop_train",
                          env=env, log=lambda line: None, stdout=subprocess.DEVNULL)  # fmt: skip
    wall = time.perf_counter() - start
    if code != 0:
        raise RuntimeError(f"workers exited with status {code}")
    n, rate, steady = _rates(url, f"{name}/sgd")
    return {"backend": tag, "workers": workers, "trials": n, "trials_per_s": rate, "steady_per_s": steady,
            "wall_s": wall}  # fmt: skip


def _framework_round(url: str, directory: Path, tag: str, i: int, trials: int) -> float:
    from search.run.loop import run_studies
    from search.spec.study_file import load_spec
    from search.storage.database import open_storage

    spec = load_spec(_write_study(directory, f"fw-{tag}-{i}", trials))
    storage = open_storage(url)
    start = time.perf_counter()
    run_studies(
        spec, storage, train_fn=one_second_train, validate=_identity, progress=False, worker_id=0, evaluate=False
    )  # the search alone, as bare Study.optimize does
    return (time.perf_counter() - start) / trials


def _bare_round(url: str, tag: str, i: int, trials: int) -> float:
    import optuna

    def objective(trial: optuna.Trial) -> float:
        config = {
            "lr": trial.suggest_float("lr", 1e-3, 1.0, log=True),
            "weight_decay": trial.suggest_float("weight_decay", 1e-6, 1e-2, log=True),
            "warmup_epochs": trial.suggest_float("warmup_epochs", 0.0, 1.0),
            "schedule": trial.suggest_categorical("schedule", ["constant", "step", "multistep", "exponential",
                                                               "cosine", "polynomial"]),
        }  # fmt: skip
        accuracy = _accuracy(config)
        for epoch in range(1, EPOCHS + 1):
            time.sleep(0.25)
            trial.report(accuracy, epoch)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return accuracy

    study = optuna.create_study(study_name=f"bare-{tag}-{i}", storage=url, direction="maximize",
                                sampler=optuna.samplers.TPESampler(seed=0), pruner=optuna.pruners.NopPruner())  # fmt: skip
    start = time.perf_counter()
    study.optimize(objective, n_trials=trials)
    return (time.perf_counter() - start) / trials


def overhead(url: str, directory: Path, tag: str, trials: int, rounds: int) -> dict:
    framework, bare = [], []
    for i in range(rounds):
        framework.append(_framework_round(url, directory, tag, i, trials))
        bare.append(_bare_round(url, tag, i, trials))
    f, b = statistics.median(framework), statistics.median(bare)
    return {"backend": tag, "trials": trials, "rounds": rounds, "framework_s_per_trial": f, "bare_s_per_trial": b,
            "overhead_pct": 100.0 * (f / b - 1.0), "framework_all": framework, "bare_all": bare}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--noop-trials", type=int, default=80, help="trials of the no-op study per run (default 80)")
    parser.add_argument("--overhead-trials", type=int, default=8, help="trials per overhead round (default 8)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating overhead rounds (default 3)")
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    args = parser.parse_args(argv)

    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    import warnings

    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)

    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"optuna {optuna.__version__}, load average at start {os.getloadavg()[0]:.1f}")  # fmt: skip
    backends: list[tuple[str, str, object]] = []
    directory = Path(tempfile.mkdtemp(prefix="lars-search-bench-"))
    backends.append(("sqlite", f"sqlite:///{directory}/bench.db", None))
    server = None
    if not args.no_postgres:
        from postgres_fixture import PostgresServer, postgres_binaries

        if postgres_binaries() is None:
            print("PostgreSQL binaries not found: SQLite only")
        else:
            server = PostgresServer().start()
            backends.append(("postgresql", server.url, server))
    try:
        print(f"\n1. no-op objective ({EPOCHS} reports per trial), trials per second: first start -> last end, "
              "and steady (last 75 % of completions)")  # fmt: skip
        print(
            f"{'backend':<11} {'workers':>7} {'trials':>6} {'trials/s':>9} {'steady/s':>9} {'wall s (with start-up)':>23}"
        )
        for tag, url, _ in backends:
            for workers in (1, 4):
                r = noop_throughput(url, directory, tag, workers, args.noop_trials)
                print(f"{r['backend']:<11} {r['workers']:>7} {r['trials']:>6} {r['trials_per_s']:>9.1f} "
                      f"{r['steady_per_s']:>9.1f} {r['wall_s']:>23.1f}",
                      flush=True)  # fmt: skip
        print(f"\n2. overhead over a bare optuna Study.optimize loop, 1-second objective, "
              f"{args.overhead_trials} trials x {args.rounds} alternating rounds (median)")  # fmt: skip
        print(f"{'backend':<11} {'framework s/trial':>18} {'bare s/trial':>13} {'overhead':>9}")
        for tag, url, _ in backends:
            r = overhead(url, directory, tag, args.overhead_trials, args.rounds)
            print(f"{r['backend']:<11} {r['framework_s_per_trial']:>18.3f} {r['bare_s_per_trial']:>13.3f} "
                  f"{r['overhead_pct']:>8.1f}%", flush=True)  # fmt: skip
    finally:
        if server is not None:
            server.stop()
        import shutil

        shutil.rmtree(directory, ignore_errors=True)
    print(f"\nload average at end {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
