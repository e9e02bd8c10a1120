"""The kiosk's input boundaries under generated input: acks from the broker and lines from the
serial panel. The kiosk lives; only its own unacked ratings named in a valid ack are cleared;
only exact P1..P4 lines are presses."""

from __future__ import annotations

import json
import uuid

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kiosk import wire
from kiosk.clock import CollectorTime
from kiosk.mqtt import MqttSettings
from kiosk.outbox import SqliteOutbox
from kiosk.publisher import MqttPublisher, _DrainState
from kiosk.serial_panel import SerialButtonPanel
from tests.conftest import wait_for
from tests.kiosk.test_outbox import record

FUZZ = settings(
    derandomize=True,
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
junk = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=40), st.sampled_from(["\ud800", "[" * 20])),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)


@st.composite
def ack_payload(draw: st.DrawFn, own: list[str]) -> tuple[bytes, set[str]]:
    """An ack, near-valid or garbage, and the ids a correct kiosk clears when it gets it."""
    kind = draw(st.sampled_from(["valid", "valid", "bad_id", "bad_v", "bad_at", "bad_status", "junk", "bytes", "deep"]))
    ids = draw(st.lists(st.sampled_from(own + [str(uuid.uuid4()) for _ in range(2)]), max_size=6))
    if kind == "valid":
        return wire.encode_ack(ids), set(ids) & set(own)
    if kind == "bad_id":
        return json.dumps({"v": 1, "ratings": [*ids, draw(junk)]}).encode(), set()
    if kind == "bad_at":
        at = draw(st.one_of(st.integers(), st.text(max_size=30), st.sampled_from(["9999-01-01T00:00:00.000Z", "now"])))
        # A bad optional field is dropped; the ids beside it still count.
        return json.dumps({"v": 1, "ratings": ids, "at": at}).encode("utf-8", "surrogatepass"), set(ids) & set(own)
    if kind == "bad_status":
        probe = draw(st.one_of(st.integers(), st.text(max_size=40), st.just("ABCDEF12")))
        return json.dumps({"v": 1, "ratings": ids, "status": probe}).encode("utf-8", "surrogatepass"), set(ids) & set(
            own
        )
    if kind == "bad_v":
        return json.dumps({"v": draw(junk), "ratings": ids}).encode(), set()
    if kind == "junk":
        return json.dumps(draw(junk)).encode("utf-8", "surrogatepass"), set()
    if kind == "deep":
        return b'{"v":1,"ratings":' + b"[" * draw(st.integers(9, 5000)), set()
    return draw(st.binary(max_size=100)), set()


@FUZZ
@given(data=st.data())
def test_only_valid_acks_clear_and_only_the_kiosks_own_ratings(tmp_path_factory, data):
    folder = tmp_path_factory.mktemp("acks")
    outbox = SqliteOutbox(folder / "outbox.db")
    own = [record(outbox).id for _ in range(5)]
    collector_time = CollectorTime()
    publisher = MqttPublisher(
        kiosk_id="k-vb-q1",
        outbox_path=folder / "outbox.db",
        settings=MqttSettings(),
        status_source=lambda o: {},
        collector_time=collector_time,
    )
    publisher._status_probes["abcdef12"] = 10.0  # a status of this connection, sent at boot clock 10 s
    expected: set[str] = set()
    for payload, clears in data.draw(st.lists(ack_payload(own), max_size=5)):
        publisher._acks.put((payload, 10.5))
        expected |= clears
    publisher._apply_acks(outbox, _DrainState())
    still = {row.id for row in outbox.unacked(after_seq=0, limit=100)}
    assert set(own) - still == expected
    assert outbox.backlog().ratings == len(own) - len(expected)
    # No ack here names that status's probe in a valid ack: the clock is not taken from any of them.
    assert collector_time.estimate(11.0) is None
    outbox.close()


lines = st.one_of(
    st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"")),
    st.sampled_from([b"P1", b"P4", b" P2\r", b"P5", b"P0", b"p1", b"PP1", b"H", b"P1 P2", b"\xffP1", b"L1", b""]),
)


def presses_in(parts: list[bytes]) -> list[int]:
    """What the contract says these lines are: exactly P1..P4, surrounding spaces and CR aside."""
    out = []
    for raw in parts:
        line = raw.strip(b"\r ")
        if len(line) == 2 and line[:1] == b"P" and line[1:] in (b"1", b"2", b"3", b"4"):
            out.append(int(line[1:]))
    return out


@settings(FUZZ, max_examples=40)  # each example runs a real panel thread on pyserial's loop://
@given(parts=st.lists(lines, max_size=12))
def test_only_exact_press_lines_are_presses_and_the_panel_lives(parts):
    panel = SerialButtonPanel("loop://")
    seen: list[int] = []
    panel.start(seen.append)
    try:
        assert wait_for(lambda: panel._port is not None, 5)
        panel._port.write(b"\n".join(parts) + b"\nP3\n")  # P3 last: everything before it has been read
        expected = presses_in(parts) + [3]
        assert wait_for(lambda: seen == expected, 5), (seen, expected)
        assert panel._thread is not None and panel._thread.is_alive()
    finally:
        panel.close()
