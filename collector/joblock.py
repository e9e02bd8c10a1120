"""One holder at a time for the jobs that must run once: the alert loop, the monthly mail, picture
purge and quarantine upkeep, CRL renewal. Several collectors may run `--role jobs` (or `all`);
the one holding the lock runs the jobs, the others wait and take over when it dies.

PostgreSQL: a session advisory lock on a connection of its own — the server drops it the moment
that connection goes (the process killed, the network gone). SQLite: an exclusive ``flock`` on a
file beside the store — the kernel drops it when the process dies. Either way nobody has to clean
up after a crash.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

JOBS_LOCK_KEY = 7316002  # pg_advisory_lock key: "the collector's jobs"


class JobLock:
    def __init__(self, store_url: str, data_dir: Path) -> None:
        self.store_url = store_url
        self.path = Path(data_dir) / "jobs.lock"
        self._fd: int | None = None
        self._conn: Any = None

    @property
    def held(self) -> bool:
        if self._conn is not None:
            try:
                self._conn.execute("SELECT 1").fetchone()
            except Exception:  # the connection went: so did the lock
                self._conn = None
            return self._conn is not None
        return self._fd is not None

    def try_acquire(self) -> bool:
        """Take the lock if nobody holds it; never waits."""
        if self.held:
            return True
        if self.store_url.startswith(("postgresql://", "postgres://")):
            import psycopg

            conn = psycopg.connect(self.store_url, autocommit=True, connect_timeout=10)
            row = conn.execute("SELECT pg_try_advisory_lock(%s)", (JOBS_LOCK_KEY,)).fetchone()
            if row and row[0]:
                self._conn = conn
                return True
            conn.close()
            return False
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return True

    def release(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None
        if self._fd is not None:
            os.close(self._fd)  # closing drops the flock
            self._fd = None


class JobRunner:
    """Waits for the lock, then starts the jobs; if the lock is lost (the database connection
    dropped), stops them and waits again."""

    def __init__(
        self, lock: JobLock, *, start: Callable[[], None], stop: Callable[[], None], poll_s: float = 10.0
    ) -> None:
        self.lock = lock
        self._start_jobs = start
        self._stop_jobs = stop
        self.poll_s = poll_s
        self.running = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="jobs", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=15)
        if self.running:
            self._stop_jobs()
            self.running = False
        self.lock.release()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if not self.running and self.lock.try_acquire():
                    log.info("this collector runs the jobs (alerts, monthly mail, purge, CRL)")
                    self._start_jobs()
                    self.running = True
                elif self.running and not self.lock.held:
                    log.warning("lost the jobs lock; stopping the jobs until it is ours again")
                    self._stop_jobs()
                    self.running = False
            except Exception:  # the database unreachable: try again next round
                log.exception("jobs lock check failed")
            self._stop.wait(self.poll_s)
