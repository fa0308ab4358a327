"""The ``lars-search`` command: run, status, compare, export, train, dashboard.

Every verb is one function ``cmd_<verb>(args) -> int`` registered in :data:`COMMANDS`
with its arguments and examples; its docstring's first line is its help. A user's
mistake (bad study file, unknown study, unreachable storage, missing data) is one line
on stderr and exit code 2; ``--debug`` shows the traceback. Ctrl-C exits with 130
after marking the running trial FAIL. Examples::

    lars-search run studies/quickstart.yaml
    lars-search compare quickstart
    lars-search export quickstart --arm sgd+lars -o best.yaml && lars-search train best.yaml --seeds 3

From Python (tests, other tools): ``search.cli.main(["status"]) -> int``.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import warnings
from typing import Any, Callable

__all__ = ["COMMANDS", "main", "build_parser", "UserError", "USER_ERRORS"]

PROG = "lars-search"
ENV_HELP = """environment:
  LARS_SEARCH_STORAGE  default storage URL when neither --storage nor the study file's
                       `storage` is given (default: sqlite:///lars-search.db in the cwd)
  LARS_SEARCH_DATA     directory holding the datasets (Fashion-MNIST IDX files or
                       cifar-10-batches-py/); else torchvision's cache, else
                       /usr/share/datasets/fashion-mnist (apt-get install dataset-fashion-mnist)
  LARS_SEARCH_OFFLINE  set to never try downloading a missing dataset
  LARS_SEARCH_HEARTBEAT_INTERVAL, LARS_SEARCH_HEARTBEAT_GRACE
                       seconds between a running trial's heartbeats (default 60) and before a
                       silent trial is failed and retried (default twice the interval)"""


class UserError(Exception):
    """A mistake of the user's, reported as one line (exit code 2)."""


def _user_errors() -> tuple[type[BaseException], ...]:
    from search.report import StudyNotFoundError
    from search.spec import SpecError
    from search.storage import StorageError
    from search.study import SpecConflictError

    errors: list[type[BaseException]] = [UserError, SpecError, SpecConflictError, StorageError, StudyNotFoundError]
    try:
        from objectives import ConfigError, DataNotFoundError

        errors += [ConfigError, DataNotFoundError]
    except ImportError:
        pass
    try:
        from search.dashboard import DashboardError

        errors.append(DashboardError)
    except ImportError:
        pass
    from search.plot import PlotError  # matplotlib missing, unknown NAME: one line, exit 2

    errors.append(PlotError)
    return tuple(errors)


USER_ERRORS = _user_errors


def _say(args: argparse.Namespace, text: str) -> None:
    if not getattr(args, "quiet", False):
        print(text, flush=True)


def _storage_arg(parser: argparse.ArgumentParser, what: str = "") -> None:
    parser.add_argument(
        "--storage", metavar="URL",
        help=f"SQLAlchemy storage URL{what} (e.g. sqlite:///lars-search.db or "
        "postgresql+psycopg://user:pw@host/db); default: $LARS_SEARCH_STORAGE or sqlite:///lars-search.db",
    )  # fmt: skip


# --------------------------------------------------------------------------- run


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments shared by ``run`` and any verb that runs a study file (e.g. ``worker``)."""
    parser.add_argument("study", metavar="STUDY.yaml", help="study file (see studies/quickstart.yaml)")
    _storage_arg(parser, ", overrides the study file's `storage`")
    parser.add_argument("--n-trials", type=int, metavar="N", help="finished trials per arm (overrides budget.trials)")
    parser.add_argument(
        "--timeout", type=float, metavar="S",
        help="seconds for this run; no trial starts after it (overrides budget.timeout)",
    )  # fmt: skip
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), help="training device (overrides objective.device)")


def prepare_run(args: argparse.Namespace) -> tuple[Any, str]:
    """Load and validate the study file, check the overrides; returns ``(spec, storage_url)``.

    Nothing touches the database here.
    """
    from search.spec import load_spec
    from search.study import resolve_storage_url

    spec = load_spec(args.study)
    if args.n_trials is not None and args.n_trials < 1:
        raise UserError(f"--n-trials must be a positive integer (trials per arm), got {args.n_trials}")
    if args.timeout is not None and not args.timeout >= 0:
        raise UserError(f"--timeout must be >= 0 seconds, got {args.timeout}")
    return spec, resolve_storage_url(args.storage, spec)


def check_data(spec: Any) -> None:
    """Find (or download) the study's dataset before any trial starts.

    Without this, missing data would only show in the first trial, as a FAIL that takes
    one slot of the arm's budget. Reads the small test split once.
    """
    from objectives.config import DEFAULT_CONFIG
    from objectives.data import load_dataset

    dataset = spec.objective.get("dataset", DEFAULT_CONFIG["dataset"])
    load_dataset(dataset, train=False, data_dir=spec.objective.get("data_dir"))


def check_device(spec: Any, device: str | None) -> None:
    """``cuda`` or ``cuda:N`` requested (``--device`` or ``objective.device``) on a machine without it: one line, no trial."""
    import torch

    wanted = device or spec.objective.get("device", "auto")
    where = f"--device {wanted}" if device else f"{spec.source}: objective.device is {wanted!r}"
    if wanted.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"{where}, but CUDA is not available on this machine (use --device cpu or auto)")
    if wanted.startswith("cuda:") and int(wanted[5:]) >= torch.cuda.device_count():
        raise UserError(f"{where}, but this machine has {torch.cuda.device_count()} CUDA device(s)")


def run_in_process(args: argparse.Namespace, spec: Any, url: str, *, train_fn: Callable | None = None) -> int:
    """Run the study loop in this process (one worker), then print the compare table."""
    from search.report import format_compare
    from search.storage import mask_url, open_storage
    from search.study import run_studies

    storage = open_storage(url)
    budget = args.n_trials or spec.budget.trials
    _say(
        args,
        f"study {spec.name}: {len(spec.arms)} arms ({', '.join(a.name for a in spec.arms)}), "
        f"{budget if budget else 'unlimited'} trials per arm"
        + (f", timeout {args.timeout or spec.budget.timeout:.0f} s" if (args.timeout or spec.budget.timeout) else "")
        + f"; sampler {spec.sampler.type} (seed {spec.sampler.seed}), pruner {spec.pruner.type}; storage {mask_url(url)}",
    )
    try:
        run_studies(
            spec, storage, n_trials=args.n_trials, timeout=args.timeout, device=args.device, train_fn=train_fn,
            progress=not args.quiet, log=None if args.quiet else print, storage_url=url,
        )  # fmt: skip
    except KeyboardInterrupt:
        print(
            f"{PROG}: interrupted; the running trial was marked FAIL, finished trials are kept in {mask_url(url)}; "
            f"run the same command again to resume",
            file=sys.stderr,
        )
        return 130
    print()
    print(format_compare(storage, spec.name))
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    """Create or resume the studies of a study file (one per arm) and run them round robin."""
    spec, url = prepare_run(args)
    gpus = None
    if args.workers is not None or args.gpus is not None:
        from search.workers import parse_gpus

        if args.workers is not None and args.workers < 1:
            raise UserError(f"--workers must be a positive integer, got {args.workers}")
        try:
            gpus = parse_gpus(args.gpus)
        except ValueError as exc:
            raise UserError(str(exc)) from None
        if gpus is not None and args.workers is not None and args.workers != len(gpus):
            raise UserError(f"--workers must equal the number of --gpus ({len(gpus)}), got {args.workers}")
    if args.train_fn is None:
        if args.gpus is None:  # with --gpus each worker gets its own GPU
            check_device(spec, args.device)
        check_data(spec)
    if args.workers is None and args.gpus is None:
        return run_in_process(args, spec, url, train_fn=args.train_fn)
    from search.report import format_compare
    from search.storage import open_storage
    from search.workers import launch_workers

    status = launch_workers(
        args.study, storage_url=url, n_workers=args.workers, gpus=gpus, n_trials=args.n_trials,
        timeout=args.timeout, device=args.device, log=print,
    )  # fmt: skip
    if status == 0:
        print()
        print(format_compare(open_storage(url, heartbeat=False), spec.name))
    return status


def cmd_worker(args: argparse.Namespace) -> int:
    """Run one worker of a study on a shared storage (start one per machine or GPU)."""
    from search.storage import mask_url
    from search.workers import run_worker

    spec, url = prepare_run(args)
    try:
        run_worker(
            args.study, storage_url=url, worker_id=args.worker_id, n_trials=args.n_trials, timeout=args.timeout,
            device=args.device, train_fn=args.train_fn, log=(lambda line: None) if args.quiet else print,
        )  # fmt: skip
    except KeyboardInterrupt:
        print(f"{PROG}: worker interrupted; its running trial was marked FAIL, finished trials are kept in "
              f"{mask_url(url)}", file=sys.stderr)  # fmt: skip
        return 130
    _say(args, f"worker done: every arm of {spec.name} has its budget")
    return 0


# --------------------------------------------------------------------------- reports


def _open_reader(args: argparse.Namespace) -> tuple[Any, str]:
    from search.storage import open_storage
    from search.study import resolve_storage_url

    url = resolve_storage_url(args.storage)
    path = _sqlite_file(url)
    if path is not None and not os.path.exists(path):
        from search.storage import mask_url

        raise UserError(f"no storage at {mask_url(url)} (file {path} does not exist); run a study first: "
                        f"{PROG} run STUDY.yaml, or pass --storage")  # fmt: skip
    return open_storage(url, heartbeat=False), url


def _sqlite_file(url: str) -> str | None:
    """The file of a ``sqlite:///`` URL (None for other databases and in-memory SQLite)."""
    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url)
    except Exception:  # a malformed URL: open_storage reports it
        return None
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return os.path.abspath(parsed.database)


def cmd_status(args: argparse.Namespace) -> int:
    """Per arm: trials complete / pruned / failed / running and the best validation accuracy."""
    from search.report import format_status

    storage, _ = _open_reader(args)
    print(format_status(storage, args.name))
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    """The arms table: best accuracy and config, top-5 median, compute spent and saved, who beats whom."""
    from search.report import format_compare

    storage, _ = _open_reader(args)
    print(format_compare(storage, args.name))
    if args.plot:
        from search.plot import plot_compare  # raises PlotError naming the extra if matplotlib is missing

        plot_compare(storage, args.name, args.plot)
        _say(args, f"wrote {args.plot}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """Write the best trial's config as YAML that `lars-search train` reproduces, with a lars code snippet."""
    from search.export import export_text
    from search.storage import mask_url

    storage, url = _open_reader(args)
    text = export_text(storage, args.name, args.arm, storage_label=mask_url(url))
    if args.output in (None, "-"):
        sys.stdout.write(text)
    else:
        try:
            with open(args.output, "w", encoding="utf-8") as f:
                f.write(text)
        except OSError as exc:
            raise UserError(f"-o {args.output}: cannot write ({exc.strerror or exc})") from None
        _say(args, f"wrote {args.output}; reproduce with: {PROG} train {args.output} --seeds 3")
    return 0


# --------------------------------------------------------------------------- train


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
    from objectives import ConfigError, validate_config

    from search.export import load_config_file

    try:
        config = load_config_file(args.config)
    except OSError as exc:
        raise UserError(f"{args.config}: cannot read the config file ({exc.strerror or exc})") from None
    except ValueError as exc:  # not a mapping, or invalid YAML
        raise UserError(str(exc).splitlines()[0]) from None
    try:
        validate_config(config)
    except ConfigError as exc:
        raise UserError(f"{args.config}: {exc}") from None
    if args.seeds < 1:
        raise UserError(f"--seeds must be a positive integer, got {args.seeds}")
    train_fn = args.train_fn
    if train_fn is None:  # every seed trains on the same data: read it once
        from objectives import train_reusing_data

        train_fn = train_reusing_data()
    base = int(config.get("seed", 0))
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
        return 1

    def ms(xs: list[float]) -> str:
        std = statistics.stdev(xs) if len(xs) > 1 else 0.0
        return f"{100 * statistics.fmean(xs):.2f} +- {100 * std:.2f}%"

    print(f"test accuracy: {ms(tests)} over {len(tests)} seed(s) (validation {ms(vals)}; std is the sample std)")
    return 0


# --------------------------------------------------------------------------- dashboard


def cmd_dashboard(args: argparse.Namespace) -> int:
    """Serve optuna-dashboard for the storage on 127.0.0.1 (each arm is its own study)."""
    from search.dashboard import serve
    from search.study import resolve_storage_url

    url = resolve_storage_url(args.storage)
    serve(url, host=args.host, port=args.port, quiet=not args.verbose)
    return 0


# --------------------------------------------------------------------------- parser


def _args_run(p: argparse.ArgumentParser) -> None:
    add_run_arguments(p)
    p.add_argument("--workers", type=int, metavar="N", help="start N worker processes on this machine sharing the storage")
    p.add_argument("--gpus", metavar="0,1,...", help="one worker per listed GPU, each seeing only its GPU (CUDA_VISIBLE_DEVICES)")


def _args_worker(p: argparse.ArgumentParser) -> None:
    add_run_arguments(p)
    p.add_argument("--worker-id", type=int, metavar="I", help="varies the sampler seed per worker (default: from host and pid)")


def _args_status(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", nargs="?", metavar="NAME", help="study name (the study file's `name`); all when left out")
    _storage_arg(p)


def _args_compare(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", metavar="NAME", help="study name (the study file's `name`)")
    _storage_arg(p)
    p.add_argument("--plot", metavar="PNG", help="also draw best-so-far accuracy vs trial-epochs per arm (needs matplotlib)")


def _args_export(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", metavar="NAME", help="study name (the study file's `name`)")
    p.add_argument("--arm", metavar="ARM", help="export this arm's best trial (default: the best arm's)")
    p.add_argument("-o", "--output", metavar="best.yaml", help="output file (default: stdout)")
    _storage_arg(p)


def _args_train(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", metavar="CONFIG.yaml", help="a config, e.g. written by `lars-search export`")
    p.add_argument("--seeds", type=int, default=3, metavar="N", help="runs with seeds seed, seed+1, ... (default 3)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), help="training device (overrides the config's)")


def _args_dashboard(p: argparse.ArgumentParser) -> None:
    _storage_arg(p)
    p.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8080, metavar="P", help="TCP port (default 8080)")
    p.add_argument("--verbose", action="store_true", help="log every HTTP request")


# verb -> (function, argument builder, examples)
COMMANDS: dict[str, tuple[Callable[[argparse.Namespace], int], Callable[[argparse.ArgumentParser], None], str]] = {
    "run": (cmd_run, _args_run, """examples:
  lars-search run studies/quickstart.yaml
  lars-search run studies/vgg16-cifar10.yaml --gpus 0,1,2,3              # one worker per GPU
  lars-search run studies/vgg16-cifar10.yaml --device cuda --storage postgresql+psycopg://lars:pw@db/lars
  lars-search run studies/quickstart.yaml --n-trials 10 --timeout 3600   # resume with a bigger budget"""),
    "worker": (cmd_worker, _args_worker, """examples:
  lars-search worker studies/vgg16-cifar10.yaml --storage postgresql+psycopg://lars:PASSWORD@db-host/lars
  CUDA_VISIBLE_DEVICES=1 lars-search worker studies/vgg16-cifar10.yaml --device cuda --storage URL"""),
    "status": (cmd_status, _args_status, """examples:
  lars-search status
  lars-search status quickstart --storage sqlite:///lars-search.db"""),
    "compare": (cmd_compare, _args_compare, """examples:
  lars-search compare quickstart
  lars-search compare quickstart --plot compare.png"""),
    "export": (cmd_export, _args_export, """examples:
  lars-search export quickstart -o best.yaml
  lars-search export quickstart --arm sgd+lars -o sgd-lars.yaml"""),
    "train": (cmd_train, _args_train, """examples:
  lars-search train best.yaml --seeds 3
  lars-search train best.yaml --seeds 1 --device cuda"""),
    "dashboard": (cmd_dashboard, _args_dashboard, """examples:
  lars-search dashboard                      # then open http://127.0.0.1:8080/dashboard
  lars-search dashboard --storage sqlite:///lars-search.db --port 8081"""),
}


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    common.add_argument("-q", "--quiet", action="store_true", help="no progress bar or per-trial lines")
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Does LARS help your model? Optuna studies of LARS vs plain optimizers, one study per arm.",
        epilog=f"""{ENV_HELP}

examples:
  lars-search run studies/quickstart.yaml      # six arms on a Fashion-MNIST subset, ~2 min on 2 CPU cores
  lars-search compare quickstart
  lars-search export quickstart -o best.yaml && lars-search train best.yaml --seeds 3""",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[common],
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (fn, add_args, examples) in COMMANDS.items():
        doc = (fn.__doc__ or "").strip().splitlines()[0]
        p = sub.add_parser(
            name, help=doc, description=doc, epilog=f"{examples}\n\n{ENV_HELP}",
            formatter_class=argparse.RawDescriptionHelpFormatter, parents=[common],
        )  # fmt: skip
        add_args(p)
        p.set_defaults(func=fn)
    return parser


def _quiet_libraries(debug: bool) -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.DEBUG if debug else optuna.logging.WARNING)
    if not debug:
        warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING, format=f"{PROG}: %(message)s")


def main(argv: list[str] | None = None, *, train_fn: Callable | None = None) -> int:
    """Run the ``lars-search`` command line; returns the exit code.

    ``train_fn`` replaces ``objectives.train`` for ``run`` and ``train`` (tests inject a fast one).
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 1
    args.train_fn = train_fn
    debug = args.debug
    try:
        _quiet_libraries(debug)
        return args.func(args)
    except KeyboardInterrupt:
        if debug:
            raise
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 (one line for the user, traceback with --debug)
        if debug:
            raise
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if type(exc).__name__ == "DataNotFoundError":  # where it looked and how to get it: keep every line
            text = str(exc)
        if isinstance(exc, USER_ERRORS()):
            print(f"{PROG}: error: {text}", file=sys.stderr)
            return 2
        print(f"{PROG}: internal error: {type(exc).__name__}: {text} (rerun with --debug for the traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
