"""Generated MQTT messages for the standing fuzz suite: valid, near-valid and hostile.

Each message knows what it is meant to be (``Message.valid_ids``: the ratings built valid for the
kiosk that sends them), so the tests can check the invariants: every valid rating sent is stored
exactly once, everything else is in quarantine, nothing else changes.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from hypothesis import strategies as st

from kiosk import wire
from kiosk.ids import uuid7

# Kiosks of the example registry at their counters, and one nobody registered.
KIOSKS = {"k-vb-q1": "vb-q1", "k-vb-q2": "vb-q2", "k-sp-q1": "sp-q1", "k-kyh-q1": "kyh-q1"}
UNKNOWN_KIOSK = "k-nobody-1"
RATING_FIELDS = wire.RATING_FIELDS


@dataclass
class Message:
    topic: str
    payload: bytes
    kind: str  # ratings | snapshots | status
    kiosk: str
    valid_ids: list[str] = field(default_factory=list)  # built valid, for the kiosk that sends them
    item_ids: list[str] = field(default_factory=list)  # every id of a ratings item, valid or not
    refused_whole: bool = False  # nothing in it can be taken: the message itself goes to quarantine


# Hostile scalars: huge and negative integers, floats, surrogates, control characters, long text.
hostile_text = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["\ud800", "a\udfffb", '=HYPERLINK("http://x")', "\x00", "\u202e", "[" * 30, "é" * 2000]),
)
hostile_scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from([2**63, 2**64, -(2**63) - 1, 10**40, 0, -1]),
    st.floats(allow_nan=False, allow_infinity=False),
    hostile_text,
)
json_values = st.recursive(
    hostile_scalar,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


def now_utc() -> datetime:
    return datetime.now(UTC)


@st.composite
def valid_item(draw: st.DrawFn, counter: str, *, received_at: datetime) -> dict[str, object]:
    """A rating any honest kiosk at ``counter`` could send, pressed within the last 20 hours."""
    pressed = received_at - timedelta(seconds=draw(st.integers(0, 20 * 3600)), milliseconds=draw(st.integers(0, 999)))
    flag = draw(st.sampled_from([None, None, None, "lockout", "burst"]))
    has_picture = flag is None and draw(st.booleans())
    return {
        "id": uuid7(),
        "install": draw(st.sampled_from(["a1b2c3d4", "0badcafe", "ffffffff00"])),
        "seq": draw(st.integers(1, 2**63 - 1)),
        "counter": counter,
        "score": draw(st.integers(1, 4)),
        "pressed_at": wire.format_time(pressed),
        "clock": draw(st.sampled_from(wire.CLOCK_STATES)),
        "snapshot": {"sha256": "a" * 64, "bytes": draw(st.integers(1, wire.MAX_SNAPSHOT_BYTES))}
        if has_picture
        else None,
        "snapshot_error": None if has_picture or flag else draw(st.sampled_from(["timeout", "camera_unavailable"])),
        "flag": flag,
        "fw": draw(st.sampled_from(["0.1.0", "0.2.0-rc1"])),
    }


@st.composite
def mutated_item(draw: st.DrawFn, counter: str, *, received_at: datetime) -> dict[str, object]:
    """A valid rating with one field replaced, removed, or pushed out of range."""
    item = draw(valid_item(counter, received_at=received_at))
    name = draw(st.sampled_from(RATING_FIELDS))
    how = draw(st.sampled_from(["replace", "remove", "edge"]))
    if how == "remove":
        del item[name]
    elif how == "edge":
        item[name] = {
            "seq": draw(st.sampled_from([0, -1, 2**63, 2**64])),
            "score": draw(st.sampled_from([0, 5, True, 4.0])),
            "pressed_at": draw(
                st.sampled_from(
                    [
                        wire.format_time(received_at + timedelta(minutes=6)),  # time_in_future
                        "2000-01-01T00:00:00.000Z",  # before any enrolment
                        "2026-02-30T00:00:00.000Z",
                    ]
                )
            ),
            "counter": draw(st.sampled_from(["sp-q2", "no-such-counter", "tthcc-q1"])),  # another's, unknown
            "id": draw(st.sampled_from(["not-a-uuid", uuid7().upper()])),
        }.get(name, draw(json_values))
    else:
        item[name] = draw(json_values)
    return item


def encode(doc: object, *, ascii_only: bool) -> bytes:
    # ensure_ascii keeps lone surrogates as \\udXXX escapes; otherwise they become bytes that are not UTF-8
    return json.dumps(doc, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")


@st.composite
def ratings_message(draw: st.DrawFn, *, received_at: datetime) -> Message:
    kiosk = draw(st.sampled_from([*KIOSKS, UNKNOWN_KIOSK]))
    counter = KIOSKS.get(kiosk, "vb-q1")
    items: list[dict[str, object]] = []
    valid: list[str] = []
    for _ in range(draw(st.integers(1, 6))):
        if draw(st.integers(0, 3)) == 0:
            items.append(draw(mutated_item(counter, received_at=received_at)))
        else:
            item = draw(valid_item(counter, received_at=received_at))
            items.append(item)
            valid.append(str(item["id"]))
    envelope: dict[str, object] = {"v": 1, "kiosk": kiosk, "ratings": items}
    spoiled = draw(st.sampled_from(["none"] * 6 + ["v", "kiosk", "ratings", "extra"]))
    if spoiled == "v":
        envelope["v"] = draw(json_values)
    elif spoiled == "kiosk":
        envelope["kiosk"] = draw(st.sampled_from([k for k in KIOSKS if k != kiosk]))
    elif spoiled == "ratings":
        envelope["ratings"] = draw(json_values)
    elif spoiled == "extra":
        envelope[draw(st.sampled_from(["v", "kiosk", "ratings", "note", ""]))] = draw(json_values)
    intact = envelope.get("ratings") is items
    version = envelope.get("v")
    if (
        kiosk == UNKNOWN_KIOSK
        or not intact
        or isinstance(version, bool)
        or version != 1
        or envelope.get("kiosk") != kiosk
    ):
        valid = []  # conservative: the test only insists on ratings that are valid for sure
    payload = encode(envelope, ascii_only=draw(st.booleans()))
    try:
        payload.decode("utf-8")
    except UnicodeDecodeError:
        valid = []  # a surrogate written raw: the bytes are not UTF-8, so not JSON — refused whole
    ids = [str(i["id"]) for i in items if wire.is_rating_id(i.get("id"))] if intact else []
    return Message(f"sat/v1/k/{kiosk}/ratings", payload, "ratings", kiosk, valid, ids)


@st.composite
def status_message(draw: st.DrawFn, *, received_at: datetime) -> Message:
    kiosk = draw(st.sampled_from(list(KIOSKS)))
    doc: dict[str, object] = {
        "v": 1,
        "kiosk": kiosk,
        "state": draw(st.sampled_from(["online", "offline"])),
        "at": wire.format_time(received_at),
        "fw": "0.1.0",
        "backlog": {"ratings": draw(st.integers(0, 10**6)), "snapshots": 0},
        "camera": "ok",
        "selftest": {"at": wire.format_time(received_at), "ok": True, "failed": []},
    }
    if draw(st.booleans()):
        name = draw(st.sampled_from([*doc, "uptime_s", "last_press_at", "counter", "panel", "install"]))
        doc[name] = draw(json_values)
    return Message(f"sat/v1/k/{kiosk}/status", encode(doc, ascii_only=draw(st.booleans())), "status", kiosk)


@st.composite
def snapshot_message(draw: st.DrawFn) -> Message:
    kiosk = draw(st.sampled_from(list(KIOSKS)))
    rating_id = uuid7()
    payload = draw(st.binary(max_size=64))
    return Message(f"sat/v1/k/{kiosk}/snapshots/{rating_id}", payload, "snapshots", kiosk, refused_whole=True)


@st.composite
def rating_with_picture(draw: st.DrawFn, *, received_at: datetime) -> list[Message]:
    """A rating that announces a picture, then the picture — its own bytes, or bytes that differ."""
    kiosk = draw(st.sampled_from(list(KIOSKS)))
    picture = draw(st.binary(min_size=1, max_size=256))
    item = draw(valid_item(KIOSKS[kiosk], received_at=received_at))
    item.update(
        flag=None, snapshot_error=None, snapshot={"sha256": hashlib.sha256(picture).hexdigest(), "bytes": len(picture)}
    )
    rating = Message(
        f"sat/v1/k/{kiosk}/ratings",
        encode({"v": 1, "kiosk": kiosk, "ratings": [item]}, ascii_only=True),
        "ratings",
        kiosk,
        [str(item["id"])],
        [str(item["id"])],
    )
    sent = draw(st.sampled_from([picture, picture + b"x", picture[:-1] or b"y"]))
    snapshot = Message(
        f"sat/v1/k/{kiosk}/snapshots/{item['id']}", sent, "snapshots", kiosk, refused_whole=sent != picture
    )
    return [rating, snapshot]


@st.composite
def garbage_message(draw: st.DrawFn) -> Message:
    """Bytes that are barely or not at all JSON, on a ratings or status topic."""
    kiosk = draw(st.sampled_from(list(KIOSKS)))
    kind = draw(st.sampled_from(["ratings", "status"]))
    payload = draw(
        st.one_of(
            st.binary(max_size=200),
            st.builds(lambda n: b"[" * n, st.integers(1, 60_000)),
            st.builds(lambda n: b'{"v":1,"kiosk":"' + kiosk.encode() + b'","ratings":' + b"[" * n, st.integers(1, 99)),
            json_values.map(lambda v: encode(v, ascii_only=True)),
            st.sampled_from([b"NaN", b'{"v":1,"x":Infinity}', b"1" * 5000, b'{"v":1}' * 3, b""]),
        )
    )
    if kind == "status" and payload == b"":
        payload = b" "  # an empty retained status only clears the topic: not a message to account for
    return Message(f"sat/v1/k/{kiosk}/{kind}", payload, kind, kiosk, refused_whole=True)


def messages(*, received_at: datetime, max_size: int = 8) -> st.SearchStrategy[list[Message]]:
    one = st.one_of(
        ratings_message(received_at=received_at),
        ratings_message(received_at=received_at),
        status_message(received_at=received_at),
        snapshot_message(),
        garbage_message(),
    )
    return st.lists(
        one.map(lambda m: [m]) | rating_with_picture(received_at=received_at), min_size=1, max_size=max_size
    ).map(lambda groups: [m for group in groups for m in group])
