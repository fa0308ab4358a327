"""The ``lars-search`` command: run, status, compare, export, train, dashboard.

Every verb is one function ``cmd_<verb>(args) -> int`` registered in :data:`COMMANDS`
with its arguments and examples; its docstring's first line is its help. A user's
mistake (bad study file, unknown study, unreachable storage, missing data) is one line
on stderr and exit code 2; ``--debug`` shows the traceback. Ctrl-C exits with 130 after
marking the running trial FAIL and enqueuing its retry; SIGTERM does the same and exits
with 143. ``-q`` and ``--debug`` work before or after the verb. Examples::

    lars-search run studies/quickstart.yaml
    lars-search compare quickstart
    lars-search export quickstart --arm sgd+lars -o best.yaml && lars-search train best.yaml --seeds 3

From Python (tests, other tools): ``search.cli.main(["status"]) -> int``.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import statistics
import sys
import threading
import warnings
from collections.abc import Callable, Iterator
from typing import Any

from search.dashboard import DashboardError
from search.plot import PlotError
from search.report import StudyNotFoundError, plural
from search.spec import SpecError
from search.storage import StorageError
from search.study import SpecConflictError
from search.trial import Terminated, is_user_error

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


#: Errors reported as one line with exit code 2; objectives' ConfigError and DataNotFoundError
#: too (:func:`search.trial.is_user_error`, by class, without importing torch here).
USER_ERRORS: tuple[type[BaseException], ...] = (
    UserError, SpecError, SpecConflictError, StorageError, StudyNotFoundError, DashboardError, PlotError,
)  # fmt: skip

EXIT_INTERRUPTED = 130  # 128 + SIGINT
EXIT_TERMINATED = 143  # 128 + SIGTERM


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
    parser.add_argument(
        "--device", choices=("auto", "cpu", "cuda"), help="training device (overrides objective.device)"
    )


def prepare_run(args: argparse.Namespace) -> tuple[Any, str]:
    """Load and validate the study file, check the overrides; returns ``(spec, storage_url)``.

    Nothing touches the database here.
    """
    from search.spec import load_spec
    from search.storage import resolve_storage_url, sqlite_file

    spec = load_spec(args.study)
    if args.n_trials is not None and args.n_trials < 1:
        raise UserError(f"--n-trials must be a positive integer (trials per arm), got {args.n_trials}")
    if args.timeout is not None and not args.timeout >= 0:
        raise UserError(f"--timeout must be >= 0 seconds, got {args.timeout}")
    url = resolve_storage_url(args.storage, spec)
    sqlite_file(url)  # a malformed or in-memory URL fails now, before any data is read
    return spec, url


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


def _interrupted_message(url: str, exc: KeyboardInterrupt, who: str = "") -> str:
    from search.storage import mask_url

    what = "terminated (SIGTERM)" if isinstance(exc, Terminated) else "interrupted"
    return (f"{PROG}: {who}{what}; the running trial was marked FAIL, finished trials are kept in {mask_url(url)}; "
            "run the same command again to resume")  # fmt: skip


def _exit_code(exc: KeyboardInterrupt) -> int:
    return EXIT_TERMINATED if isinstance(exc, Terminated) else EXIT_INTERRUPTED


def _budget_met(spec: Any, storage: Any, budget: int | None) -> bool:
    """Whether every arm's study exists and has its budget with nothing in flight (reads only)."""
    import optuna

    from search.budget import is_complete

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
    from search.storage import mask_url

    budget = args.n_trials or spec.budget.trials
    timeout = args.timeout or spec.budget.timeout
    return (
        f"study {spec.name}: {plural(len(spec.arms), 'arm')} ({', '.join(a.name for a in spec.arms)}), "
        + (plural(budget, "trial") if budget else "unlimited trials") + " per arm"
        + (f", timeout {timeout:.0f} s" if timeout else "")
        + f"; sampler {spec.sampler.type} (seed {spec.sampler.seed}), pruner {spec.pruner.type}; storage {mask_url(url)}"
    )  # fmt: skip


def run_in_process(args: argparse.Namespace, spec: Any, url: str, *, train_fn: Callable | None = None) -> int:
    """Run the study loop in this process (one worker), then print the compare table."""
    from search.report import format_compare
    from search.storage import open_storage
    from search.study import run_studies

    storage = open_storage(url)
    budget = args.n_trials or spec.budget.trials
    _say(args, _run_header(args, spec, url))
    met = _budget_met(spec, storage, budget)
    try:
        summary = run_studies(
            spec, storage, n_trials=args.n_trials, timeout=args.timeout, device=args.device, train_fn=train_fn,
            progress=not args.quiet and not met, log=None if args.quiet else print, storage_url=url,
        )  # fmt: skip
    except KeyboardInterrupt as exc:
        print(_interrupted_message(url, exc), file=sys.stderr)
        return _exit_code(exc)
    if met and not sum(getattr(p, "ran_here", 0) for p in (summary or {}).values()):
        _say(args, f"nothing to do: every arm of {spec.name} already has its {plural(budget, 'trial')}; "
                   f"raise --n-trials to run more")  # fmt: skip
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
    from search.storage import open_reader
    from search.workers import launch_workers

    status = launch_workers(
        args.study, storage_url=url, n_workers=args.workers, gpus=gpus, n_trials=args.n_trials,
        timeout=args.timeout, device=args.device, log=lambda line: print(line, flush=True),
    )  # fmt: skip
    if status == 0:
        print()
        print(format_compare(open_reader(url), spec.name))
    return status


def cmd_worker(args: argparse.Namespace) -> int:
    """Run one worker of a study on a shared storage (start one per machine or GPU)."""
    from search.workers import load_objective, run_worker

    if args.worker_id is not None and args.worker_id < 0:
        raise UserError(f"--worker-id must be an integer >= 0, got {args.worker_id}")
    try:
        train_fn, validate = load_objective(args.objective)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    spec, url = prepare_run(args)
    try:
        run_worker(
            spec, url, worker_id=args.worker_id, n_trials=args.n_trials, timeout=args.timeout, device=args.device,
            train_fn=train_fn or args.train_fn, validate=validate,
            log=(lambda line: None) if args.quiet else (lambda line: print(line, flush=True)),
        )  # fmt: skip
    except KeyboardInterrupt as exc:
        print(_interrupted_message(url, exc, who="worker "), file=sys.stderr)
        return _exit_code(exc)
    _say(args, f"worker done: every arm of {spec.name} has its budget")
    return 0


# --------------------------------------------------------------------------- reports


def _open_reader(args: argparse.Namespace) -> tuple[Any, str]:
    """The storage of a reading verb: never created or altered (:func:`search.storage.open_reader`)."""
    from search.storage import open_reader, resolve_storage_url

    url = resolve_storage_url(args.storage)
    return open_reader(url), url


def cmd_status(args: argparse.Namespace) -> int:
    """Per arm: trials complete / pruned / failed / running and the best validation accuracy."""
    from search.report import format_status

    storage, _ = _open_reader(args)
    print(format_status(storage, args.name))
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    """The arms table (best validation, gain over the recipe, test accuracy with its interval, compute) and the verdict."""
    from search.report import format_compare

    if args.plot:
        _check_plot_path(args.plot)
    storage, _ = _open_reader(args)
    print(format_compare(storage, args.name))
    if args.plot:
        from search.plot import plot_compare  # raises PlotError naming the extra if matplotlib is missing

        plot_compare(storage, args.name, args.plot)
        _say(args, f"wrote {args.plot}")
    return 0


PLOT_FORMATS = ("png", "pdf", "svg", "jpg", "jpeg")


def _check_plot_path(path: str) -> None:
    """``--plot``: a picture format matplotlib writes, in a directory that exists (checked before any output)."""
    suffix = os.path.splitext(path)[1].lower().lstrip(".")
    if suffix not in PLOT_FORMATS:
        raise UserError(f"--plot {path}: the file name must end in one of {', '.join('.' + f for f in PLOT_FORMATS)}")
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise UserError(f"--plot {path}: directory {directory!r} does not exist")
    if not os.access(directory, os.W_OK):
        raise UserError(f"--plot {path}: directory {directory!r} is not writable")


def cmd_export(args: argparse.Namespace) -> int:
    """Write the best trial's config as YAML that `lars-search train` reproduces, with a lars code snippet."""
    from search.export import export_text
    from search.storage import mask_url

    storage, url = _open_reader(args)
    text = export_text(storage, args.name, args.arm, storage_label=mask_url(url), output=args.output)
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

    if len(tests) == 1:  # no spread to show from one run
        print(f"test accuracy: {100 * tests[0]:.2f}% over 1 seed (validation {100 * vals[0]:.2f}%)")
        return 0

    def ms(xs: list[float]) -> str:
        return f"{100 * statistics.fmean(xs):.2f} +- {100 * statistics.stdev(xs):.2f}%"

    print(f"test accuracy: {ms(tests)} over {len(tests)} seeds (validation {ms(vals)}; std is the sample std)")
    return 0


# --------------------------------------------------------------------------- dashboard


def cmd_dashboard(args: argparse.Namespace) -> int:
    """Serve optuna-dashboard for the storage on 127.0.0.1 (each arm is its own study)."""
    from search.dashboard import serve
    from search.storage import resolve_storage_url

    url = resolve_storage_url(args.storage)
    serve(url, host=args.host, port=args.port, quiet=not args.verbose, allow_writes=args.allow_writes)
    return 0


# --------------------------------------------------------------------------- parser


def _args_run(p: argparse.ArgumentParser) -> None:
    add_run_arguments(p)
    p.add_argument(
        "--workers", type=int, metavar="N", help="start N worker processes on this machine sharing the storage"
    )
    p.add_argument(
        "--gpus", metavar="0,1,...", help="one worker per listed GPU, each seeing only its GPU (CUDA_VISIBLE_DEVICES)"
    )


def _args_worker(p: argparse.ArgumentParser) -> None:
    add_run_arguments(p)
    p.add_argument(
        "--worker-id", type=int, metavar="I", help="varies the sampler seed per worker (default: from host and pid)"
    )
    p.add_argument("--objective", help=argparse.SUPPRESS)  # module:function replacing objectives.train (tests)


def _args_status(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", nargs="?", metavar="NAME", help="study name (the study file's `name`); all when left out")
    _storage_arg(p)


def _args_compare(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", metavar="NAME", help="study name (the study file's `name`)")
    _storage_arg(p)
    p.add_argument(
        "--plot", metavar="PNG", help="also draw best-so-far accuracy vs trial-epochs per arm (needs matplotlib)"
    )


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
    p.add_argument("--allow-writes", action="store_true",
                   help="let the dashboard delete studies and write notes although --host is not a loopback address")  # fmt: skip


# verb -> (function, argument builder, examples)
COMMANDS: dict[str, tuple[Callable[[argparse.Namespace], int], Callable[[argparse.ArgumentParser], None], str]] = {
    "run": (
        cmd_run,
        _args_run,
        """examples:
  lars-search run studies/quickstart.yaml
  lars-search run studies/vgg16-cifar10.yaml --gpus 0,1,2,3              # one worker per GPU
  lars-search run studies/vgg16-cifar10.yaml --device cuda --storage postgresql+psycopg://lars:pw@db/lars
  lars-search run studies/quickstart.yaml --n-trials 10 --timeout 3600   # resume with a bigger budget""",
    ),
    "worker": (
        cmd_worker,
        _args_worker,
        """examples:
  lars-search worker studies/vgg16-cifar10.yaml --storage postgresql+psycopg://lars:PASSWORD@db-host/lars
  CUDA_VISIBLE_DEVICES=1 lars-search worker studies/vgg16-cifar10.yaml --device cuda --storage URL""",
    ),
    "status": (
        cmd_status,
        _args_status,
        """examples:
  lars-search status
  lars-search status quickstart --storage sqlite:///lars-search.db""",
    ),
    "compare": (
        cmd_compare,
        _args_compare,
        """examples:
  lars-search compare quickstart
  lars-search compare quickstart --plot compare.png""",
    ),
    "export": (
        cmd_export,
        _args_export,
        """examples:
  lars-search export quickstart -o best.yaml
  lars-search export quickstart --arm sgd+lars -o sgd-lars.yaml""",
    ),
    "train": (
        cmd_train,
        _args_train,
        """examples:
  lars-search train best.yaml --seeds 3
  lars-search train best.yaml --seeds 1 --device cuda""",
    ),
    "dashboard": (
        cmd_dashboard,
        _args_dashboard,
        """examples:
  lars-search dashboard                      # then open http://127.0.0.1:8080/dashboard
  lars-search dashboard --storage sqlite:///lars-search.db --port 8081
  lars-search dashboard --host 0.0.0.0       # reachable from other machines, read-only""",
    ),
}


def build_parser() -> argparse.ArgumentParser:
    def common_flags(parser: argparse.ArgumentParser, default: Any) -> None:
        parser.add_argument("--debug", action="store_true", default=default, help="show tracebacks and debug logs")
        parser.add_argument(
            "-q", "--quiet", action="store_true", default=default, help="no progress bar or per-trial lines"
        )

    # The verbs take the same flags, with no default of their own: a flag given before the
    # verb (`lars-search -q run ...`) is not overwritten by the verb's default.
    verb_common = argparse.ArgumentParser(add_help=False)
    common_flags(verb_common, argparse.SUPPRESS)
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Does LARS help your model? Optuna studies of LARS vs plain optimizers, one study per arm.",
        epilog=f"""{ENV_HELP}

examples:
  lars-search run studies/quickstart.yaml      # six arms on a Fashion-MNIST subset, ~2 min on 2 CPU cores
  lars-search compare quickstart
  lars-search export quickstart -o best.yaml && lars-search train best.yaml --seeds 3""",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    common_flags(parser, False)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (fn, add_args, examples) in COMMANDS.items():
        doc = (fn.__doc__ or "").strip().splitlines()[0]
        p = sub.add_parser(
            name, help=doc, description=doc, epilog=f"{examples}\n\n{ENV_HELP}",
            formatter_class=argparse.RawDescriptionHelpFormatter, parents=[verb_common],
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


def _raise_terminated(signum: int, frame: Any) -> None:
    raise Terminated()


@contextlib.contextmanager
def _signal_handlers() -> Iterator[None]:
    """Ctrl-C raises KeyboardInterrupt whatever this process inherited (a shell's background job
    starts with SIGINT ignored), and SIGTERM is handled as Ctrl-C (:class:`search.trial.Terminated`)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signal.SIGINT: signal.signal(signal.SIGINT, signal.default_int_handler),
                signal.SIGTERM: signal.signal(signal.SIGTERM, _raise_terminated)}  # fmt: skip
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _error_line(exc: BaseException) -> str:
    data_not_found = getattr(sys.modules.get("objectives.data"), "DataNotFoundError", ())  # loaded if raised
    if isinstance(exc, data_not_found):  # where it looked and how to get it: keep every line
        return str(exc)
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


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
    with _signal_handlers():
        try:
            _quiet_libraries(debug)
            return args.func(args)
        except KeyboardInterrupt as exc:
            if debug:
                raise
            print(f"{PROG}: {'terminated' if isinstance(exc, Terminated) else 'interrupted'}", file=sys.stderr)
            return _exit_code(exc)
        except Exception as exc:  # noqa: BLE001 (one line for the user, traceback with --debug)
            if debug:
                raise
            if isinstance(exc, USER_ERRORS) or is_user_error(exc):
                print(f"{PROG}: error: {_error_line(exc)}", file=sys.stderr)
                return 2
            print(f"{PROG}: internal error: {type(exc).__name__}: {_error_line(exc)} (rerun with --debug for the "
                  "traceback)", file=sys.stderr)  # fmt: skip
            return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
