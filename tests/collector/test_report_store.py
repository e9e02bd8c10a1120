"""The store parts the reports rely on, the same on SQLite and on PostgreSQL: unsynced counts in
the roll-ups, ratings that came after their month closed, kiosks' backlogs, the mail log, and a
snapshot purge that keeps files other ratings still need."""

from datetime import date

from tests.ratings import make_rating


def _add(store, ratings, received_at, tz):
    registry = store.load_registry()
    with store.transaction():
        store.add_ratings(
            "k-vb-q1",
            ratings,
            unit_of={c.id: c.unit for c in registry.counters.values()},
            received_at=received_at,
            tz=tz,
        )


def test_rollups_count_unsynced_ratings(any_store, settings):
    ratings = [
        make_rating(seq=i + 1, clock=c, pressed_at="2026-10-20T03:00:00.000Z")
        for i, c in enumerate(["unsynced", "unsynced", "synced", "corrected"])
    ]
    _add(any_store, ratings, "2026-10-20T03:01:00.000Z", settings.tz)
    for day_from, day_to, by in (
        (date(2026, 10, 20), date(2026, 10, 20), "day"),
        (date(2026, 1, 1), date(2026, 12, 31), "counter"),
    ):
        counts = any_store.counts(["vb-q1"], day_from, day_to, by=by)
        assert sum(c.n for c in counts) == 4 and sum(c.unsynced for c in counts) == 2


def test_ratings_after_their_month_are_late_for_a_mailed_month(any_store, settings):
    _add(
        any_store,
        [make_rating(seq=1, score=1, pressed_at="2026-10-30T03:00:00.000Z")],
        "2026-10-30T03:01:00.000Z",
        settings.tz,
    )
    _add(
        any_store,
        [make_rating(seq=2, score=4, pressed_at="2026-10-31T03:00:00.000Z")],
        "2026-11-05T00:00:00.000Z",
        settings.tz,
    )
    any_store.record_mail("10.085", "2026-10", "2026-11-02T01:00:00.000Z", "a@b.vn")
    assert [(m.unit, m.month) for m in any_store.mails_sent(["10.085"])] == [("10.085", "2026-10")]
    assert any_store.late_arrivals(["vb-q1"], "2026-10", "2026-11-02T01:00:00.000Z") == {4: 1}
    assert any_store.late_arrivals(["vb-q1"], "2026-10", "2026-11-06T00:00:00.000Z") == {}


def test_backlogs_are_read_from_the_latest_status(any_store):
    with any_store.transaction():
        any_store.record_status(
            "k-vb-q1",
            {"state": "online", "backlog": {"ratings": 3, "snapshots": 0, "oldest_at": "2026-10-30T02:00:00.000Z"}},
            "2026-11-01T00:00:00.000Z",
        )
        any_store.record_status("k-kyh-q1", {"state": "online", "backlog": {"ratings": 0}}, "2026-11-01T00:00:00.000Z")
        any_store.record_status(
            "k-sp-q1",
            {"state": "online", "backlog": {"ratings": 2, "oldest_at": float("inf")}},
            "2026-11-01T00:00:00.000Z",
        )
    got = {(b.kiosk, b.ratings, b.oldest_at) for b in any_store.backlogs()}
    assert got == {("k-vb-q1", 3, "2026-10-30T02:00:00.000Z"), ("k-sp-q1", 2, None)}


def test_purge_keeps_a_file_another_rating_needs(any_store):
    with any_store.transaction():
        any_store.add_snapshot(
            "01936f0e-7c1a-7d4e-9a3b-1f2e3d4c5b60", "a" * 64, "shared.jpg", 1, "2026-01-01T00:00:00.000Z"
        )
        any_store.add_snapshot(
            "01936f0e-7c1a-7d4e-9a3b-1f2e3d4c5b61", "a" * 64, "shared.jpg", 1, "2026-03-01T00:00:00.000Z"
        )
    assert any_store.purge_snapshots("2026-02-01T00:00:00.000Z") == []
    assert any_store.purge_snapshots("2026-04-01T00:00:00.000Z") == ["shared.jpg"]
