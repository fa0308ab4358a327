"""Which pruner? Replay stored random-search trials, with their whole learning curves, through Optuna's pruners.

A run of random search without pruning (``benchmarks/search_efficiency.py``'s baseline (b))
trained every trial to the end, so its per-epoch validation accuracies say what any pruner
would have seen. This script feeds each stored run's trials, in their order, to a fresh
in-memory study with the pruner under test (Optuna's own pruner classes, the product's
rule that a trial is never judged inside its LR warm-up), and counts what the pruner would
have cost and kept:

    epochs   trial-epochs spent (a pruned trial costs the epochs it ran)
    best     best validation accuracy of the trials left to complete
    kept     how often the run's best unpruned trial survives
    loss     points of best accuracy lost against the same run without pruning

The sampler is held fixed (random), so this isolates the pruner; TPE's interplay with it
is measured by ``search_efficiency.py`` itself.

Every pruner sits on one frontier: the more it saves, the more it loses (the measured
table is in ``benchmarks/RESULTS.md``). The best configs (high lr x lambda, a long
warm-up, a decaying schedule) climb slowly while their lr is at its peak and overtake the
rest only once it decays, so every extra judgement of Optuna's median pruner is another
chance to cut one; hence the default judges at a third of training
(:func:`search.run._samplers.default_pruner_interval`).

Run::

    python benchmarks/pruner_replay.py                                  # the stored CPU runs
    python benchmarks/pruner_replay.py --also sqlite:///gpu.db n2000-v1000-e10-w0.125-b128-cuda \
        --also sqlite:///gpu10k.db n2000-v10000-e10-w0.125-b128-cuda   # + tables of others, pooled
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import optuna
from optuna.trial import TrialState

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from search.run._samplers import default_pruner_interval, default_pruner_startup  # noqa: E402
from search.spec.space import warmup_epochs_of  # noqa: E402

__all__ = ["StoredTrial", "replay", "main"]


@dataclass(frozen=True)
class StoredTrial:
    curve: tuple[float, ...]  # validation accuracy after epochs 1, 2, ...
    complete: bool  # trained to the end without diverging
    warmup_epochs: float


def _pruners(epochs: int, trials: int) -> dict:
    startup = default_pruner_startup(trials)
    interval = default_pruner_interval(epochs)
    median = f"median ({startup})"
    return {
        "none": lambda: optuna.pruners.NopPruner(),
        f"{median}, every epoch (old default)": lambda: optuna.pruners.MedianPruner(n_startup_trials=startup),
        f"{median}, every {interval} (default)": lambda: optuna.pruners.MedianPruner(
            n_startup_trials=startup, interval_steps=interval
        ),
        f"{median}, every 2": lambda: optuna.pruners.MedianPruner(n_startup_trials=startup, interval_steps=2),
        "median (8), every 3": lambda: optuna.pruners.MedianPruner(n_startup_trials=8, interval_steps=3),
        "median (10), every 3": lambda: optuna.pruners.MedianPruner(n_startup_trials=10, interval_steps=3),
        "median (8)": lambda: optuna.pruners.MedianPruner(n_startup_trials=8),
        "median (10)": lambda: optuna.pruners.MedianPruner(n_startup_trials=10),
        f"{median}, from epoch 3": lambda: optuna.pruners.MedianPruner(n_startup_trials=startup, n_warmup_steps=2),
        "keep top 75% (percentile)": lambda: optuna.pruners.PercentilePruner(75.0, n_startup_trials=startup),
        "keep top 60% (8)": lambda: optuna.pruners.PercentilePruner(60.0, n_startup_trials=8),
        "keep top 33% (percentile)": lambda: optuna.pruners.PercentilePruner(33.3, n_startup_trials=startup),
        "keep top 25% (percentile)": lambda: optuna.pruners.PercentilePruner(25.0, n_startup_trials=startup),
        f"patient(2) {median}": lambda: optuna.pruners.PatientPruner(
            optuna.pruners.MedianPruner(n_startup_trials=startup), patience=2
        ),
        "successive halving rf 2": lambda: optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=2),
        "successive halving rf 3": lambda: optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3),
        "successive halving rf 4": lambda: optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=4),
        "hyperband rf 3": lambda: optuna.pruners.HyperbandPruner(
            min_resource=1, max_resource=epochs, reduction_factor=3
        ),
    }


def replay(trials: list[StoredTrial], pruner: optuna.pruners.BasePruner) -> tuple[int, float]:
    """(trial-epochs spent, best accuracy of the trials left to complete) under ``pruner``."""
    study = optuna.create_study(direction="maximize", pruner=pruner, sampler=optuna.samplers.RandomSampler(seed=0))
    spent, best = 0, -math.inf
    for stored in trials:
        trial = study.ask()
        pruned = False
        for epoch, value in enumerate(stored.curve, start=1):
            spent += 1
            trial.report(value, epoch)
            if epoch > stored.warmup_epochs and trial.should_prune():
                pruned = True
                break
        if pruned or not stored.complete:
            study.tell(trial, state=TrialState.PRUNED)
        else:
            study.tell(trial, stored.curve[-1])
            best = max(best, stored.curve[-1])
    return spent, best


def _load(storage: str, tag: str, arm: str = "sgd+lars") -> dict[str, list[StoredTrial]]:
    runs = {}
    for summary in optuna.get_all_study_summaries(storage):
        name = summary.study_name
        if name.startswith("efficiency-random-s") and name.endswith(f"-{tag}/{arm}"):
            study = optuna.load_study(study_name=name, storage=storage)
            trials = []
            for t in sorted(study.get_trials(deepcopy=False), key=lambda t: t.number):
                if not t.intermediate_values:
                    continue
                curve = tuple(t.intermediate_values[k] for k in sorted(t.intermediate_values))
                config = t.user_attrs.get("config", {})
                trials.append(StoredTrial(curve, t.state == TrialState.COMPLETE, warmup_epochs_of(config)))
            runs[name] = trials
    return runs


def _table(runs: dict[str, list[StoredTrial]], title: str) -> dict[str, list[tuple[float, float, bool]]]:
    """Print one row per pruner for ``runs``; return per run (saving, points lost, best kept)."""
    epochs = max(len(t.curve) for trials in runs.values() for t in trials)
    n_trials = max(len(trials) for trials in runs.values())
    print(f"# {len(runs)} stored random runs of {n_trials} trials x {epochs} epochs ({title})")
    print(f"{'pruner':<38}{'epochs':>8}{'saving':>8}{'best':>8}{'loss pts':>9}{'kept':>7}")
    unpruned = {name: replay(trials, optuna.pruners.NopPruner()) for name, trials in runs.items()}
    per_run = {}
    for label, make in _pruners(epochs, n_trials).items():
        results = {name: replay(trials, make()) for name, trials in runs.items()}
        rows = [
            (unpruned[n][0] / results[n][0], 100 * (unpruned[n][1] - results[n][1]), results[n][1] >= unpruned[n][1])
            for n in runs
        ]
        spent = statistics.fmean(r[0] for r in results.values())
        base = statistics.fmean(unpruned[n][0] for n in runs)
        best = statistics.fmean(r[1] for r in results.values())
        loss = statistics.fmean(r[1] for r in rows)
        kept = sum(r[2] for r in rows)
        print(f"{label:<38}{spent:>8.1f}{base / spent:>7.2f}x{best:>8.4f}{loss:>9.2f}{kept:>4}/{len(runs)}")
        per_run[label] = rows
    return per_run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--storage", default=f"sqlite:///{ROOT / 'artifacts' / 'search_efficiency.db'}")
    parser.add_argument(
        "--tag",
        default="n2000-v1000-e10-w0.125-b128",
        help="objective tag of the stored runs (see search_efficiency.py; its current runs "
        "end in -t<trials>, e.g. n2000-v1000-e10-w0.125-b128-t40)",
    )
    parser.add_argument("--arm", default="sgd+lars", help="the arm whose runs are replayed (default sgd+lars)")
    parser.add_argument(
        "--also",
        nargs=2,
        action="append",
        default=[],
        metavar=("STORAGE", "TAG"),
        help="another set of stored runs; with any, a pooled table (per-run means) follows",
    )
    args = parser.parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # PatientPruner
    pooled: dict[str, list] = {}
    for storage, tag in [(args.storage, args.tag), *args.also]:
        runs = _load(storage, tag, args.arm)
        if not runs:
            print(f"no stored random runs with tag {tag} in {storage}")
            return 1
        for label, rows in _table(runs, tag).items():
            pooled.setdefault(label, []).extend(rows)
        print()
    if args.also:
        n = len(next(iter(pooled.values())))
        print(f"# pooled: {n} runs (means per run)")
        print(f"{'pruner':<38}{'saving':>8}{'loss pts':>9}{'kept':>7}")
        for label, rows in pooled.items():
            print(
                f"{label:<38}{statistics.fmean(r[0] for r in rows):>7.2f}x"
                f"{statistics.fmean(r[1] for r in rows):>9.2f}{sum(r[2] for r in rows):>4}/{len(rows)}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
