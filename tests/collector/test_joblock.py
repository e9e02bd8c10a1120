"""Jobs that must run once: one holder of the lock at a time, taken over when the holder dies —
on SQLite (flock) and on a real PostgreSQL (advisory lock), and between two real processes."""

from __future__ import annotations

import subprocess
import sys
import time

import psycopg
import pytest

from collector.joblock import JobLock
from tests.conftest import wait_for
from tests.e2e.conftest import CollectorProcess


def test_sqlite_jobs_lock_has_one_holder_and_frees_on_release(tmp_path):
    url = f"sqlite:///{tmp_path / 'c.db'}"
    first, second = JobLock(url, tmp_path), JobLock(url, tmp_path)
    assert first.try_acquire() is True
    assert second.try_acquire() is False
    first.release()
    assert second.try_acquire() is True
    second.release()


def test_postgresql_jobs_lock_goes_with_its_connection(pg_url, tmp_path):
    first, second = JobLock(pg_url, tmp_path), JobLock(pg_url, tmp_path)
    assert first.try_acquire() is True
    assert second.try_acquire() is False
    pid = first._conn.info.backend_pid
    with psycopg.connect(pg_url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))  # the holder's server connection dies
    assert wait_for(lambda: not first.held, 5)
    assert second.try_acquire() is True
    second.release()


@pytest.mark.slow
def test_of_two_jobs_processes_one_runs_the_jobs_and_the_other_takes_over_when_it_is_killed(tmp_path, broker):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = CollectorProcess(tmp_path / "a", broker.port)
    second = CollectorProcess(tmp_path / "b", broker.port)
    # the same store and data folder, another HTTP port
    second.config.write_text(
        first.config.read_text().replace(f"port = {first.http_port}", f"port = {second.http_port}")
    )
    for process in (first, second):
        process.process = subprocess.Popen(
            [sys.executable, "-m", "collector.cli", "serve", "--role", "jobs", "--config", str(process.config)],
            stdout=process.log,
            stderr=subprocess.STDOUT,
        )

    def runs_jobs(process: CollectorProcess) -> bool:
        return "this collector runs the jobs" in (process.config.parent / "collector.log").read_text()

    try:
        assert wait_for(lambda: runs_jobs(first) or runs_jobs(second), 20)
        time.sleep(2)
        holder, other = (first, second) if runs_jobs(first) else (second, first)
        assert not runs_jobs(other)  # one at a time
        holder.kill()
        assert wait_for(lambda: runs_jobs(other), 25)  # the survivor takes over
    finally:
        for process in (first, second):
            process.stop()
