"""Ingest: MQTT in, validated, stored once, then acked — to the broker and to the kiosk.

paho hands messages over on its own thread; they go onto a queue. The ingest thread takes them
in batches, handles a whole batch in one store transaction, and only after the commit publishes
the collector's acks and PUBACKs the messages (``manual_ack=True``): a collector killed in the
middle leaves the messages with the broker, which delivers them again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import queue
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from dataclasses import replace as copy_of
from datetime import datetime, timedelta
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.subscribeoptions import SubscribeOptions

from collector.config import CollectorSettings
from collector.errors import CollectorError
from collector.fleet import FleetCA, FleetError
from collector.registry import Registry
from collector.releases import ReleaseBook
from collector.remotesettings import ConfigSender
from collector.store import Assignments, RatingStore, now_text, safe_text
from kiosk import wire
from kiosk.errors import MqttError
from kiosk.files import remove_file
from kiosk.mqtt import make_client, publish, session_properties, set_nodelay

log = logging.getLogger(__name__)

ACK_IDS_PER_MESSAGE = 500
CONFIG_EVERY_S = 5.0  # how often ingest looks for changed remote settings to send
SAMPLE_EVERY_S = 15 * 60  # a kiosk's page plots one status per quarter hour (and every online/offline change)
SAMPLE_KEEP_DAYS = 90
SAMPLE_FIELDS = ("state", "fw", "camera", "clock", "clock_source", "clock_error_ms", "disk_free_mb", "panel")


def sample_of(status: dict[str, Any]) -> dict[str, Any]:
    """What a kiosk's page plots over time, from one status."""
    out = {k: status[k] for k in SAMPLE_FIELDS if status.get(k) is not None}
    backlog = status.get("backlog")
    if isinstance(backlog, dict):
        out["backlog"] = backlog.get("ratings")
    settings = status.get("settings")
    if isinstance(settings, dict):
        out["settings"] = settings.get("revision")
    return out


def _minus(moment: str, seconds: float) -> str:
    return wire.format_time(wire.parse_time(moment) - timedelta(seconds=seconds))


@dataclass
class Acks:
    """What to ack to each kiosk once the transaction has committed."""

    ratings: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    snapshots: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    # Statuses to answer, each with its probe (None when it had none): every online status gets an
    # ack of its own carrying the collector's time, so a kiosk without NTP learns the time.
    statuses: dict[str, list[str | None]] = field(default_factory=lambda: defaultdict(list))
    # Answers to certificate requests (a new certificate, or why not), sent on the kiosk's cert topic.
    certs: dict[str, list[bytes]] = field(default_factory=lambda: defaultdict(list))


@dataclass
class Counts:
    """What ingest has committed since the process started (rolled back with the transaction)."""

    messages: int = 0
    stored: int = 0
    duplicates: int = 0
    quarantined: int = 0
    snapshots: int = 0
    statuses: int = 0
    by_reason: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    acks: int = 0  # ack messages published to kiosks
    batches: int = 0
    outages: int = 0  # times a commit failed because the store was unwell
    retained_cleared: int = 0  # ratings and pictures a kiosk sent retained, cleared off the broker

    def copy(self) -> Counts:
        return copy_of(self, by_reason=defaultdict(int, self.by_reason))


class Rejected(Exception):
    """A whole message breaks the contract (raised inside the handler, caught by it)."""

    def __init__(self, reason: str, detail: str, ack_ids: list[str] | None = None) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.ack_ids = ack_ids or []


class StoreOutage(CollectorError, RuntimeError):
    """The store cannot take anything now (disk full, database gone): ingest pauses, nothing is acked."""


FUTURE_TOLERANCE = timedelta(minutes=5)  # pressed_at later than receipt + this: time_in_future
BEFORE_ENROLMENT = timedelta(days=1)  # pressed_at before first enrolment - this: time_implausible
MAX_SPLIT_BYTES = 4 * 1024 * 1024  # an oversized batch up to this size is split item by item …
MAX_SPLIT_ITEMS = 4 * wire.MAX_BATCH_RATINGS  # … when it holds at most this many ratings (objects)


class MessageHandler:
    """Validates one message and writes its effect into the store (inside a transaction).

    Each message runs in its own savepoint. A message that fails for a reason of its own —
    a contract check, or a value that makes the code or the store fail — is rolled back alone,
    quarantined with its bytes and acked; only a store outage (:class:`StoreOutage`) escapes.
    """

    def __init__(
        self,
        *,
        store: RatingStore,
        settings: CollectorSettings,
        registry: Callable[[], Registry],
        assignments: Callable[[], Assignments] | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.registry = registry
        self.assignments = assignments or store.assignments
        self.topics = wire.Topics(settings.mqtt.topic_prefix)
        self.tz = settings.tz
        self.counts = Counts()
        self.item_refusals: list[str] = []  # reasons of the items refused alone in the last message
        self._unit_of: tuple[Registry | None, dict[str, str]] = (None, {})
        # While handle_batch gathers a run of rating messages: each message's checked ratings, stored
        # together at the end of the run instead of one message at a time.
        self._gathered: list[tuple[str, list[wire.Rating]]] | None = None

    def handle_batch(self, messages: Sequence[tuple[str, bytes]], received_at: str, acks: Acks) -> None:
        """Every message as :meth:`handle` takes it, with one difference that only makes it faster:
        the ratings of consecutive rating messages go to the store in one insert and one roll-up
        upsert. A message that fails its checks is still quarantined alone. Should the store refuse
        the run's insert (not an outage), the run is rolled back and taken again one message at a
        time, so a message that makes the store fail is quarantined alone, as before."""
        run: list[tuple[str, bytes]] = []
        for topic, payload in messages:
            if topic.endswith("/ratings"):
                run.append((topic, payload))
                continue
            self._handle_run(run, received_at, acks)
            run = []
            # A picture after its rating: the rating is stored first.
            self.handle(topic, payload, received_at, acks)
        self._handle_run(run, received_at, acks)

    def _handle_run(self, run: list[tuple[str, bytes]], received_at: str, acks: Acks) -> None:
        if len(run) <= 1:
            for topic, payload in run:
                self.handle(topic, payload, received_at, acks)
            return
        counts = self.counts.copy()
        mine = Acks()
        try:
            with self.store.savepoint():
                self._gathered = []
                for topic, payload in run:
                    # No savepoint of its own (on PostgreSQL each is a round trip): a message that
                    # fails other than by its checks sends the whole run the slow way below.
                    self.counts.messages += 1
                    self.item_refusals = []
                    self._handle(topic, payload, received_at, received_at, mine, True)
                gathered, self._gathered = self._gathered, None
                new, duplicates = self.store.add_rating_groups(
                    gathered, unit_of=self._units_of(self.registry()), received_at=received_at, tz=self.tz
                )
                conflicts = self._id_conflicts(gathered, duplicates, received_at)
        except StoreOutage:
            raise
        except Exception as exc:
            if self.store.is_outage(exc):
                raise StoreOutage(f"store: {exc}") from exc
            log.warning(
                "a run of rating messages failed together; taking them one at a time",
                extra={"kv": {"messages": len(run), "error": safe_text(f"{type(exc).__name__}: {exc}", 300)}},
            )
            self.counts = counts
            for topic, payload in run:
                self.handle(topic, payload, received_at, acks)
            return
        finally:
            self._gathered = None
        self.counts.stored += len(new)
        self.counts.duplicates += len(duplicates) - conflicts
        for kiosk, ratings in gathered:
            acks.ratings[kiosk].extend(r.id for r in ratings)
        _merge(acks, mine)

    def handle(
        self,
        topic: str,
        payload: bytes,
        received_at: str,
        acks: Acks,
        *,
        quarantine: bool = True,
        checked_at: str | None = None,
    ) -> str | None:
        """Returns None when the message was taken, or the reason it was refused.

        ``checked_at`` is the receipt time the time checks use (a replay passes the original).
        """
        self.counts.messages += 1
        self.item_refusals = []
        mine = Acks()
        try:
            with self.store.savepoint():
                outcome = self._handle(topic, payload, received_at, checked_at or received_at, mine, quarantine)
        except Exception as exc:
            if self.store.is_outage(exc):
                raise StoreOutage(f"store: {exc}") from exc
            outcome = self._internal_error(topic, payload, received_at, exc, mine, quarantine)
        _merge(acks, mine)
        return outcome

    def _handle(
        self, topic: str, payload: bytes, received_at: str, checked_at: str, acks: Acks, quarantine: bool
    ) -> str | None:
        kiosk = None
        try:
            ref = self.topics.parse(topic)
            kiosk = ref.kiosk
            if ref.kind == "ratings":
                self._ratings(ref.kiosk, topic, payload, received_at, checked_at, acks)
            elif ref.kind == "snapshots":
                assert ref.rating_id is not None
                self._snapshot(ref.kiosk, ref.rating_id, payload, received_at, acks)
            elif ref.kind == "status":
                self._status(ref.kiosk, payload, received_at, acks)
            elif ref.kind == "csr":
                self._csr(ref.kiosk, payload, received_at, acks)
            else:
                raise Rejected("bad_topic", f"collectors take no {ref.kind!r} messages")
            return None
        except (Rejected, wire.WireError) as exc:
            reason, detail = exc.reason, getattr(exc, "detail", str(exc))
            if quarantine:
                self.store.add_quarantine(topic, payload, reason, detail, received_at, kiosk=kiosk)
                self.counts.quarantined += 1
                self.counts.by_reason[reason] += 1
                log.warning(
                    "quarantined a message",
                    extra={"kv": {"topic": safe_text(topic, 200), "reason": reason, "detail": safe_text(detail, 300)}},
                )
            if kiosk is not None:
                ids = exc.ack_ids if isinstance(exc, Rejected) else _ids_in(payload)
                if "/snapshots/" in topic:
                    acks.snapshots[kiosk].extend(ids)
                elif topic.endswith("/status"):
                    if payload:
                        acks.statuses[kiosk].append(None)  # refused, but the time still helps
                elif topic.endswith("/csr"):
                    acks.certs[kiosk].append(wire.encode_cert(kiosk, error=f"{reason}: {safe_text(detail, 250)}"))
                else:
                    acks.ratings[kiosk].extend(ids)
            return reason

    def _internal_error(
        self, topic: str, payload: bytes, received_at: str, exc: Exception, acks: Acks, quarantine: bool
    ) -> str:
        """A message that made the code or the store fail by itself: everything it did is rolled
        back; it is quarantined whole and acked, and the messages beside it go on."""
        log.error(
            "message on %s failed ingest (%s); quarantined as internal_error", safe_text(topic, 200), exc, exc_info=exc
        )
        acks.ratings.clear()
        acks.snapshots.clear()
        kiosk = None
        with contextlib.suppress(wire.WireError):
            kiosk = self.topics.parse(topic).kiosk
        if quarantine:
            try:
                with self.store.savepoint():
                    self.store.add_quarantine(
                        topic, payload, "internal_error", f"{type(exc).__name__}: {exc}", received_at, kiosk=kiosk
                    )
            except Exception as again:
                # Even the quarantine cannot take it: treat it as the store's trouble, ack nothing.
                raise StoreOutage(f"store: cannot quarantine ({again})") from again
            self.counts.quarantined += 1
            self.counts.by_reason["internal_error"] += 1
        if kiosk is not None:
            if "/snapshots/" in topic:
                rating_id = topic.rsplit("/", 1)[-1]
                if wire.is_rating_id(rating_id):
                    acks.snapshots[kiosk].append(rating_id)
            else:
                acks.ratings[kiosk].extend(_ids_in(payload))
        return "internal_error"

    def _ratings(self, kiosk: str, topic: str, payload: bytes, received_at: str, checked_at: str, acks: Acks) -> None:
        try:
            batch = wire.decode_batch(payload, topic_kiosk=kiosk)
        except wire.WireError as exc:
            if exc.reason == "batch_too_big" and self._split(kiosk, topic, payload, exc.detail, received_at, acks):
                return
            raise
        registry = self.registry()
        if kiosk not in registry.kiosks:
            raise Rejected("unknown_kiosk", f"kiosk {kiosk!r} is not in the registry", _ids_in(payload))
        history = self.assignments()
        current = registry.kiosks[kiosk].counter
        first = history.first_enrolled.get(kiosk)
        latest = wire.parse_time(checked_at) + FUTURE_TOLERANCE
        earliest = None if first is None else wire.parse_time(first) - BEFORE_ENROLMENT
        good = []
        for rating in batch.ratings:
            refusal = None
            pressed = rating.pressed_at_dt
            if rating.counter not in registry.counters:
                refusal = ("unknown_counter", f"counter {rating.counter!r} is not in the registry")
            elif rating.counter != current and not history.held(kiosk, rating.counter, pressed, slack=FUTURE_TOLERANCE):
                refusal = (
                    "counter_mismatch",
                    f"kiosk {kiosk} was not assigned to counter {rating.counter!r} at {rating.pressed_at}",
                )
            elif pressed > latest:
                refusal = ("time_in_future", f"pressed_at {rating.pressed_at} is after receipt {checked_at} + 5 min")
            elif earliest is not None and pressed < earliest:
                refusal = (
                    "time_implausible",
                    f"pressed_at {rating.pressed_at} is before the kiosk's first enrolment {first} - 1 day",
                )
            if refusal is None:
                good.append(rating)
                continue
            self._quarantine_item(kiosk, topic, rating.to_dict(), *refusal, received_at)
            acks.ratings[kiosk].append(rating.id)
        for rejected in batch.rejected:
            self._quarantine_item(kiosk, topic, rejected.item, rejected.reason, rejected.detail, received_at)
            if rejected.rating_id:
                acks.ratings[kiosk].append(rejected.rating_id)
        if self._gathered is not None:
            self._gathered.append((kiosk, good))  # stored with the rest of the run (handle_batch)
            return
        unit_of = self._units_of(registry)
        new, duplicates = self.store.add_ratings(kiosk, good, unit_of=unit_of, received_at=received_at, tz=self.tz)
        conflicts = self._id_conflicts([(kiosk, good)], duplicates, received_at)
        self.counts.stored += len(new)
        self.counts.duplicates += len(duplicates) - conflicts
        acks.ratings[kiosk].extend(new)
        acks.ratings[kiosk].extend(duplicates)

    def _id_conflicts(
        self, groups: Sequence[tuple[str, Sequence[wire.Rating]]], duplicates: Sequence[str], received_at: str
    ) -> int:
        """A "duplicate" whose id was stored from another kiosk is not a re-send but a clash (a
        kiosk reusing ids, or one that knows another's): kept in quarantine, not dropped; the
        stored rating stays as it is. Acked all the same, so the kiosk stops sending it."""
        if not duplicates:
            return 0
        owners = self.store.rating_kiosks(duplicates)
        clashing = 0
        for kiosk, ratings in groups:
            for r in ratings:
                owner = owners.get(r.id)
                if owner is not None and owner != kiosk:
                    self._quarantine_item(
                        kiosk,
                        self.topics.ratings(kiosk),
                        r.to_dict(),
                        "id_conflict",
                        f"rating id {r.id} was stored from kiosk {owner}",
                        received_at,
                    )
                    clashing += 1
        return clashing

    def _units_of(self, registry: Registry) -> dict[str, str]:
        """Counter → unit of this registry, made once per registry (not once per message)."""
        if self._unit_of[0] is not registry:
            self._unit_of = (registry, {c.id: c.unit for c in registry.counters.values()})
        return self._unit_of[1]

    def _split(self, kiosk: str, topic: str, payload: bytes, detail: str, received_at: str, acks: Acks) -> bool:
        """An oversized batch is quarantined item by item, so that each can be replayed alone."""
        if len(payload) > MAX_SPLIT_BYTES:
            return False
        try:
            doc = wire.loads(payload)
        except wire.WireError:
            return False
        if not isinstance(doc, dict) or doc.get("v") != wire.VERSION or doc.get("kiosk") != kiosk:
            return False
        items = doc.get("ratings")
        if not isinstance(items, list) or not items:
            return False
        # A real kiosk's oversized batch holds ratings; a million zeros is an attack, and split it
        # would be a million quarantine rows in one transaction while every kiosk waits.
        if len(items) > MAX_SPLIT_ITEMS or not all(isinstance(item, dict) for item in items):
            return False
        for index, item in enumerate(items):
            self._quarantine_item(
                kiosk, topic, item, "batch_too_big", f"item {index + 1} of {len(items)}: {detail}", received_at
            )
            rating_id = item.get("id") if isinstance(item, dict) else None
            if wire.is_rating_id(rating_id):
                acks.ratings[kiosk].append(str(rating_id))
        return True

    def _quarantine_item(self, kiosk: str, topic: str, item: Any, reason: str, detail: str, received_at: str) -> None:
        # Kept as a one-rating batch so that a replay goes through the same path. ASCII escapes keep
        # whatever the item holds (a lone surrogate too) as valid bytes.
        payload = json.dumps({"v": wire.VERSION, "kiosk": kiosk, "ratings": [item]}).encode()
        install = seq = None
        if isinstance(item, dict):
            if isinstance(item.get("install"), str) and wire.INSTALL_ID.match(item["install"]):
                install = item["install"]
            if wire.is_seq(item.get("seq")):
                seq = item["seq"]
        self.store.add_quarantine(topic, payload, reason, detail, received_at, kiosk=kiosk, install=install, seq=seq)
        self.counts.quarantined += 1
        self.counts.by_reason[reason] += 1
        self.item_refusals.append(reason)
        log.warning(
            "quarantined a rating",
            extra={"kv": {"kiosk": kiosk, "seq": seq, "reason": reason, "detail": safe_text(detail, 300)}},
        )

    def _snapshot(self, kiosk: str, rating_id: str, payload: bytes, received_at: str, acks: Acks) -> None:
        if len(payload) > wire.MAX_SNAPSHOT_BYTES:
            raise Rejected("snapshot_too_big", f"{len(payload)} bytes > {wire.MAX_SNAPSHOT_BYTES}", [rating_id])
        expected = self.store.snapshot_expected(rating_id)
        if expected is None:
            raise Rejected("snapshot_orphan", f"no stored rating {rating_id}", [rating_id])
        owner, sha256, _ = expected
        if owner != kiosk:
            raise Rejected("kiosk_mismatch", f"rating {rating_id} belongs to {owner}, not {kiosk}", [rating_id])
        digest = hashlib.sha256(payload).hexdigest()
        if digest != sha256:
            raise Rejected("snapshot_mismatch", f"sha256 {digest} != announced {sha256}", [rating_id])
        if not self.store.has_snapshot(rating_id):
            ref = self.store.keep_picture(self.settings.snapshot_dir, digest, payload)
            self.store.add_snapshot(rating_id, digest, ref, len(payload), received_at)
            self.counts.snapshots += 1
        acks.snapshots[kiosk].append(rating_id)

    def _status(self, kiosk: str, payload: bytes, received_at: str, acks: Acks) -> None:
        if not payload:
            return  # a retained status being cleared
        doc = wire.decode_status(payload, topic_kiosk=kiosk)
        if kiosk not in self.registry().kiosks:
            raise Rejected("unknown_kiosk", f"status from kiosk {kiosk!r}, which is not in the registry")
        update = doc.get("update")
        if isinstance(update, dict):
            now = (str(update.get("version")), str(update.get("state")))
            if self.store.kiosk_update_state(kiosk) != now:  # a step of an update: kept for its page
                detail = f"{now[0]}: {now[1]}" + (f" — {update['error']}" if update.get("error") else "")
                self.store.audit_add(received_at, "collector", "kiosk_update", f"kiosk:{kiosk}", detail[:400])
        self.store.record_status(kiosk, doc, received_at)
        self.store.kiosk_sample_add(
            kiosk, received_at, json.dumps(sample_of(doc)), unless_after=_minus(received_at, SAMPLE_EVERY_S)
        )
        self.counts.statuses += 1
        if doc["state"] == "online":  # the will of a kiosk that is gone needs no answer
            acks.statuses[kiosk].append(doc.get("probe"))

    def _csr(self, kiosk: str, payload: bytes, received_at: str, acks: Acks) -> None:
        """A kiosk asks for a new certificate before its own expires: signed by the fleet CA when the
        kiosk is registered and holds a certificate that is not revoked."""
        request = wire.decode_csr(payload, topic_kiosk=kiosk)
        if kiosk not in self.registry().kiosks:
            raise Rejected("unknown_kiosk", f"certificate request from kiosk {kiosk!r}, which is not in the registry")
        ca = FleetCA(self.settings.data_dir / "fleet")
        try:
            if not ca.exists():
                raise FleetError(f"this collector holds no fleet CA ({ca.folder})")
            cert_pem = ca.renew(request, kiosk)
            expires = ca.expiry(kiosk)
        except (FleetError, OSError, ValueError) as exc:
            # The CA's files, not the store: an unreadable key or a full disk refuses this request
            # (quarantined, answered), it never pauses ingest for the fleet.
            raise Rejected(
                "csr_refused", f"{type(exc).__name__}: {exc}" if isinstance(exc, OSError) else str(exc)
            ) from None
        self.store.audit_add(
            received_at, "collector", "renew_certificate", f"kiosk:{kiosk}", f"new certificate until {expires}"
        )
        log.info("renewed the certificate of a kiosk", extra={"kv": {"kiosk": kiosk, "until": str(expires)}})
        acks.certs[kiosk].append(wire.encode_cert(kiosk, cert_pem=cert_pem.decode("ascii")))


class Ingestor:
    """Runs the MQTT client and the ingest thread."""

    def __init__(self, *, settings: CollectorSettings, store: RatingStore, housekeeping: bool = True) -> None:
        """``housekeeping``: also purge old pictures and quarantine entries hourly (off when a jobs
        process does it, so several ingest processes do not all do it)."""
        self.settings = settings
        self.store = store
        self.housekeeper = Housekeeper(settings=settings, store=store) if housekeeping else None
        self._registry = store.load_registry()
        self._assignments = store.assignments()
        self._registry_loaded = time.monotonic()
        self.handler = MessageHandler(
            store=store, settings=settings, registry=self.registry, assignments=lambda: self._assignments
        )
        self.topics = wire.Topics(settings.mqtt.topic_prefix)
        self._messages: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
        self._stop = threading.Event()
        self._connected = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ingest", daemon=True)
        self.client = make_client(settings.ingest.client_id, settings.mqtt, manual_ack=True, few=True)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        # Collector presence: a retained status, a new session on every connection, and a will.
        self._presence_topic = wire.collector_status_topic(settings.mqtt.topic_prefix)
        self.session = ""
        self.client.will_set(self._presence_topic, wire.encode_collector_status("offline"), qos=1, retain=True)
        self.last_error: str | None = None
        self.outage: str | None = None  # why ingest is paused, while the store is unwell
        # Remote settings: each kiosk's retained config, sent when its settings change.
        releases = ReleaseBook(store, settings.data_dir)
        self.config_sender = ConfigSender(
            store,
            self.registry,
            self._publish_retained,
            offers=lambda registry: releases.offers(registry, settings.release_url),
        )
        self._config_resend = threading.Event()
        # Each batch's commit time goes to these (the metrics' histogram) as it happens: nothing
        # is kept per batch, so memory does not grow with the batches when nobody scrapes.
        self.batch_observers: list[Callable[[float], None]] = []
        self.batch_seconds_total = 0.0

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def health(self) -> dict[str, Any]:
        """For /readyz: the broker connection and whether ingest is paused by a store outage."""
        return {"broker": self.connected, "ingest": "paused" if self.outage else "running", "outage": self.outage}

    def registry(self) -> Registry:
        # Another process (`collector registry load`) may have changed it: look again now and then.
        # Called inside the ingest transaction, so what it reads is consistent with what it writes.
        if time.monotonic() - self._registry_loaded > 10.0:
            self._registry = self.store.load_registry()
            self._assignments = self.store.assignments()
            self._registry_loaded = time.monotonic()
        return self._registry

    def start(self) -> None:
        self.client.connect_async(
            self.settings.mqtt.host,
            self.settings.mqtt.port,
            self.settings.mqtt.keepalive_s,
            clean_start=False,
            properties=session_properties(self.settings.ingest.session_expiry_s),
        )
        self.client.loop_start()
        self._thread.start()

    def publish(self, topic: str, payload: bytes) -> None:
        """For other parts of the collector (alerts): QoS 1, not retained; MqttError if not taken."""
        publish(self.client, topic, payload)

    def _publish_retained(self, topic: str, payload: bytes) -> None:
        publish(self.client, topic, payload, retain=True)

    def _send(self, topic: str, payload: bytes, *, retain: bool = False) -> None:
        """An ack or an answer after the commit: one not taken is logged, and the kiosk's re-send
        (its ratings are stored already) brings another."""
        try:
            publish(self.client, topic, payload, retain=retain)
        except MqttError as exc:
            log.warning("could not send to a kiosk: %s", exc, extra={"kv": {"topic": topic}})

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        if self.connected:
            with contextlib.suppress(MqttError, RuntimeError, ValueError):
                info = publish(self.client, self._presence_topic, wire.encode_collector_status("offline"), retain=True)
                info.wait_for_publish(timeout=5)
        self.client.disconnect()
        self.client.loop_stop()

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        if message.topic == self._presence_topic:
            self._presence_seen(client, message)
        else:
            self._messages.put(message)

    def _presence_seen(self, client: mqtt.Client, message: mqtt.MQTTMessage) -> None:
        """Another collector's will says "offline" while this one is online: say online again, so
        kiosks know a collector is there (with several collectors, any one online counts)."""
        try:
            state, session = wire.decode_collector_status(bytes(message.payload))
        except wire.WireError:
            return
        if state == "offline" and self.session and self.connected and not self._stop.is_set():
            self._announce(client)

    def _announce(self, client: mqtt.Client) -> None:
        try:
            publish(client, self._presence_topic, wire.encode_collector_status("online", self.session), retain=True)
        except MqttError as exc:  # the next connection announces again
            log.warning("could not announce the collector's presence: %s", exc)

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if reason.is_failure:
            self.last_error = f"broker refused the collector: {reason}"
            log.error("%s — check [mqtt] username/password or certificate", self.last_error)
            return
        set_nodelay(client)
        group = self.settings.ingest.share_group
        filters = [f"$share/{group}/{f}" if group else f for f in self.topics.collector_filters()]
        client.subscribe(
            [(f, SubscribeOptions(qos=1, retainAsPublished=True)) for f in filters]
            + [(self._presence_topic, SubscribeOptions(qos=1))]
        )
        # A new session on every connection: kiosks that reconnected first re-send to it at once.
        self.session = uuid.uuid4().hex[:16]
        self._announce(client)
        self._config_resend.set()
        self._connected.set()
        log.info(
            "collector connected to %s:%d (session present: %s), subscribed to %s",
            self.settings.mqtt.host,
            self.settings.mqtt.port,
            flags.session_present,
            ", ".join(filters),
        )

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        self._connected.clear()
        if not self._stop.is_set():
            log.warning("collector disconnected; reconnecting", extra={"kv": {"reason": str(reason)}})

    def _run(self) -> None:
        last_purge = 0.0
        last_config = 0.0
        while not self._stop.is_set():
            try:
                batch = self._take_batch()
                if batch:
                    self._commit(batch)
                if self.connected and (self._config_resend.is_set() or time.monotonic() - last_config > CONFIG_EVERY_S):
                    last_config = time.monotonic()
                    self._send_configs()
                if self.housekeeper is not None and time.monotonic() - last_purge > 3600:
                    last_purge = time.monotonic()
                    self.housekeeper.run_once()
            except Exception:  # the loop must outlive anything; the broker keeps what was not PUBACKed
                log.exception("ingest loop error; going on")
                self._stop.wait(1.0)

    def _send_configs(self) -> None:
        if self._config_resend.is_set():
            self._config_resend.clear()
            self.config_sender.forget()
        try:
            self.config_sender.run_once(self.topics.config)
        except Exception as exc:  # the store is unwell: the next round tries again
            self.config_sender.forget()
            log.warning("could not send remote settings: %s", exc)

    def _take_batch(self) -> list[mqtt.MQTTMessage]:
        try:
            first = self._messages.get(timeout=0.5)
        except queue.Empty:
            return []
        batch = [first]
        deadline = time.monotonic() + self.settings.ingest.batch_wait_s
        while len(batch) < self.settings.ingest.batch_messages:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                batch.append(self._messages.get(timeout=remaining))
            except queue.Empty:
                break
        return batch

    def _commit(self, batch: list[mqtt.MQTTMessage]) -> None:
        """One transaction for the batch, each message in its own savepoint; acks after the commit.

        Only a store outage gets here as an exception: then nothing is acked, ingest pauses and
        the same messages are tried again with a growing pause (2 s up to 30 s)."""
        pause_s = 2.0
        while not self._stop.is_set():
            acks = Acks()
            received_at = now_text()
            counts = self.handler.counts.copy()
            started = time.perf_counter()
            try:
                with self.store.transaction():
                    self.handler.handle_batch(
                        [
                            (_topic_of(message), bytes(message.payload))
                            for message in batch
                            # a retained message being cleared (by _clear_retained): nothing sent
                            if not (message.retain and not message.payload)
                        ],
                        received_at,
                        acks,
                    )
                self.handler.counts.batches += 1
                took = time.perf_counter() - started
                self.batch_seconds_total += took
                for observe in self.batch_observers:
                    observe(took)
                if self.outage:
                    log.warning("store answers again; ingest resumes")
                self.outage = None
                break
            except Exception as exc:  # the store is unwell: keep the batch, retry, ack nothing
                self.handler.counts = counts
                self.handler.counts.outages += 1
                self.outage = self.last_error = safe_text(str(exc), 500) or type(exc).__name__
                log.error(
                    "store outage, %d message(s) wait, nothing acked; retrying in %.0f s: %s",
                    len(batch),
                    pause_s,
                    self.outage,
                    exc_info=not isinstance(exc, StoreOutage),
                )
                self._stop.wait(pause_s)
                pause_s = min(pause_s * 2, 30.0)
        else:
            return  # stopping: nothing acked, the broker keeps the messages
        self._publish_acks(acks)
        for message in batch:
            if message.retain and not _topic_of(message).endswith("/status") and message.payload:
                self._clear_retained(_topic_of(message))
            self.client.ack(message.mid, message.qos)

    def _clear_retained(self, topic: str) -> None:
        """A kiosk's rating or picture sent with the retain flag would stay in the broker's memory
        for good (a new retained slot per picture): taken like any other, then cleared. The
        subscriptions ask for the flag as published (MQTT v5 retain-as-published)."""
        self.handler.counts.retained_cleared += 1
        log.warning("cleared a retained message a kiosk left on the broker", extra={"kv": {"topic": topic}})
        self._send(topic, b"", retain=True)

    def _publish_acks(self, acks: Acks) -> None:
        for kiosk, answers in acks.certs.items():
            for answer in answers:
                self._send(self.topics.cert(kiosk), answer)
        for kiosk, probes in acks.statuses.items():
            for probe in probes[-8:]:  # a kiosk keeps no more unanswered statuses than that
                self.handler.counts.acks += 1
                self._send(self.topics.acks(kiosk), wire.encode_ack(status=probe))
        for kiosk in set(acks.ratings) | set(acks.snapshots):
            ratings = list(dict.fromkeys(acks.ratings.get(kiosk, [])))
            snapshots = list(dict.fromkeys(acks.snapshots.get(kiosk, [])))
            for start in range(0, max(len(ratings), len(snapshots)), ACK_IDS_PER_MESSAGE):
                self.handler.counts.acks += 1
                self._send(
                    self.topics.acks(kiosk),
                    wire.encode_ack(
                        ratings[start : start + ACK_IDS_PER_MESSAGE],
                        snapshots[start : start + ACK_IDS_PER_MESSAGE],
                    ),
                )


class Housekeeper:
    """Hourly upkeep: pictures past their retention, quarantine entries past theirs or over the size
    cap. Runs in the ingest thread of a lone collector, or as one of the jobs (collector/joblock.py)."""

    def __init__(self, *, settings: CollectorSettings, store: RatingStore) -> None:
        self.settings = settings
        self.store = store
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> None:
        self._purge_snapshots()
        self._expire_quarantine()
        self._purge_samples()

    def _purge_samples(self) -> None:
        cutoff = wire.format_time(datetime.now().astimezone() - timedelta(days=SAMPLE_KEEP_DAYS))
        try:
            with self.store.transaction():
                gone = self.store.kiosk_samples_purge(cutoff)
        except Exception:
            log.exception("could not remove old kiosk status samples")
            return
        if gone:
            log.info("removed %d kiosk status sample(s) older than %d days", gone, SAMPLE_KEEP_DAYS)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="housekeeping", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        while True:
            try:
                self.run_once()
            except Exception:
                log.exception("housekeeping failed; trying again in an hour")
            if self._stop.wait(3600):
                return

    def _expire_quarantine(self) -> None:
        keep_s = self.settings.ingest.quarantine_retention_days * 86400
        cutoff = wire.format_time(datetime.now().astimezone() - timedelta(seconds=keep_s))
        try:
            dropped = self.store.expire_quarantine(
                older_than=cutoff, max_bytes=int(self.settings.ingest.quarantine_max_mb * 1024 * 1024)
            )
        except Exception:
            log.exception("quarantine expiry failed; will try again")
            return
        if dropped:
            log.warning(
                "quarantine: removed %s (counted in `collector quarantine list`)",
                ", ".join(f"{n} {reason} ({why})" for (reason, why), n in sorted(dropped.items())),
            )

    def _purge_snapshots(self) -> None:
        keep_s = self.settings.ingest.snapshot_retention_days * 86400
        cutoff = wire.format_time(datetime.now().astimezone() - timedelta(seconds=keep_s))
        try:
            paths = self.store.purge_snapshots(cutoff)
        except Exception:
            log.exception("snapshot purge failed; will try again")
            return
        for path in paths:
            remove_file(path)
        if paths:
            log.info(
                "purged %d snapshot(s) older than %.0f days",
                len(paths),
                self.settings.ingest.snapshot_retention_days,
            )


def replay_quarantine(*, store: RatingStore, settings: CollectorSettings, page: int = 500) -> list[tuple[int, str]]:
    """Run quarantined messages through ingest again (after the registry was fixed).

    Pages through every entry in id order, however many still fail. A message that now passes
    is stored and marked replayed; one that still fails stays where it is, unchanged. A message
    of several ratings of which some still fail is split: the good ones are stored, the others
    become entries of their own, and the original is marked replayed. The time checks use the
    original receipt time. Returns (entry id, outcome) pairs.
    """
    # Read once for the whole replay, not once per entry: neither changes while it runs.
    registry, history = store.load_registry(), store.assignments()
    handler = MessageHandler(store=store, settings=settings, registry=lambda: registry, assignments=lambda: history)
    results: list[tuple[int, str]] = []
    after = 0
    while True:
        entries = store.quarantined(after_id=after, limit=page)
        if not entries:
            return results
        for entry in entries:
            after = entry.id
            outcome: str | None = None
            try:
                with store.transaction():
                    outcome = handler.handle(
                        entry.topic, entry.payload, now_text(), Acks(), quarantine=False, checked_at=entry.received_at
                    )
                    if outcome is None and handler.item_refusals and _single_rating(entry.payload):
                        outcome = handler.item_refusals[0]
                    if outcome is not None:
                        raise _StillBad()
                    done = "split" if handler.item_refusals else "stored"
                    store.mark_replayed(entry.id, done, now_text())
            except _StillBad:
                results.append((entry.id, f"still {outcome}"))
            else:
                results.append((entry.id, done))


class _StillBad(Exception):
    pass


def _single_rating(payload: bytes) -> bool:
    try:
        doc = wire.loads(payload)
    except wire.WireError:
        return True
    items = doc.get("ratings") if isinstance(doc, dict) else None
    return not isinstance(items, list) or len(items) <= 1


def _merge(into: Acks, part: Acks) -> None:
    for kiosk, ids in part.ratings.items():
        into.ratings[kiosk].extend(ids)
    for kiosk, ids in part.snapshots.items():
        into.snapshots[kiosk].extend(ids)
    for kiosk, probes in part.statuses.items():
        into.statuses[kiosk].extend(probes)
    for kiosk, answers in part.certs.items():
        into.certs[kiosk].extend(answers)


def _topic_of(message: mqtt.MQTTMessage) -> str:
    # paho decodes the topic as UTF-8 and raises on bytes that are not; the broker should have
    # refused those, but a raw topic is still kept rather than losing the message.
    try:
        return message.topic
    except UnicodeDecodeError:
        return message._topic.decode("utf-8", "backslashreplace")


def _ids_in(payload: bytes) -> list[str]:
    """Best effort: the rating ids in a refused batch, so its kiosk stops sending it."""
    try:
        doc = wire.loads(payload)
    except wire.WireError:
        return []
    items = doc.get("ratings") if isinstance(doc, dict) else None
    if not isinstance(items, list):
        return []
    ids = (item.get("id") if isinstance(item, dict) else None for item in items)
    return [rid for rid in ids if isinstance(rid, str) and wire.is_rating_id(rid)]
