"""A real PostgreSQL for tests and benchmarks: its own cluster in a temp dir, on a free port.

Started from Debian's `postgresql` binaries with `initdb` and `pg_ctl`, never the machine's
running server (a fresh CI machine has none we may rely on). PostgreSQL refuses to run as
root, so as root the cluster belongs to the `postgres` user and its commands run as that user.
`durable=False` turns fsync off: fine for correctness tests (a killed *client* is what they
inject, never a power cut of the database), wrong for throughput figures, so benchmarks keep
the default.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from tests.mqtt_broker import free_port, wait_port


def pg_bin() -> Path:
    """The newest installed PostgreSQL's bin directory."""
    root = Path("/usr/lib/postgresql")
    versions = sorted((p for p in root.glob("*") if (p / "bin" / "initdb").exists()),
                      key=lambda p: int(p.name) if p.name.isdigit() else 0)
    if not versions:
        raise RuntimeError("PostgreSQL server binaries not found: apt-get install postgresql")
    return versions[-1] / "bin"


class PostgresCluster:
    host = "127.0.0.1"

    def __init__(self, durable: bool = False, port: int | None = None) -> None:
        self.bin = pg_bin()
        self.port = port or free_port()
        self.durable = durable
        self.workdir = Path(tempfile.mkdtemp(prefix="pg-"))
        self.datadir = self.workdir / "data"
        self.sockdir = self.workdir / "sock"
        self.log_path = self.workdir / "postgres.log"
        self._user: str | None = None
        if os.geteuid() == 0:
            self._user = "postgres"
            entry = pwd.getpwnam("postgres")
            self.sockdir.mkdir()
            for path in (self.workdir, self.sockdir):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        else:
            self.sockdir.mkdir()

    def _run(self, *args: str | Path) -> None:
        cmd = [str(a) for a in args]
        if self._user is not None:
            cmd = ["runuser", "-u", self._user, "--", *cmd]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    @property
    def url(self) -> str:
        return f"postgresql://postgres@{self.host}:{self.port}/postgres"

    def start(self) -> PostgresCluster:
        if not self.datadir.exists():
            self._run(self.bin / "initdb", "-D", self.datadir, "-U", "postgres",
                      "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8")
        options = [f"-p {self.port}", f"-k {self.sockdir}", f"-c listen_addresses={self.host}",
                   "-c max_connections=200"]
        if not self.durable:
            options += ["-c fsync=off", "-c synchronous_commit=off",
                        "-c full_page_writes=off"]
        self._run(self.bin / "pg_ctl", "-D", self.datadir, "-l", self.log_path, "-w",
                  "-t", "60", "-o", " ".join(options), "start")
        wait_port(self.host, self.port, 30.0)
        return self

    def stop(self, mode: str = "fast") -> None:
        if (self.datadir / "postmaster.pid").exists():
            with contextlib.suppress(subprocess.CalledProcessError):
                self._run(self.bin / "pg_ctl", "-D", self.datadir, "-m", mode, "-w", "stop")

    def create_database(self, name: str) -> str:
        """A new empty database; returns its URL."""
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql://postgres@{self.host}:{self.port}/{name}"

    def cleanup(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.workdir, ignore_errors=True)


@contextlib.contextmanager
def postgres_cluster(durable: bool = False) -> Iterator[PostgresCluster]:
    cluster = PostgresCluster(durable=durable).start()
    try:
        yield cluster
    finally:
        cluster.cleanup()


def wait_for_rows(url: str, sql: str, expected: int, timeout_s: float = 30.0) -> int:
    """Poll `sql` (a single COUNT) until it returns `expected`; returns the last count."""
    import psycopg

    deadline = time.monotonic() + timeout_s
    count = -1
    while time.monotonic() < deadline:
        with psycopg.connect(url) as conn:
            count = int(conn.execute(sql).fetchone()[0])  # type: ignore[index]
        if count == expected:
            return count
        time.sleep(0.1)
    return count
