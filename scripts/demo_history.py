"""A year of plausible history for the demo, so that trends, comparisons, the heat map and the
period before have something to show on the first start. Stored through the collector's own
insert path (the contract's Rating, roll-ups in the same transaction), as if every kiosk had been
there all year:

- office hours (Monday to Friday 7:30–11:30 and 13:30–17:00, some Saturday mornings), busier in
  mid-morning, on Mondays, before Tết and in the enrolment months; nothing on public holidays;
- each counter has its mood (the demo's: Sa Pa's second counter is the weak one);
- an officer whose ratings dropped: at Văn Bàn's first counter, the afternoon officer's last
  three months are poor;
- a kiosk that was offline for a week (Phố Lu's, two to three weeks ago): no ratings then, and
  its status went offline and came back;
- today's ratings up to now, so the alert loop has a day to judge on the first start.

    scripts/demo_history.py --config DIR/collector.toml [--days 365]

The demo runs it once, on a new data folder. Officers and their duties come from ``roster()``,
which the demo also imports, so the history's duties are the roster's.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import sys
import time
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from collector.registry import Registry  # noqa: E402
from kiosk import wire  # noqa: E402
from kiosk.ids import uuid7  # noqa: E402

# How citizens at a counter tend to vote: weights of scores 4, 3, 2, 1.
MOODS = {
    "good": (0.70, 0.25, 0.04, 0.01),
    "fair": (0.45, 0.35, 0.12, 0.08),
    "poor": (0.20, 0.30, 0.20, 0.30),
}
WEAK_COUNTER = "sp-q2"
DROPPED = ("vb-q1", 1)  # the counter, and which of its two officers (the afternoon one of day 0)
DROPPED_DAYS = 90
OFFLINE_KIOSK = "k-pl-q1"
OFFLINE_DAYS = (20, 13)  # from this many days ago to this many (within the kiosk page's 30 days)
FAMILY = ["Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Vũ", "Đặng", "Bùi"]
GIVEN = ["Văn An", "Thị Bình", "Minh Châu", "Thu Hà", "Quốc Huy", "Thị Lan", "Đức Long", "Thị Mai", "Văn Nam",
         "Thanh Tâm", "Hữu Thắng", "Thị Yến"]  # fmt: skip
# Days the offices are closed (Tết 2026 and 2027 around their first day, and the national holidays).
HOLIDAYS = {
    *(date(2026, 2, 14) + timedelta(days=d) for d in range(9)),
    *(date(2027, 2, 4) + timedelta(days=d) for d in range(9)),
    *(date(y, m, d) for y in (2025, 2026, 2027) for m, d in ((1, 1), (4, 30), (5, 1), (9, 1), (9, 2))),
}
SEASON = {1: 1.35, 2: 0.8, 3: 1.0, 4: 0.95, 5: 1.0, 6: 0.9, 7: 0.95, 8: 1.2, 9: 1.25, 10: 1.0, 11: 1.05, 12: 1.15}
WEEKDAY = {0: 1.25, 1: 1.05, 2: 1.0, 3: 1.0, 4: 0.85, 5: 0.35, 6: 0.0}
PER_DAY = 22  # ratings on an ordinary day at an ordinary counter


def moods(registry: Registry) -> dict[str, str]:
    """Each counter's mood; the live kiosks of the demo press with the same."""
    rng = random.Random(7)
    return {
        c.id: "poor" if c.id == WEAK_COUNTER else rng.choice(["good", "good", "fair"])
        for c in sorted(registry.counters.values(), key=lambda c: c.id)
    }


def officers(registry: Registry) -> dict[str, list[tuple[str, str, str]]]:
    """Two officers per counter: (id, name, unit) each."""
    rng = random.Random(11)
    out = {}
    for n, counter in enumerate(sorted(registry.counters.values(), key=lambda c: c.id)):
        out[counter.id] = [
            (f"cb-{counter.id}-{k + 1}", f"{FAMILY[rng.randrange(len(FAMILY))]} {GIVEN[(2 * n + k) % len(GIVEN)]}",
             counter.unit)
            for k in range(2)
        ]  # fmt: skip
    return out


def on_duty(counter: str, day: date, hour: int, today: date, registry_officers: dict[str, list]) -> str:  # type: ignore[type-arg]
    """Who serves at a counter: the two officers swap mornings and afternoons every day."""
    offset = (day - today).days
    pair = registry_officers[counter]
    return str(pair[(offset + (0 if hour < 12 else 1)) % 2][0])


def roster(registry: Registry, today: date, days_back: int, days_ahead: int = 14) -> list[str]:
    """The duty roster as ``collector roster import`` reads it: two shifts a day, every day."""
    pairs = officers(registry)
    lines = ["officer,counter,start,end"]
    for counter in sorted(pairs):
        for offset in range(-days_back, days_ahead + 1):
            day = today + timedelta(days=offset)
            lines.append(f"{on_duty(counter, day, 8, today, pairs)},{counter},{day} 00:00,{day} 12:00")
            lines.append(f"{on_duty(counter, day, 13, today, pairs)},{counter},{day} 12:00,{day} 23:59")
    return lines


def presses(
    registry: Registry, today: date, days: int, seed: int = 5, *, until: datetime | None = None
) -> Iterator[tuple[str, str, datetime, int]]:
    """(kiosk, counter, local time, score) for every rating of the ``days`` before ``today``, and
    of today before ``until`` (naive local time) when given."""
    rng = random.Random(seed)
    mood = moods(registry)
    pairs = officers(registry)
    kiosk_of = {k.counter: k.id for k in registry.kiosks.values()}
    weak_officer = pairs[DROPPED[0]][DROPPED[1]][0]
    for back in range(days, -1 if until is not None else 0, -1):
        day = today - timedelta(days=back)
        if day in HOLIDAYS or WEEKDAY[day.weekday()] == 0:
            continue
        for counter in sorted(kiosk_of):
            kiosk = kiosk_of[counter]
            if kiosk == OFFLINE_KIOSK and OFFLINE_DAYS[1] < back <= OFFLINE_DAYS[0]:
                continue
            n = round(PER_DAY * SEASON[day.month] * WEEKDAY[day.weekday()] * rng.uniform(0.6, 1.4))
            saturday = day.weekday() == 5
            for _ in range(n):
                # Mid-morning is busiest; Saturday offices close at noon.
                minute = (
                    int(rng.triangular(450, 690, 560))
                    if saturday or rng.random() < 0.6
                    else int(rng.uniform(810, 1020))
                )
                at = datetime.combine(day, datetime.min.time()) + timedelta(minutes=minute, seconds=rng.randrange(60))
                if until is not None and at >= until:
                    continue
                weights = MOODS[mood[counter]]
                if back <= DROPPED_DAYS and on_duty(counter, day, at.hour, today, pairs) == weak_officer:
                    weights = MOODS["poor"]
                score = rng.choices((4, 3, 2, 1), weights=weights)[0]
                yield kiosk, counter, at, score


def store_history(  # noqa: ANN001
    store, registry: Registry, tz: ZoneInfo, today: date, days: int, *, until: datetime | None = None
) -> int:
    """Every press of ``presses()`` into the store, a day at a time (roll-ups in each transaction);
    and the offline kiosk's week in its status history. Returns how many ratings."""
    unit_of = {c.id: c.unit for c in registry.counters.values()}
    seqs: dict[str, int] = {}
    batch: dict[str, list[wire.Rating]] = {}
    stored = 0

    def flush() -> None:
        nonlocal stored
        with store.transaction():
            for kiosk, ratings in batch.items():
                received = max(r.pressed_at for r in ratings)
                store.add_ratings(kiosk, ratings, unit_of=unit_of, received_at=received, tz=tz)
                stored += len(ratings)
        batch.clear()

    current = None
    for kiosk, counter, at, score in presses(registry, today, days, until=until):
        if current is not None and at.date() != current and sum(map(len, batch.values())) >= 2000:
            flush()
        current = at.date()
        moment = at.replace(tzinfo=tz)
        seqs[kiosk] = seqs.get(kiosk, 0) + 1
        batch.setdefault(kiosk, []).append(
            wire.Rating(
                id=uuid7(int(moment.timestamp() * 1000)),
                install=hashlib.sha256(f"history {kiosk}".encode()).hexdigest()[:16],
                seq=seqs[kiosk],
                counter=counter,
                score=score,
                pressed_at=wire.format_time(moment),
                clock="synced",
                snapshot=None,
                snapshot_error="not_kept",  # pictures are purged after their retention: a year back, none
                flag=None,
                fw="0.1.0",
            )
        )
    if batch:
        flush()
    start = datetime.combine(today - timedelta(days=days), datetime.min.time(), tz)
    went = datetime.combine(today - timedelta(days=OFFLINE_DAYS[0]), datetime.min.time(), tz) + timedelta(hours=10)
    back = datetime.combine(today - timedelta(days=OFFLINE_DAYS[1]), datetime.min.time(), tz) + timedelta(hours=8)
    with store.transaction():
        for kiosk in sorted(k.id for k in registry.kiosks.values()):
            store.record_status(kiosk, _status(kiosk, "online"), wire.format_time(start))
        if OFFLINE_KIOSK in registry.kiosks:
            store.record_status(OFFLINE_KIOSK, _status(OFFLINE_KIOSK, "offline"), wire.format_time(went))
            store.record_status(OFFLINE_KIOSK, _status(OFFLINE_KIOSK, "online"), wire.format_time(back))
    return stored


def _status(kiosk: str, state: str) -> dict[str, object]:
    return {"v": 1, "kiosk": kiosk, "state": state, "fw": "0.1.0"}


def main() -> int:
    from collector.config import load_settings
    from collector.store import open_store

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, type=Path)
    parser.add_argument("--days", type=int, default=365)
    args = parser.parse_args()
    settings = load_settings(args.config)
    store = open_store(settings.resolved_store_url)
    try:
        registry = store.load_registry()
        started = time.monotonic()
        now = datetime.now(settings.tz)
        n = store_history(store, registry, settings.tz, now.date(), args.days, until=now.replace(tzinfo=None))
    finally:
        store.close()
    print(f"history    {n} ratings over the last {args.days} days stored in {time.monotonic() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
