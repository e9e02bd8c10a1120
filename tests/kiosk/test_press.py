from kiosk.press import Outcome, PressGate, PressRules


def gate(**rules):
    return PressGate(PressRules(**rules))


def test_first_press_is_a_rating():
    assert gate().judge(1, 0.0).outcome is Outcome.RATING


def test_press_inside_lockout_is_not_a_rating():
    g = gate(lockout_s=5.0)
    g.judge(1, 0.0)
    verdict = g.judge(2, 3.0)
    assert verdict.outcome is Outcome.FLAGGED and verdict.flag == "lockout"
    assert g.judge(3, 5.0).outcome is Outcome.RATING


def test_refused_press_does_not_extend_the_lockout():
    g = gate(lockout_s=5.0)
    g.judge(1, 0.0)
    g.judge(2, 4.0)
    assert g.judge(2, 5.1).outcome is Outcome.RATING


def test_per_minute_cap_flags_burst():
    g = gate(lockout_s=1.0, max_per_minute=3)
    assert [g.judge(1, t).outcome for t in (0.0, 2.0, 4.0)] == [Outcome.RATING] * 3
    verdict = g.judge(1, 6.0)
    assert verdict.outcome is Outcome.FLAGGED and verdict.flag == "burst"
    assert g.judge(1, 60.5).outcome is Outcome.RATING  # the first has left the window


def test_mashing_keeps_only_a_few_flagged_presses_per_minute():
    g = gate(lockout_s=5.0, flagged_per_minute=3, debounce_s=0.0)
    outcomes = [g.judge(1 + i % 4, 0.3 * i).outcome for i in range(16)]  # 4.5 s of mashing
    assert outcomes[0] is Outcome.RATING
    assert outcomes.count(Outcome.FLAGGED) == 3
    assert outcomes.count(Outcome.SUPPRESSED) == 12


def test_bouncing_contact_is_one_press():
    g = gate(debounce_s=0.25)
    assert g.judge(2, 10.0).outcome is Outcome.RATING
    assert g.judge(2, 10.01).outcome is Outcome.BOUNCE
    assert g.judge(2, 10.2).outcome is Outcome.BOUNCE


def test_other_button_right_after_is_a_refused_press_not_a_bounce():
    g = gate(debounce_s=0.25)
    g.judge(2, 10.0)
    assert g.judge(3, 10.05).outcome is Outcome.FLAGGED
