"""Does lars-search spend its compute well on a space nobody narrowed by hand?

For the arms SGD+LARS and Adam+LARS on real data (Fashion-MNIST, slim VGG-16, a training
subset), searches with the same trial budget run through the product's own machinery
(:func:`search.spec.study_file.parse_spec` -> :func:`search.run.lr_range.range_test` ->
:func:`search.run.loop.run_studies`), over the wide default space (no ``space:`` section
but ``lr: auto`` where a variant asks for it). The methods compared are *variants*: named
overrides of the study file (:data:`VARIANTS`), by default

    (a) defaults   TPE + the median pruner + the published recipe as trial 0 + lr: auto
                   (a range test per arm first): what a study file without options gets
    (b) random     random search, no pruner, no recipe, the default lr range

each over several sampler seeds. Every trial trains with the same training seed, and the
benchmark (not the search) measures each complete trial's test accuracy on all 10,000
test images (stored at once in the arm study's user attr ``incumbent_test/<config digest>``;
the search never sees it). The figures (:mod:`efficiency_analysis`): compute to get within
1 point of the best validation accuracy any run of the arm found, (b)/(a) per seed (target
>= 3), and the same on the incumbents' test accuracy; the test accuracy of both runs'
incumbents at equal compute; and what diverged trials cost.
Compute counts the range test and every epoch of a diverged trial. Measured figures are
in ``benchmarks/RESULTS.md``.

Run::

    python benchmarks/search_efficiency.py                      # full: 5 seeds x 40 trials x 2 arms x (a), (b)
    python benchmarks/search_efficiency.py --size smoke         # minutes, end to end
    python benchmarks/search_efficiency.py --run a --seeds 1 --first-seed 3   # part of it, in another process
    python benchmarks/search_efficiency.py --run b --seeds 1 --first-seed 4 --arm adam+lars   # one arm of it
    python benchmarks/search_efficiency.py --a tpe --b random   # other variants of VARIANTS
    python benchmarks/search_efficiency.py --analyse-only       # the figures of stored runs

Studies are kept in ``--storage`` (default ``artifacts/search_efficiency.db``): a stopped
run resumes where it was, and runs of a variant are reused by every comparison naming it.
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import hashlib
import json
import logging
import math
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT, ROOT / "benchmarks"):  # run from a checkout without `pip install -e .`
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import efficiency_analysis as ea  # noqa: E402
import torch  # noqa: E402
import yaml  # noqa: E402
from optuna.trial import TrialState  # noqa: E402

from search import exit_codes  # noqa: E402
from search.errors import SearchError, Terminated  # noqa: E402
from search.results.plot import arm_curve  # noqa: E402
from search.results.read import load_arms  # noqa: E402
from search.results.stored import RANGE_ATTR, range_cost  # noqa: E402
from search.run.lr_range import needs_range_test, range_test  # noqa: E402
from search.signals import interrupt_signals  # noqa: E402
from search.spec.study_file import parse_spec  # noqa: E402
from search.storage.database import open_storage  # noqa: E402

__all__ = ["ARMS", "SIZES", "VARIANTS", "study_data", "read_runs", "main", "interruptible_main"]

ARMS = ["sgd+lars", "adam+lars"]
TEST_ATTR = "incumbent_test"

#: Named overrides of the study file (merged into it key by key). (a) and (b) name two of them.
VARIANTS: dict[str, dict] = {
    # TPE + median pruner + the published recipe as trial 0 (the study-file defaults) + range test
    "defaults": {"space": {"lr": "auto"}},
    "random": {"sampler": {"type": "random"}, "pruner": {"type": "none"}, "recipe": False},  # the baseline
    "tpe": {"space": {"lr": "auto"}, "pruner": {"type": "none"}},  # TPE + range test, no pruner
    "tpe-median": {"pruner": {"type": "median"}},  # the defaults without the range test (wide default lr)
    "no-recipe": {"space": {"lr": "auto"}, "recipe": False},  # the defaults without the recipe trial
    "random-auto": {
        "space": {"lr": "auto"},
        "sampler": {"type": "random"},
        "pruner": {"type": "none"},
        "recipe": False,
    },
    "hyperband": {"space": {"lr": "auto"}, "pruner": {"type": "hyperband"}},
}

#: Size presets: objective, budget, seeds, range-test steps.
SIZES: dict[str, dict] = {
    "full": {
        "seeds": 5,
        "trials": 40,
        "n_train": 2000,
        "val_size": 1000,
        "epochs": 10,
        "width": 0.125,
        "batch_size": 128,
        "range_steps": 200,
    },
    "smoke": {
        "seeds": 2,
        "trials": 2,
        "n_train": 512,
        "val_size": 200,
        "epochs": 2,
        "width": 0.125,
        "batch_size": 32,
        "range_steps": 100,  # 60 left SGD+LARS's loss 5% down at best: no range on 2 threads
    },
}


def _merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in over.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def _tag(size: dict, device: str) -> str:
    where = "" if device == "cpu" else f"-{device.replace(':', '')}"  # GPU runs kept apart
    return (
        f"n{size['n_train']}-v{size['val_size']}-e{size['epochs']}-w{size['width']:g}-b{size['batch_size']}"
        f"-t{size['trials']}{where}"
    )


def study_data(variant: str, seed: int, size: dict, device: str, arms: list[str] | None = None) -> dict:
    """The study file of one run: the objective, the arms (both by default), the budget, the seed, the overrides.

    Each arm is its own Optuna study and seed, so a run of one arm (``arms=["adam+lars"]``)
    stores the same trials as that arm of a run of both, and is read back with them.
    """
    base = {
        "name": f"efficiency-{variant}-s{seed}-{_tag(size, device)}",
        "objective": {
            "dataset": "fashion_mnist",
            "model": "vgg16",
            "seed": 0,
            "device": device,
            **{k: size[k] for k in ("width", "n_train", "val_size", "epochs", "batch_size")},
        },
        "arms": list(arms or ARMS),
        "budget": {"trials": size["trials"]},
        "sampler": {"type": "tpe", "seed": seed},
    }
    return _merge(base, VARIANTS[variant])


def _spec(variant: str, seed: int, size: dict, device: str, arms: list[str] | None = None):
    data = study_data(variant, seed, size, device, arms)
    return parse_spec(data, source=f"<benchmark {variant}>", text=yaml.safe_dump(data, sort_keys=False))


def _config_key(config: dict) -> str:
    """A trial's config as text, without the keys the benchmark itself sets."""
    return json.dumps({k: v for k, v in config.items() if k not in ("evaluate_test", "device")}, sort_keys=True)


def tested_attr(config: dict) -> str:
    """The arm study's user attr holding the test accuracy of ``config`` (written as soon as it is measured)."""
    return f"{TEST_ATTR}/{hashlib.sha1(_config_key(config).encode()).hexdigest()[:16]}"


def test_accuracies(study) -> dict[int, float]:
    """Trial number -> test accuracy of the study's complete trials that have one."""
    by_number = {int(n): v for n, v in study.user_attrs.get(TEST_ATTR, {}).items()}  # runs stored before 2026-12-02
    attrs = study.user_attrs
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        found = attrs.get(tested_attr(t.user_attrs.get("config", {})))
        if found is not None:
            by_number.setdefault(t.number, found)
    return by_number


def _arm_of(spec, config: dict) -> str:
    return next(a.name for a in spec.arms if (a.optimizer, a.lars) == (config["optimizer"], config["lars"]))


def run_one(variant: str, seed: int, size: dict, args: argparse.Namespace, storage, deadline: float | None) -> None:
    """Run (or resume) one variant and seed: range tests first, then the search; test accuracies beside it."""
    from objectives.train import train_reusing_data  # late: pulls in the models
    from search.run.loop import run_studies
    from search.run.studies import open_studies

    spec = _spec(variant, seed, size, args.device, [args.arm] if args.arm else None)
    studies = open_studies(spec, storage)
    for arm in spec.arms:
        if needs_range_test(arm):
            range_test(
                spec,
                arm,
                studies[arm.name],
                device=args.device,
                steps=size["range_steps"],
                log=lambda line: print(f"# {line}", flush=True),
            )
    train = train_reusing_data()

    def train_and_test(config, report=None):  # the trial's config (what the sampler sees) keeps evaluate_test False
        result = train(dict(config, evaluate_test=True), report)
        if result.test_accuracy is not None:  # stored before the trial is told: a killed run loses neither
            studies[_arm_of(spec, config)].set_user_attr(tested_attr(config), result.test_accuracy)
        return result

    timeout = None if deadline is None else max(1.0, deadline - time.time())
    run_studies(
        spec, storage, timeout=timeout, device=args.device, progress=False, train_fn=train_and_test, evaluate=False
    )  # the benchmark tests every complete trial itself


def backfill_tests(runs: list[ea.Run], variant: str, seed: int, size: dict, args: argparse.Namespace, storage) -> int:
    """Test the incumbents of stored ``runs`` (of ``variant`` and ``seed``) that have no test accuracy (a run
    killed before 2026-12-02 lost them); stores each and adds it to ``run.test``; returns how many.
    Training is deterministic, so the retrained validation accuracy must match the stored one."""
    from objectives.train import train_reusing_data

    studies = dict(load_arms(storage, _spec(variant, seed, size, args.device).name))
    train, done = None, 0
    for run in runs:
        study = studies[run.arm]
        trials = {t.number: t for t in study.get_trials(deepcopy=False)}
        for k in ea.incumbents(run.curve):
            trial = trials[run.curve.numbers[k]]
            if trial.number in run.test:
                continue
            train = train or train_reusing_data()
            config = trial.user_attrs["config"]
            result = train(dict(config, evaluate_test=True, device=args.device))
            if not math.isclose(result.val_accuracy, trial.value, abs_tol=1e-9):
                print(f"# {variant}/s{seed}/{run.arm} trial {trial.number}: retrained to validation "
                      f"{result.val_accuracy:.4f}, stored {trial.value:.4f}: its test accuracy is not kept")  # fmt: skip
                continue
            study.set_user_attr(tested_attr(config), result.test_accuracy)
            run.test[trial.number] = result.test_accuracy
            done += 1
    return done


def read_runs(variant: str, seed: int, size: dict, device: str, storage) -> list[ea.Run]:
    """The stored runs (one per arm) of a variant and seed; [] when none is stored."""
    spec = _spec(variant, seed, size, device)
    try:
        arms = load_arms(storage, spec.name)
    except LookupError:
        return []
    runs = []
    for arm, study in arms:
        trials = study.get_trials(deepcopy=False)
        diverged = {
            t.number: int(t.user_attrs["diverged_epoch"])
            for t in trials
            if t.user_attrs.get("diverged_epoch") is not None
        }
        offset = range_cost(study)
        wall = sum(float(t.user_attrs.get("wall_time_s") or 0.0) for t in trials)
        runs.append(ea.Run(
            variant=variant, seed=seed, arm=arm, budget=spec.budget.trials, wall_s=wall,
            curve=ea.costed(arm_curve(arm, trials), offset=offset, diverged=diverged),
            range_cost=offset, lr_range=study.user_attrs.get(RANGE_ATTR), diverged=diverged,
            test=test_accuracies(study),
        ))  # fmt: skip
    return runs


def _where(device: str) -> str:
    if device.startswith("cuda") and torch.cuda.is_available():
        return torch.cuda.get_device_name(torch.device(device))
    return f"CPU ({platform.machine()})"


def print_report(runs: list[ea.Run], a: str, b: str, size: dict, args: argparse.Namespace) -> None:
    print(
        f"# search efficiency: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, {_where(args.device)}, "
        f"torch {torch.__version__} ({torch.get_num_threads()} thread(s))"
    )
    print(
        f"# size {args.size}: {json.dumps(size)}; (a) {a} = {json.dumps(VARIANTS[a])}, "
        f"(b) {b} = {json.dumps(VARIANTS[b])}"
    )
    for arm in ARMS:
        mine = [r for r in runs if r.arm == arm]
        if not mine:
            continue
        summary = ea.summarise(mine, a, b)
        print(
            f"\n## {arm}: G = best validation accuracy of {len(mine)} runs = {summary['best_all']:.4f}, "
            f"target G - {ea.TOLERANCE:.2f} = {summary['target']:.4f}"
        )
        print(
            f"{'run':<12} {'seed':>4} {'done':>4} {'cmpl':>4} {'prun':>4} {'div':>4} {'div_ep':>6} "
            f"{'range':>6} {'compute':>8} {'wall_s':>7} {'best':>7} {'to_target':>9}  lr range"
        )
        for r in sorted(mine, key=lambda r: (r.seed, r.variant != a)):
            c, reached = summary["cost"][(r.variant, r.seed)]
            states, (n_div, div_epochs) = r.curve.states, ea.diverged_cost(r)
            found = f"{r.lr_range['of']} {r.lr_range['low']:.3g}..{r.lr_range['high']:.3g}" if r.lr_range else "-"
            print(
                f"{r.variant:<12} {r.seed:>4} {len(states):>4} {states.count('COMPLETE'):>4} "
                f"{states.count('PRUNED'):>4} {n_div:>4} {div_epochs:>6.0f} {r.range_cost:>6.1f} "
                f"{r.total_compute:>8.1f} {r.wall_s:>7.0f} {r.best:>7.4f} {('' if reached else '>=') + f'{c:.1f}':>9}"
                f"  {found}"
            )
        print(f"ratio (b)/(a) of compute to within {100 * ea.TOLERANCE:.0f} point of G (target >= 3):")
        print(f"  {ea.ratio_line(summary)}")
        for tolerance in (0.005, 0.02):
            print(f"  at {100 * tolerance:.1f} points: {ea.ratio_line(ea.summarise(mine, a, b, tolerance))}")
        print(
            f"  noise: one trial's validation accuracy at G on {size['val_size']:,} images has a standard error of "
            f"{100 * ea.standard_error(summary['best_all'], size['val_size']):.1f} points"
        )
        handed = ea.summarise([ea.tested(r) for r in mine], a, b, to_target=ea.settled_compute_to_target)
        print(
            f"the same on what a run hands back: its incumbent's test accuracy, from when it stays within "
            f"{100 * ea.TOLERANCE:.0f} point of the best final one (G_test = {handed['best_all']:.4f}):"
        )
        print(f"  {ea.ratio_line(handed)}")
        rows = ea.equal_compute(mine, a, b)
        if rows:
            print("equal compute (the smaller total of the two runs): incumbents' validation / test accuracy")
            for row in rows:
                print(
                    f"  seed {row['seed']}: at {row['compute']:.1f} trial-epochs (a) {row['val'][a]:.4f} / "
                    f"{row['test'][a]:.4f}, (b) {row['val'][b]:.4f} / {row['test'][b]:.4f}"
                )
            diff = [row["test"][a] - row["test"][b] for row in rows]
            print(
                f"  test (a) - (b): mean {100 * statistics.fmean(diff):+.2f} points "
                f"(per seed {', '.join(f'{100 * d:+.1f}' for d in diff)})"
            )
        for variant in (a, b):
            mine_v = [r for r in mine if r.variant == variant]
            if mine_v:
                n_div = sum(ea.diverged_cost(r)[0] for r in mine_v)
                div_epochs = sum(ea.diverged_cost(r)[1] for r in mine_v)
                total = sum(r.total_compute for r in mine_v)
                print(
                    f"  {variant}: {statistics.fmean(r.total_compute for r in mine_v):.1f} trial-epochs per run "
                    f"(range test {statistics.fmean(r.range_cost for r in mine_v):.1f}); diverged trials "
                    f"{n_div} costing {div_epochs:.0f} trial-epochs ({100 * div_epochs / total:.1f}% of compute)"
                )


def plot(runs: list[ea.Run], a: str, path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg", force=True)
        import matplotlib.pyplot as plt
    except ImportError:
        print("# matplotlib missing: no figure")
        return
    fig, axes = plt.subplots(1, len(ARMS), figsize=(13, 5), layout="constrained", squeeze=False)
    for ax, arm in zip(axes[0], ARMS):
        for r in (r for r in runs if r.arm == arm):
            ax.step(
                [0, *r.curve.compute],
                [math.nan, *r.curve.best],
                where="post",
                linestyle="-" if r.variant == a else "--",
                color=f"C{r.seed % 10}",
                label=f"{r.variant} s{r.seed}",
            )
        ax.set_title(f"{arm}: (a) solid, (b) dashed")
        ax.set_xlabel("compute (trial-epochs, range test included)")
        ax.set_ylabel("best validation accuracy so far")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="small", loc="lower right")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    print(f"# figure: {path}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="e.g. python benchmarks/search_efficiency.py --size smoke",
    )
    parser.add_argument("--size", choices=SIZES, default="full", help="preset of objective, budget and seeds")
    parser.add_argument("--a", default="defaults", choices=VARIANTS, help="variant (a) (default: defaults)")
    parser.add_argument("--b", default="random", choices=VARIANTS, help="variant (b) (default: random)")
    parser.add_argument(
        "--run",
        choices=("both", "a", "b"),
        default="both",
        help="run both variants (default), or one of them, e.g. in parallel processes",
    )
    parser.add_argument("--arm", choices=ARMS, help="run this arm only (default: both), e.g. to balance processes")
    parser.add_argument("--seeds", type=int, help="sampler seeds per variant (default: the size's)")
    parser.add_argument("--first-seed", type=int, default=0, help="seeds run are FIRST_SEED .. FIRST_SEED+SEEDS-1")
    parser.add_argument("--trials", type=int, help="trials per arm and run (default: the size's)")
    parser.add_argument("--val-size", type=int, help="validation images held out (default: the size's)")
    parser.add_argument("--device", default="cpu", help="cpu (default), or cuda[:N]: GPU runs are stored apart")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1: the machine is shared)")
    parser.add_argument("--analyse-only", action="store_true", help="train nothing: report the stored runs")
    parser.add_argument("--time-limit", type=float, default=None, help="seconds from now: no trial starts after them")
    parser.add_argument("--storage", default=f"sqlite:///{ROOT / 'artifacts' / 'search_efficiency.db'}")
    parser.add_argument("--figure", default=str(ROOT / "artifacts" / "search_efficiency.png"))
    args = parser.parse_args(argv)
    size = dict(SIZES[args.size])
    size.update(
        {
            k: v
            for k, v in (("seeds", args.seeds), ("trials", args.trials), ("val_size", args.val_size))
            if v is not None
        }
    )
    if size["seeds"] < 1 or size["trials"] < 1:
        parser.error(f"--seeds and --trials must be >= 1, got {size['seeds']} and {size['trials']}")
    (ROOT / "artifacts").mkdir(exist_ok=True)
    logging.getLogger("optuna").setLevel(logging.WARNING)
    torch.set_num_threads(args.threads)
    storage = open_storage(args.storage, heartbeat=not args.analyse_only)
    deadline = None if args.time_limit is None else time.time() + args.time_limit
    variants = {"both": [args.a, args.b], "a": [args.a], "b": [args.b]}[args.run]
    runs: list[ea.Run] = []
    for seed in range(args.first_seed, args.first_seed + size["seeds"]):  # pairs first: a deadline leaves whole pairs
        for variant in (args.a, args.b):
            stored = read_runs(variant, seed, size, args.device, storage)
            asked = [r for r in stored if args.arm in (None, r.arm)]
            done = bool(asked) and all(len(r.curve.states) >= r.budget for r in asked)
            if done and variant in variants and not args.analyse_only:
                tested = backfill_tests(asked, variant, seed, size, args, storage)
                if tested:
                    print(
                        f"# {variant} seed {seed}: tested {tested} incumbent(s) that had no test accuracy", flush=True
                    )
            if not (args.analyse_only or variant not in variants or done):
                if deadline is not None and time.time() >= deadline:
                    print(f"# time limit reached: {variant}/s{seed} not run", flush=True)
                    continue
                t0 = time.perf_counter()
                run_one(variant, seed, size, args, storage, deadline)
                stored = read_runs(variant, seed, size, args.device, storage)
                print(
                    f"# {variant} seed {seed}: "
                    + ", ".join(
                        f"{r.arm} {len(r.curve.states)} trials, {r.total_compute:.1f} trial-epochs, best {r.best:.4f}"
                        for r in stored
                    )
                    + f"; {time.perf_counter() - t0:.0f} s",
                    flush=True,
                )
            runs += stored
    if not runs:
        print("no runs stored for these settings")
        return 1
    print_report(runs, args.a, args.b, size, args)
    plot(runs, args.a, Path(args.figure))
    return 0


def interruptible_main(argv: list[str] | None = None) -> int:
    """:func:`main`, with Ctrl-C and SIGTERM (also in a background job) or a user's error ending it in one line."""
    with interrupt_signals():
        try:
            return main(argv)
        except SearchError as exc:  # e.g. a range test without a usable range: what to try, not a traceback
            print(f"search_efficiency: error: {exc}", file=sys.stderr)
            return 2
        except KeyboardInterrupt as exc:
            print(
                f"# {'terminated' if isinstance(exc, Terminated) else 'interrupted'}: finished trials are stored, "
                "the running one is marked FAIL and retried; the same command resumes",
                file=sys.stderr,
            )
            return exit_codes.for_interrupt(exc)


if __name__ == "__main__":
    raise SystemExit(interruptible_main())
