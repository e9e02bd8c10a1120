"""Shared fixtures: a real Mosquitto per test, started with the project's own config."""

from __future__ import annotations

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
