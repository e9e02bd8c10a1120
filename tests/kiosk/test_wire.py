import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kiosk import wire
from kiosk.ids import uuid7

RID = "01936f0e-7c1a-7d4e-9a3b-1f2e3d4c5b6a"


def rating(**changes):
    base = dict(
        id=RID,
        install="a1b2c3d4",
        seq=42,
        counter="vb-q1",
        score=4,
        pressed_at="2026-11-22T02:15:02.123Z",
        clock="synced",
        snapshot=wire.SnapshotRef("9f" * 32, 48213),
        snapshot_error=None,
        flag=None,
        fw="0.1.0",
    )
    base.update(changes)
    return wire.Rating(**base)


def batch_doc(**item_changes):
    item = rating().to_dict()
    item.update(item_changes)
    return {"v": 1, "kiosk": "k-vb-q1", "ratings": [item]}


def test_batch_round_trips_with_every_contract_field():
    payload = wire.encode_batch("k-vb-q1", [rating()])
    doc = json.loads(payload)
    assert doc["v"] == 1 and doc["kiosk"] == "k-vb-q1"
    assert set(doc["ratings"][0]) == {
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
    }
    decoded = wire.decode_batch(payload, topic_kiosk="k-vb-q1")
    assert decoded.ratings == (rating(),) and decoded.rejected == ()


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"\xff\xfe not json", "not_json"),
        (b"[1, 2]", "bad_field"),
        (json.dumps({"kiosk": "k-vb-q1", "ratings": []}).encode(), "missing_field"),
        (json.dumps({"v": 2, "kiosk": "k-vb-q1", "ratings": []}).encode(), "bad_version"),
        (
            json.dumps({"v": 1, "kiosk": "k-other", "ratings": [rating().to_dict()]}).encode(),
            "kiosk_mismatch",
        ),
        (json.dumps({"v": 1, "kiosk": "k-vb-q1", "ratings": []}).encode(), "batch_too_big"),
        (
            json.dumps({"v": 1, "kiosk": "k-vb-q1", "ratings": [rating().to_dict()] * 501}).encode(),
            "batch_too_big",
        ),
        (b" " * (wire.MAX_BATCH_BYTES + 1), "batch_too_big"),
    ],
)
def test_bad_envelope_is_refused_with_a_reason(payload, reason):
    with pytest.raises(wire.WireError) as caught:
        wire.decode_batch(payload, topic_kiosk="k-vb-q1")
    assert caught.value.reason == reason
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"score": 5}, "bad_score"),
        ({"score": 0}, "bad_score"),
        ({"score": "4"}, "bad_score"),
        ({"score": True}, "bad_score"),
        ({"seq": 0}, "bad_field"),
        ({"id": "not-a-uuid"}, "bad_field"),
        ({"pressed_at": "2026-11-22 02:15:02"}, "bad_field"),
        ({"clock": "maybe"}, "bad_field"),
        ({"flag": "angry"}, "bad_field"),
        ({"counter": "has space"}, "bad_field"),
        ({"snapshot": None, "snapshot_error": None}, "bad_field"),
        ({"snapshot": {"sha256": "xyz", "bytes": 3}}, "bad_field"),
    ],
)
def test_bad_rating_inside_a_good_batch_is_rejected_alone(changes, reason):
    doc = batch_doc(**changes)
    doc["ratings"].append(rating(id=uuid7(), seq=43).to_dict())
    parsed = wire.decode_batch(json.dumps(doc).encode(), topic_kiosk="k-vb-q1")
    assert [r.seq for r in parsed.ratings] == [43]
    assert len(parsed.rejected) == 1 and parsed.rejected[0].reason == reason


def test_missing_rating_field_is_named():
    doc = batch_doc()
    del doc["ratings"][0]["counter"]
    parsed = wire.decode_batch(json.dumps(doc).encode())
    assert parsed.rejected[0].reason == "missing_field"
    assert "counter" in parsed.rejected[0].detail
    assert parsed.rejected[0].rating_id == RID


def test_flagged_press_needs_no_picture_reason():
    flagged = rating(flag="lockout", snapshot=None, snapshot_error=None)
    assert wire.decode_batch(wire.encode_batch("k-vb-q1", [flagged])).ratings == (flagged,)


def test_encoder_refuses_batches_over_the_contract_limits():
    with pytest.raises(wire.WireError):
        wire.encode_batch("k-vb-q1", [])
    with pytest.raises(wire.WireError):
        wire.encode_batch("k-vb-q1", [rating(id=uuid7(), seq=i + 1) for i in range(501)])


def test_ack_round_trip_and_garbage():
    payload = wire.encode_ack([RID], [RID], at=1_795_000_000.123)
    assert wire.decode_ack(payload) == wire.Ack((RID,), (RID,), 1_795_000_000.123)
    assert json.loads(payload)["at"] == "2026-11-18T11:06:40.123Z"
    answer = wire.decode_ack(wire.encode_ack(status="0123456789abcdef", at=1_795_000_000.0))
    assert answer == wire.Ack((), (), 1_795_000_000.0, "0123456789abcdef")
    # A v1 ack without the additions still reads.
    assert wire.decode_ack(b'{"v":1,"ratings":[],"snapshots":[]}') == wire.Ack()
    for garbage in (
        b"",
        b"{}",
        b'{"v":1,"ratings":"x"}',
        b'{"v":1,"ratings":[7]}',
        b"\x00\x01",
    ):
        with pytest.raises(wire.WireError):
            wire.decode_ack(garbage)
    # The additions are optional: a malformed "at" or "status" is dropped, the ids beside it kept.
    for odd in (
        b'"at":"2026-11-22T02:16:00Z"',  # no milliseconds
        b'"at":"9999-11-22T02:16:00.000Z"',
        b'"at":1795000000',
        b'"status":"XYZ"',
        b'"status":"0123456\\n"',
    ):
        ack = wire.decode_ack(b'{"v":1,"ratings":["' + RID.encode() + b'"],' + odd + b"}")
        assert ack == wire.Ack((RID,), (), None, None), odd


def test_status_and_will():
    status = {
        "kiosk": "k-vb-q1",
        "state": "online",
        "at": "2026-11-22T02:16:00.000Z",
        "backlog": {"ratings": 0, "snapshots": 2},
        "uptime_s": 5,
    }
    assert wire.decode_status(wire.encode_status(status), topic_kiosk="k-vb-q1")["state"] == "online"
    assert json.loads(wire.offline_will("k-vb-q1")) == {"v": 1, "kiosk": "k-vb-q1", "state": "offline"}
    with pytest.raises(wire.WireError):
        wire.decode_status(wire.encode_status(status), topic_kiosk="k-other")


def test_topics_parse_and_reject():
    topics = wire.Topics()
    assert topics.parse("sat/v1/k/k-vb-q1/ratings") == wire.TopicRef("k-vb-q1", "ratings")
    assert topics.parse(f"sat/v1/k/k-vb-q1/snapshots/{RID}").rating_id == RID
    for bad in (
        "sat/v1/k/K_BAD/ratings",
        "sat/v2/k/k-a/ratings",
        "sat/v1/k/k-a/other",
        "sat/v1/k/k-a/snapshots/nope",
    ):
        with pytest.raises(wire.WireError):
            topics.parse(bad)


def test_times_are_utc_with_milliseconds():
    assert wire.format_epoch(1795314902.1239) == "2026-11-22T02:35:02.123Z"
    assert wire.parse_time("2026-11-22T02:15:02.123Z").tzinfo is not None


def test_uuid7_ids_are_version_7_and_ordered():
    ids = [uuid7(1_795_000_000_000) for _ in range(50)]
    assert ids == sorted(ids)
    assert len(set(ids)) == 50
    assert all(i[14] == "7" for i in ids)


# --- bounds: what a store can hold and a page can show ------------------------------------


def test_seq_must_fit_a_signed_64_bit_column():
    from tests.ratings import make_rating

    assert make_rating(seq=2**63 - 1).seq == 2**63 - 1
    with pytest.raises(wire.WireError):
        make_rating(seq=2**63)


def test_deep_nesting_is_refused_before_parsing():
    with pytest.raises(wire.WireError) as err:
        wire.decode_batch(b"[" * 50_000)
    assert err.value.reason == "too_deep"


def test_brackets_inside_strings_do_not_count_as_nesting():
    doc = {"v": 1, "kiosk": "k-vb-q1", "state": "online", "fw": "[[[[{{{{[[[[", "boot": '\\"[[[[[[[[[['}
    assert wire.decode_status(json.dumps(doc).encode())["fw"] == "[[[[{{{{[[[["


@pytest.mark.parametrize("text", ["\ud800", "a\udfffb"])
def test_lone_surrogates_are_refused(text):
    payload = json.dumps({"v": 1, "kiosk": "k-vb-q1", "state": "online", "fw": text}).encode()
    with pytest.raises(wire.WireError) as err:
        wire.decode_status(payload)
    assert err.value.reason == "bad_text"


def test_nan_and_infinity_are_not_json_numbers():
    with pytest.raises(wire.WireError):
        wire.decode_status(b'{"v":1,"kiosk":"k-vb-q1","state":"online","uptime_s":NaN}')


@pytest.mark.parametrize(
    "field",
    [
        {"fw": "x" * 33},
        {"camera": 5},
        {"uptime_s": 2**63},
        {"selftest": {"at": "yesterday", "ok": True}},
        {"selftest": {"ok": "yes"}},
        {"selftest": {"failed": ["x" * 40]}},
        {"selftest": [1, 2]},
        {"backlog": {"ratings": 1, "snapshots": 0, "oldest_at": "soon"}},
        {"last_press_at": "2026-11-22"},
        {"counter": "no spaces allowed"},
    ],
)
def test_status_fields_a_page_shows_are_checked(field):
    doc = {"v": 1, "kiosk": "k-vb-q1", "state": "online", **field}
    with pytest.raises(wire.WireError):
        wire.decode_status(json.dumps(doc).encode())


def test_a_status_with_every_field_passes():
    doc = {
        "v": 1, "kiosk": "k-vb-q1", "state": "online", "at": "2026-11-22T02:16:00.000Z", "fw": "0.1.0",
        "install": "a1b2c3d4", "boot": "b" * 36, "uptime_s": 5400, "counter": "vb-q1",
        "backlog": {"ratings": 0, "snapshots": 2, "oldest_at": None}, "camera": "ok", "clock": "synced",
        "disk_free_mb": 20480, "suppressed_presses": 3, "last_press_at": "2026-11-22T02:15:02.123Z",
        "panel": "ok", "selftest": {"at": "2026-11-22T01:00:00.000Z", "ok": False, "failed": ["camera"]},
    }  # fmt: skip
    assert wire.decode_status(json.dumps(doc).encode()) == doc


def test_a_huge_status_is_refused():
    with pytest.raises(wire.WireError) as err:
        wire.decode_status(b" " * (wire.MAX_STATUS_BYTES + 1))
    assert err.value.reason == "status_too_big"


def _depth(doc) -> int:
    if isinstance(doc, list):
        return 1 + max((_depth(x) for x in doc), default=0)
    if isinstance(doc, dict):
        return 1 + max((_depth(x) for x in doc.values()), default=0)
    return 0


_TRICKY_TEXT = st.text(alphabet='[]{}"\\ab\u00e9\n', max_size=12)
_JSON_DOCS = st.recursive(
    st.none() | st.booleans() | st.integers(-10, 10) | _TRICKY_TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_TRICKY_TEXT, inner, max_size=3),
    max_leaves=40,
)


@settings(derandomize=True, max_examples=400, deadline=None)
@given(doc=_JSON_DOCS, wrap=st.integers(0, 9), ensure_ascii=st.booleans())
def test_the_nesting_measured_before_parsing_is_the_parsed_documents_nesting(doc, wrap, ensure_ascii):
    """Strings full of brackets, quotes and backslashes never change the measure: a document is
    refused as too deep exactly when it nests deeper than MAX_DEPTH."""
    for _ in range(wrap):
        doc = [doc, '"[{\\']
    payload = json.dumps(doc, ensure_ascii=ensure_ascii).encode()
    if _depth(doc) > wire.MAX_DEPTH:
        with pytest.raises(wire.WireError, match="deeper"):
            wire._check_depth(payload)
    else:
        wire._check_depth(payload)


def _mutated_items():
    from datetime import UTC, datetime

    from tests.fuzzing import json_values, mutated_item, valid_item

    at = datetime.now(UTC)
    plain = st.one_of(valid_item("vb-q1", received_at=at), mutated_item("vb-q1", received_at=at))
    with_extra = st.tuples(plain, st.dictionaries(st.text(max_size=6), json_values, max_size=2)).map(
        lambda pair: {**pair[0], **pair[1]}
    )
    return st.one_of(plain, with_extra)


@settings(derandomize=True, max_examples=600, deadline=None)
@given(item=_mutated_items())
def test_the_quick_rating_checks_are_never_looser_than_the_named_ones(item):
    """decode_batch takes a rating by one quick check and walks its tree only to name an error:
    whatever it takes passes every named check and the tree bounds, and whatever it refuses is
    refused for the reason the named checks give first."""
    payload = json.dumps({"v": 1, "kiosk": "k-vb-q1", "ratings": [item]}, ensure_ascii=True).encode()
    try:
        batch = wire.decode_batch(payload)
    except wire.WireError:
        return  # the envelope itself (e.g. a nesting too deep): not this test's concern
    parsed = json.loads(payload)["ratings"][0]
    try:
        wire.check_tree(parsed)
        expected = wire.Rating.from_dict(parsed)
        expected._explain()
    except wire.WireError as exc:
        assert batch.ratings == ()
        assert (batch.rejected[0].reason, batch.rejected[0].detail) == (exc.reason, exc.detail)
    else:
        assert batch.rejected == ()
        assert batch.ratings == (expected,)
