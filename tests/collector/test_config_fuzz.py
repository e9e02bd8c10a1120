"""collector.toml and kiosk.toml checked by type and range: wrong values are refused at start with
the key, the value and what is expected; generated documents never cause anything but that."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collector.config import load_settings as load_collector
from collector.errors import ConfigError as CollectorConfigError
from kiosk.config import load_settings as load_kiosk
from kiosk.errors import ConfigError as KioskConfigError

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[http]\nport = "eighty"', "[http] port = 'eighty': expected an integer from 1 to 65535"),
        ("[ingest]\nbatch_messages = -5", "[ingest] batch_messages = -5: expected an integer from 1 to 10000"),
        (
            "[alerts]\ndissatisfied_share = 7",
            "[alerts] dissatisfied_share = 7: expected a number above 0 and at most 1",
        ),
        ("[mqtt]\nport = 70000", "[mqtt] port = 70000: expected an integer from 1 to 65535"),
        ("[office]\nweekdays = [0, 9]", "[office] weekdays[1] = 9: expected an integer from 0 to 6"),
        ('[reports]\nneutral_as = "maybe"', "[reports] neutral_as = 'maybe': expected one of"),
        ("[http]\nsecure_cookies = 1", "[http] secure_cookies = 1: expected true or false"),
        ("store = 5", "[store] must be a table"),
    ],
)
def test_collector_config_values_are_checked_at_start(tmp_path, text, expected):
    path = tmp_path / "collector.toml"
    path.write_text(f'data_dir = "{tmp_path}"\n{text}\n')
    with pytest.raises(CollectorConfigError) as err:
        load_collector(path)
    assert expected in str(err.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[panel]\npins = [17, 27, 22, 99]", "[panel] pins[3] = 99: expected an integer from 0 to 27"),
        ("[panel]\nscores = [4, 3, 2]", "[panel] scores = [4, 3, 2]: expected 4 items"),
        ('[panel]\nkind = "usb"', "[panel] kind = 'usb': expected one of 'gpio', 'serial'"),
        ("[outbox]\nack_timeout_s = 0", "[outbox] ack_timeout_s = 0: expected a number from 0.1 to 3600"),
        ("[camera]\njpeg_quality = 101", "[camera] jpeg_quality = 101: expected an integer from 1 to 100"),
        ('[mqtt]\nkeepalive_s = "30"', "[mqtt] keepalive_s = '30': expected an integer from 5 to 3600"),
    ],
)
def test_kiosk_config_values_are_checked_at_start(tmp_path, text, expected):
    path = tmp_path / "kiosk.toml"
    path.write_text(f'kiosk_id = "k-vb-q1"\ncounter = "vb-q1"\ndata_dir = "{tmp_path}"\n{text}\n')
    with pytest.raises(KioskConfigError) as err:
        load_kiosk(path)
    assert expected in str(err.value)


def test_the_shipped_examples_load():
    load_collector(ROOT / "config" / "collector.example.toml")
    load_kiosk(ROOT / "config" / "kiosk.example.toml")


@pytest.mark.parametrize("program", ["collector", "kiosk"])
def test_a_bad_config_is_one_clear_line_and_exit_2_not_a_traceback(tmp_path, program):
    path = tmp_path / "bad.toml"
    top = b'data_dir = "x"\n' if program == "collector" else b'data_dir = "x"\nkiosk_id = "k-a1"\ncounter = "c"\n'
    path.write_bytes(top + b'[mqtt]\nport = "eighty"\n')
    command = "serve" if program == "collector" else "run"
    result = subprocess.run(
        [sys.executable, "-m", f"{program}.cli", command, "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "port = 'eighty'" in result.stderr


# --- generated documents -------------------------------------------------------------------

toml_scalars = st.one_of(
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
    st.sampled_from(["eighty", "", "sqlite:///x.db", "postgresql://h/db", "Asia/Ho_Chi_Minh", "\x00"]),
)
toml_values = st.recursive(
    toml_scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=10,
)
COLLECTOR_KEYS = {
    "mqtt": ["host", "port", "keepalive_s", "tls_ca", "topic_prefix", "username"],
    "ingest": ["batch_messages", "batch_wait_s", "share_group", "snapshot_retention_days", "quarantine_max_mb"],
    "http": ["host", "port", "secure_cookies"],
    "store": ["url"],
    "alerts": ["dissatisfied_share", "window_h", "min_ratings", "interval_s", "webhook"],
    "office": ["weekdays", "spans"],
    "mail": ["host", "port", "monthly", "starttls"],
    "reports": ["neutral_as"],
    "fleet": ["broker_reload_command", "crl_check_interval_h"],
}
KIOSK_KEYS = {
    "mqtt": ["host", "port", "keepalive_s"],
    "panel": ["kind", "pins", "scores", "lockout_s", "max_per_minute", "debounce_s", "serial_port", "buzzer_pin"],
    "camera": ["source", "timeout_s", "width", "jpeg_quality"],
    "clock": ["assume_synced", "unsynced_hold_s"],
    "outbox": ["ack_timeout_s", "ack_timeout_max_s", "retention_days"],
}


def documents(keys: dict[str, list[str]], top: dict[str, object]) -> st.SearchStrategy[dict[str, object]]:
    section = st.sampled_from(sorted(keys)).flatmap(
        lambda name: st.tuples(
            st.just(name),
            st.dictionaries(st.sampled_from([*keys[name], "typo"]), toml_values, max_size=4),
        )
    )
    return st.lists(section, max_size=4).map(lambda parts: {**top, **dict(parts)})


def to_toml(doc: dict[str, object]) -> str:
    """A small TOML writer (tomllib reads only): strings JSON-quoted, tables as inline tables."""
    import json

    def value(v: object) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int | float):
            return repr(v)
        if isinstance(v, str):
            return json.dumps(v)
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        assert isinstance(v, dict)
        return "{" + ", ".join(f"{json.dumps(k)} = {value(x)}" for k, x in v.items()) + "}"

    lines = [f"{json.dumps(k)} = {value(v)}" for k, v in doc.items() if not isinstance(v, dict)]
    for name, table in doc.items():
        if isinstance(table, dict):
            lines.append(f"[{name}]")
            lines += [f"{json.dumps(k)} = {value(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"


FUZZ = settings(derandomize=True, max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))


@FUZZ
@given(doc=documents(COLLECTOR_KEYS, {}), data_dir=st.sampled_from(["data", 5, "", "/tmp/x"]))
def test_generated_collector_configs_load_or_say_why(tmp_path_factory, doc, data_dir):
    path = tmp_path_factory.mktemp("c") / "collector.toml"
    text = to_toml({"data_dir": data_dir, **doc})
    try:
        tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return  # the writer made something TOML refuses (a NUL, a duplicate key): not this test's subject
    path.write_text(text)
    try:
        loaded = load_collector(path)
    except CollectorConfigError as exc:
        assert str(exc) and "Traceback" not in str(exc)
        return
    assert 1 <= loaded.http.port <= 65535 and 1 <= loaded.mqtt.port <= 65535
    assert 1 <= loaded.ingest.batch_messages <= 10_000
    assert 0 < loaded.alerts.dissatisfied_share <= 1


@FUZZ
@given(doc=documents(KIOSK_KEYS, {"kiosk_id": "k-vb-q1", "counter": "vb-q1", "data_dir": "d"}))
def test_generated_kiosk_configs_load_or_say_why(tmp_path_factory, doc):
    path = tmp_path_factory.mktemp("k") / "kiosk.toml"
    text = to_toml(doc)
    try:
        tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return
    path.write_text(text)
    try:
        loaded = load_kiosk(path)
    except KioskConfigError as exc:
        assert str(exc)
        return
    assert sorted(loaded.panel.scores) == [1, 2, 3, 4]
    assert all(0 <= p <= 27 for p in loaded.panel.pins)
    assert loaded.outbox.ack_timeout_s > 0 and 1 <= loaded.camera.jpeg_quality <= 100


@FUZZ
@given(raw=st.binary(max_size=300))
def test_arbitrary_bytes_as_a_config_file_are_refused_clearly(tmp_path_factory, raw):
    folder = tmp_path_factory.mktemp("b")
    for loader, error, name in (
        (load_collector, CollectorConfigError, "collector.toml"),
        (load_kiosk, KioskConfigError, "kiosk.toml"),
    ):
        (folder / name).write_bytes(raw)
        with contextlib.suppress(error):
            loader(folder / name)
