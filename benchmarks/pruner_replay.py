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

Measured 2026-11-26 on the 10 random runs (40 trials x 10 epochs, SGD+LARS, Fashion-MNIST
2,000 images, validation on 1,000) that ``search_efficiency.py --device cuda`` stored on an
H200 (``benchmarks/gpu_check.sh``)::

    pruner                      epochs  saving    best loss pts   kept
    none                         400.0   1.00x  0.8360     0.00  10/10
    median (startup 5)           186.3   2.15x  0.8289     0.71   7/10   <- the default
    median (startup 10)          228.0   1.75x  0.8316     0.44   8/10
    keep top 75% (percentile)    256.9   1.56x  0.8360     0.00  10/10
    keep top 33% (percentile)    163.7   2.44x  0.8259     1.01   6/10
    median, every 3 epochs       214.7   1.86x  0.8321     0.39   8/10
    median at epoch >= 3         195.9   2.04x  0.8289     0.71   7/10
    successive halving rf 2      147.4   2.71x  0.8291     0.69   5/10
    successive halving rf 3      133.5   3.00x  0.8188     1.72   4/10
    hyperband rf 3               ~205    ~1.95x ~0.831     ~0.5    7/10   (brackets vary run to run)

No pruner saves more than ~2x here without losing the run's best trial in a third of the
runs: the best configs (high lr x lambda with a decaying schedule) look worst at epochs
2-5, while their lr is at its peak, and overtake the rest only once it decays. The median
pruner sits on that frontier, so it stays the default. Run::

    python benchmarks/pruner_replay.py                                  # the stored CPU runs
    python benchmarks/pruner_replay.py --tag n2000-v1000-e10-w0.125-b128-cuda --storage sqlite:///gpu.db
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

from search.space import warmup_epochs_of  # noqa: E402
from search.study import default_pruner_startup  # noqa: E402

__all__ = ["StoredTrial", "replay", "main"]


@dataclass(frozen=True)
class StoredTrial:
    curve: tuple[float, ...]  # validation accuracy after epochs 1, 2, ...
    complete: bool            # trained to the end without diverging
    warmup_epochs: float


def _pruners(epochs: int, trials: int) -> dict:
    startup = default_pruner_startup(trials)
    return {
        "none": lambda: optuna.pruners.NopPruner(),
        "median (startup 5)": lambda: optuna.pruners.MedianPruner(n_startup_trials=startup),
        "median (startup 10)": lambda: optuna.pruners.MedianPruner(n_startup_trials=10),
        "keep top 75% (percentile)": lambda: optuna.pruners.PercentilePruner(75.0, n_startup_trials=startup),
        "keep top 33% (percentile)": lambda: optuna.pruners.PercentilePruner(33.3, n_startup_trials=startup),
        "keep top 25% (percentile)": lambda: optuna.pruners.PercentilePruner(25.0, n_startup_trials=startup),
        "median, every 3 epochs": lambda: optuna.pruners.MedianPruner(n_startup_trials=startup, interval_steps=3),
        "median at epoch >= 3": lambda: optuna.pruners.MedianPruner(n_startup_trials=startup, n_warmup_steps=2),
        "patient(2) median": lambda: optuna.pruners.PatientPruner(
            optuna.pruners.MedianPruner(n_startup_trials=startup), patience=2),
        "successive halving rf 2": lambda: optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=2),
        "successive halving rf 3": lambda: optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3),
        "successive halving rf 4": lambda: optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=4),
        "hyperband rf 3": lambda: optuna.pruners.HyperbandPruner(min_resource=1, max_resource=epochs,
                                                                 reduction_factor=3),
    }



def replay(trials: list[StoredTrial], pruner: optuna.pruners.BasePruner) -> tuple[int, float]:
    """(trial-epochs spent, best accuracy of the trials left to complete) under ``pruner``."""
    study = optuna.create_study(direction="maximize", pruner=pruner,
                                sampler=optuna.samplers.RandomSampler(seed=0))
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


def _load(storage: str, tag: str) -> dict[str, list[StoredTrial]]:
    runs = {}
    for summary in optuna.get_all_study_summaries(storage):
        name = summary.study_name
        if name.startswith("efficiency-random-s") and name.endswith(f"-{tag}/sgd+lars"):
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--storage", default=f"sqlite:///{ROOT / 'artifacts' / 'search_efficiency.db'}")
    parser.add_argument("--tag", default="n2000-v1000-e10-w0.125-b128",
                        help="objective tag of the stored runs (see search_efficiency.py)")
    args = parser.parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # PatientPruner
    runs = _load(args.storage, args.tag)
    if not runs:
        print(f"no stored random runs with tag {args.tag} in {args.storage}")
        return 1
    epochs = max(len(t.curve) for trials in runs.values() for t in trials)
    n_trials = max(len(trials) for trials in runs.values())
    print(f"# {len(runs)} stored random runs of {n_trials} trials x {epochs} epochs ({args.tag})")
    print(f"{'pruner':<26}{'epochs':>8}{'saving':>8}{'best':>8}{'loss pts':>9}{'kept':>7}")
    unpruned = {name: replay(trials, optuna.pruners.NopPruner()) for name, trials in runs.items()}
    for label, make in _pruners(epochs, n_trials).items():
        results = {name: replay(trials, make()) for name, trials in runs.items()}
        spent = statistics.fmean(r[0] for r in results.values())
        base = statistics.fmean(unpruned[n][0] for n in runs)
        best = statistics.fmean(r[1] for r in results.values())
        loss = statistics.fmean(100 * (unpruned[n][1] - results[n][1]) for n in runs)
        kept = sum(results[n][1] >= unpruned[n][1] for n in runs)
        print(f"{label:<26}{spent:>8.1f}{base / spent:>7.2f}x{best:>8.4f}{loss:>9.2f}{kept:>4}/{len(runs)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
