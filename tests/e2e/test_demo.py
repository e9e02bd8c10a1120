"""The README's main command, run for real for a short while."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from collector.localbroker import free_port

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_demo_starts_everything_collects_ratings_and_stops_cleanly(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "demo.py"),
            "--data-dir",
            str(tmp_path / "demo"),
            "--http-port",
            str(free_port()),
            "--duration-s",
            "32",
            "--presses-per-minute",
            "20",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "/api/v1/units/10/summary" in result.stdout
    counts = [int(n) for n in re.findall(r"last 30 days: (\d+) ratings", result.stdout)]
    assert counts and counts[-1] > 0, result.stdout
    assert "kiosks online 12/12" in result.stdout
    assert "stopped; data kept in" in result.stdout
    assert "warning:" not in result.stderr


def test_the_demo_starts_with_a_year_of_plausible_history(tmp_path):
    """What the demo makes up on a new data folder, through the store's insert path: a year of
    office-hours ratings with roll-ups, the weak counter weakest, an officer whose last three months
    dropped, and a kiosk offline for a week (no ratings, and its status went offline and back)."""
    from datetime import datetime, timedelta
    from zoneinfo import ZoneInfo

    sys.path.insert(0, str(ROOT / "scripts"))
    import demo_history

    from collector.config import load_settings
    from collector.officers import Officers
    from collector.reports import figures, figures_of
    from collector.store import open_store

    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "demo.py"), "--data-dir", str(tmp_path / "demo"),
         "--http-port", str(free_port()), "--duration-s", "1"],
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"history +\d+ ratings over the last 365 days", result.stdout), result.stdout
    settings = load_settings(tmp_path / "demo" / "collector.toml")
    tz = ZoneInfo("Asia/Ho_Chi_Minh")
    today = datetime.now(tz).date()
    store = open_store(settings.resolved_store_url)
    try:
        registry = store.load_registry()
        counters = sorted(registry.counters)
        year = store.counts(counters, today - timedelta(days=365), today - timedelta(days=1), by="month")
        assert sum(c.n for c in year) > 50_000
        assert len({c.period for c in year}) >= 12
        rates = {
            c: figures(store.counts([c], today - timedelta(days=365), today, by="counter")).satisfaction_rate
            for c in counters
        }
        assert min(rates, key=lambda c: rates[c]) == demo_history.WEAK_COUNTER, rates
        # Phố Lu's kiosk was offline for a week: nothing from its counter then, and its status says so.
        far, near = demo_history.OFFLINE_DAYS
        week = store.counts(["pl-q1"], today - timedelta(days=far - 1), today - timedelta(days=near + 1), by="counter")
        assert sum(c.n for c in week) == 0
        before = store.counts(
            ["pl-q1"], today - timedelta(days=far + 14), today - timedelta(days=far + 1), by="counter"
        )
        assert sum(c.n for c in before) > 50
        states = [state for state, _ in store.kiosk_transitions("k-pl-q1", "2000-01-01T00:00:00.000Z")]
        assert states[:3] == ["online", "offline", "online"], states
        # The afternoon officer of Văn Bàn's first counter: fine until three months ago, poor since.
        book = Officers(store, tz)
        weak = demo_history.officers(registry)["vb-q1"][demo_history.DROPPED[1]][0]
        recent = book.by_officer(["vb-q1"], today - timedelta(days=80), today - timedelta(days=1))[weak]
        earlier = book.by_officer(["vb-q1"], today - timedelta(days=300), today - timedelta(days=100))[weak]
        drop = figures_of(earlier).satisfaction_rate - figures_of(recent).satisfaction_rate
        assert drop > 0.15, (figures_of(earlier), figures_of(recent))
    finally:
        store.close()
