"""Anti-spam rules: which presses become ratings (pure; time is passed in).

gpiozero's mock pins ignore ``bounce_time`` and gpiozero has open debounce bugs, so
debouncing lives here, with the monotonic time of each press passed in by the caller.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from enum import Enum


@dataclass(frozen=True)
class PressRules:
    lockout_s: float = 5.0
    """After an accepted press, presses for this long are refused (flag ``lockout``)."""
    max_per_minute: int = 4
    """At most this many accepted presses in any 60 s (further ones: flag ``burst``)."""
    flagged_per_minute: int = 3
    """At most this many refused presses are stored per 60 s; the rest are only counted."""
    debounce_s: float = 0.25
    """Edges of the same button closer than this are contact bounce, not presses."""

    def __post_init__(self) -> None:
        if self.lockout_s < 0 or self.debounce_s < 0:
            raise ValueError("lockout_s and debounce_s must be >= 0")
        if self.max_per_minute < 1 or self.flagged_per_minute < 0:
            raise ValueError("max_per_minute must be >= 1 and flagged_per_minute >= 0")


class Outcome(Enum):
    RATING = "rating"  # store and count
    FLAGGED = "flagged"  # store as evidence, never count
    SUPPRESSED = "suppressed"  # refused and over the evidence cap: count only
    BOUNCE = "bounce"  # same physical press: nothing happened


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    flag: str | None = None


_WINDOW_S = 60.0


class PressGate:
    """Judges presses in the order they happen. Not thread-safe: feed it from one thread."""

    def __init__(self, rules: PressRules) -> None:
        self.rules = rules
        self._last_edge: dict[int, float] = {}
        self._last_accepted: float | None = None
        self._accepted: deque[float] = deque()
        self._flagged: deque[float] = deque()

    def judge(self, button: int, at_s: float) -> Verdict:
        previous_edge = self._last_edge.get(button)
        self._last_edge[button] = at_s
        if previous_edge is not None and at_s - previous_edge < self.rules.debounce_s:
            return Verdict(Outcome.BOUNCE)
        _trim(self._accepted, at_s)
        _trim(self._flagged, at_s)
        if self._last_accepted is not None and at_s - self._last_accepted < self.rules.lockout_s:
            return self._refuse("lockout", at_s)
        if len(self._accepted) >= self.rules.max_per_minute:
            return self._refuse("burst", at_s)
        self._last_accepted = at_s
        self._accepted.append(at_s)
        return Verdict(Outcome.RATING)

    def _refuse(self, flag: str, at_s: float) -> Verdict:
        if len(self._flagged) >= self.rules.flagged_per_minute:
            return Verdict(Outcome.SUPPRESSED, flag)
        self._flagged.append(at_s)
        return Verdict(Outcome.FLAGGED, flag)


def _trim(window: deque[float], now_s: float) -> None:
    while window and now_s - window[0] >= _WINDOW_S:
        window.popleft()
