"""Serve optuna-dashboard for a lars-search storage.

Each arm of a study file is its own Optuna study named ``<name>/<arm>``, so the
dashboard's study list shows the arms side by side; every trial's user attrs (the
full ``config`` it trained, ``wall_time_s``, ``images_per_s``, ``fail_reason``,
``history``) appear on the trial's page.

The server is optuna-dashboard's own WSGI application (:func:`optuna_dashboard.wsgi`)
under the standard library's threaded WSGI server, bound to 127.0.0.1 by default so
that nothing is exposed beyond this machine. A URL is opened with
:func:`search.storage.database.open_reader`: the dashboard never creates or alters a database
(the file must exist and hold studies), and reads through a long busy timeout; the
studies' WAL journal (set by ``lars-search run``) keeps a dashboard reading a running
study from failing the study's writes with "database is locked" (optuna-dashboard#545).
The port is bound *before* anything is served, so a port already in use is one clear
line, not a traceback::

Read-only beyond this machine: the dashboard lets whoever reaches it delete studies
and write notes. On a host that is not a loopback address (``--host 0.0.0.0``) it is
read-only unless ``allow_writes`` (``--allow-writes``): requests other than GET and HEAD
get ``403`` and the SQLite file is opened read-only; :func:`serve` says so in one line.

    lars-search dashboard --storage sqlite:///lars-search.db --port 8080
    # same as: optuna-dashboard sqlite:///lars-search.db --host 127.0.0.1 --port 8080

From Python::

    from search.results.dashboard import make_server
    server = make_server("sqlite:///lars-search.db", port=0)   # 0: any free port
    print(server.url); server.serve_forever()
"""

from __future__ import annotations

import errno
import ipaddress
import json
import socket
import socketserver
import sys
from collections import Counter
from collections.abc import Callable, Iterable
from typing import IO, Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

import optuna
import optuna_dashboard

from search.errors import DashboardError, first_line
from search.results.publish import artifact_store_for
from search.storage.database import open_reader
from search.storage.url import mask_url

__all__ = ["DashboardServer", "is_loopback", "make_server", "read_only", "serve", "studies_line"]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
READ_METHODS = ("GET", "HEAD")


class DashboardServer(socketserver.ThreadingMixIn, WSGIServer):
    """optuna-dashboard's WSGI app under a threaded ``wsgiref`` server.

    Attributes:
        url: ``http://HOST:PORT/dashboard`` with the port actually bound.
        study_names: the study names found in the storage when the server was made.
        read_only: whether write requests are refused (see the module docstring).
    """

    daemon_threads = True
    allow_reuse_address = False  # a port in use must be reported, not silently shared
    url: str
    study_names: list[str]
    read_only: bool


class _DashboardServerIPv6(DashboardServer):
    address_family = socket.AF_INET6


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (wsgiref's name)
        pass


def is_loopback(host: str) -> bool:
    """``localhost``, ``127.x.y.z`` and ``::1`` reach only this machine; anything else may not."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve to any interface
        return False


def read_only(app: Callable, host: str) -> Callable:
    """``app`` with every request but GET and HEAD refused (403, a JSON reason naming ``--allow-writes``)."""
    reason = json.dumps({"reason": f"this dashboard is read-only: it listens on {host}, beyond this machine; "
                                   "restart it with --allow-writes to allow changes"}).encode()  # fmt: skip

    def guarded(environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD", "GET").upper() in READ_METHODS:
            return app(environ, start_response)
        start_response("403 Forbidden", [("Content-Type", "application/json"), ("Content-Length", str(len(reason)))])
        return [reason]

    return guarded


def _open(storage: str | optuna.storages.BaseStorage, writable: bool) -> optuna.storages.BaseStorage:
    """An opened storage: URLs through :func:`search.storage.database.open_reader` (never created or altered)."""
    if isinstance(storage, optuna.storages.BaseStorage):
        return storage
    if not isinstance(storage, str) or not storage:
        raise DashboardError(f"storage must be a storage URL or an Optuna storage, got {storage!r}")
    return open_reader(storage, writable=writable)


def _bind(host: str, port: int, quiet: bool) -> DashboardServer:
    """Bind first: a busy port fails here, before the storage is touched."""
    handler = _QuietHandler if quiet else WSGIRequestHandler
    try:
        server_class = _DashboardServerIPv6 if ":" in host else DashboardServer
        return server_class((host, port), handler)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise DashboardError(f"port {port} on {host} is already in use; pick another with --port") from exc
        raise DashboardError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc


def _study_names(opened: optuna.storages.BaseStorage, storage: Any) -> list[str]:
    try:
        return sorted(s.study_name for s in opened.get_all_studies())
    except Exception as exc:
        first = first_line(exc) or type(exc).__name__
        shown = mask_url(storage) if isinstance(storage, str) else type(storage).__name__
        raise DashboardError(f"cannot read studies from storage {shown}: {first}") from exc


def _artifacts(storage: optuna.storages.BaseStorage):
    """The artifact store the verdict's figure is uploaded to (:func:`search.results.publish.artifact_store_for`), if any."""
    return artifact_store_for(storage, create=False)


def make_server(
    storage: str | optuna.storages.BaseStorage,
    *,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    quiet: bool = True,
    allow_writes: bool = False,
) -> DashboardServer:
    """Bind ``host:port`` and return a ready (not yet serving) optuna-dashboard server.

    Args:
        storage: a SQLAlchemy storage URL (``sqlite:///lars-search.db``,
            ``postgresql+psycopg://...``) of an existing storage, or an opened Optuna storage.
        host: interface to bind; default ``127.0.0.1`` (this machine only); an IPv6
            address such as ``::1`` binds IPv6. Not a loopback address: read-only unless
            ``allow_writes``.
        port: TCP port in [0, 65535]; 0 picks a free port (see ``server.url``).
        quiet: drop the per-request access log.
        allow_writes: let a dashboard reachable from other machines delete and write.

    Returns:
        a :class:`DashboardServer`; call ``serve_forever()`` and later ``shutdown()``
        and ``server_close()``.

    Raises:
        DashboardError: the port is invalid or already in use, or the studies cannot be read.
        search.errors.StorageError: the storage URL cannot be opened, or names no existing
            storage (one line, password masked).
    """
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise DashboardError(f"port must be an integer in [0, 65535], got {port!r}")
    if not isinstance(host, str) or not host:
        raise DashboardError(f"host must be a non-empty host name or address, got {host!r}")
    locked = not allow_writes and not is_loopback(host)
    server = _bind(host, port, quiet)
    try:
        opened = _open(storage, writable=not locked)
        names = _study_names(opened, storage)
        app = optuna_dashboard.wsgi(opened, artifact_store=_artifacts(opened))
        server.set_app(read_only(app, host) if locked else app)
    except BaseException:
        server.server_close()
        raise
    bound_host, bound_port = server.server_address[:2]
    shown_host = f"[{bound_host}]" if ":" in bound_host else bound_host
    server.url = f"http://{shown_host}:{bound_port}/dashboard"
    server.study_names = names
    server.read_only = locked
    return server


def studies_line(names: list[str], most: int = 10) -> str:
    """``3 studies: a/sgd, a/sgd+lars, b/sgd``; past ``most`` names, one entry per study file (the name before
    the first ``/``) with its count, so that an axis of 80 studies is one readable line."""
    n = len(names)
    head = f"{n} {'study' if n == 1 else 'studies'}"
    if n <= most:
        return f"{head}: {', '.join(names)}"
    counts = Counter(name.split("/", 1)[0] for name in names)
    return f"{head} of {len(counts)} study file{'s' if len(counts) != 1 else ''}: " + ", ".join(
        f"{file} ({count})" for file, count in counts.items()
    )


def serve(
    storage: str | optuna.storages.BaseStorage,
    *,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    quiet: bool = True,
    allow_writes: bool = False,
    out: IO[str] | None = None,
) -> None:
    """Serve optuna-dashboard until Ctrl-C (see :func:`make_server` for the arguments).

    Prints the URL, whether it is read-only, and the studies (one per arm) it found to
    ``out`` (stderr by default); "Ctrl-C to stop." last, once it is ready to serve.
    """
    out = sys.stderr if out is None else out
    server = make_server(storage, host=host, port=port, quiet=quiet, allow_writes=allow_writes)
    shown = mask_url(storage) if isinstance(storage, str) else type(storage).__name__
    print(f"optuna-dashboard for {shown} on {server.url}", file=out)
    if server.read_only:
        print(f"read-only: {host} is reachable from other machines, so deleting studies and writing notes are "
              "refused (--allow-writes to allow them)", file=out)  # fmt: skip
    if server.study_names:
        print(studies_line(server.study_names), file=out)
    else:
        print("no studies yet: run `lars-search run STUDY.yaml` against this storage", file=out)
    print("Ctrl-C to stop.", file=out, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
