"""When a kiosk re-sends because the collector came back: rules."""

from kiosk import wire
from kiosk.presence import CollectorPresence


def test_a_collector_coming_online_means_resend_now():
    presence = CollectorPresence()
    assert presence.observe("offline", "", retained=False) is False
    assert presence.observe("online", "s1", retained=False) is True


def test_a_new_session_means_resend_even_if_it_was_online_before():
    presence = CollectorPresence()
    presence.observe("online", "s1", retained=True)  # stale after a broker restart, perhaps
    assert presence.observe("online", "s2", retained=False) is True
    assert presence.observe("online", "s2", retained=False) is False  # the same connection again


def test_a_retained_status_on_connecting_is_only_a_starting_point():
    presence = CollectorPresence()
    assert presence.observe("online", "s1", retained=True) is False


def test_offline_never_triggers_a_resend():
    presence = CollectorPresence()
    presence.observe("online", "s1", retained=False)
    assert presence.observe("offline", "", retained=False) is False
    assert presence.observe("online", "s1", retained=False) is True  # back after a will: same session too


def test_collector_status_round_trips_and_bad_ones_are_refused():
    assert wire.decode_collector_status(wire.encode_collector_status("online", "ab12")) == ("online", "ab12")
    assert wire.decode_collector_status(b'{"v":1,"state":"offline"}') == ("offline", "")
    for bad in (b"{}", b'{"v":1,"state":"maybe"}', b'{"v":1,"state":"online","session":5}', b"[[[["):
        try:
            wire.decode_collector_status(bad)
        except wire.WireError:
            continue
        raise AssertionError(bad)
