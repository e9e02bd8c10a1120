"""Every audit action the code records has words in both languages on the audit page: a new
action without them fails here (a reader should never meet a raw key)."""

from __future__ import annotations

import re
from pathlib import Path

from collector import i18n

ROOT = Path(__file__).resolve().parents[2] / "collector"
KIOSK = ROOT.parent / "kiosk"
# What the f-string actions expand to: export_{kind}, user_{action}, export_three_level_{kind}.
EXPANSIONS = {
    "export_": ["export_csv", "export_xlsx"],
    "user_": ["user_disable", "user_enable", "user_unlock", "user_passwd", "user_edit"],
    "export_three_level_": ["export_three_level_pdf", "export_three_level_xlsx"],
}
CALL = re.compile(r"(?:\.audit\(\s*[^,]+,|audit_add\(\s*[^,]+,\s*[^,]+,)\s*(f?)\"([a-z_]*)(\{)?", re.S)


def recorded_actions() -> set[str]:
    found: set[str] = set()
    for path in ROOT.rglob("*.py"):
        for is_f, name, brace in CALL.findall(path.read_text()):
            if is_f and brace:
                assert name in EXPANSIONS, f"{path.name}: an audit action made from {name}{{…}}: list its values here"
                found.update(EXPANSIONS[name])
            elif name:
                found.add(name)
    return found


def test_every_recorded_audit_action_has_words_in_both_languages():
    actions = recorded_actions()
    assert len(actions) >= 25, sorted(actions)  # the scan finds the calls
    missing = sorted(a for a in actions if a not in i18n.AUDIT_ACTIONS)
    assert missing == []
    for action in actions:
        vi, en = i18n.AUDIT_ACTIONS[action]
        assert vi and en and vi != action and en != action
    assert i18n.audit_action("review", "vi") == "Xem xét lượt đánh giá"
    assert i18n.audit_action("something_new", "en") == "something_new"


def test_reported_values_have_words_in_both_languages():
    """Every state a kiosk may report for these (the contract's lists) and every role has words."""
    from collector.accounts import ROLES
    from kiosk import wire

    for kind, values in (
        ("role", ROLES),
        ("clock", wire.CLOCK_STATES),
        ("update", (*wire.UPDATE_STATES, "withdrawn")),
        ("renewal", wire.RENEWAL_STATES),
        ("camera", ("ok", "error", "disabled")),
        (
            "snapshot_error",
            sorted(
                set(re.findall(r'error="([a-z_]+)"', (KIOSK / "camera.py").read_text()))
                | set(re.findall(r'error="([a-z_]+)"', (KIOSK / "service.py").read_text()))
            ),
        ),
    ):
        for value in values:
            vi, en = i18n.word(kind, value, "vi"), i18n.word(kind, value, "en")
            assert vi != value and en != value, (kind, value)
    assert len(i18n.WORDS["snapshot_error"]) >= 7
    assert i18n.word("update", "a_later_state", "vi") == "a_later_state"  # a newer kiosk's word: as sent
    assert i18n.word("clock", None, "vi") == "—"


def test_every_alert_rule_has_words_in_both_languages():
    from collector.alerts import RULE_KEYS

    for key in (*RULE_KEYS, "inherited"):
        for lang in ("vi", "en"):
            assert i18n.text(f"rule_{key}", lang) != f"rule_{key}", (key, lang)
