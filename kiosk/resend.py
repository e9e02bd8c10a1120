"""When to publish unacked ratings again: the ack timeout doubles after each re-send that went
unanswered, up to a ceiling, and drops back to the start as soon as the collector answers.

While the collector is down for hours, a kiosk then re-sends a handful of times an hour instead of
twice a minute, and the broker — which queues every copy for the absent collector — holds a few
copies of a batch, not hundreds. Pure: time is passed in, nothing else is touched.
"""

from __future__ import annotations

from dataclasses import dataclass, field

MAX_TIMEOUT_S = 600.0


@dataclass
class ResendBackoff:
    base_s: float = 30.0
    max_s: float = MAX_TIMEOUT_S
    timeout_s: float = field(init=False)

    def __post_init__(self) -> None:
        if self.base_s <= 0 or self.max_s < self.base_s:
            raise ValueError("the ack timeout must be positive and at most its ceiling")
        self.timeout_s = self.base_s

    def due(self, sent_at_s: float, now_s: float) -> bool:
        """Whether a batch sent at ``sent_at_s`` has waited too long for its ack."""
        return now_s - sent_at_s > self.timeout_s

    def resent(self) -> None:
        """A re-send after a timeout: wait twice as long for the next one."""
        self.timeout_s = min(self.timeout_s * 2, self.max_s)

    def answered(self) -> None:
        """The collector acked something: it is there; back to the short timeout."""
        self.timeout_s = self.base_s

    def expiry_s(self) -> int:
        """MQTT message expiry for a publish now: a copy the broker still holds when the kiosk
        sends the next one is worth nothing, so it lapses by then."""
        return max(1, int(self.timeout_s + 0.999))
