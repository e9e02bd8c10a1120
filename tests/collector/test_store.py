"""The SQLite store: exactly-once inserts and roll-ups that agree with the raw ratings."""

import random
from datetime import date, timedelta
from zoneinfo import ZoneInfo

import pytest

from collector.registry import load_registry
from collector.store import _split_range
from kiosk import wire
from tests.collector.conftest import REGISTRY, open_test_store
from tests.ratings import make_rating

TZ = ZoneInfo("Asia/Ho_Chi_Minh")


@pytest.fixture(params=["sqlite", "postgresql"])
def filled(tmp_path, request):
    store = open_test_store(request.param, request, tmp_path / "c.db")
    registry = load_registry(REGISTRY)
    store.replace_registry(registry)
    rng = random.Random(3)
    start = 1_767_200_000.0  # late December 2025
    ratings = [
        make_rating(
            seq=i + 1,
            counter=rng.choice(["vb-q1", "kyh-q1", "sp-q1"]),
            score=rng.randint(1, 4),
            pressed_at=wire.format_epoch(start + rng.uniform(0, 400 * 86400)),
            flag=rng.choice([None] * 9 + ["lockout"]),
        )
        for i in range(3000)
    ]
    unit_of = {c.id: c.unit for c in registry.counters.values()}
    with store.transaction():
        store.add_ratings("k-vb-q1", ratings, unit_of=unit_of, received_at="2026-11-22T00:00:00.000Z", tz=TZ)
    yield store, ratings
    store.close()


def raw_total(ratings, counters, day_from, day_to, score):
    def local(r):
        return wire.parse_time(r.pressed_at).astimezone(TZ).date()

    return sum(
        1
        for r in ratings
        if r.counter in counters and day_from <= local(r) <= day_to and r.score == score and r.flag is None
    )


def test_rollups_agree_with_raw_ratings_for_any_range(filled):
    store, ratings = filled
    rng = random.Random(5)
    counters = ["vb-q1", "kyh-q1", "sp-q1"]
    for _ in range(40):
        a = date(2025, 12, 20) + timedelta(days=rng.randint(0, 400))
        b = a + timedelta(days=rng.randint(0, 200))
        for by in ("counter", "day", "month"):
            got = sum(c.n for c in store.counts(counters, a, b, by=by) if c.score == 3 and not c.flagged)
            assert got == raw_total(ratings, counters, a, b, 3), (a, b, by)


def test_raw_ratings_pages_hold_every_press_once_with_the_officer_then_on_duty(filled):
    """The raw export's pages, against a reference in Python: every press in the range once, in
    (time, id) order, each with the officer whose duty at its counter held it. Duties begin and end
    exactly at some presses' times (a duty holds its start, not its end), and leave gaps."""
    from collector.officers import Officers

    store, ratings = filled
    registry = store.load_registry()
    book = Officers(store, TZ)
    # two officers per counter (an officer is at one counter at a time)
    staff = {c: (f"{c}-a", f"{c}-b") for c in ("vb-q1", "kyh-q1", "sp-q1")}
    for people in staff.values():
        for officer in people:
            book.add_officer(officer, officer.title(), "10", registry)
    rng = random.Random(11)
    duties: dict[str, list[tuple[str, str, str]]] = {}
    for counter in ("vb-q1", "kyh-q1", "sp-q1"):
        times = sorted(r.pressed_at for r in ratings if r.counter == counter)
        a = 0
        while (a := a + rng.randint(1, 40)) < len(times) - 41:  # [press a, press b), gaps between
            b = a + rng.randint(1, 40)
            if wire.parse_time(times[b]) - wire.parse_time(times[a]) > timedelta(days=30) or times[b] == times[a]:
                continue
            officer = rng.choice(staff[counter])
            book.add_duty(officer, counter, times[a], times[b], registry)
            duties.setdefault(counter, []).append((times[a], times[b], officer))
            a = b

    def on_duty(counter: str, at: str) -> str | None:
        return next((o for s, e, o in duties.get(counter, []) if s <= at < e), None)

    start, end = "2026-01-10T00:00:00.000Z", "2026-12-01T00:00:00.000Z"
    counters = ["vb-q1", "sp-q1"]
    expected = sorted(
        (r.pressed_at, r.id, r.counter, on_duty(r.counter, r.pressed_at), r.score, r.flag)
        for r in ratings
        if r.counter in counters and start <= r.pressed_at < end
    )
    got, after = [], ("", "")
    while page := store.raw_ratings(counters, start, end, after=after, limit=97):
        after = (page[-1][0], page[-1][1])
        got += [row[:6] for row in page]
    assert got == expected
    assert sum(1 for row in got if row[3] is None) > 100 and sum(1 for row in got if row[3]) > 100
    # The three-level form's and the officer page's counts: accepted ratings by the same duties.
    accepted = [row for row in expected if row[5] is None and row[3] is not None]
    for counter in counters:
        want: dict[tuple[str, int], int] = {}
        for row in accepted:
            if row[2] == counter:
                want[row[3], row[4]] = want.get((row[3], row[4]), 0) + 1
        stored = store.scores_on_duty(counter, start, end, exclude_unsynced=False)
        assert {(o, sc): n for o, sc, n in stored} == want, counter
    for officer in [o for people in staff.values() for o in people]:
        want = {}
        for r in ratings:
            if start <= r.pressed_at < end and r.flag is None and on_duty(r.counter, r.pressed_at) == officer:
                want[r.counter, r.score] = want.get((r.counter, r.score), 0) + 1
        assert {(c, sc): n for c, sc, n in store.officer_scores(officer, start, end)} == want, officer


def test_same_rating_twice_is_stored_once(filled):
    store, ratings = filled
    registry = store.load_registry()
    with store.transaction():
        new, dup = store.add_ratings(
            "k-vb-q1",
            ratings[:10] + ratings[:10],
            unit_of={c.id: c.unit for c in registry.counters.values()},
            received_at="2026-11-22T00:00:00.000Z",
            tz=TZ,
        )
    assert new == [] and len(dup) == 20
    assert store.rating_count() == 3000


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("2026-01-15", "2026-01-20", (("2026-01-15", "2026-01-20"), None, None)),
        ("2026-01-01", "2026-12-31", (None, ("2026-01", "2026-12"), None)),
        (
            "2026-01-15",
            "2026-03-10",
            (("2026-01-15", "2026-01-31"), ("2026-02", "2026-02"), ("2026-03-01", "2026-03-10")),
        ),
        ("2026-02-01", "2026-02-28", (None, ("2026-02", "2026-02"), None)),
        ("2026-01-31", "2026-02-01", (("2026-01-31", "2026-02-01"), None, None)),
    ],
)
def test_ranges_split_into_edge_days_and_whole_months(a, b, expected):
    assert _split_range(date.fromisoformat(a), date.fromisoformat(b)) == expected
