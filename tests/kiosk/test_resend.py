"""The re-send back-off: rules, with time passed in."""

import pytest

from kiosk.resend import ResendBackoff


def test_a_batch_is_due_again_only_after_the_timeout():
    backoff = ResendBackoff(base_s=30)
    assert not backoff.due(sent_at_s=100, now_s=130)
    assert backoff.due(sent_at_s=100, now_s=130.1)


def test_each_unanswered_resend_doubles_the_timeout_up_to_ten_minutes():
    backoff = ResendBackoff(base_s=30)
    seen = []
    for _ in range(8):
        backoff.resent()
        seen.append(backoff.timeout_s)
    assert seen == [60, 120, 240, 480, 600, 600, 600, 600]


def test_an_ack_brings_the_timeout_back_to_the_start():
    backoff = ResendBackoff(base_s=30)
    backoff.resent()
    backoff.resent()
    backoff.answered()
    assert backoff.timeout_s == 30


def test_three_hours_without_a_collector_cost_a_few_dozen_sends_not_hundreds():
    backoff = ResendBackoff(base_s=30)
    now, sent_at, sends = 0.0, 0.0, 1
    while now < 3 * 3600:
        now += 1
        if backoff.due(sent_at, now):
            backoff.resent()
            sent_at, sends = now, sends + 1
    assert sends < 25  # 360 at a fixed 30 s


def test_a_copy_expires_by_the_time_the_next_one_is_sent():
    backoff = ResendBackoff(base_s=0.5, max_s=4)
    assert backoff.expiry_s() == 1
    backoff.resent()
    backoff.resent()
    backoff.resent()
    assert backoff.expiry_s() == 4


@pytest.mark.parametrize(("base", "ceiling"), [(0, 10), (-1, 10), (20, 10)])
def test_nonsense_timeouts_are_refused(base, ceiling):
    with pytest.raises(ValueError):
        ResendBackoff(base_s=base, max_s=ceiling)
