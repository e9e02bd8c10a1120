"""Snapshot purge counts references: pictures are stored by their bytes' sha256, so two ratings
with the same picture share one file (or one row, on PostgreSQL), and it stays while either rating
still needs it."""

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from collector.ingest import Acks, Ingestor
from kiosk import wire
from tests.ratings import make_rating

PICTURE = b"\xff\xd8\xff\xe0 the same frame twice \xff\xd9"


def _at(moment: datetime) -> str:
    return wire.format_time(moment)


@pytest.fixture
def store(any_store):
    """SQLite keeps pictures as files, PostgreSQL in the database: the same rules on both."""
    return any_store


@pytest.fixture
def ingest(settings, store):
    """The collector's own message handler and purge on a real store and data folder (no broker)."""
    return Ingestor(settings=settings, store=store)


def _rate_with_picture(ingest: Ingestor, kiosk: str, counter: str, *, snapshot_received: datetime) -> str:
    now = datetime.now(UTC)
    rating = make_rating(
        counter=counter,
        pressed_at=_at(now - timedelta(minutes=1)),
        snapshot=wire.SnapshotRef(hashlib.sha256(PICTURE).hexdigest(), len(PICTURE)),
        snapshot_error=None,
    )
    topics = wire.Topics()
    with ingest.store.transaction():
        assert (
            ingest.handler.handle(topics.ratings(kiosk), wire.encode_batch(kiosk, [rating]), _at(now), Acks()) is None
        )
        assert ingest.handler.handle(topics.snapshot(kiosk, rating.id), PICTURE, _at(snapshot_received), Acks()) is None
    return rating.id


def test_a_picture_file_shared_with_a_newer_rating_survives_the_purge(ingest, store):
    old = _rate_with_picture(ingest, "k-vb-q1", "vb-q1", snapshot_received=datetime.now(UTC) - timedelta(days=120))
    new = _rate_with_picture(ingest, "k-kyh-q1", "kyh-q1", snapshot_received=datetime.now(UTC))
    shared = store.snapshot_path(new)
    assert shared is not None and store.snapshot_path(old) == shared  # one file, two ratings

    ingest.housekeeper._purge_snapshots()

    assert store.snapshot_path(old) is None  # the old rating's picture is past retention …
    assert store.picture(shared) == PICTURE  # … but the newer rating still shows it


def test_a_picture_file_goes_once_no_rating_needs_it(ingest, store):
    long_ago = datetime.now(UTC) - timedelta(days=120)
    first = _rate_with_picture(ingest, "k-vb-q1", "vb-q1", snapshot_received=long_ago)
    second = _rate_with_picture(ingest, "k-kyh-q1", "kyh-q1", snapshot_received=long_ago + timedelta(days=1))
    shared = store.snapshot_path(first)
    assert shared is not None

    ingest.housekeeper._purge_snapshots()

    assert store.snapshot_path(first) is None and store.snapshot_path(second) is None
    assert store.picture(shared) is None
    if not shared.startswith("db:"):
        assert not Path(shared).exists()


def test_purge_returns_each_unneeded_file_once(store, tmp_path):
    with store.transaction():
        for i, received in enumerate(("2026-01-01T00:00:00.000Z", "2026-01-02T00:00:00.000Z")):
            store.add_snapshot(f"01936f0e-7c1a-7d4e-9a3b-1f2e3d4c5b6{i}", "a" * 64, "shared.jpg", 1, received)
        store.add_snapshot("01936f0e-7c1a-7d4e-9a3b-1f2e3d4c5b6f", "b" * 64, "kept.jpg", 1, "2026-03-01T00:00:00.000Z")
        store.add_snapshot("01936f0e-7c1a-7d4e-9a3b-1f2e3d4c5b6e", "b" * 64, "kept.jpg", 1, "2026-01-03T00:00:00.000Z")
    assert store.purge_snapshots("2026-02-01T00:00:00.000Z") == ["shared.jpg"]
    assert store.snapshot_path("01936f0e-7c1a-7d4e-9a3b-1f2e3d4c5b6f") == "kept.jpg"
    assert store.purge_snapshots("2026-04-01T00:00:00.000Z") == ["kept.jpg"]
