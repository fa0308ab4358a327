"""The verbs that read a storage (status, compare, export, dashboard), and what every verb shares.

Each verb is ``cmd_<verb>(args) -> int`` with an argument builder ``args_<verb>(parser)``;
:mod:`search.cli.command` registers them. A reading verb never creates or alters a storage
(:func:`search.storage.database.open_reader`). The verbs that train are in :mod:`search.cli._run_verbs`.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from search.errors import UserError

__all__ = [
    "PROG",
    "say",
    "storage_argument",
    "cmd_status",
    "cmd_compare",
    "cmd_export",
    "cmd_dashboard",
    "args_status",
    "args_compare",
    "args_export",
    "args_dashboard",
]

PROG = "lars-search"


def say(args: argparse.Namespace, text: str) -> None:
    if not getattr(args, "quiet", False):
        print(text, flush=True)


def storage_argument(parser: argparse.ArgumentParser, what: str = "") -> None:
    parser.add_argument(
        "--storage", metavar="URL",
        help=f"SQLAlchemy storage URL{what} (e.g. sqlite:///lars-search.db or "
        "postgresql+psycopg://user:pw@host/db); default: $LARS_SEARCH_STORAGE or sqlite:///lars-search.db",
    )  # fmt: skip


def _open_reader(args: argparse.Namespace) -> tuple[Any, str]:
    """The storage of a reading verb: never created or altered (:func:`search.storage.database.open_reader`)."""
    from search.storage.database import open_reader
    from search.storage.url import resolve_storage_url

    url = resolve_storage_url(args.storage)
    return open_reader(url), url


def cmd_status(args: argparse.Namespace) -> int:
    """Per arm and replicate: trials complete / pruned / failed / running, best validation accuracy, test seeds done."""
    from search.results.report import format_status

    storage, _ = _open_reader(args)
    print(format_status(storage, args.name))
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    """The arms table (best validation, gain over the recipe, test accuracy with its interval, compute) and the verdict."""
    from search.results.report import format_compare

    if args.plot:
        _check_plot_path(args.plot)
    storage, _ = _open_reader(args)
    from search.results.axis_report import find_axis, format_axis, load_axis

    axis = find_axis(storage, args.name)
    result = load_axis(storage, args.name, axis) if axis else None
    print(format_axis(result) if result else format_compare(storage, args.name))
    if args.plot:
        from search.results.plot import plot_axis, plot_compare

        if result:
            plot_axis(result, args.plot)
        else:
            plot_compare(storage, args.name, args.plot)
        say(args, f"wrote {args.plot}")
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
    from search.results.export import export_document
    from search.storage.url import mask_url

    storage, url = _open_reader(args)
    text, command = export_document(storage, args.name, args.arm, storage_label=mask_url(url), output=args.output)
    if args.output in (None, "-"):
        sys.stdout.write(text)
    else:
        try:
            with open(args.output, "w", encoding="utf-8") as f:
                f.write(text)
        except OSError as exc:
            raise UserError(f"-o {args.output}: cannot write ({exc.strerror or exc})") from None
        say(args, f"wrote {args.output}; reproduce with: {command}")
    return 0


def cmd_dashboard(args: argparse.Namespace) -> int:
    """Serve optuna-dashboard for the storage on 127.0.0.1 (each arm is its own study)."""
    from search.results.dashboard import serve
    from search.storage.url import resolve_storage_url

    url = resolve_storage_url(args.storage)
    serve(url, host=args.host, port=args.port, quiet=not args.verbose, allow_writes=args.allow_writes)
    return 0


def args_status(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", nargs="?", metavar="NAME", help="study name (the study file's `name`); all when left out")
    storage_argument(p)


def args_compare(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", metavar="NAME", help="study name (the study file's `name`)")
    storage_argument(p)
    p.add_argument(
        "--plot", metavar="PNG", help="also draw best-so-far accuracy vs trial-epochs per arm (needs matplotlib)"
    )


def args_export(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", metavar="NAME", help="study name (the study file's `name`)")
    p.add_argument("--arm", metavar="ARM", help="export this arm's best trial (default: the best arm's)")
    p.add_argument("-o", "--output", metavar="best.yaml", help="output file (default: stdout)")
    storage_argument(p)


def args_dashboard(p: argparse.ArgumentParser) -> None:
    storage_argument(p)
    p.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8080, metavar="P", help="TCP port (default 8080)")
    p.add_argument("--verbose", action="store_true", help="log every HTTP request")
    p.add_argument("--allow-writes", action="store_true",
                   help="let the dashboard delete studies and write notes although --host is not a loopback address")  # fmt: skip
