"""Alerts: a counter's share of dissatisfied ratings jumps, a counter goes silent during office
hours, a kiosk goes offline. Rules are set per unit and apply to everything below it (the nearest
unit with its own rules wins; the collector's [alerts] settings are the default).

An alert stays open until someone acknowledges it with a comment; while it is open the same
condition does not raise it again. New alerts are published on MQTT and POSTed to a webhook.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from collector import formats, i18n
from collector.anystore import Store
from collector.config import AlertSettings, CollectorSettings
from collector.errors import CollectorError
from collector.fleet import FleetCA
from collector.office import OfficeHours
from collector.registry import Registry
from collector.reports import last_rating_at, ratings_waiting
from kiosk import wire

log = logging.getLogger(__name__)

RULE_KEYS = ("dissatisfied_share", "window_h", "min_ratings", "silent_min", "offline_min")
RULE_MAX = {"window_h": 24 * 366, "min_ratings": 1_000_000, "silent_min": 100_000, "offline_min": 100_000}


class RuleError(CollectorError, ValueError):
    """Alert rules with a value out of range."""


@dataclass(frozen=True)
class Rules:
    dissatisfied_share: float
    window_h: float
    min_ratings: int
    silent_min: int
    offline_min: int

    def __post_init__(self) -> None:
        # The same bounds as [alerts] in the config: a value beyond them (1e308 hours, nan) made
        # every later evaluation fail, and with it the alerts of every unit.
        if not (isinstance(self.dissatisfied_share, float | int) and 0 < self.dissatisfied_share <= 1):
            raise RuleError("dissatisfied_share must be above 0 and at most 1")
        if not (isinstance(self.window_h, float | int) and 0 < self.window_h <= RULE_MAX["window_h"]):
            raise RuleError(f"window_h must be above 0 and at most {RULE_MAX['window_h']:g}")
        for key in ("min_ratings", "silent_min", "offline_min"):
            value = getattr(self, key)
            if not (isinstance(value, int) and 1 <= value <= RULE_MAX[key]):
                raise RuleError(f"{key} must be a whole number from 1 to {RULE_MAX[key]}")

    @classmethod
    def from_form(cls, base: Rules, values: dict[str, Any]) -> Rules:
        """Rules from a form's text: a decimal comma is a decimal point ("0,3"), whole numbers
        are whole; anything else is a RuleError that names the field."""
        changed: dict[str, Any] = {}
        for key, raw in values.items():
            if key not in RULE_KEYS:
                continue
            text = str(raw).strip().replace(",", ".")
            try:
                number = float(text) if key in ("dissatisfied_share", "window_h") else int(text)
            except ValueError:
                raise RuleError(f"{key}: {str(raw)[:40]!r} is not a number") from None
            if number != number or number in (float("inf"), float("-inf")):
                raise RuleError(f"{key}: {str(raw)[:40]!r} is not a number")
            changed[key] = number
        return replace(base, **changed)


@dataclass(frozen=True)
class Alert:
    id: int
    kind: str  # dissatisfied | silent | offline
    target: str  # counter or kiosk id
    unit: str
    opened_at: str
    detail: str
    acked_by: str | None
    acked_at: str | None
    ack_comment: str | None

    @property
    def facts(self) -> dict[str, Any] | None:
        """What the alert says, as data (stored as JSON): rendered in each reader's language. An
        alert stored before that holds its Vietnamese sentence instead (None here)."""
        return alert_facts(self.detail)

    @property
    def window(self) -> timedelta | None:
        """How far back a "dissatisfied" alert looked (its facts' ``window_h``); None when its facts
        name none that is a number of hours a rule allows."""
        try:
            hours = float((self.facts or {}).get("window_h") or "nan")
        except (TypeError, ValueError):
            return None
        return timedelta(hours=hours) if 0 < hours <= RULE_MAX["window_h"] else None

    def text(self, lang: str = "vi") -> str:
        facts = self.facts
        return self.detail if facts is None else describe(facts, lang)

    def to_dict(self) -> dict[str, Any]:
        """For the API, MQTT and the webhook: ``detail`` in Vietnamese and ``detail_en`` as
        sentences, ``facts`` as data (null for an alert stored before facts were)."""
        return {**asdict(self), "detail": self.text("vi"), "detail_en": self.text("en"), "facts": self.facts}


def alert_facts(stored: str) -> dict[str, Any] | None:
    if not stored.startswith("{"):
        return None
    try:
        doc = json.loads(stored)
    except ValueError:
        return None
    return doc if isinstance(doc, dict) and isinstance(doc.get("key"), str) else None


def describe(facts: dict[str, Any], lang: str) -> str:
    """An alert's facts as a sentence in ``lang`` (i18n ``alert_text_<key>``)."""
    values = dict(facts)
    if "share" in values:
        values["share"] = formats.percent(values["share"], lang)  # one decimal, as everywhere
    if "left_days" in values:
        days = int(values["left_days"])
        values["left"] = (
            i18n.text("cert_expired", lang) if days < 0 else i18n.text("cert_days_left", lang).format(n=days)
        )
    for key in ("unhappy", "total", "minutes"):
        if isinstance(values.get(key), int):
            values[key] = formats.number(values[key], lang)
    key = f"alert_text_{facts['key']}"
    sentence = i18n.text(key, lang)
    try:
        if sentence != key:
            return sentence.format(**values)
    except (KeyError, IndexError, ValueError):
        pass
    return json.dumps(facts, ensure_ascii=False)  # facts this version has no sentence for: shown, not lost


def default_rules(settings: AlertSettings) -> Rules:
    return Rules(**{k: getattr(settings, k) for k in RULE_KEYS})


CERT_ALERT_DAYS = 30


class AlertBook:
    """Rules and alerts in the store."""

    def __init__(self, store: Store, settings: CollectorSettings) -> None:
        self.store = store
        self.settings = settings

    def set_rules(self, unit: str, values: dict[str, Any], registry: Registry) -> Rules:
        registry.unit(unit)
        rules = Rules.from_form(self.rules_for(unit, registry), values)
        self.store.alert_rules_put(unit, json.dumps(asdict(rules)))
        return rules

    def own_rules(self) -> dict[str, Rules]:
        """Each unit's own rules; one stored before the rules were bounded, and out of them, is
        logged and left out (the unit gets its parent's), never a stop of every unit's alerts."""
        own = {}
        for unit, doc in self.store.alert_rules_all().items():
            try:
                own[unit] = Rules(**json.loads(doc))
            except (RuleError, TypeError, ValueError) as exc:
                log.error("alert rules of unit %s are ignored: %s", unit, exc)
        return own

    def rules_for(self, unit: str, registry: Registry, own: dict[str, Rules] | None = None) -> Rules:
        own = self.own_rules() if own is None else own
        for ancestor in reversed(registry.path(unit)):
            if ancestor.id in own:
                return own[ancestor.id]
        return default_rules(self.settings.alerts)

    def alerts(self, units: frozenset[str] | None = None, *, open_only: bool = False, limit: int = 500) -> list[Alert]:
        rows = [Alert(*r) for r in self.store.alert_rows(open_only=open_only, limit=limit)]
        return rows if units is None else [a for a in rows if a.unit in units]

    def alert(self, alert_id: int) -> Alert | None:
        row = self.store.alert_row(alert_id)
        return None if row is None else Alert(*row)

    def acknowledge(self, alert_id: int, username: str, comment: str) -> bool:
        """Whether the alert was open (acknowledged now) or had been acknowledged already."""
        if not comment.strip():
            raise RuleError("say what was done about the alert")
        if len(comment.strip()) > 1000:
            raise RuleError("the comment is longer than 1000 characters")
        return self.store.alert_ack(alert_id, username, wire.format_time(datetime.now(UTC)), comment.strip())

    def open_alert(self, kind: str, target: str, unit: str, facts: dict[str, Any], at: datetime) -> Alert | None:
        """Open an alert unless one of this kind for this target is still open. ``facts`` are what
        it says, as data (rendered in the reader's language)."""
        detail = json.dumps({"key": kind, **facts}, ensure_ascii=False, sort_keys=True)
        alert_id = self.store.alert_open(kind, target, unit, wire.format_time(at), detail)
        return None if alert_id is None else self.alert(alert_id)

    # --- evaluation ---------------------------------------------------------------------

    def evaluate(self, registry: Registry, now: datetime, *, watching_since: datetime | None = None) -> list[Alert]:
        """Check every counter and kiosk once; returns the alerts opened now.

        ``watching_since``: since when the alerts have been evaluated without a break (default:
        now). A silence is counted from then at the earliest, so a collector that starts in the
        afternoon does not call every counter silent since the morning: it has to see it."""
        tz = self.settings.tz
        office = OfficeHours(self.settings.office.weekdays, self.settings.office.spans)
        own = self.own_rules()
        opened: list[Alert | None] = []
        statuses = self.store.kiosk_statuses()
        watched = watched_since(
            registry, statuses, self.store.online_since(), now, lambda unit: self.rules_for(unit, registry, own)
        )
        for counter in registry.counters.values():
            rules = self.rules_for(counter.unit, registry, own)
            since = wire.format_time(now - timedelta(hours=rules.window_h))
            total, unhappy = self.store.unhappy_since(counter.id, since)
            if total >= rules.min_ratings and unhappy / total >= rules.dissatisfied_share:
                facts = {
                    "unhappy": unhappy,
                    "total": total,
                    "share": round(unhappy / total, 4),
                    "window_h": f"{rules.window_h:g}",
                    "counter": counter.id,
                    "counter_name": counter.name,
                }
                opened.append(self.open_alert("dissatisfied", counter.id, counter.unit, facts, now))
            opened_at = office.opened_at(now, tz)
            if opened_at is not None and counter.id in watched:
                last = last_rating_at(self.store, counter.id)
                quiet_since = max(opened_at, watching_since or now, watched[counter.id])
                if last:
                    quiet_since = max(quiet_since, wire.parse_time(last))
                if (now - quiet_since) >= timedelta(minutes=rules.silent_min):
                    facts = {"minutes": rules.silent_min, "counter": counter.id, "counter_name": counter.name}
                    opened.append(self.open_alert("silent", counter.id, counter.unit, facts, now))
        for kiosk in registry.kiosks.values():
            unit = registry.counters[kiosk.counter].unit
            rules = self.rules_for(unit, registry, own)
            status = statuses.get(kiosk.id)
            if status is None:
                continue  # never installed: not an outage
            seen = wire.parse_time(status["received_at"])
            offline = status["state"] == "offline" or now - seen > timedelta(minutes=rules.offline_min + 2)
            if offline and now - seen >= timedelta(minutes=rules.offline_min):
                facts = {
                    "kiosk": kiosk.id,
                    "counter": kiosk.counter,
                    "counter_name": registry.counters[kiosk.counter].name,
                    "since": status["received_at"],
                    "since_local": f"{seen.astimezone(tz):%d/%m/%Y %H:%M}",
                }
                opened.append(self.open_alert("offline", kiosk.id, unit, facts, now))
        opened += self._expiring_certificates(registry, now, statuses)
        return [a for a in opened if a is not None]

    def _expiring_certificates(
        self, registry: Registry, now: datetime, statuses: dict[str, dict[str, Any]] | None = None
    ) -> list[Alert | None]:
        """A kiosk certificate that expires within CERT_ALERT_DAYS and has not been renewed: the
        kiosk renews 60 days ahead by itself, so this one has not managed (offline, refused)."""
        ca = FleetCA(self.settings.data_dir / "fleet")
        if not ca.exists():
            return []
        opened: list[Alert | None] = []
        statuses = self.store.kiosk_statuses() if statuses is None else statuses
        expiries = ca.expiries()
        for kiosk in registry.kiosks.values():
            expires = ca.expiry_in_use(kiosk.id, statuses.get(kiosk.id), expiries)
            if expires is None or expires - now > timedelta(days=CERT_ALERT_DAYS):
                continue
            unit = registry.counters[kiosk.counter].unit
            facts = {
                "kiosk": kiosk.id,
                "counter": kiosk.counter,
                "expires": wire.format_time(expires),
                "expires_local": f"{expires.astimezone(self.settings.tz):%d/%m/%Y}",
                "left_days": -1 if expires <= now else (expires - now).days,
            }
            opened.append(self.open_alert("cert_expiry", kiosk.id, unit, facts, now))
        return opened


def watched_since(
    registry: Registry,
    statuses: dict[str, dict[str, Any]],
    online_since: dict[str, str],
    now: datetime,
    rules_of: Callable[[str], Rules],
) -> dict[str, datetime]:
    """Counter → since when a kiosk of it has been online and caught up, so that a silence there
    means nobody pressed. Not watched: a counter with no kiosk installed (nobody to press), with its
    kiosks offline or not heard from within the offline rule (the offline alert's business: presses
    may be waiting in them), or whose kiosk still reports a backlog (presses on their way)."""
    out: dict[str, datetime] = {}
    for kiosk in registry.kiosks.values():
        status = statuses.get(kiosk.id)
        if status is None or status.get("state") == "offline":
            continue
        seen = wire.parse_time(status["received_at"])
        rules = rules_of(registry.counters[kiosk.counter].unit)
        if now - seen > timedelta(minutes=rules.offline_min + 2):  # as the offline alert judges it
            continue
        if ratings_waiting(status.get("backlog")):
            continue
        since = seen
        with contextlib.suppress(KeyError, wire.WireError):
            since = min(seen, wire.parse_time(online_since[kiosk.id]))
        out[kiosk.counter] = min(out.get(kiosk.counter, since), since)
    return out


class AlertNotifier:
    """Publishes a new alert on MQTT and POSTs it to the webhook (each failure logged, not fatal)."""

    def __init__(self, settings: CollectorSettings, publish: Callable[[str, bytes], None] | None) -> None:
        self.topic = settings.alerts.topic or f"{settings.mqtt.topic_prefix}/alerts"
        self.webhook = settings.alerts.webhook
        self.publish = publish

    def notify(self, alert: Alert) -> None:
        body = json.dumps({"v": 1, **alert.to_dict()}, ensure_ascii=False).encode()
        if self.publish is not None:
            try:
                self.publish(self.topic, body)
            except Exception:  # noqa: BLE001 - a broker hiccup must not stop the alert loop
                log.exception("could not publish alert %d on %s", alert.id, self.topic)
        if self.webhook:
            request = urllib.request.Request(
                self.webhook, data=body, method="POST", headers={"Content-Type": "application/json"}
            )
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    response.read()
            except OSError as exc:
                log.warning("alert webhook %s failed: %s", self.webhook, exc)


class AlertLoop:
    """Evaluates the rules every ``interval_s`` on its own thread and store connection."""

    def __init__(self, *, settings: CollectorSettings, notifier: AlertNotifier) -> None:
        self.settings = settings
        self.notifier = notifier
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="alerts", daemon=True)
        self.watching_since: datetime | None = None  # the first round of this process

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def run_once(self, store: Store) -> list[Alert]:
        book = AlertBook(store, self.settings)
        now = datetime.now(UTC)
        if self.watching_since is None:
            self.watching_since = now
        alerts = book.evaluate(store.load_registry(), now, watching_since=self.watching_since)
        for alert in alerts:
            log.warning("alert %s %s: %s", alert.kind, alert.target, alert.text("vi"))
            self.notifier.notify(alert)
        return alerts

    def _run(self) -> None:
        from collector.store import open_store

        store = open_store(self.settings.resolved_store_url)
        try:
            while not self._stop.wait(self.settings.alerts.interval_s):
                try:
                    self.run_once(store)
                except Exception:  # noqa: BLE001 - keep watching
                    log.exception("alert evaluation failed; trying again next round")
                    self.watching_since = None  # a break: silences are counted again from the next round
        finally:
            store.close()
