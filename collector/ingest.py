"""Ingest: MQTT in, validated, stored once, then acked — to the broker and to the kiosk.

paho hands messages over on its own thread; they go onto a queue. The ingest thread takes them
in batches, handles a whole batch in one store transaction, and only after the commit publishes
the collector's acks and PUBACKs the messages (``manual_ack=True``): a collector killed in the
middle leaves the messages with the broker, which delivers them again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import queue
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt

from collector.config import CollectorSettings
from collector.registry import Registry
from collector.store import RatingStore, now_text
from kiosk import wire
from kiosk.files import remove_file, write_atomically
from kiosk.publisher import make_client, session_properties, set_nodelay

log = logging.getLogger(__name__)

ACK_IDS_PER_MESSAGE = 500


@dataclass
class Acks:
    """What to ack to each kiosk once the transaction has committed."""

    ratings: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    snapshots: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))


@dataclass
class Counts:
    messages: int = 0
    stored: int = 0
    duplicates: int = 0
    quarantined: int = 0
    snapshots: int = 0
    statuses: int = 0


class Rejected(Exception):
    """A whole message breaks the contract (raised inside the handler, caught by it)."""

    def __init__(self, reason: str, detail: str, ack_ids: list[str] | None = None) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.ack_ids = ack_ids or []


class MessageHandler:
    """Validates one message and writes its effect into the store (inside a transaction)."""

    def __init__(self, *, store: RatingStore, settings: CollectorSettings, registry: Callable[[], Registry]) -> None:
        self.store = store
        self.settings = settings
        self.registry = registry
        self.topics = wire.Topics(settings.mqtt.topic_prefix)
        self.tz = settings.tz
        self.counts = Counts()

    def handle(
        self, topic: str, payload: bytes, received_at: str, acks: Acks, *, quarantine: bool = True
    ) -> str | None:
        """Returns None when the message was taken, or the reason it was refused."""
        self.counts.messages += 1
        kiosk = None
        try:
            ref = self.topics.parse(topic)
            kiosk = ref.kiosk
            if ref.kind == "ratings":
                self._ratings(ref.kiosk, topic, payload, received_at, acks)
            elif ref.kind == "snapshots":
                assert ref.rating_id is not None
                self._snapshot(ref.kiosk, ref.rating_id, payload, received_at, acks)
            elif ref.kind == "status":
                self._status(ref.kiosk, payload, received_at)
            return None
        except (Rejected, wire.WireError) as exc:
            reason, detail = exc.reason, getattr(exc, "detail", str(exc))
            if quarantine:
                self.store.add_quarantine(topic, payload, reason, detail, received_at)
                self.counts.quarantined += 1
                log.warning("quarantined %s: %s (%s)", topic, reason, detail)
            if kiosk is not None:
                ids = exc.ack_ids if isinstance(exc, Rejected) else _ids_in(payload)
                if "/snapshots/" in topic:
                    acks.snapshots[kiosk].extend(ids)
                else:
                    acks.ratings[kiosk].extend(ids)
            return reason

    def _ratings(self, kiosk: str, topic: str, payload: bytes, received_at: str, acks: Acks) -> None:
        batch = wire.decode_batch(payload, topic_kiosk=kiosk)
        registry = self.registry()
        if kiosk not in registry.kiosks:
            raise Rejected("unknown_kiosk", f"kiosk {kiosk!r} is not in the registry", _ids_in(payload))
        good = []
        for rating in batch.ratings:
            if rating.counter in registry.counters:
                good.append(rating)
            else:
                self._quarantine_item(
                    kiosk,
                    topic,
                    rating.to_dict(),
                    "unknown_counter",
                    f"counter {rating.counter!r} is not in the registry",
                    received_at,
                )
                acks.ratings[kiosk].append(rating.id)
        for rejected in batch.rejected:
            self._quarantine_item(kiosk, topic, rejected.item, rejected.reason, rejected.detail, received_at)
            if rejected.rating_id:
                acks.ratings[kiosk].append(rejected.rating_id)
        unit_of = {c.id: c.unit for c in registry.counters.values()}
        new, duplicates = self.store.add_ratings(kiosk, good, unit_of=unit_of, received_at=received_at, tz=self.tz)
        self.counts.stored += len(new)
        self.counts.duplicates += len(duplicates)
        acks.ratings[kiosk].extend(new)
        acks.ratings[kiosk].extend(duplicates)

    def _quarantine_item(self, kiosk: str, topic: str, item: Any, reason: str, detail: str, received_at: str) -> None:
        # Kept as a one-rating batch so that a replay goes through the same path.
        payload = json.dumps({"v": wire.VERSION, "kiosk": kiosk, "ratings": [item]}, ensure_ascii=False).encode()
        self.store.add_quarantine(topic, payload, reason, detail, received_at)
        self.counts.quarantined += 1
        log.warning("quarantined a rating from %s: %s (%s)", kiosk, reason, detail)

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
            path = _write_content_addressed(self.settings.snapshot_dir, digest, payload)
            self.store.add_snapshot(rating_id, digest, str(path), len(payload), received_at)
            self.counts.snapshots += 1
        acks.snapshots[kiosk].append(rating_id)

    def _status(self, kiosk: str, payload: bytes, received_at: str) -> None:
        if not payload:
            return  # a retained status being cleared
        doc = wire.decode_status(payload, topic_kiosk=kiosk)
        if kiosk not in self.registry().kiosks:
            raise Rejected("unknown_kiosk", f"status from kiosk {kiosk!r}, which is not in the registry")
        self.store.record_status(kiosk, doc, received_at)
        self.counts.statuses += 1


class Ingestor:
    """Runs the MQTT client and the ingest thread."""

    def __init__(self, *, settings: CollectorSettings, store: RatingStore) -> None:
        self.settings = settings
        self.store = store
        self._registry = store.load_registry()
        self._registry_loaded = time.monotonic()
        self.handler = MessageHandler(store=store, settings=settings, registry=self.registry)
        self.topics = wire.Topics(settings.mqtt.topic_prefix)
        self._messages: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
        self._stop = threading.Event()
        self._connected = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ingest", daemon=True)
        self.client = make_client(settings.ingest.client_id, settings.mqtt, manual_ack=True)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = lambda client, userdata, message: self._messages.put(message)
        self.last_error: str | None = None

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def registry(self) -> Registry:
        # Another process (`collector registry load`) may have changed it: look again now and then.
        if time.monotonic() - self._registry_loaded > 10.0:
            self._registry = self.store.load_registry()
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
        """For other parts of the collector (alerts): QoS 1, not retained."""
        self.client.publish(topic, payload, qos=1)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self.client.disconnect()
        self.client.loop_stop()

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if reason.is_failure:
            self.last_error = f"broker refused the collector: {reason}"
            log.error("%s — check [mqtt] username/password or certificate", self.last_error)
            return
        set_nodelay(client)
        group = self.settings.ingest.share_group
        filters = [f"$share/{group}/{f}" if group else f for f in self.topics.collector_filters()]
        client.subscribe([(f, 1) for f in filters])
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
            log.warning("collector disconnected (%s); reconnecting", reason)

    def _run(self) -> None:
        last_purge = 0.0
        while not self._stop.is_set():
            batch = self._take_batch()
            if batch:
                self._commit(batch)
            if time.monotonic() - last_purge > 3600:
                last_purge = time.monotonic()
                self._purge_snapshots()

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
        while not self._stop.is_set():
            acks = Acks()
            received_at = now_text()
            try:
                with self.store.transaction():
                    for message in batch:
                        self.handler.handle(message.topic, bytes(message.payload), received_at, acks)
                break
            except Exception as exc:  # the store is unwell: keep the batch, retry, ack nothing
                self.last_error = f"store: {exc}"
                log.exception("could not commit %d message(s); retrying in 2 s", len(batch))
                self._stop.wait(2.0)
        else:
            return  # stopping: nothing acked, the broker keeps the messages
        self._publish_acks(acks)
        for message in batch:
            self.client.ack(message.mid, message.qos)

    def _publish_acks(self, acks: Acks) -> None:
        for kiosk in set(acks.ratings) | set(acks.snapshots):
            ratings = list(dict.fromkeys(acks.ratings.get(kiosk, [])))
            snapshots = list(dict.fromkeys(acks.snapshots.get(kiosk, [])))
            for start in range(0, max(len(ratings), len(snapshots)), ACK_IDS_PER_MESSAGE):
                self.client.publish(
                    self.topics.acks(kiosk),
                    wire.encode_ack(
                        ratings[start : start + ACK_IDS_PER_MESSAGE],
                        snapshots[start : start + ACK_IDS_PER_MESSAGE],
                    ),
                    qos=1,
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


def replay_quarantine(*, store: RatingStore, settings: CollectorSettings) -> list[tuple[int, str]]:
    """Run quarantined messages through ingest again (after the registry was fixed).

    A message that now passes is stored and marked replayed; one that still fails stays where
    it is, unchanged. Returns (entry id, outcome) pairs.
    """
    handler = MessageHandler(store=store, settings=settings, registry=store.load_registry)
    results = []
    for entry in store.quarantined():
        outcome: str | None = None
        try:
            with store.transaction():
                outcome = handler.handle(entry.topic, entry.payload, now_text(), Acks(), quarantine=False)
                if outcome is not None:
                    raise _StillBad()
                store.mark_replayed(entry.id, "stored", now_text())
        except _StillBad:
            pass
        results.append((entry.id, f"still {outcome}" if outcome else "stored"))
    return results


class _StillBad(Exception):
    pass


def _ids_in(payload: bytes) -> list[str]:
    """Best effort: the rating ids in a refused batch, so its kiosk stops sending it."""
    try:
        doc = json.loads(payload)
    except (UnicodeDecodeError, ValueError):
        return []
    items = doc.get("ratings") if isinstance(doc, dict) else None
    if not isinstance(items, list):
        return []
    ids = (item.get("id") if isinstance(item, dict) else None for item in items)
    return [rid for rid in ids if isinstance(rid, str) and wire.is_rating_id(rid)]


def _write_content_addressed(root: Path, digest: str, data: bytes) -> Path:
    path = root / digest[:2] / digest[2:4] / f"{digest}.jpg"
    if path.exists():
        return path
    write_atomically(path, data)
    return path
