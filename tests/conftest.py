"""Shared fixtures: a real Mosquitto per test, started with the project's own config."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from collector.localbroker import LocalBroker


def wait_for(predicate: Callable[[], object], timeout_s: float = 10.0, interval_s: float = 0.05) -> bool:
    """Poll until ``predicate()`` is truthy; the test then asserts on the outcome."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval_s)
    return bool(predicate())


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[LocalBroker]:
    """A fresh Mosquitto on a free loopback port; ``broker.kill()/start()`` work mid-test."""
    local = LocalBroker(tmp_path / "broker").start()
    yield local
    local.stop()


@pytest.fixture(autouse=True)
def cheap_argon2(monkeypatch):
    """Real argon2, with small costs: production's (about 0.1 s a hash) would make the access
    tests, which log in hundreds of times, take minutes. Hashes carry their own parameters."""
    from argon2 import PasswordHasher

    import collector.accounts

    monkeypatch.setattr(collector.accounts, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


@pytest.fixture(autouse=True)
def web_pools_closed(monkeypatch):
    """Apps made with TestClient(app) outside a ``with`` never run their shutdown: close their
    PostgreSQL connection pools after each test, as the server's shutdown does."""
    from collector.web.context import WebContext

    made: list[WebContext] = []
    init = WebContext.__init__

    def recording(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        init(self, *args, **kwargs)
        made.append(self)

    monkeypatch.setattr(WebContext, "__init__", recording)
    yield
    for context in made:
        context.close()


@pytest.fixture(scope="session")
def postgres() -> Iterator[object]:
    """A real PostgreSQL (the local one, or a private cluster); skipped with the reason when
    none can be had — but under CI its absence fails the run."""
    import os

    from tests.pg import PostgresUnavailable, TestPostgres

    try:
        server = TestPostgres()
    except (PostgresUnavailable, OSError, subprocess.CalledProcessError) as exc:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is required under CI: {exc}")
        pytest.skip(f"no PostgreSQL: {exc}")
    yield server
    server.close()


@pytest.fixture
def pg_url(postgres) -> str:
    """A fresh, empty database on the test PostgreSQL."""
    return postgres.fresh_database()  # type: ignore[attr-defined, no-any-return]
