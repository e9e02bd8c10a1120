"""The wire contract v1 (docs/contract.md): topics, rating batches, acks and status.

Pure code, no I/O: the kiosk and the collector both import it, so the two sides cannot
drift apart. Every decoder raises :class:`WireError` (a ``ValueError``) whose ``reason``
is a short, stable code the collector stores in quarantine.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

VERSION = 1
DEFAULT_PREFIX = "sat/v1"
MAX_BATCH_RATINGS = 500
MAX_BATCH_BYTES = 256 * 1024
MAX_SNAPSHOT_BYTES = 1024 * 1024
MAX_STATUS_BYTES = 16 * 1024
MAX_ACK_BYTES = 64 * 1024
# Bounds that keep every value inside what the stores hold and what a page can show.
MAX_INT = 2**63 - 1  # a signed 64-bit column (SQLite INTEGER, PostgreSQL bigint)
MAX_DEPTH = 8  # JSON nesting: a batch needs 4 (batch, list, rating, snapshot), a status 4
MAX_TEXT = 1024  # characters in any JSON string, key or value, unless a field says less

KIOSK_ID = re.compile(r"\A[a-z0-9][a-z0-9-]{1,62}\Z", re.ASCII)  # \Z: no trailing newline; ASCII digits only
UNIT_ID = re.compile(r"\A[A-Za-z0-9._-]{1,64}\Z", re.ASCII)  # \Z: no trailing newline; ASCII digits only
COUNTER_ID = UNIT_ID
PROBE = re.compile(r"\A[0-9a-f]{8,32}\Z", re.ASCII)  # a status's probe, echoed by the ack that answers it
_UUID = re.compile(r"\A[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z", re.ASCII)  # as str(uuid.UUID)
INSTALL_ID = re.compile(r"\A[0-9a-f]{8,64}\Z", re.ASCII)  # \Z: no trailing newline; ASCII digits only
SHA256_HEX = re.compile(r"\A[0-9a-f]{64}\Z", re.ASCII)  # \Z: no trailing newline; ASCII digits only
_TIME = re.compile(
    r"\A\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z\Z", re.ASCII
)  # \Z: no trailing newline; ASCII digits only

CLOCK_STATES = ("synced", "unsynced", "corrected")
FLAGS = ("lockout", "burst")
STATUS_STATES = ("online", "offline")


class WireError(ValueError):
    """A message that does not follow the contract.

    ``reason`` is a stable code (``not_json``, ``too_deep``, ``bad_text``, ``bad_version``,
    ``missing_field``, ``bad_field``, ``bad_score``, ``kiosk_mismatch``, ``batch_too_big``,
    ``status_too_big``, ``bad_topic``).
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
    kind: str  # ratings | snapshots | status | acks | config | csr | cert
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

    def csr(self, kiosk: str) -> str:
        """A kiosk's certificate request (only that kiosk may write it)."""
        return f"{self.prefix}/k/{kiosk}/csr"

    def cert(self, kiosk: str) -> str:
        """The collector's answer to it (only that kiosk may read it)."""
        return f"{self.prefix}/k/{kiosk}/cert"

    def collector_filters(self) -> list[str]:
        """What a collector subscribes to (before any shared-subscription prefix)."""
        return [
            f"{self.prefix}/k/+/ratings",
            f"{self.prefix}/k/+/snapshots/+",
            f"{self.prefix}/k/+/status",
            f"{self.prefix}/k/+/csr",
        ]

    def parse(self, topic: str) -> TopicRef:
        head = self.prefix + "/k/"
        if not topic.startswith(head):
            raise WireError("bad_topic", f"topic {topic!r} is not under {head!r}")
        parts = topic[len(head) :].split("/")
        kiosk = parts[0]
        if not KIOSK_ID.match(kiosk):
            raise WireError("bad_topic", f"kiosk id {kiosk!r} in topic is not valid")
        if len(parts) == 2 and parts[1] in ("ratings", "status", "acks", "config", "csr", "cert"):
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
        # The common case in one expression (ingest checks every rating); only a rating that fails
        # it goes through the checks one by one, which name what is wrong. It may be stricter than
        # they are (exact types), never looser.
        snap, error, flag, fw = self.snapshot, self.snapshot_error, self.flag, self.fw
        if not (
            type(self.id) is str
            and _UUID.match(self.id)
            and type(self.install) is str
            and INSTALL_ID.match(self.install)
            and type(self.seq) is int
            and 1 <= self.seq <= MAX_INT
            and type(self.counter) is str
            and COUNTER_ID.match(self.counter)
            and type(self.score) is int
            and 1 <= self.score <= 4
            and type(self.clock) is str
            and self.clock in CLOCK_STATES
            and (flag is None or (type(flag) is str and flag in FLAGS))
            and (error is None or (type(error) is str and 0 < len(error) <= 64 and error.isprintable()))
            and (snap is None or error is None)
            and (snap is not None or error is not None or flag)
            and (flag is None or snap is None)
            and type(fw) is str
            and 0 < len(fw) <= 32
            and fw.isprintable()
        ):
            self._explain()
        # Parsed once: ingest compares it and the store takes its local day.
        self.__dict__["pressed_at_dt"] = parse_time(self.pressed_at)

    def _explain(self) -> None:
        """Raise the WireError naming the first field that breaks the contract."""
        _check_uuid(self.id, "id")
        _check(
            isinstance(self.install, str) and INSTALL_ID.match(self.install),
            "install",
            "8+ lowercase hex characters",
        )
        _check(_is_int(self.seq) and 1 <= self.seq <= MAX_INT, "seq", "an integer from 1 to 2^63-1")
        _check(isinstance(self.counter, str) and COUNTER_ID.match(self.counter), "counter", "a counter id")
        if not _is_int(self.score) or not 1 <= self.score <= 4:
            raise WireError("bad_score", f"score {self.score!r} is not one of 1, 2, 3, 4")
        parse_time(self.pressed_at)
        _check(self.clock in CLOCK_STATES, "clock", f"one of {', '.join(CLOCK_STATES)}")
        _check(self.flag is None or self.flag in FLAGS, "flag", "null, lockout or burst")
        _check(
            self.snapshot_error is None
            or (
                isinstance(self.snapshot_error, str)
                and 0 < len(self.snapshot_error) <= 64
                and self.snapshot_error.isprintable()
            ),
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
        _check(isinstance(self.fw, str) and 0 < len(self.fw) <= 32 and self.fw.isprintable(), "fw", "a version string")

    @cached_property
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


def _known_fields_only(item: Any) -> bool:
    """A rating object with no key but the contract's (a snapshot with only sha256 and bytes)."""
    if type(item) is not dict or not _RATING_KEYS.issuperset(item):
        return False
    snap = item.get("snapshot")
    return snap is None or (type(snap) is dict and _SNAPSHOT_KEYS.issuperset(snap))


RATING_FIELDS = _RATING_FIELDS = (
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
_RATING_KEYS = frozenset(_RATING_FIELDS)
_SNAPSHOT_KEYS = frozenset(("sha256", "bytes"))


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
    # Items are checked one by one below; fields of the envelope other than v, kiosk and ratings
    # are a later version's optional ones, ignored (and kept only in the raw bytes).
    doc = _loads(payload, check_tree=False)
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
            if _known_fields_only(item):
                # Every field a Rating has bounds its own text and numbers, so the tree walk is
                # needed only to name the error when the item fails (its reason comes first).
                try:
                    good.append(Rating.from_dict(item))
                except WireError:
                    _check_tree(item)
                    raise
            else:
                _check_tree(item)
                good.append(Rating.from_dict(item))
        except WireError as exc:
            bad.append(RejectedRating(index, item, exc.reason, exc.detail))
    return RatingBatch(kiosk, tuple(good), tuple(bad))


# --- acks ------------------------------------------------------------------


@dataclass(frozen=True)
class Ack:
    ratings: tuple[str, ...] = ()
    snapshots: tuple[str, ...] = ()
    at: float | None = None  # the collector's clock when it sent the ack (epoch seconds); None from older collectors
    status: str | None = None  # the probe of the status this ack answers


def encode_ack(
    ratings: Iterable[str] = (), snapshots: Iterable[str] = (), *, at: float | None = None, status: str | None = None
) -> bytes:
    """``at`` (epoch seconds, default now) is the collector's time; kiosks without NTP set their clock
    by it. ``status`` echoes the ``probe`` of the status this ack answers, so the kiosk knows the
    round trip."""
    doc: dict[str, Any] = {
        "v": VERSION,
        "ratings": list(ratings),
        "snapshots": list(snapshots),
        "at": format_epoch(time.time() if at is None else at),
    }
    if status is not None:
        doc["status"] = status
    return _dumps(doc)


def decode_ack(payload: bytes) -> Ack:
    if len(payload) > MAX_ACK_BYTES:
        raise WireError("bad_field", f"ack of {len(payload)} bytes > {MAX_ACK_BYTES}")
    doc = _loads(payload)
    _check_envelope(doc)
    out: dict[str, tuple[str, ...]] = {}
    for name in ("ratings", "snapshots"):
        ids = doc.get(name, [])
        if not isinstance(ids, list):
            raise WireError("bad_field", f"ack {name} must be a list")
        out[name] = tuple(_check_uuid(i, f"ack {name} id") for i in ids)
    # The additions are optional: a malformed "at" or "status" is dropped, never the ids beside it
    # (refusing the whole ack would leave its ratings to be sent again for ever).
    at = None
    if doc.get("at") is not None:
        try:
            at = _time_in_years(doc["at"], "ack at").timestamp()
        except WireError:
            at = None
    status = doc.get("status")
    if status is not None and not (isinstance(status, str) and PROBE.match(status)):
        status = None
    return Ack(out["ratings"], out["snapshots"], at, status)


# --- certificate renewal -----------------------------------------------------

MAX_CERT_MESSAGE_BYTES = 16 * 1024
_PEM = re.compile(r"\A-----BEGIN ([A-Z ]+)-----\n[A-Za-z0-9+/=\n]+-----END \1-----\n?\Z", re.ASCII)


@dataclass(frozen=True)
class CertRequest:
    csr: str  # PEM: the new key's request
    cert: str  # PEM: the certificate the kiosk holds now
    proof: bytes  # the request's PEM bytes signed with the key of ``cert`` (ECDSA P-256, SHA-256)


def encode_csr(kiosk: str, csr_pem: str, *, cert_pem: str, proof: bytes) -> bytes:
    return _dumps(
        {"v": VERSION, "kiosk": kiosk, "csr": csr_pem, "cert": cert_pem, "proof": base64.b64encode(proof).decode()}
    )


def decode_csr(payload: bytes, *, topic_kiosk: str) -> CertRequest:
    """``{"v": 1, "kiosk", "csr", "cert", "proof"}``: the new request, the certificate held now
    and the proof that the sender holds its key; their content is the CA's to judge."""
    csr = _decode_pem_message(payload, topic_kiosk, "csr", "CERTIFICATE REQUEST")
    doc = _loads(payload, check_tree=False)
    cert = _decode_pem_message(payload, topic_kiosk, "cert", "CERTIFICATE", doc=doc)
    proof = doc.get("proof")
    if not (isinstance(proof, str) and len(proof) <= 200):
        raise WireError("missing_field" if proof is None else "bad_field", "csr proof must be base64 of a signature")
    try:
        raw = base64.b64decode(proof, validate=True)
    except (binascii.Error, ValueError):
        raise WireError("bad_field", "csr proof is not base64") from None
    return CertRequest(csr, cert, raw)


def encode_cert(kiosk: str, *, cert_pem: str | None = None, error: str | None = None) -> bytes:
    doc: dict[str, Any] = {"v": VERSION, "kiosk": kiosk}
    if cert_pem is not None:
        doc["cert"] = cert_pem
    if error is not None:
        doc["error"] = error[:300]
    return _dumps(doc)


def decode_cert(payload: bytes, *, kiosk: str) -> tuple[str | None, str | None]:
    """(certificate PEM, None) or (None, why the collector refused the request)."""
    if len(payload) > MAX_CERT_MESSAGE_BYTES:
        raise WireError("too_big", f"certificate message of {len(payload)} bytes")
    doc = _loads(payload, check_tree=False)  # a PEM is longer than MAX_TEXT; the regex bounds it
    _check_envelope(doc)
    if doc.get("kiosk") != kiosk:
        raise WireError("kiosk_mismatch", "certificate message for another kiosk")
    if doc.get("error") is not None:
        error = doc["error"]
        _check(
            isinstance(error, str) and len(error) <= 300 and error.isprintable(),
            "certificate error",
            "printable text of at most 300 characters",
        )
        return None, error
    return _decode_pem_message(payload, kiosk, "cert", "CERTIFICATE", doc=doc), None


def _decode_pem_message(payload: bytes, kiosk: str, field_name: str, label: str, doc: Any = None) -> str:
    if len(payload) > MAX_CERT_MESSAGE_BYTES:
        raise WireError("too_big", f"{field_name} message of {len(payload)} bytes > {MAX_CERT_MESSAGE_BYTES}")
    if doc is None:
        doc = _loads(payload, check_tree=False)  # a PEM is longer than MAX_TEXT; the regex bounds it
        _check_envelope(doc)
        if doc.get("kiosk") != kiosk:
            raise WireError("kiosk_mismatch", f"payload kiosk {doc.get('kiosk')!r} != topic {kiosk!r}")
    pem = doc.get(field_name)
    if not isinstance(pem, str):
        raise WireError("missing_field" if pem is None else "bad_field", f"{field_name} must be PEM text")
    found = _PEM.match(pem)
    if found is None or found.group(1) != label:
        raise WireError("bad_field", f"{field_name} must be one PEM {label}")
    return pem


# --- status ----------------------------------------------------------------

_STATUS_INTS = ("uptime_s", "disk_free_mb", "suppressed_presses", "clock_error_ms")
# Short texts a page shows: (field, longest length). Unknown fields pass (v1 peers may add
# optional ones) but every string anywhere in the status is bounded by MAX_TEXT.
_STATUS_TEXTS = (("fw", 32), ("boot", 64), ("camera", 32), ("panel", 32), ("clock", 16), ("clock_source", 16))
CLOCK_SOURCES = ("ntp", "collector", "none")  # where a kiosk's wall time comes from (status clock_source)


def encode_status(status: Mapping[str, Any]) -> bytes:
    doc = {"v": VERSION, **status}
    validate_status(doc)
    return _dumps(doc)


def offline_will(kiosk: str) -> bytes:
    return _dumps({"v": VERSION, "kiosk": kiosk, "state": "offline"})


def decode_status(payload: bytes, *, topic_kiosk: str | None = None) -> dict[str, Any]:
    if len(payload) > MAX_STATUS_BYTES:
        raise WireError("status_too_big", f"{len(payload)} bytes > {MAX_STATUS_BYTES}")
    doc = _loads(payload)
    validate_status(doc)
    if topic_kiosk is not None and doc["kiosk"] != topic_kiosk:
        raise WireError("kiosk_mismatch", f"payload kiosk {doc['kiosk']!r} != topic {topic_kiosk!r}")
    return doc


def validate_status(doc: Any) -> None:
    """Every field a page shows is checked here: what passes can be stored and rendered."""
    _check_envelope(doc)
    _check_tree(doc)
    kiosk = doc.get("kiosk")
    if not isinstance(kiosk, str) or not KIOSK_ID.match(kiosk):
        raise WireError("missing_field" if kiosk is None else "bad_field", "status kiosk id")
    if doc.get("state") not in STATUS_STATES:
        raise WireError("bad_field", "status state must be online or offline")
    for name in ("at", "last_press_at"):
        if doc.get(name) is not None:
            _status_time(doc[name], name)
    for name in _STATUS_INTS:
        if name in doc and not _is_count(doc[name]):
            raise WireError("bad_field", f"status {name} must be an integer from 0 to 2^63-1")
    for name, longest in _STATUS_TEXTS:
        value = doc.get(name)
        if value is not None and not (isinstance(value, str) and len(value) <= longest and value.isprintable()):
            raise WireError("bad_field", f"status {name} must be printable text of at most {longest} characters")
    if doc.get("install") is not None:
        _check(isinstance(doc["install"], str) and INSTALL_ID.match(doc["install"]), "status install", "hex")
    if doc.get("counter") is not None:
        _check(isinstance(doc["counter"], str) and COUNTER_ID.match(doc["counter"]), "status counter", "a counter id")
    if doc.get("probe") is not None:
        _check(isinstance(doc["probe"], str) and PROBE.match(doc["probe"]), "status probe", "8-32 hex digits")
    backlog = doc.get("backlog")
    if backlog is not None:
        if not (isinstance(backlog, Mapping) and all(_is_count(backlog.get(k, 0)) for k in ("ratings", "snapshots"))):
            raise WireError("bad_field", "status backlog must be {ratings, snapshots} counts")
        if backlog.get("oldest_at") is not None:
            _status_time(backlog["oldest_at"], "backlog.oldest_at")
    selftest = doc.get("selftest")
    if selftest is not None:
        _validate_selftest(selftest)
    settings = doc.get("settings")
    if settings is not None:
        _validate_settings_state(settings)
    if doc.get("cert_not_after") is not None:
        _status_time(doc["cert_not_after"], "cert_not_after")
    update = doc.get("update")
    if update is not None:
        # A state word of a later release is stored as it is, not refused (versions differ in a fleet).
        if not isinstance(update, Mapping) or not _is_state_word(update.get("state")):
            raise WireError("bad_field", f"status update.state must be a word such as {', '.join(UPDATE_STATES)}")
        _check_short_text(update.get("version"), "update.version", 32)
        for name in ("bytes", "retry_in_s"):
            if update.get(name) is not None and not _is_count(update[name]):
                raise WireError("bad_field", f"status update.{name} must be a count")
        _check_short_text(update.get("error"), "update.error")
    renewal = doc.get("renewal")
    if renewal is not None:
        if not isinstance(renewal, Mapping) or not _is_state_word(renewal.get("state")):
            raise WireError("bad_field", f"status renewal.state must be a word such as {', '.join(RENEWAL_STATES)}")
        if renewal.get("at") is not None:
            _status_time(renewal["at"], "renewal.at")
        _check_short_text(renewal.get("error"), "renewal.error")


STATUS_YEARS = (1970, 2199)  # a Pi without a clock may say 1970; nothing a page shows goes beyond


def _status_time(value: Any, name: str) -> None:
    """A status time every page can show in local time: the year 9999 (or 0001) would overflow
    when moved to UTC+7."""
    _time_in_years(value, f"status {name}")


def _time_in_years(value: Any, what: str) -> datetime:
    moment = parse_time(value)
    if not STATUS_YEARS[0] <= moment.year <= STATUS_YEARS[1]:
        raise WireError("bad_field", f"{what} {value!r} is outside the years {STATUS_YEARS[0]}-{STATUS_YEARS[1]}")
    return moment


SETTINGS_STATES = ("applied", "refused")
RENEWAL_STATES = ("requested", "renewed", "refused", "failed")
UPDATE_STATES = ("downloading", "installing", "waiting", "switching", "trial", "updated", "rolled_back", "failed")


def _check_short_text(value: Any, name: str, longest: int = 300) -> None:
    if value is not None and not (isinstance(value, str) and len(value) <= longest and value.isprintable()):
        raise WireError("bad_field", f"status {name} must be printable text of at most {longest} characters")


def _validate_settings_state(state: Any) -> None:
    """Which remote settings the kiosk uses: ``{"revision", "state": applied|refused, "error"?}``."""
    if not isinstance(state, Mapping):
        raise WireError("bad_field", "status settings must be an object")
    if state.get("revision") is not None and not is_seq(state["revision"]):
        raise WireError("bad_field", "status settings.revision must be a positive integer")
    if not _is_state_word(state.get("state")):
        raise WireError("bad_field", "status settings.state must be a word such as applied or refused")
    _check_short_text(state.get("error"), "settings.error")
    ignored = state.get("ignored")
    if ignored is not None and not (
        isinstance(ignored, list) and len(ignored) <= 32 and all(_is_state_word(n, 64, dots=True) for n in ignored)
    ):
        raise WireError("bad_field", "status settings.ignored must be a list of setting names")


_STATE_WORD = re.compile(r"\A[a-z][a-z_]*\Z", re.ASCII)
_SETTING_NAME = re.compile(r"\A[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)?\Z", re.ASCII)


def is_setting_name(value: Any) -> bool:
    """``section`` or ``section.key``: what a status may list as ignored."""
    return _is_state_word(value, 64, dots=True)


def _is_state_word(value: Any, longest: int = 24, *, dots: bool = False) -> bool:
    pattern = _SETTING_NAME if dots else _STATE_WORD
    return isinstance(value, str) and len(value) <= longest and pattern.match(value) is not None


def _validate_selftest(report: Any) -> None:
    """The self-test summary a kiosk keeps in its status: ``{"at", "ok", "failed": [names]}``."""
    if not isinstance(report, Mapping):
        raise WireError("bad_field", "status selftest must be an object")
    if report.get("at") is not None:
        _status_time(report["at"], "selftest.at")
    if report.get("ok") is not None and not isinstance(report["ok"], bool):
        raise WireError("bad_field", "status selftest.ok must be true or false")
    failed = report.get("failed")
    if failed is not None and not (
        isinstance(failed, list) and len(failed) <= 16 and all(isinstance(n, str) and len(n) <= 32 for n in failed)
    ):
        raise WireError("bad_field", "status selftest.failed must be a list of up to 16 short names")


# --- helpers ---------------------------------------------------------------


def _dumps(doc: Any) -> bytes:
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()


def _loads(payload: bytes, *, check_tree: bool = True) -> Any:
    """JSON that every later step can hold: nesting, text and numbers bounded.

    The nesting is measured before parsing, so a payload of 50,000 ``[`` never reaches the
    parser's recursion; NaN and Infinity (which Python's parser accepts) are refused.
    """
    if not isinstance(payload, bytes | bytearray | memoryview):
        raise WireError("not_json", "payload is not bytes")
    payload = bytes(payload)
    # The contract's JSON is UTF-8. Python's parser would also take UTF-16 and UTF-32 bytes, whose
    # brackets the depth measure below (which reads UTF-8 bytes) would not see.
    try:
        text = payload.decode("utf-8", "surrogatepass")  # a lone surrogate: bad_text, further on
    except UnicodeDecodeError as exc:
        raise WireError("not_json", f"payload is not UTF-8 ({str(exc)[:200]})") from None
    _check_depth(payload)
    try:
        doc = json.loads(text, parse_constant=_no_constant)
    except RecursionError:  # pragma: no cover - _check_depth keeps it away; kept as the last guard
        raise WireError("too_deep", "payload nests too deep") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise WireError("not_json", f"payload is not JSON ({str(exc)[:200]})") from None
    if check_tree:
        _check_tree(doc)
    return doc


def check_tree(node: Any) -> None:
    """The text and number bounds of the contract over one part of a parsed document."""
    _check_tree(node)


def loads(payload: bytes, *, long_texts: bool = False) -> Any:
    """Parse JSON within the contract's bounds (nesting, text, numbers) or raise WireError.
    ``long_texts``: strings may be longer than MAX_TEXT (a config message carries a release's
    certificate and manifest); the caller bounds the payload and checks every field it uses."""
    return _loads(payload, check_tree=not long_texts)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


_NOT_BRACKETS = bytes(c for c in range(256) if c not in b"[]{}")


def _check_depth(payload: bytes) -> None:
    """Refuse nesting deeper than MAX_DEPTH without parsing: brackets outside strings are counted.

    Strings are cut out at C speed: escaped backslashes and quotes go first, then the text splits
    on the remaining quotes into outside, inside, outside, … (exact for valid JSON; for invalid
    JSON the parser gives the error). Only the brackets left are walked in Python."""
    if payload.count(b"[") + payload.count(b"{") <= MAX_DEPTH:
        return  # the common small case: cannot nest deeper than the brackets it has
    outside = b"".join(payload.replace(b"\\\\", b"").replace(b'\\"', b"").split(b'"')[0::2])
    brackets = outside.translate(None, _NOT_BRACKETS)
    if len(brackets) <= MAX_DEPTH:
        return
    depth = 0
    for byte in brackets:
        if byte in b"[{":
            depth += 1
            if depth > MAX_DEPTH:
                raise WireError("too_deep", f"JSON nests deeper than {MAX_DEPTH} levels")
        else:
            depth -= 1


def _check_tree(doc: Any) -> None:
    """Every string valid Unicode (no lone surrogates) and at most MAX_TEXT long; every
    integer within 64 bits. Iterative, so its cost is the size of the document."""
    stack = [doc]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            _check_text(node)
        elif isinstance(node, dict):
            for key, value in node.items():
                _check_text(key)
                stack.append(value)
        elif isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, int) and not isinstance(node, bool) and not -MAX_INT - 1 <= node <= MAX_INT:
            raise WireError("bad_field", "an integer is outside 64 bits")


def _check_text(text: str) -> None:
    if len(text) > MAX_TEXT:
        raise WireError("bad_text", f"a string of {len(text)} characters (at most {MAX_TEXT})")
    if text.isascii():
        return  # no surrogate in ASCII: the common case needs no encoding
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise WireError("bad_text", "a string is not valid Unicode (a lone surrogate)") from None


def _check_envelope(doc: Any) -> None:
    if not isinstance(doc, dict):
        raise WireError("bad_field", "payload must be a JSON object")
    if "v" not in doc:
        raise WireError("missing_field", "v is missing")
    if doc["v"] != VERSION or isinstance(doc["v"], bool):
        raise WireError("bad_version", f"v={doc['v']!r}, this side speaks v{VERSION}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_count(value: Any) -> bool:
    return _is_int(value) and 0 <= value <= MAX_INT


def _check(ok: Any, name: str, expected: str) -> None:
    if not ok:
        raise WireError("bad_field", f"{name} must be {expected}")


def is_seq(value: Any) -> bool:
    return _is_int(value) and 1 <= value <= MAX_INT


def is_rating_id(value: Any) -> bool:
    try:
        _check_uuid(value, "id")
    except WireError:
        return False
    return True


def _check_uuid(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise WireError("bad_field", f"{name} must be a UUID string")
    if _UUID.match(value):
        return value  # the one form str(uuid.UUID(...)) gives back
    try:
        parsed = uuid.UUID(value)
    except ValueError:
        raise WireError("bad_field", f"{name} {value!r} is not a UUID") from None
    if str(parsed) != value:
        raise WireError("bad_field", f"{name} {value!r} must be a lowercase hyphenated UUID")
    return value


# --- collector presence (contract addition) ---------------------------------------------------

COLLECTOR_STATES = ("online", "offline")


def collector_status_topic(prefix: str = DEFAULT_PREFIX) -> str:
    """Retained: is a collector taking messages, and which connection of it (``session``)."""
    return f"{prefix}/collector/status"


def encode_collector_status(state: str, session: str = "") -> bytes:
    if state not in COLLECTOR_STATES:
        raise WireError("bad_field", f"collector state must be online or offline, not {state!r}")
    doc: dict[str, Any] = {"v": VERSION, "state": state}
    if session:
        doc["session"] = session
    return _dumps(doc)


def decode_collector_status(payload: bytes) -> tuple[str, str]:
    """(state, session) of a collector status; session is "" when it carries none (a will)."""
    if len(payload) > 1024:
        raise WireError("status_too_big", f"collector status of {len(payload)} bytes")
    doc = _loads(payload)
    _check_envelope(doc)
    state = doc.get("state")
    if state not in COLLECTOR_STATES:
        raise WireError("bad_field", "collector state must be online or offline")
    session = doc.get("session", "")
    if not isinstance(session, str) or len(session) > 64:
        raise WireError("bad_field", "collector session must be a short string")
    return state, session
