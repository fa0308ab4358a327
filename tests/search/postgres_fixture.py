"""A throwaway PostgreSQL server for tests and benchmarks (Debian's ``postgresql``).

``PostgresServer`` runs ``initdb`` on a temporary data directory, starts ``postgres``
bound to 127.0.0.1 on a free port (unix socket inside the temp directory), creates a
database and a login role with a password, and removes everything on ``stop()``. As
root the server binaries run as the ``postgres`` user (``initdb`` refuses root).

    with PostgresServer() as pg:
        storage = open_storage(pg.url)     # postgresql+psycopg://lars:...@127.0.0.1:PORT/lars
        pg.restart()                        # fast shutdown + start, same port and data

``postgres_binaries()`` returns the bin directory or None (tests skip then).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile

__all__ = ["PostgresServer", "postgres_binaries"]

USER = "lars"
PASSWORD = "lars-test-pw"
DATABASE = "lars"


def postgres_binaries() -> str | None:
    """The newest ``/usr/lib/postgresql/*/bin`` holding initdb and pg_ctl, or None."""
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"),
        key=lambda p: int(p.split("/")[-2]) if p.split("/")[-2].isdigit() else 0,
    )
    for bindir in reversed(candidates):
        if os.path.exists(os.path.join(bindir, "initdb")) and os.path.exists(os.path.join(bindir, "pg_ctl")):
            return bindir
    found = shutil.which("pg_ctl")
    return os.path.dirname(found) if found and shutil.which("initdb") else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    """Start/stop/restart one private PostgreSQL cluster (see module docstring)."""

    def __init__(self) -> None:
        bindir = postgres_binaries()
        if bindir is None:
            raise RuntimeError("PostgreSQL server binaries (initdb, pg_ctl) not found")
        self.bindir = bindir
        self.port = _free_port()
        self.root = tempfile.mkdtemp(prefix="lars-search-pg-")
        self.data = os.path.join(self.root, "data")
        self.log = os.path.join(self.root, "server.log")
        self._run_as: list[str] = []
        if os.geteuid() == 0:
            account = pwd.getpwnam("postgres")
            os.chown(self.root, account.pw_uid, account.pw_gid)
            # util-linux puts runuser in /usr/sbin, which a non-login PATH may lack
            runuser = shutil.which("runuser") or shutil.which("runuser", path="/usr/sbin:/sbin") or "runuser"
            self._run_as = [runuser, "-u", "postgres", "--"]
        os.chmod(self.root, 0o755)

    # -- helpers
    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run([*self._run_as, *args], check=check, capture_output=True, text=True, timeout=120)

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://{USER}:{PASSWORD}@127.0.0.1:{self.port}/{DATABASE}"

    def url_with(self, *, user: str = USER, password: str = PASSWORD, database: str = DATABASE) -> str:
        return f"postgresql+psycopg://{user}:{password}@127.0.0.1:{self.port}/{database}"

    # -- lifecycle
    def start(self) -> PostgresServer:
        pwfile = os.path.join(self.root, "pw")
        with open(pwfile, "w") as f:
            f.write("postgres-superuser-pw\n")
        if self._run_as:
            shutil.chown(pwfile, "postgres")
        self._run(
            os.path.join(self.bindir, "initdb"),
            "-D",
            self.data,
            "-U",
            "postgres",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            f"--pwfile={pwfile}",
            "-E",
            "UTF8",
            "--no-sync",
        )
        self._start_server()
        psql = os.path.join(self.bindir, "psql")
        for sql in (
            f"CREATE ROLE {USER} LOGIN PASSWORD '{PASSWORD}'",
            f"CREATE DATABASE {DATABASE} OWNER {USER}",
        ):
            self._run(
                psql,
                "-h",
                self.root,
                "-p",
                str(self.port),
                "-U",
                "postgres",
                "-d",
                "postgres",
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
                sql,
            )
        return self

    def _start_server(self) -> None:
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
            "-c max_connections=200"
        )
        self._run(
            os.path.join(self.bindir, "pg_ctl"),
            "-D",
            self.data,
            "-l",
            self.log,
            "-o",
            options,
            "-w",
            "-t",
            "60",
            "start",
        )

    def stop_server(self) -> None:
        """Fast shutdown (clients are disconnected), data kept."""
        self._run(
            os.path.join(self.bindir, "pg_ctl"), "-D", self.data, "-m", "fast", "-w", "-t", "60", "stop", check=False
        )

    def restart(self, down_s: float = 0.0) -> None:
        """Stop the server, stay down ``down_s`` seconds, start it on the same port."""
        import time

        self.stop_server()
        time.sleep(down_s)
        self._start_server()

    def stop(self) -> None:
        """Stop the server and delete its data directory."""
        if os.path.isdir(self.data):
            self.stop_server()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
