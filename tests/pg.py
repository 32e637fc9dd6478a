"""A throwaway PostgreSQL server for tests: Debian's `postgresql` binaries (make pg-env installs
them), a data directory in a temp dir, a free port on loopback. initdb refuses to run as root (CI
runs as root): the server then runs as Debian's `postgres` user, through setpriv (which execs it,
so signals reach the server itself)."""

from __future__ import annotations

import contextlib
import glob
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg

USER = "roadwork"
# Loopback only; durability off (a test database is thrown away); room for three routers' pools.
SETTINGS = ["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off"]
SETTINGS += ["-c", "full_page_writes=off", "-c", "max_connections=200"]


def _bindir() -> Path:
    """$ROADWORK_PG_BINDIR (a staged server, bench/gpu/replicas.sh), else the newest installed
    server's bin directory (/usr/lib/postgresql/<major>/bin)."""
    if os.environ.get("ROADWORK_PG_BINDIR"):
        return Path(os.environ["ROADWORK_PG_BINDIR"])
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"), key=lambda p: int(p.split("/")[4]))
    if not found:
        raise RuntimeError("no PostgreSQL server under /usr/lib/postgresql: run `make pg-env` (Debian's postgresql)")
    return Path(found[-1]).parent


def _as_server_user(cmd: list[str]) -> list[str]:
    """`cmd` run as the postgres user when we are root (initdb and postgres refuse root)."""
    as_postgres = ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--"]
    return [*as_postgres, *cmd] if os.geteuid() == 0 else cmd


class PostgresServer:
    """One server process; `database()` makes a fresh, empty database and returns its URL."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.dir = Path(tempfile.mkdtemp(prefix="roadwork-pg-"))
        self.data = self.dir / "data"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        bindir = _bindir()
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        subprocess.run(
            _as_server_user([str(bindir / "initdb"), "-D", str(self.data), "-U", USER, "-A", "trust", "-E", "UTF8"]),
            check=True,
            capture_output=True,
        )
        self.launch()

    def launch(self) -> None:
        """Run the server on the data directory (again, after `stop`)."""
        bindir = _bindir()
        server = [str(bindir / "postgres"), "-D", str(self.data), "-p", str(self.port), "-k", str(self.dir)]
        self.proc = subprocess.Popen(
            _as_server_user([*server, *SETTINGS]),
            stdout=subprocess.DEVNULL,
            stderr=open(self.dir / "server.log", "ab"),
        )
        self.wait_ready()

    def wait_ready(self, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                with psycopg.connect(self.admin_url, connect_timeout=2):
                    return
            except psycopg.OperationalError:
                if (self.proc is not None and self.proc.poll() is not None) or time.monotonic() > deadline:
                    raise RuntimeError(f"PostgreSQL did not start: {(self.dir / 'server.log').read_text()}") from None
                time.sleep(0.1)

    @property
    def admin_url(self) -> str:
        return f"postgresql://{USER}@127.0.0.1:{self.port}/postgres"

    def database(self) -> str:
        """A new empty database's URL."""
        name = "t_" + secrets.token_hex(6)
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGINT)  # fast shutdown: sessions are ended
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None

    def remove(self) -> None:
        self.stop()
        with contextlib.suppress(OSError):
            shutil.rmtree(self.dir)
