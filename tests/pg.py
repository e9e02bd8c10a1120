"""A real PostgreSQL for the tests: the one on 127.0.0.1:5432 when it answers, else a private
cluster started from the installed server binaries (as pytest-postgresql does).

Each test run gets fresh databases (``sat_test_<pid>_<n>``), dropped at the end. When no server
answers and none can be started, the tests that need one are skipped with the reason — except
under CI (``CI`` set), where that fails the run.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import time
from itertools import count
from pathlib import Path

import psycopg

from collector.localbroker import free_port

DEFAULT_URL = os.environ.get("SAT_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


class PostgresUnavailable(RuntimeError):
    pass


def _answers(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
        return True
    except psycopg.Error:
        return False


def _server_bin(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=lambda p: int(p.split("/")[4]))
    return found[-1] if found else shutil.which(name)


class PrivateCluster:
    """initdb + pg_ctl in a temporary folder, on a free loopback port, trust auth."""

    def __init__(self) -> None:
        initdb, pg_ctl = _server_bin("initdb"), _server_bin("pg_ctl")
        if not initdb or not pg_ctl:
            raise PostgresUnavailable("no PostgreSQL server binaries (scripts/setup installs the postgresql package)")
        self.pg_ctl = pg_ctl
        self.folder = Path(tempfile.mkdtemp(prefix="sat-pg-"))
        self.port = free_port()
        self.data = self.folder / "data"
        # The server refuses to run as root: run it as the postgres user the package creates.
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            if shutil.which("runuser") is None:
                raise PostgresUnavailable("running as root without runuser to start PostgreSQL as postgres")
            self.as_user = ["runuser", "-u", "postgres", "--"]
            shutil.chown(self.folder, "postgres")
        subprocess.run(
            [*self.as_user, initdb, "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8"],
            check=True,
            capture_output=True,
        )
        subprocess.run(
            [
                *self.as_user,
                pg_ctl,
                "-D",
                str(self.data),
                "-l",
                str(self.folder / "log"),
                "-o",
                f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off",
                "-w",
                "start",
            ],
            check=True,
            capture_output=True,
        )
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def stop(self) -> None:
        subprocess.run([*self.as_user, self.pg_ctl, "-D", str(self.data), "-m", "fast", "stop"], capture_output=True)
        shutil.rmtree(self.folder, ignore_errors=True)


class TestPostgres:
    """The server the tests use, and the databases they made on it."""

    def __init__(self) -> None:
        self.cluster: PrivateCluster | None = None
        if _answers(DEFAULT_URL):
            self.admin_url = DEFAULT_URL
        else:
            self.cluster = PrivateCluster()
            deadline = time.monotonic() + 30
            while not _answers(self.cluster.url):
                if time.monotonic() > deadline:
                    raise PostgresUnavailable(f"the private cluster in {self.cluster.folder} does not answer")
                time.sleep(0.2)
            self.admin_url = self.cluster.url
        self._numbers = count(1)
        self.made: list[str] = []
        self.where = "a private cluster" if self.cluster else self.admin_url.rsplit("@", 1)[-1]

    def url_of(self, name: str) -> str:
        return self.admin_url.rsplit("/", 1)[0] + f"/{name}"

    def fresh_database(self) -> str:
        name = f"sat_test_{os.getpid()}_{next(self._numbers)}"
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            conn.execute(f'CREATE DATABASE "{name}"')
        self.made.append(name)
        return self.url_of(name)

    def close(self) -> None:
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            for name in self.made:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if self.cluster is not None:
            self.cluster.stop()
