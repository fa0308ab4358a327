"""The verbs that train: ``run`` (a study file, in this process or in local workers),
``worker`` (one worker on a shared storage) and ``train`` (one config, e.g. an export, over seeds).

Each is ``cmd_<verb>(args) -> int`` with an argument builder ``args_<verb>(parser)``;
:mod:`search.cli.command` registers them. Everything a user can get wrong (the study file, the
overrides, the data set, the device) is checked before any trial starts.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from collections.abc import Callable
from typing import Any

from objectives import ConfigError, validate_config
from search import exit_codes
from search.cli._verbs import PROG, say, storage_argument
from search.errors import Terminated, UserError, first_line
from search.text import plural

__all__ = [
    "add_run_arguments",
    "prepare_run",
    "run_in_process",
    "cmd_run",
    "cmd_worker",
    "train_config",
    "cmd_train",
    "args_run",
    "args_worker",
    "args_train",
]


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments shared by ``run`` and any verb that runs a study file (e.g. ``worker``)."""
    parser.add_argument("study", metavar="STUDY.yaml", help="study file (see studies/quickstart.yaml)")
    storage_argument(parser, ", overrides the study file's `storage`")
    parser.add_argument("--n-trials", type=int, metavar="N", help="finished trials per arm (overrides budget.trials)")
    parser.add_argument(
        "--timeout", type=float, metavar="S",
        help="seconds for this run; no trial starts after it (overrides budget.timeout)",
    )  # fmt: skip
    parser.add_argument(
        "--device", choices=("auto", "cpu", "cuda"), help="training device (overrides objective.device)"
    )


def prepare_run(args: argparse.Namespace) -> tuple[Any, str]:
    """Load and validate the study file, check the overrides; returns ``(spec, storage_url)``.

    Nothing touches the database here.
    """
    from search.spec.study_file import TIMEOUT_RULE, load_spec
    from search.storage.url import resolve_storage_url, sqlite_file

    spec = load_spec(args.study)
    if args.n_trials is not None and args.n_trials < 1:
        raise UserError(f"--n-trials must be a positive integer (trials per arm), got {args.n_trials}")
    if args.timeout is not None and not args.timeout > 0:
        raise UserError(f"--timeout {TIMEOUT_RULE}, got {args.timeout:g}")
    url = resolve_storage_url(args.storage, spec)
    sqlite_file(url)  # a malformed or in-memory URL fails now, before any data is read
    return spec, url


def _interrupted_message(url: str, exc: KeyboardInterrupt, who: str = "") -> str:
    from search.storage.url import mask_url

    what = "terminated (SIGTERM)" if isinstance(exc, Terminated) else "interrupted"
    notes = getattr(exc, "__notes__", None)  # where it was, when no trial was running (search.run.lr_range)
    where = f" {notes[-1]};" if notes else "; the running trial was marked FAIL,"
    return (f"{PROG}: {who}{what}{where} finished trials are kept in {mask_url(url)}; "
            "run the same command again to resume")  # fmt: skip


def _budget_met(spec: Any, storage: Any, budget: int | None) -> bool:
    """Whether every arm's study exists and has its budget with nothing in flight (reads only)."""
    import optuna

    from search.storage.budget import is_complete

    if budget is None:
        return False
    for arm in spec.arms:
        try:
            study = optuna.load_study(study_name=spec.study_name(arm), storage=storage)
        except KeyError:
            return False
        if not is_complete(study, budget):
            return False
    return True


def _run_header(args: argparse.Namespace, spec: Any, url: str) -> str:
    from search.storage.url import mask_url

    budget = args.n_trials or spec.budget.trials
    timeout = args.timeout or spec.budget.timeout
    return (
        f"study {spec.name}: {plural(len(spec.arms), 'arm')} ({', '.join(a.name for a in spec.arms)}), "
        + (plural(budget, "trial") if budget else "unlimited trials") + " per arm"
        + f" x {plural(spec.final.replicates, 'replicate')}, each incumbent retrained with "
        + plural(spec.final.seeds, "seed")
        + (f", timeout {timeout:.0f} s" if timeout else "")
        + f"; sampler {spec.sampler.type} (seed {spec.sampler.seed}), pruner {spec.pruner.type}; storage {mask_url(url)}"
    )  # fmt: skip


def run_in_process(args: argparse.Namespace, spec: Any, url: str, *, train_fn: Callable | None = None) -> int:
    """Run the study loop in this process (one worker), then print the compare table.

    A study file with a batch-size axis runs its studies one batch size after another (smallest first),
    each printing its own compare table, then the axis table (:mod:`search.results.axis_report`).
    """
    from search.storage.database import open_storage

    storage = open_storage(url)
    for one, left in spec.timed_runs(args.timeout):  # one limit for the whole run, axis or not
        if left == 0:
            say(args, f"timeout reached before {one.name}; run the same command again to resume")
            break
        status = _run_one(args, one, url, storage, train_fn, timeout=left)
        if status:
            return status
    if spec.axis:
        _finish_axis(storage, spec)
    return 0


def _finish_axis(storage: Any, spec: Any) -> None:
    """After an axis run: the axis table and figure in every batch's dashboard note once every batch has its
    verdict, then the axis table printed (the axis read once for both)."""
    from search.results.axis_report import format_axis, load_axis
    from search.results.publish import publish_axis

    result = load_axis(storage, spec.name, spec.axis)
    if result.complete:
        publish_axis(storage, result)
    print()
    print(format_axis(result))


def _run_one(
    args: argparse.Namespace, spec: Any, url: str, storage: Any, train_fn: Callable | None, *, timeout: float | None
) -> int:
    from search.results.report import format_compare
    from search.run.loop import RunSettings, run_studies

    budget = args.n_trials or spec.budget.trials
    say(args, _run_header(args, spec, url))
    met = _budget_met(spec, storage, budget)
    try:
        settings = RunSettings(n_trials=args.n_trials, timeout=timeout, device=args.device, train_fn=train_fn,
                               storage_url=url, progress=not args.quiet and not met,
                               log=None if args.quiet else print)  # fmt: skip
        summary = run_studies(spec, storage, settings)
    except KeyboardInterrupt as exc:
        print(_interrupted_message(url, exc), file=sys.stderr)
        return exit_codes.for_interrupt(exc)
    if met and not sum(getattr(p, "ran_here", 0) for p in (summary or {}).values()):
        say(args, f"nothing to do: every arm of {spec.name} already has its {plural(budget, 'trial')}; "
                   f"raise --n-trials to run more")  # fmt: skip
    print()
    print(format_compare(storage, spec.name))
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    """Create or resume the studies of a study file (one per arm) and run them round robin."""
    spec, url = prepare_run(args)
    gpus = None
    if args.workers is not None or args.gpus is not None:
        from search.run.workers import parse_gpus, worker_count

        try:  # the rules launch_workers applies, checked before the data is read
            gpus = parse_gpus(args.gpus)
            worker_count(args.workers, gpus)
        except ValueError as exc:
            raise UserError(str(exc)) from None
    if args.train_fn is None:
        from search.run.preflight import check_data, check_device

        if args.gpus is None:  # with --gpus each worker gets its own GPU
            check_device(spec, args.device)
        check_data(spec)
    if args.workers is None and args.gpus is None:
        return run_in_process(args, spec, url, train_fn=args.train_fn)
    from search.results.report import format_compare
    from search.run.workers import launch_workers
    from search.storage.database import open_reader

    status = launch_workers(
        args.study, storage_url=url, n_workers=args.workers, gpus=gpus, n_trials=args.n_trials,
        timeout=args.timeout, device=args.device, log=lambda line: print(line, flush=True),
    )  # fmt: skip
    if status == 0:
        for one in spec.runs():
            print()
            print(format_compare(open_reader(url), one.name))
        if spec.axis:
            from search.storage.database import open_storage

            _finish_axis(open_storage(url), spec)
    return status


def cmd_worker(args: argparse.Namespace) -> int:
    """Run one worker of a study on a shared storage (start one per machine or GPU)."""
    from search.run.loop import RunSettings
    from search.run.workers import load_objective, run_worker

    if args.storage_env is not None:  # a launched worker: the URL is not on its command line (`ps`)
        if args.storage is not None:
            raise UserError("give --storage or --storage-env, not both")
        args.storage = os.environ.get(args.storage_env)
        if not args.storage:
            raise UserError(f"--storage-env {args.storage_env}: that environment variable is not set or empty")
    if args.worker_id is not None and args.worker_id < 0:
        raise UserError(f"--worker-id must be an integer >= 0, got {args.worker_id}")
    try:
        train_fn, validate = load_objective(args.objective)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    spec, url = prepare_run(args)
    try:
        settings = RunSettings(n_trials=args.n_trials, timeout=args.timeout, device=args.device,
                               train_fn=train_fn or args.train_fn, validate=validate, worker_id=args.worker_id,
                               log=None if args.quiet else (lambda line: print(line, flush=True)))  # fmt: skip
        run_worker(spec, url, settings)
    except KeyboardInterrupt as exc:
        print(_interrupted_message(url, exc, who="worker "), file=sys.stderr)
        return exit_codes.for_interrupt(exc)
    say(args, f"worker done: every arm of {spec.name} has its budget")
    return 0


def train_config(config: dict[str, Any], seed: int, *, device: str | None, progress: bool) -> dict[str, Any]:
    """The config ``train`` trains for one seed: the file's, with the test set on and that seed."""
    out = dict(config)
    out["seed"] = seed
    out["evaluate_test"] = True
    out["progress"] = progress
    if device:
        out["device"] = device
    return out


def cmd_train(args: argparse.Namespace) -> int:
    """Train one config (e.g. an export) with the test set, over several seeds: mean +- std."""
    from search.results.export import load_config_file

    try:
        config = load_config_file(args.config)
    except OSError as exc:
        raise UserError(f"{args.config}: cannot read the config file ({exc.strerror or exc})") from None
    except ValueError as exc:  # not a mapping, or invalid YAML
        raise UserError(first_line(exc)) from None
    if "name" in config and "objective" in config:
        raise UserError(
            f"{args.config}: a study file (it has `name` and `objective`), not a config; run it with "
            f"`{PROG} run {args.config}`, or train the config `{PROG} export {config['name']} -o best.yaml` writes"
        )
    try:
        validate_config(config)
    except ConfigError as exc:
        raise UserError(f"{args.config}: {exc}") from None
    if args.seeds < 1:
        raise UserError(f"--seeds must be a positive integer, got {args.seeds}")
    if args.first_seed is not None and args.first_seed < 0:
        raise UserError(f"--first-seed must be an integer >= 0, got {args.first_seed}")
    train_fn = args.train_fn
    if train_fn is None:  # every seed trains on the same data: read it once (training, and torch, start here)
        from objectives.train import train_reusing_data

        train_fn = train_reusing_data()
    base = int(config.get("seed", 0)) if args.first_seed is None else args.first_seed
    tests, vals = [], []
    for seed in range(base, base + args.seeds):
        cfg = train_config(config, seed, device=args.device, progress=not args.quiet)
        result = train_fn(cfg, None)
        if getattr(result, "diverged", False):
            print(f"seed {seed}: diverged (non-finite loss at epoch {result.diverged_epoch})", flush=True)
            continue
        tests.append(result.test_accuracy)
        vals.append(result.val_accuracy)
        print(
            f"seed {seed}: test accuracy {100 * result.test_accuracy:.2f}%, validation {100 * result.val_accuracy:.2f}% "
            f"({result.wall_time_s:.1f} s, {result.images_per_s:.0f} images/s on {result.device})",
            flush=True,
        )
    if not tests:
        print(f"{PROG}: every seed diverged", file=sys.stderr)
        return exit_codes.FAILED

    if len(tests) == 1:  # no spread to show from one run
        print(f"test accuracy: {100 * tests[0]:.2f}% over 1 seed (validation {100 * vals[0]:.2f}%)")
        return 0

    def ms(xs: list[float]) -> str:
        return f"{100 * statistics.fmean(xs):.2f} +- {100 * statistics.stdev(xs):.2f}%"

    print(f"test accuracy: {ms(tests)} over {len(tests)} seeds (validation {ms(vals)}; std is the sample std)")
    return 0


def args_run(p: argparse.ArgumentParser) -> None:
    add_run_arguments(p)
    p.add_argument(
        "--workers", type=int, metavar="N", help="start N worker processes on this machine sharing the storage"
    )
    p.add_argument(
        "--gpus", metavar="0,1,...", help="one worker per listed GPU, each seeing only its GPU (CUDA_VISIBLE_DEVICES)"
    )


def args_worker(p: argparse.ArgumentParser) -> None:
    add_run_arguments(p)
    p.add_argument(
        "--worker-id", type=int, metavar="I", help="varies the sampler seed per worker (default: from host and pid)"
    )
    p.add_argument("--objective", help=argparse.SUPPRESS)  # module:function replacing objectives.train (tests)
    p.add_argument("--storage-env", metavar="VAR", help=argparse.SUPPRESS)  # the storage URL's variable (run --workers)


def args_train(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", metavar="CONFIG.yaml", help="a config, e.g. written by `lars-search export`")
    p.add_argument("--seeds", type=int, default=3, metavar="N", help="runs with seeds seed, seed+1, ... (default 3)")
    p.add_argument(
        "--first-seed", type=int, metavar="S",
        help="the first seed (default: the config's `seed`); an export names the final evaluation's",
    )  # fmt: skip
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), help="training device (overrides the config's)")
