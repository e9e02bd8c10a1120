"""The wire contract v1 (docs/contract.md): topics, rating batches, acks and status.

Pure code, no I/O: the kiosk and the collector both import it, so the two sides cannot
drift apart. Every decoder raises :class:`WireError` (a ``ValueError``) whose ``reason``
is a short, stable code the collector stores in quarantine.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

VERSION = 1
DEFAULT_PREFIX = "sat/v1"
MAX_BATCH_RATINGS = 500
MAX_BATCH_BYTES = 256 * 1024
MAX_SNAPSHOT_BYTES = 1024 * 1024

KIOSK_ID = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")
UNIT_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
COUNTER_ID = UNIT_ID
INSTALL_ID = re.compile(r"^[0-9a-f]{8,64}$")
SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")

CLOCK_STATES = ("synced", "unsynced", "corrected")
FLAGS = ("lockout", "burst")
STATUS_STATES = ("online", "offline")


class WireError(ValueError):
    """A message that does not follow the contract.

    ``reason`` is a stable code (``not_json``, ``bad_version``, ``missing_field``,
    ``bad_field``, ``bad_score``, ``kiosk_mismatch``, ``batch_too_big``, ``bad_topic``).
    """

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


# --- time ------------------------------------------------------------------


def format_time(moment: datetime) -> str:
    """UTC, RFC 3339 with milliseconds and a ``Z``: ``2026-11-22T02:15:02.123Z``."""
    if moment.tzinfo is None:
        raise ValueError("format_time needs an aware datetime")
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def format_epoch(epoch_s: float) -> str:
    return format_time(datetime.fromtimestamp(epoch_s, UTC))


def parse_time(text: str) -> datetime:
    if not isinstance(text, str) or not _TIME.match(text):
        raise WireError("bad_field", f"time {text!r} is not RFC 3339 UTC with milliseconds")
    try:
        return datetime.fromisoformat(text)  # Python 3.11 reads the "Z"; the regex fixed the form
    except ValueError as exc:
        raise WireError("bad_field", f"time {text!r}: {exc}") from None


# --- topics ----------------------------------------------------------------


@dataclass(frozen=True)
class TopicRef:
    kiosk: str
    kind: str  # ratings | snapshots | status | acks | config
    rating_id: str | None = None


@dataclass(frozen=True)
class Topics:
    """Topic names under one prefix (``sat/v1`` unless a deployment changes it)."""

    prefix: str = DEFAULT_PREFIX

    def ratings(self, kiosk: str) -> str:
        return f"{self.prefix}/k/{kiosk}/ratings"

    def snapshot(self, kiosk: str, rating_id: str) -> str:
        return f"{self.prefix}/k/{kiosk}/snapshots/{rating_id}"

    def status(self, kiosk: str) -> str:
        return f"{self.prefix}/k/{kiosk}/status"

    def acks(self, kiosk: str) -> str:
        return f"{self.prefix}/k/{kiosk}/acks"

    def config(self, kiosk: str) -> str:
        return f"{self.prefix}/k/{kiosk}/config"

    def collector_filters(self) -> list[str]:
        """What a collector subscribes to (before any shared-subscription prefix)."""
        return [
            f"{self.prefix}/k/+/ratings",
            f"{self.prefix}/k/+/snapshots/+",
            f"{self.prefix}/k/+/status",
        ]

    def parse(self, topic: str) -> TopicRef:
        head = self.prefix + "/k/"
        if not topic.startswith(head):
            raise WireError("bad_topic", f"topic {topic!r} is not under {head!r}")
        parts = topic[len(head) :].split("/")
        kiosk = parts[0]
        if not KIOSK_ID.match(kiosk):
            raise WireError("bad_topic", f"kiosk id {kiosk!r} in topic is not valid")
        if len(parts) == 2 and parts[1] in ("ratings", "status", "acks", "config"):
            return TopicRef(kiosk, parts[1])
        if len(parts) == 3 and parts[1] == "snapshots":
            return TopicRef(kiosk, "snapshots", _check_uuid(parts[2], "rating id in topic"))
        raise WireError("bad_topic", f"topic {topic!r} is not a contract topic")


# --- ratings ---------------------------------------------------------------


@dataclass(frozen=True)
class SnapshotRef:
    sha256: str
    bytes: int

    def __post_init__(self) -> None:
        if not isinstance(self.sha256, str) or not SHA256_HEX.match(self.sha256):
            raise WireError("bad_field", "snapshot.sha256 must be 64 lowercase hex digits")
        if not _is_int(self.bytes) or not 0 < self.bytes <= MAX_SNAPSHOT_BYTES:
            raise WireError("bad_field", f"snapshot.bytes must be 1..{MAX_SNAPSHOT_BYTES}")


@dataclass(frozen=True)
class Rating:
    """One press as it travels: an accepted rating (``flag`` is None) or a refused press."""

    id: str
    install: str
    seq: int
    counter: str
    score: int
    pressed_at: str
    clock: str
    snapshot: SnapshotRef | None
    snapshot_error: str | None
    flag: str | None
    fw: str

    def __post_init__(self) -> None:
        _check_uuid(self.id, "id")
        _check(
            isinstance(self.install, str) and INSTALL_ID.match(self.install),
            "install",
            "8+ lowercase hex characters",
        )
        _check(_is_int(self.seq) and self.seq >= 1, "seq", "an integer >= 1")
        _check(isinstance(self.counter, str) and COUNTER_ID.match(self.counter), "counter", "a counter id")
        if not _is_int(self.score) or not 1 <= self.score <= 4:
            raise WireError("bad_score", f"score {self.score!r} is not one of 1, 2, 3, 4")
        parse_time(self.pressed_at)
        _check(self.clock in CLOCK_STATES, "clock", f"one of {', '.join(CLOCK_STATES)}")
        _check(self.flag is None or self.flag in FLAGS, "flag", "null, lockout or burst")
        _check(
            self.snapshot_error is None
            or (isinstance(self.snapshot_error, str) and 0 < len(self.snapshot_error) <= 64),
            "snapshot_error",
            "null or a short code",
        )
        _check(
            self.snapshot is None or self.snapshot_error is None,
            "snapshot_error",
            "null when there is a snapshot",
        )
        # A flagged press never has a picture, so it needs no reason for the missing one.
        _check(
            self.snapshot is not None or self.snapshot_error is not None or self.flag,
            "snapshot_error",
            "the reason when snapshot is null",
        )
        _check(self.flag is None or self.snapshot is None, "snapshot", "null for a flagged press")
        _check(isinstance(self.fw, str) and 0 < len(self.fw) <= 32, "fw", "a version string")

    @property
    def pressed_at_dt(self) -> datetime:
        return parse_time(self.pressed_at)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "install": self.install,
            "seq": self.seq,
            "counter": self.counter,
            "score": self.score,
            "pressed_at": self.pressed_at,
            "clock": self.clock,
            "snapshot": None
            if self.snapshot is None
            else {"sha256": self.snapshot.sha256, "bytes": self.snapshot.bytes},
            "snapshot_error": self.snapshot_error,
            "flag": self.flag,
            "fw": self.fw,
        }

    @classmethod
    def from_dict(cls, item: Any) -> Rating:
        if not isinstance(item, Mapping):
            raise WireError("bad_field", "a rating must be a JSON object")
        missing = [name for name in _RATING_FIELDS if name not in item]
        if missing:
            raise WireError("missing_field", f"rating lacks {', '.join(missing)}")
        snap = item["snapshot"]
        if snap is not None:
            if not isinstance(snap, Mapping) or "sha256" not in snap or "bytes" not in snap:
                raise WireError("bad_field", "snapshot must be null or {sha256, bytes}")
            snap = SnapshotRef(snap["sha256"], snap["bytes"])
        return cls(
            id=item["id"],
            install=item["install"],
            seq=item["seq"],
            counter=item["counter"],
            score=item["score"],
            pressed_at=item["pressed_at"],
            clock=item["clock"],
            snapshot=snap,
            snapshot_error=item["snapshot_error"],
            flag=item["flag"],
            fw=item["fw"],
        )


_RATING_FIELDS = (
    "id",
    "install",
    "seq",
    "counter",
    "score",
    "pressed_at",
    "clock",
    "snapshot",
    "snapshot_error",
    "flag",
    "fw",
)


@dataclass(frozen=True)
class RejectedRating:
    """One item of an otherwise well-formed batch that breaks the contract."""

    index: int
    item: Any
    reason: str
    detail: str

    @property
    def rating_id(self) -> str | None:
        """The item's id when it has a usable one, so the kiosk can still be acked."""
        if isinstance(self.item, Mapping):
            candidate = self.item.get("id")
            if isinstance(candidate, str):
                try:
                    return _check_uuid(candidate, "id")
                except WireError:
                    return None
        return None


@dataclass(frozen=True)
class RatingBatch:
    kiosk: str
    ratings: tuple[Rating, ...]
    rejected: tuple[RejectedRating, ...] = field(default=())


def encode_batch(kiosk: str, ratings: Sequence[Rating]) -> bytes:
    if not 1 <= len(ratings) <= MAX_BATCH_RATINGS:
        raise WireError("batch_too_big", f"a batch holds 1..{MAX_BATCH_RATINGS} ratings")
    payload = _dumps({"v": VERSION, "kiosk": kiosk, "ratings": [r.to_dict() for r in ratings]})
    if len(payload) > MAX_BATCH_BYTES:
        raise WireError("batch_too_big", f"{len(payload)} bytes > {MAX_BATCH_BYTES}")
    return payload


def batch_overhead(kiosk: str) -> int:
    """Bytes of a batch envelope, for packing ratings under ``MAX_BATCH_BYTES``."""
    return len(_dumps({"v": VERSION, "kiosk": kiosk, "ratings": []}))


def rating_size(rating: Rating) -> int:
    """Encoded size of one rating inside a batch, separator included."""
    return len(_dumps(rating.to_dict())) + 1


def decode_batch(payload: bytes, *, topic_kiosk: str | None = None) -> RatingBatch:
    """Decode a rating batch.

    The envelope (JSON, ``v``, ``kiosk``, size, count) must be right or the whole message
    is refused; a bad item inside a good envelope is returned in ``rejected`` so the
    good ratings beside it are not held hostage.
    """
    if len(payload) > MAX_BATCH_BYTES:
        raise WireError("batch_too_big", f"{len(payload)} bytes > {MAX_BATCH_BYTES}")
    doc = _loads(payload)
    _check_envelope(doc)
    kiosk = doc.get("kiosk")
    if not isinstance(kiosk, str) or not KIOSK_ID.match(kiosk):
        raise WireError("missing_field" if kiosk is None else "bad_field", "kiosk id missing or invalid")
    if topic_kiosk is not None and kiosk != topic_kiosk:
        raise WireError("kiosk_mismatch", f"payload kiosk {kiosk!r} != topic kiosk {topic_kiosk!r}")
    items = doc.get("ratings")
    if not isinstance(items, list):
        raise WireError("missing_field" if items is None else "bad_field", "ratings must be a list")
    if not 1 <= len(items) <= MAX_BATCH_RATINGS:
        raise WireError("batch_too_big", f"{len(items)} ratings; a batch holds 1..{MAX_BATCH_RATINGS}")
    good: list[Rating] = []
    bad: list[RejectedRating] = []
    for index, item in enumerate(items):
        try:
            good.append(Rating.from_dict(item))
        except WireError as exc:
            bad.append(RejectedRating(index, item, exc.reason, exc.detail))
    return RatingBatch(kiosk, tuple(good), tuple(bad))


# --- acks ------------------------------------------------------------------


@dataclass(frozen=True)
class Ack:
    ratings: tuple[str, ...] = ()
    snapshots: tuple[str, ...] = ()


def encode_ack(ratings: Iterable[str] = (), snapshots: Iterable[str] = ()) -> bytes:
    return _dumps({"v": VERSION, "ratings": list(ratings), "snapshots": list(snapshots)})


def decode_ack(payload: bytes) -> Ack:
    doc = _loads(payload)
    _check_envelope(doc)
    out: dict[str, tuple[str, ...]] = {}
    for name in ("ratings", "snapshots"):
        ids = doc.get(name, [])
        if not isinstance(ids, list):
            raise WireError("bad_field", f"ack {name} must be a list")
        out[name] = tuple(_check_uuid(i, f"ack {name} id") for i in ids)
    return Ack(out["ratings"], out["snapshots"])


# --- status ----------------------------------------------------------------

_STATUS_INTS = ("uptime_s", "disk_free_mb", "suppressed_presses")


def encode_status(status: Mapping[str, Any]) -> bytes:
    doc = {"v": VERSION, **status}
    validate_status(doc)
    return _dumps(doc)


def offline_will(kiosk: str) -> bytes:
    return _dumps({"v": VERSION, "kiosk": kiosk, "state": "offline"})


def decode_status(payload: bytes, *, topic_kiosk: str | None = None) -> dict[str, Any]:
    doc = _loads(payload)
    validate_status(doc)
    if topic_kiosk is not None and doc["kiosk"] != topic_kiosk:
        raise WireError("kiosk_mismatch", f"payload kiosk {doc['kiosk']!r} != topic {topic_kiosk!r}")
    return doc


def validate_status(doc: Any) -> None:
    _check_envelope(doc)
    kiosk = doc.get("kiosk")
    if not isinstance(kiosk, str) or not KIOSK_ID.match(kiosk):
        raise WireError("missing_field" if kiosk is None else "bad_field", "status kiosk id")
    if doc.get("state") not in STATUS_STATES:
        raise WireError("bad_field", "status state must be online or offline")
    if "at" in doc:
        parse_time(doc["at"])
    for name in _STATUS_INTS:
        if name in doc and not (_is_int(doc[name]) and doc[name] >= 0):
            raise WireError("bad_field", f"status {name} must be a non-negative integer")
    backlog = doc.get("backlog")
    if backlog is not None and not (
        isinstance(backlog, Mapping) and all(_is_int(backlog.get(k, 0)) for k in ("ratings", "snapshots"))
    ):
        raise WireError("bad_field", "status backlog must be {ratings, snapshots}")


# --- helpers ---------------------------------------------------------------


def _dumps(doc: Any) -> bytes:
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()


def _loads(payload: bytes) -> Any:
    try:
        return json.loads(payload)
    except (UnicodeDecodeError, ValueError) as exc:
        raise WireError("not_json", f"payload is not JSON ({exc})") from None


def _check_envelope(doc: Any) -> None:
    if not isinstance(doc, dict):
        raise WireError("bad_field", "payload must be a JSON object")
    if "v" not in doc:
        raise WireError("missing_field", "v is missing")
    if doc["v"] != VERSION or isinstance(doc["v"], bool):
        raise WireError("bad_version", f"v={doc['v']!r}, this side speaks v{VERSION}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check(ok: Any, name: str, expected: str) -> None:
    if not ok:
        raise WireError("bad_field", f"{name} must be {expected}")


def is_rating_id(value: Any) -> bool:
    try:
        _check_uuid(value, "id")
    except WireError:
        return False
    return True


def _check_uuid(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise WireError("bad_field", f"{name} must be a UUID string")
    try:
        parsed = uuid.UUID(value)
    except ValueError:
        raise WireError("bad_field", f"{name} {value!r} is not a UUID") from None
    if str(parsed) != value:
        raise WireError("bad_field", f"{name} {value!r} must be a lowercase hyphenated UUID")
    return value
