"""Serve optuna-dashboard for a lars-search storage.

Each arm of a study file is its own Optuna study named ``<name>/<arm>``, so the
dashboard's study list shows the arms side by side; every trial's user attrs (the
full ``config`` it trained, ``wall_time_s``, ``images_per_s``, ``fail_reason``,
``history``) appear on the trial's page.

The server is optuna-dashboard's own WSGI application (:func:`optuna_dashboard.wsgi`)
under the standard library's threaded WSGI server, bound to 127.0.0.1 by default so
that nothing is exposed beyond this machine. A URL is opened with
:func:`search.storage.open_storage` (no heartbeat), whose SQLite settings (WAL journal,
long busy timeout) keep a dashboard reading a running study from failing the study's
writes with "database is locked" (optuna-dashboard#545). The port is bound *before*
anything is served, so a port already in use is one clear line, not a traceback::

    lars-search dashboard --storage sqlite:///lars-search.db --port 8080
    # same as: optuna-dashboard sqlite:///lars-search.db --host 127.0.0.1 --port 8080

From Python::

    from search.dashboard import make_server
    server = make_server("sqlite:///lars-search.db", port=0)   # 0: any free port
    print(server.url); server.serve_forever()
"""

from __future__ import annotations

import errno
import os
import socket
import socketserver
import sys
from typing import IO
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

import optuna
import optuna_dashboard

from search.storage import mask_url, open_storage

__all__ = ["DashboardError", "DashboardServer", "make_server", "serve"]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080


class DashboardError(Exception):
    """A one-line, user-facing reason why the dashboard cannot start."""


class DashboardServer(socketserver.ThreadingMixIn, WSGIServer):
    """optuna-dashboard's WSGI app under a threaded ``wsgiref`` server.

    Attributes:
        url: ``http://HOST:PORT/dashboard`` with the port actually bound.
        study_names: the study names found in the storage when the server was made.
    """

    daemon_threads = True
    allow_reuse_address = False  # a port in use must be reported, not silently shared
    url: str
    study_names: list[str]


class _DashboardServerIPv6(DashboardServer):
    address_family = socket.AF_INET6


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (wsgiref's name)
        pass


def _sqlite_path(url: str) -> str | None:
    """The file of a ``sqlite:///PATH`` URL (None for other URLs and in-memory SQLite)."""
    if not url.startswith("sqlite:///"):
        return None
    path = url[len("sqlite:///"):].split("?", 1)[0]
    return path if path and path != ":memory:" else None


def _open(storage: str | optuna.storages.BaseStorage) -> optuna.storages.BaseStorage:
    """An opened storage: URLs go through :func:`search.storage.open_storage` without heartbeats.

    A SQLite URL must name an existing file: the dashboard never creates an empty database.
    """
    if isinstance(storage, optuna.storages.BaseStorage):
        return storage
    if not isinstance(storage, str) or not storage:
        raise DashboardError(f"storage must be a storage URL or an Optuna storage, got {storage!r}")
    path = _sqlite_path(storage)
    if path is not None and not os.path.isfile(path):
        raise DashboardError(
            f"storage {storage}: no such SQLite file {os.path.abspath(path)!r}; "
            "run `lars-search run STUDY.yaml` first or pass --storage"
        )
    return open_storage(storage, heartbeat=False)


def _artifacts(storage: optuna.storages.BaseStorage):
    """The artifact store the verdict's figure is uploaded to (:func:`search.report.artifact_store_for`), if any."""
    from search.report import artifact_store_for

    return artifact_store_for(storage, create=False)


def make_server(
    storage: str | optuna.storages.BaseStorage,
    *,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    quiet: bool = True,
) -> DashboardServer:
    """Bind ``host:port`` and return a ready (not yet serving) optuna-dashboard server.

    Args:
        storage: a SQLAlchemy storage URL (``sqlite:///lars-search.db``,
            ``postgresql+psycopg://...``) or an opened Optuna storage.
        host: interface to bind; default ``127.0.0.1`` (this machine only); an IPv6
            address such as ``::1`` binds IPv6.
        port: TCP port in [0, 65535]; 0 picks a free port (see ``server.url``).
        quiet: drop the per-request access log.

    Returns:
        a :class:`DashboardServer`; call ``serve_forever()`` and later ``shutdown()``
        and ``server_close()``.

    Raises:
        DashboardError: the port is invalid or already in use, the SQLite file does not
            exist, or the studies cannot be read.
        search.storage.StorageError: the storage URL cannot be opened (one line, password masked).
    """
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise DashboardError(f"port must be an integer in [0, 65535], got {port!r}")
    if not isinstance(host, str) or not host:
        raise DashboardError(f"host must be a non-empty host name or address, got {host!r}")
    handler = _QuietHandler if quiet else WSGIRequestHandler
    # Bind first: a busy port fails here, before the storage is touched.
    try:
        server_class = _DashboardServerIPv6 if ":" in host else DashboardServer
        server = server_class((host, port), handler)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise DashboardError(
                f"port {port} on {host} is already in use; pick another with --port"
            ) from exc
        raise DashboardError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    try:
        opened = _open(storage)
        try:
            names = sorted(s.study_name for s in opened.get_all_studies())
        except Exception as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            shown = mask_url(storage) if isinstance(storage, str) else type(storage).__name__
            raise DashboardError(f"cannot read studies from storage {shown}: {first}") from exc
        server.set_app(optuna_dashboard.wsgi(opened, artifact_store=_artifacts(opened)))
    except BaseException:
        server.server_close()
        raise
    bound_host, bound_port = server.server_address[:2]
    shown_host = f"[{bound_host}]" if ":" in bound_host else bound_host
    server.url = f"http://{shown_host}:{bound_port}/dashboard"
    server.study_names = names
    return server


def serve(
    storage: str | optuna.storages.BaseStorage,
    *,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    quiet: bool = True,
    out: IO[str] | None = None,
) -> None:
    """Serve optuna-dashboard until Ctrl-C (see :func:`make_server` for the arguments).

    Prints the URL and the studies (one per arm) it found to ``out`` (stderr by default).
    """
    out = sys.stderr if out is None else out
    server = make_server(storage, host=host, port=port, quiet=quiet)
    shown = mask_url(storage) if isinstance(storage, str) else type(storage).__name__
    print(f"optuna-dashboard for {shown} on {server.url}", file=out)
    if server.study_names:
        print(f"{len(server.study_names)} studies: {', '.join(server.study_names)}", file=out)
    else:
        print("no studies yet: run `lars-search run STUDY.yaml` against this storage", file=out)
    print("Ctrl-C to stop.", file=out, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
