"""Ratings for tests: one factory with the contract's defaults, and storing them like ingest does."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from kiosk import wire
from kiosk.ids import uuid7

TZ = ZoneInfo("Asia/Ho_Chi_Minh")


def make_rating(
    *,
    counter: str = "vb-q1",
    score: int = 4,
    seq: int = 1,
    pressed_at: str = "2026-11-22T02:15:02.123Z",
    **changes: object,
) -> wire.Rating:
    values: dict[str, object] = dict(
        id=uuid7(),
        install="a1b2c3d4",
        seq=seq,
        counter=counter,
        score=score,
        pressed_at=pressed_at,
        clock="synced",
        snapshot=None,
        snapshot_error="camera_disabled",
        flag=None,
        fw="0.1.0",
    )
    values.update(changes)
    return wire.Rating(**values)  # type: ignore[arg-type]


def store_ratings(
    store,
    ratings: list[wire.Rating],
    *,
    tz: ZoneInfo,
    kiosk: str = "k-x",  # noqa: ANN001
    received_at: str = "2026-11-22T03:00:00.000Z",
) -> None:
    registry = store.load_registry()
    with store.transaction():
        store.add_ratings(
            kiosk, ratings, unit_of={c.id: c.unit for c in registry.counters.values()}, received_at=received_at, tz=tz
        )
