"""The ``lars-search`` command: run, status, compare, export, train, dashboard.

Every verb is one function ``cmd_<verb>(args) -> int`` (the verbs that train in
:mod:`search.cli._run_verbs`, those that read a storage in :mod:`search.cli._verbs`), registered in
:data:`COMMANDS` with its argument builder and examples; its docstring's first line is its help. A user's
mistake (bad study file, unknown study, unreachable storage, missing data) is one line
on stderr and exit code 2; ``--debug`` shows the traceback. Ctrl-C exits with 130 after
marking the running trial FAIL and enqueuing its retry; SIGTERM does the same and exits
with 143. ``-q`` and ``--debug`` work before or after the verb. Examples::

    lars-search run studies/quickstart.yaml
    lars-search compare quickstart
    lars-search export quickstart --arm sgd+lars -o best.yaml && lars-search train best.yaml --seeds 3

From Python (tests, other tools): ``search.cli.command.main(["status"]) -> int``.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import logging
import os
import platform
import sys
import warnings
from collections.abc import Callable
from typing import Any

from objectives.errors import DataNotFoundError
from search import exit_codes
from search.cli._run_verbs import args_run, args_train, args_worker, cmd_run, cmd_train, cmd_worker
from search.cli._verbs import (
    PROG,
    args_compare,
    args_dashboard,
    args_export,
    args_status,
    cmd_compare,
    cmd_dashboard,
    cmd_export,
    cmd_status,
)
from search.errors import SearchError, Terminated, first_line, is_user_error
from search.signals import interrupt_signals

__all__ = ["COMMANDS", "main", "build_parser", "versions"]

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


# --------------------------------------------------------------------------- parser


# verb -> (function, argument builder, examples)
COMMANDS: dict[str, tuple[Callable[[argparse.Namespace], int], Callable[[argparse.ArgumentParser], None], str]] = {
    "run": (
        cmd_run,
        args_run,
        """examples:
  lars-search run studies/quickstart.yaml
  lars-search run studies/vgg16-cifar10.yaml --gpus 0,1,2,3              # one worker per GPU
  lars-search run studies/vgg16-cifar10.yaml --device cuda --storage postgresql+psycopg://lars:pw@db/lars
  lars-search run studies/quickstart.yaml --n-trials 10 --timeout 3600   # resume with a bigger budget""",
    ),
    "worker": (
        cmd_worker,
        args_worker,
        """examples:
  lars-search worker studies/vgg16-cifar10.yaml --storage postgresql+psycopg://lars:PASSWORD@db-host/lars
  CUDA_VISIBLE_DEVICES=1 lars-search worker studies/vgg16-cifar10.yaml --device cuda --storage URL""",
    ),
    "status": (
        cmd_status,
        args_status,
        """examples:
  lars-search status
  lars-search status quickstart --storage sqlite:///lars-search.db""",
    ),
    "compare": (
        cmd_compare,
        args_compare,
        """examples:
  lars-search compare quickstart
  lars-search compare quickstart --plot compare.png""",
    ),
    "export": (
        cmd_export,
        args_export,
        """examples:
  lars-search export quickstart -o best.yaml
  lars-search export quickstart --arm sgd+lars -o sgd-lars.yaml""",
    ),
    "train": (
        cmd_train,
        args_train,
        """examples:
  lars-search train best.yaml --seeds 3
  lars-search train best.yaml --seeds 1 --device cuda""",
    ),
    "dashboard": (
        cmd_dashboard,
        args_dashboard,
        """examples:
  lars-search dashboard                      # then open http://127.0.0.1:8080/dashboard
  lars-search dashboard --storage sqlite:///lars-search.db --port 8081
  lars-search dashboard --host 0.0.0.0       # reachable from other machines, read-only""",
    ),
}


# What a result depends on, in the order --version prints them (read from the installed metadata: no import of torch).
VERSIONED = ("lars-search", "torch", "torchvision", "optuna", "optuna-dashboard", "scipy", "sqlalchemy")


def versions() -> str:
    """``lars-search 0.1.0, torch 2.14.1, ..., Python 3.11.7``: the installed distributions a figure depends on."""

    def version(distribution: str) -> str:
        try:
            return importlib.metadata.version(distribution)
        except importlib.metadata.PackageNotFoundError:
            return "not installed"

    return ", ".join(f"{d} {version(d)}" for d in VERSIONED) + f", Python {platform.python_version()}"


class _PrintVersions(argparse.Action):
    """``--version``: like argparse's own, but reads the versions only when asked."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *args: Any) -> None:
        print(versions())
        parser.exit()


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
  lars-search run studies/quickstart.yaml      # six arms on a Fashion-MNIST subset (README: wall time)
  lars-search compare quickstart
  lars-search export quickstart -o best.yaml && lars-search train best.yaml --seeds 3""",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    common_flags(parser, False)
    parser.add_argument("--version", action=_PrintVersions, help="show the versions in use and exit")
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


def _error_line(exc: BaseException) -> str:
    if isinstance(exc, DataNotFoundError):  # where it looked and how to get it: keep every line
        return str(exc)
    return first_line(exc) or type(exc).__name__


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so that the interpreter's last flush finds no broken pipe either."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout is not a file descriptor (tests capture it)
        pass


def main(argv: list[str] | None = None, *, train_fn: Callable | None = None) -> int:
    """Run the ``lars-search`` command line; returns the exit code.

    ``train_fn`` replaces ``objectives.train`` for ``run`` and ``train`` (tests inject a fast one).
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return exit_codes.FAILED
    args.train_fn = train_fn
    debug = args.debug
    with interrupt_signals():
        try:
            _quiet_libraries(debug)
            status = args.func(args)
            sys.stdout.flush()  # a reader gone while the output sat in the buffer: caught below, not at exit
            return status
        except KeyboardInterrupt as exc:
            if debug:
                raise
            print(f"{PROG}: {'terminated' if isinstance(exc, Terminated) else 'interrupted'}", file=sys.stderr)
            return exit_codes.for_interrupt(exc)
        except BrokenPipeError:  # the reader went away (`compare ... | head`): nothing left to say
            _silence_stdout()
            return exit_codes.BROKEN_PIPE
        except Exception as exc:  # noqa: BLE001 (one line for the user, traceback with --debug)
            if debug:
                raise
            if isinstance(exc, SearchError) or is_user_error(exc):  # is_user_error: objectives' errors
                print(f"{PROG}: error: {_error_line(exc)}", file=sys.stderr)
                return exit_codes.USER_ERROR
            print(f"{PROG}: internal error: {type(exc).__name__}: {_error_line(exc)} (rerun with --debug for the "
                  "traceback)", file=sys.stderr)  # fmt: skip
            return exit_codes.FAILED
