"""Settings sections from TOML tables, checked by type and range — one loader for kiosk.toml and
collector.toml.

A section is a frozen dataclass; each field's type hint says what the key takes, and its metadata
(:func:`limits`) the range or the choices. A wrong value is refused at start with the file, the
key, the value and what is expected (``[mqtt] port = "eighty": expected an integer from 1 to
65535``), never accepted to fail later. Pure: no I/O.
"""

from __future__ import annotations

import math
import types
import typing
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any

from kiosk.tomlfile import check_keys

MAX_TEXT = 4096


def limits(
    low: float | None = None,
    high: float | None = None,
    *,
    above: float | None = None,
    choices: tuple[str, ...] = (),
    length: int | None = None,
) -> dict[str, Any]:
    """Field metadata: ``low``..``high`` inclusive, or strictly ``above``; for text, ``choices``;
    for lists, each item in the range and exactly ``length`` items."""
    return {"low": low, "high": high, "above": above, "choices": choices, "length": length}


def build_section(cls: type, values: Any, *, where: str, error: type[Exception]) -> Any:
    """``cls(**values)`` with every value checked against its field's type and limits."""
    if not isinstance(values, dict):
        raise error(f"{where} must be a table, not {_show(values)}")
    known = {f.name: f for f in fields(cls)}
    check_keys(values, set(known), where, error)
    hints = typing.get_type_hints(cls)
    converted = {
        name: coerce(value, hints[name], f"{where} {name}", known[name].metadata, error)
        for name, value in values.items()
    }
    missing = [f.name for f in fields(cls) if f.name not in converted and _required(f)]
    if missing:
        raise error(f"{where}: {', '.join(missing)} is required")
    try:
        return cls(**converted)
    except (TypeError, ValueError) as exc:
        raise error(f"{where}: {exc}") from None


def _required(f: Any) -> bool:
    return f.default is MISSING and f.default_factory is MISSING


def coerce(value: Any, hint: Any, label: str, meta: typing.Mapping[str, Any], error: type[Exception]) -> Any:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):  # X | None: TOML has no null, so it is X
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        return coerce(value, options[0], label, meta, error)
    if hint is bool:
        if not isinstance(value, bool):
            raise error(f"{label} = {_show(value)}: expected true or false")
        return value
    if hint is int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise error(f"{label} = {_show(value)}: expected {_range_text('an integer', meta)}")
        _check_range(value, label, meta, "an integer", error)
        return value
    if hint is float:
        if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
            raise error(f"{label} = {_show(value)}: expected {_range_text('a number', meta)}")
        _check_range(value, label, meta, "a number", error)
        return float(value)
    if hint is str or hint is Path:
        if not isinstance(value, str) or len(value) > MAX_TEXT or "\x00" in value:
            raise error(f"{label} = {_show(value)}: expected a text of at most {MAX_TEXT} characters")
        choices = meta.get("choices") or ()
        if choices and value not in choices:
            raise error(f"{label} = {_show(value)}: expected one of {', '.join(repr(c) for c in choices)}")
        return Path(value) if hint is Path else value
    if origin is tuple:
        item = typing.get_args(hint)[0]
        if not isinstance(value, list):
            raise error(f"{label} = {_show(value)}: expected a list")
        length = meta.get("length")
        if length is not None and len(value) != length:
            raise error(f"{label} = {_show(value)}: expected {length} items")
        item_meta = {k: v for k, v in meta.items() if k != "length"}
        return tuple(coerce(v, item, f"{label}[{n}]", item_meta, error) for n, v in enumerate(value))
    if origin is dict or hint is dict:
        if not isinstance(value, dict):
            raise error(f"{label} = {_show(value)}: expected a table")
        return value
    return value  # Any: checked by the section itself


def _check_range(value: float, label: str, meta: typing.Mapping[str, Any], kind: str, error: type[Exception]) -> None:
    low, high, above = meta.get("low"), meta.get("high"), meta.get("above")
    if (
        (low is not None and value < low)
        or (high is not None and value > high)
        or (above is not None and value <= above)
    ):
        raise error(f"{label} = {_show(value)}: expected {_range_text(kind, meta)}")


def _range_text(kind: str, meta: typing.Mapping[str, Any]) -> str:
    low, high, above = meta.get("low"), meta.get("high"), meta.get("above")
    if above is not None and high is not None:
        return f"{kind} above {above:g} and at most {high:g}"
    if above is not None:
        return f"{kind} above {above:g}"
    if low is not None and high is not None:
        return f"{kind} from {low:g} to {high:g}"
    if low is not None:
        return f"{kind} of at least {low:g}"
    if high is not None:
        return f"{kind} of at most {high:g}"
    return kind


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
