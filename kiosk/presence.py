"""Whether the collector just came back: then the kiosk re-sends what is unacked at once.

Mosquitto does not keep a collector's shared subscription across its own restart, so ratings a
kiosk publishes after the broker is back and before the collector is reach nobody. The collector
publishes a retained ``…/collector/status`` with a new ``session`` on every connection; a kiosk
that sees it turn ``online``, or its session change, publishes everything unacked again, whatever
its back-off. A retained status received on (re)connecting is only a starting point: the kiosk
has just re-sent everything anyway, and a retained "online" may be stale (a broker restart sends
no will). Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class CollectorPresence:
    state: str | None = None
    session: str | None = None

    def observe(self, state: str, session: str, *, retained: bool) -> bool:
        """Record a collector status; True when unacked ratings should be published again now."""
        before_state, before_session = self.state, self.session
        self.state, self.session = state, session
        if retained or state != "online":
            return False
        return before_state != "online" or before_session != session
