"""One line per event, as ``key=value`` fields, for the kiosk and the collector.

    ts=2026-11-22T18:40:01.123+07:00 level=warning logger=collector.ingest msg="quarantined" reason=bad_field ...

A value with a space, a quote, ``=`` or a control character is quoted JSON-style, so a line never
breaks (a traceback becomes one ``exc="…\\n…"`` field). Fields of the event itself travel in
``extra={"kv": {...}}``. Under systemd's journal (``JOURNAL_STREAM`` set) the ``ts`` field is left
out: journald stamps every line itself, and two timestamps per line only confuse.
"""

from __future__ import annotations

import json
import logging
import os
import re
from datetime import datetime
from typing import Any

_PLAIN = re.compile(r"[^\s\"=\\\x00-\x1f\x7f]+")


def value_text(value: Any) -> str:
    text = value if isinstance(value, str) else str(value)
    if text and _PLAIN.fullmatch(text):
        return text
    return json.dumps(text, ensure_ascii=False)


class KeyValueFormatter(logging.Formatter):
    def __init__(self, *, timestamps: bool = True) -> None:
        super().__init__()
        self.timestamps = timestamps

    def format(self, record: logging.LogRecord) -> str:
        fields: list[tuple[str, Any]] = []
        if self.timestamps:
            moment = datetime.fromtimestamp(record.created).astimezone()
            fields.append(("ts", moment.isoformat(timespec="milliseconds")))
        fields += [("level", record.levelname.lower()), ("logger", record.name), ("msg", record.getMessage())]
        extra = getattr(record, "kv", None)
        if isinstance(extra, dict):
            fields += [(str(k), v) for k, v in extra.items()]
        if record.exc_info:
            fields.append(("exc", self.formatException(record.exc_info)))
        elif record.exc_text:
            fields.append(("exc", record.exc_text))
        return " ".join(f"{key}={value_text(value)}" for key, value in fields)


def under_journald() -> bool:
    return bool(os.environ.get("JOURNAL_STREAM"))


def setup_logging(level: str) -> None:
    """The root logger writes key=value lines to stderr; uvicorn's loggers go through it too."""
    handler = logging.StreamHandler()
    handler.setFormatter(KeyValueFormatter(timestamps=not under_journald()))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
