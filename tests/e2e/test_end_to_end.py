"""Presses on kiosks' mock pins → real Mosquitto → collector → the numbers in the API."""

import sqlite3
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime
from zoneinfo import ZoneInfo

import httpx
import pytest
from fastapi.testclient import TestClient

from collector.ingest import Ingestor
from collector.store import SqliteStore
from collector.web import create_app
from tests.collector.conftest import collector_settings
from tests.conftest import wait_for
from tests.e2e.conftest import CollectorProcess

TODAY = lambda: datetime.now(ZoneInfo("Asia/Ho_Chi_Minh")).date().isoformat()  # noqa: E731


def by_score(scores):
    counts = Counter(scores)
    return {str(s): counts.get(s, 0) for s in (1, 2, 3, 4)}


def test_presses_become_the_right_counts_and_rates_up_to_the_province(tmp_path, broker, kiosk_threads):
    settings = collector_settings(tmp_path, broker.port)
    settings.data_dir.mkdir(parents=True)
    from collector.cli import prepare_store

    store = prepare_store(settings)
    ingestor = Ingestor(settings=settings, store=SqliteStore(settings.data_dir / "collector.db"))
    ingestor.start()
    try:
        commune = kiosk_threads("k-kyh-q1", "kyh-q1")  # Xã Khánh Yên Hạ (Văn Bàn)
        district = kiosk_threads("k-vb-q1", "vb-q1")  # Huyện Văn Bàn's own counter
        sapa = kiosk_threads("k-sp-q1", "sp-q1")  # Thị xã Sa Pa
        for button in (1, 1, 2, 4, 1, 3):
            commune.press(button)
        for button in (2, 2, 4):
            district.press(button)
        for button in (1, 4, 4, 4):
            sapa.press(button)
        assert wait_for(lambda: store.rating_count() == 13, 30)
        assert wait_for(lambda: all(k.backlog() == 0 for k in (commune, district, sapa)), 15)
        from collector.accounts import Accounts

        Accounts(store).add_user(
            "admin", "correct horse battery", role="admin", unit="10", registry=store.load_registry()
        )
        api = TestClient(create_app(settings, store))
        api.auth = ("admin", "correct horse battery")
        day = TODAY()
        q = f"?from={day}&to={day}"
        c = api.get(f"/api/v1/counters/kyh-q1/summary{q}").json()
        assert c["by_score"] == by_score(commune.pressed) == {"1": 1, "2": 1, "3": 1, "4": 3}
        assert c["satisfaction_rate"] == pytest.approx(4 / 6, abs=1e-4)
        vb = api.get(f"/api/v1/units/10.085/summary{q}").json()
        assert vb["total"] == 9
        assert vb["by_score"] == by_score(commune.pressed + district.pressed)
        province = api.get(f"/api/v1/units/10/summary{q}").json()
        assert province["total"] == 13
        assert province["by_score"] == by_score(commune.pressed + district.pressed + sapa.pressed)
        assert province["satisfaction_rate"] == pytest.approx(7 / 13, abs=1e-4)
        assert wait_for(lambda: store.kiosk_statuses().get("k-sp-q1", {}).get("state") == "online")
        kiosks = {k["kiosk"]: k for k in api.get("/api/v1/kiosks").json()["kiosks"]}
        assert kiosks["k-sp-q1"]["online"] and kiosks["k-pl-q1"]["state"] == "never_seen"
    finally:
        ingestor.stop()
        store.close()


@pytest.mark.slow
def test_collector_killed_and_broker_restarted_lose_nothing_and_double_nothing(tmp_path, broker, kiosk_threads):
    collector = CollectorProcess(tmp_path, broker.port)
    collector.start()
    kiosks = [
        kiosk_threads("k-tthcc-q1", "tthcc-q1"),
        kiosk_threads("k-ky-q1", "ky-q1"),
        kiosk_threads("k-pl-q1", "pl-q1"),
    ]
    db_path = collector.data_dir / "collector.db"

    def stored():
        if not db_path.exists():
            return -1
        with sqlite3.connect(db_path, timeout=5) as db:
            try:
                return db.execute("SELECT COUNT(*) FROM ratings").fetchone()[0]
            except sqlite3.OperationalError:
                return -1

    def press_round(n):
        for i in range(n):
            for k in kiosks:
                k.press(1 + (i + len(k.pressed)) % 4)

    press_round(5)
    assert wait_for(lambda: stored() == 15, 30)
    press_round(3)
    collector.kill()  # SIGKILL (Popen.kill), possibly mid-batch
    press_round(5)  # kiosks keep pressing while it is down
    time.sleep(1)
    collector.start()
    press_round(3)
    assert wait_for(lambda: stored() == 48, 60), (tmp_path / "collector.log").read_text()[-3000:]
    broker.stop()  # the broker goes away too
    press_round(4)
    broker.start()
    press_round(2)
    total = sum(len(k.pressed) for k in kiosks)
    assert total == 66
    assert wait_for(lambda: stored() == total, 90), (tmp_path / "collector.log").read_text()[-3000:]
    assert wait_for(lambda: all(k.backlog() == 0 for k in kiosks), 30)
    time.sleep(2)
    assert stored() == total  # nothing doubled by late re-sends
    day = TODAY()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "collector.cli",
            "user",
            "add",
            "admin",
            "--role",
            "admin",
            "--unit",
            "10",
            "--password-stdin",
            "--config",
            str(collector.config),
        ],
        input="correct horse battery\n",
        text=True,
        check=True,
        capture_output=True,
    )
    summary = httpx.get(
        f"{collector.url}/api/v1/units/10/summary?from={day}&to={day}",
        timeout=10,
        auth=("admin", "correct horse battery"),
    ).json()
    assert summary["total"] == total
    assert summary["by_score"] == by_score([s for k in kiosks for s in k.pressed])
    with sqlite3.connect(db_path) as db:
        seqs = db.execute(
            "SELECT kiosk, GROUP_CONCAT(seq) FROM (SELECT kiosk, seq FROM ratings ORDER BY kiosk, seq) GROUP BY kiosk"
        ).fetchall()
    for _, joined in seqs:
        assert [int(s) for s in joined.split(",")] == list(range(1, 23))
    collector.stop()
