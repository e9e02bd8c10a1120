"""Numbers and dates the way Vietnamese readers write them (96,9 %; 16.000; 22/11/2026)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any


def number(n: int | None, lang: str = "vi") -> str:
    if n is None:
        return "—"
    text = f"{n:,}"
    return text.replace(",", ".") if lang == "vi" else text


def percent(rate: float | None, lang: str = "vi", digits: int = 1) -> str:
    """A share 0..1 as a percentage: ``0.969`` → ``96,9 %`` (vi) or ``96.9%`` (en); None → ``—``."""
    if rate is None:
        return "—"
    text = f"{rate * 100:.{digits}f}"
    return text.replace(".", ",") + " %" if lang == "vi" else text + "%"


def decimal(value: float | None, lang: str = "vi", digits: int = 1) -> str:
    if value is None:
        return "—"
    text = f"{value:.{digits}f}"
    return text.replace(".", ",") if lang == "vi" else text


def day(value: date | str) -> str:
    if isinstance(value, str):
        value = date.fromisoformat(value[:10])
    return value.strftime("%d/%m/%Y")


def moment(text: str | None, tz: Any) -> str:
    """A contract time (UTC) as local ``dd/mm/yyyy HH:MM``."""
    if not text:
        return "—"
    try:
        return datetime.fromisoformat(text).astimezone(tz).strftime("%d/%m/%Y %H:%M")
    except (ValueError, OverflowError):  # stored before the bounds of today: shown as it came
        return str(text)[:40]


def signed(now: float | None, before: float | None, lang: str = "vi", digits: int = 1) -> str:
    """A difference with its sign: ``+3``, ``−0,4`` (vi) / ``-0.4`` (en); ``—`` when one is missing."""
    if now is None or before is None:
        return "—"
    delta = now - before
    if round(delta, digits) == 0:  # no "-0,00": a change that rounds to nothing is none
        return decimal(0.0, lang, digits)
    text = f"{delta:+,.{digits}f}"
    if lang == "vi":
        text = text.replace(",", " ").replace(".", ",").replace(" ", ".")
    return text


def change(now: float | None, before: float | None, lang: str = "vi") -> str:
    """Change of a rate in percentage points: ``+1,2 đ%`` / ``+1.2 pp``."""
    if now is None or before is None:
        return "—"
    delta = (now - before) * 100
    text = f"{delta:+.1f}" if round(delta, 1) != 0 else "0.0"
    return text.replace(".", ",") + " điểm %" if lang == "vi" else text + " pp"
