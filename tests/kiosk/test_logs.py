"""Logs are one key=value line per event, whatever the message holds; no timestamp under journald."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys

from hypothesis import given, settings
from hypothesis import strategies as st

from kiosk.logs import KeyValueFormatter

FIELD = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|\S+)')


def parse(line: str) -> dict[str, str]:
    out = {}
    for key, value in FIELD.findall(line):
        out[key] = json.loads(value) if value.startswith('"') else value
    return out


def record(msg: str, **kv: object) -> logging.LogRecord:
    made = logging.LogRecord("collector.ingest", logging.WARNING, __file__, 1, msg, None, None)
    made.kv = kv
    return made


def test_fields_come_out_as_key_value_and_plain_values_unquoted():
    line = KeyValueFormatter(timestamps=False).format(record("quarantined a rating", reason="bad_field", seq=7))
    assert line == 'level=warning logger=collector.ingest msg="quarantined a rating" reason=bad_field seq=7'


def test_a_traceback_stays_on_one_line():
    try:
        raise ValueError("boom\nsecond line")
    except ValueError:
        made = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", None, sys.exc_info())
    line = KeyValueFormatter().format(made)
    assert "\n" not in line and "ValueError" in parse(line)["exc"] and parse(line)["ts"]


@settings(derandomize=True, max_examples=300, deadline=None)
@given(msg=st.text(max_size=60), value=st.text(max_size=60))
def test_any_text_is_one_line_that_reads_back(msg, value):
    line = KeyValueFormatter(timestamps=False).format(record(msg, detail=value))
    assert "\n" not in line and "\r" not in line
    fields = parse(line)
    assert fields["msg"] == msg and fields["detail"] == value


def test_no_timestamp_under_journald(tmp_path):
    code = "from kiosk.logs import setup_logging; import logging; setup_logging('info'); logging.info('hello')"
    plain = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stderr
    journal = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env={"JOURNAL_STREAM": "8:1234"}
    ).stderr
    assert plain.startswith("ts=") and journal == "level=info logger=root msg=hello\n"
