"""What a kiosk's page reads, on both stores: status samples (one a quarter hour), online and
offline changes, and the kiosk's newest presses."""

from __future__ import annotations

import json
from datetime import timedelta
from zoneinfo import ZoneInfo

from collector.ingest import SAMPLE_EVERY_S, _minus, sample_of
from kiosk import wire
from tests.ratings import make_rating

T0 = "2026-11-22T02:00:00.000Z"


def _at(minutes: float) -> str:
    return wire.format_time(wire.parse_time(T0) + timedelta(minutes=minutes))


def test_samples_are_kept_one_a_quarter_hour_and_purged_by_age(any_store):
    status = {"kiosk": "k-vb-q1", "state": "online", "backlog": {"ratings": 3}, "disk_free_mb": 900, "fw": "0.1.0"}
    kept = []
    for minute in (0, 1, 14, 15.5, 16, 31):
        with any_store.transaction():
            kept.append(
                any_store.kiosk_sample_add(
                    "k-vb-q1",
                    _at(minute),
                    json.dumps(sample_of(status)),
                    unless_after=_minus(_at(minute), SAMPLE_EVERY_S),
                )
            )
    assert kept == [True, False, False, True, False, True]
    rows = any_store.kiosk_samples("k-vb-q1", _at(-1))
    assert [at for at, _ in rows] == [_at(0), _at(15.5), _at(31)]
    assert json.loads(rows[0][1]) == {"state": "online", "fw": "0.1.0", "disk_free_mb": 900, "backlog": 3}
    assert any_store.kiosk_samples("k-vb-q1", _at(20)) == rows[2:]
    assert any_store.kiosk_samples("k-other", _at(-1)) == []
    with any_store.transaction():
        assert any_store.kiosk_samples_purge(_at(10)) == 1
    assert len(any_store.kiosk_samples("k-vb-q1", _at(-1))) == 2


def test_transitions_and_newest_presses_of_a_kiosk(any_store):
    with any_store.transaction():
        any_store.record_status("k-vb-q1", {"kiosk": "k-vb-q1", "state": "online", "at": _at(0)}, _at(0))
        any_store.record_status("k-vb-q1", {"kiosk": "k-vb-q1", "state": "offline"}, _at(5))
        any_store.record_status("k-vb-q1", {"kiosk": "k-vb-q1", "state": "online", "at": _at(9)}, _at(9))
    assert [s for s, _ in any_store.kiosk_transitions("k-vb-q1", _at(-1))] == ["online", "offline", "online"]
    assert [s for s, _ in any_store.kiosk_transitions("k-vb-q1", _at(6))] == ["online"]
    registry = any_store.load_registry()
    ratings = [make_rating(seq=i + 1, counter="vb-q1", pressed_at=_at(i)) for i in range(3)]
    with any_store.transaction():
        any_store.add_ratings(
            "k-vb-q1",
            ratings,
            unit_of={"vb-q1": registry.counters["vb-q1"].unit},
            received_at=_at(5),
            tz=ZoneInfo("Asia/Ho_Chi_Minh"),
        )
    newest = any_store.kiosk_recent_ratings("k-vb-q1", ["vb-q1"], limit=2)
    assert [row[0] for row in newest] == [_at(2), _at(1)]
    assert any_store.kiosk_recent_ratings("k-other", ["vb-q1"]) == []


def test_each_step_of_an_update_is_kept_for_the_kiosks_page_once(any_store, settings):
    """'Version and update history' on /kiosks/{id}: a status whose update changed is one line."""
    from collector.ingest import Acks, MessageHandler

    handler = MessageHandler(store=any_store, settings=settings, registry=any_store.load_registry)
    steps = [None, ("0.2.0", "downloading"), ("0.2.0", "downloading"), ("0.2.0", "switching"), ("0.2.0", "trial"),
             ("0.2.0", "updated"), ("0.2.0", "updated"), ("0.3.0", "rolled_back")]  # fmt: skip
    for n, step in enumerate(steps):
        status = {"v": 1, "kiosk": "k-vb-q1", "state": "online", "at": _at(n), "fw": "0.1.0"}
        if step is not None:
            status["update"] = {"version": step[0], "state": step[1]}
            if step[1] == "rolled_back":
                status["update"]["error"] = "crash loop"
        with any_store.transaction():
            handler.handle("sat/v1/k/k-vb-q1/status", json.dumps(status).encode(), _at(n), Acks())
    history = any_store.audit_for("kiosk:k-vb-q1", ("kiosk_update",))
    assert [d for _, _, _, d in history][::-1] == [
        "0.2.0: downloading",
        "0.2.0: switching",
        "0.2.0: trial",
        "0.2.0: updated",
        "0.3.0: rolled_back — crash loop",
    ]
    assert any_store.audit_for("kiosk:k-other", ("kiosk_update",)) == []
