"""Delivers the outbox to the collector over MQTT (paho-mqtt 2.x, MQTT v5).

The outbox is the only durable queue: paho keeps nothing on disk, and a broker's PUBACK is
not an ack. A rating leaves the outbox only when the collector's ack names it; until then it
is published again after the ack timeout — ``ack_timeout_s``, doubling after each unanswered
re-send up to ``ack_timeout_max_s`` (kiosk/resend.py) — and after every reconnect. Each publish
carries an MQTT message expiry, so the broker drops a copy once the next one is due.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import queue
import secrets
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.properties import Properties

from kiosk import wire
from kiosk.clock import CollectorTime
from kiosk.errors import MqttError
from kiosk.files import remove_file
from kiosk.mqtt import (
    MqttSettings,
    expiring,
    make_client,
    publish,
    session_properties,
    set_nodelay,
    tls_context,
    trust_time,
)
from kiosk.outbox import OutboxRow, SqliteOutbox
from kiosk.presence import CollectorPresence
from kiosk.resend import MAX_TIMEOUT_S, ResendBackoff

log = logging.getLogger(__name__)

STATUS_CHECK_S = 1.0


@dataclass
class _InFlight:
    sent_at: float
    ids: set[str] = field(default_factory=set)


StatusSource = Callable[[SqliteOutbox], dict[str, Any]]
ReadyCheck = Callable[[OutboxRow], bool]

_CORE_STATUS = (
    "kiosk",
    "state",
    "at",
    "fw",
    "install",
    "boot",
    "uptime_s",
    "counter",
    "backlog",
    "camera",
    "clock",
    "disk_free_mb",
    "suppressed_presses",
    "last_press_at",
    "panel",
    "probe",
)
_STATUS_KEYS_THAT_MATTER = ("state", "camera", "clock", "panel", "counter", "settings", "selftest", "renewal")


class MqttPublisher:
    def __init__(
        self,
        *,
        kiosk_id: str,
        outbox_path: Path,
        settings: MqttSettings,
        status_source: StatusSource,
        is_ready: ReadyCheck = lambda row: True,
        batch_size: int = wire.MAX_BATCH_RATINGS,
        ack_timeout_s: float = 30.0,
        ack_timeout_max_s: float = MAX_TIMEOUT_S,
        max_inflight: int = 5000,
        snapshot_inflight: int = 4,
        status_interval_s: float = 60.0,
        wall: Callable[[], float] = time.time,
        since_boot: Callable[[], float] = time.monotonic,
        collector_time: CollectorTime | None = None,
        on_config: Callable[[bytes], None] | None = None,
        on_cert: Callable[[bytes], None] | None = None,
        on_status_answered: Callable[[], None] | None = None,
        clock_known: Callable[[], bool] = lambda: True,
    ) -> None:
        self.kiosk_id = kiosk_id
        self.outbox_path = outbox_path
        self.settings = settings
        self.topics = wire.Topics(settings.topic_prefix)
        self.status_source = status_source
        self.is_ready = is_ready
        self.batch_size = batch_size
        self.ack_timeout_s = ack_timeout_s
        self.backoff = ResendBackoff(base_s=ack_timeout_s, max_s=max(ack_timeout_max_s, ack_timeout_s))
        self.max_inflight = max_inflight
        self.snapshot_inflight = snapshot_inflight
        self.status_interval_s = status_interval_s
        self._wall = wall
        self._since_boot = since_boot
        self.collector_time = collector_time
        self.on_config = on_config
        self._config_topic = self.topics.config(kiosk_id)
        self.on_cert = on_cert
        self.on_status_answered = on_status_answered
        self._cert_topic = self.topics.cert(kiosk_id)
        # The statuses sent on this connection and not yet answered: probe -> boot-clock time sent.
        # The collector's ack to a status echoes its probe, so the round trip is known exactly.
        self._status_probes: collections.OrderedDict[str, float] = collections.OrderedDict()
        self.last_error: str | None = None
        self.published_batches = 0
        self._acks: queue.Queue[tuple[bytes, float]] = queue.Queue()  # payload, boot clock on arrival
        self._presence_updates: queue.Queue[tuple[bytes, bool]] = queue.Queue()
        self.presence = CollectorPresence()
        self.presence_resends = 0
        self._presence_topic = wire.collector_status_topic(settings.topic_prefix)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._connected = threading.Event()
        self._generation = 0
        self._thread: threading.Thread | None = None
        self.clock_known = clock_known
        self.tls = tls_context(settings, check_time=clock_known()) if settings.tls_ca else None
        self.client = make_client(kiosk_id, settings, tls=self.tls)
        self.client.will_set(self.topics.status(kiosk_id), wire.offline_will(kiosk_id), qos=1, retain=True)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def start(self) -> None:
        self.client.connect_async(
            self.settings.host,
            self.settings.port,
            self.settings.keepalive_s,
            clean_start=False,
            properties=session_properties(),
        )
        self.client.loop_start()
        self._thread = threading.Thread(target=self._run, name="publisher", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """Something new is in the outbox."""
        self._wake.set()

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout_s)
        if self.connected:
            with contextlib.suppress(MqttError, RuntimeError, ValueError):
                info = publish(
                    self.client, self.topics.status(self.kiosk_id), wire.offline_will(self.kiosk_id), retain=True
                )
                info.wait_for_publish(timeout=timeout_s)
        self.client.disconnect()
        self.client.loop_stop()

    def send_csr(self, payload: bytes) -> bool:
        """Publish a certificate request; False when not connected (the kiosk asks again later)."""
        if not self.connected:
            return False
        try:
            publish(self.client, self.topics.csr(self.kiosk_id), payload)
        except MqttError as exc:
            self.last_error = str(exc)
            return False
        return True

    def use_certificate(self, cert: str, key: str) -> None:
        """Load a (renewed) client certificate and connect again with it: the connection in use was
        made with the old one. Dropping the socket makes paho reconnect as after a network fault."""
        if self.tls is None:
            return
        self.tls.load_cert_chain(cert, key)
        sock = self.client.socket()
        if sock is not None and hasattr(sock, "shutdown"):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    @property
    def generation(self) -> int:
        """Counts successful connections (a new one after each reconnect)."""
        return self._generation

    # --- paho callbacks (paho's thread): hand over, never touch the outbox here ---

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if reason.is_failure:
            self.last_error = f"broker refused the connection: {reason}"
            log.warning("%s — check the kiosk's certificate and the broker ACL", self.last_error)
            return
        set_nodelay(client)
        client.subscribe(
            [
                (self.topics.acks(self.kiosk_id), 1),
                (self._presence_topic, 1),
                (self._config_topic, 1),
                (self._cert_topic, 1),
            ]
        )
        self._generation += 1
        self._connected.set()
        self.last_error = None
        log.info("connected to %s:%d", self.settings.host, self.settings.port)
        self._wake.set()

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if self._connected.is_set() and not self._stop.is_set():
            log.warning("disconnected from broker (%s); will reconnect", reason)
            self.last_error = f"disconnected: {reason}"
        self._connected.clear()

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        if message.topic == self._presence_topic:
            self._presence_updates.put((bytes(message.payload), bool(message.retain)))
        elif message.topic == self._config_topic:
            if self.on_config is not None:
                self.on_config(bytes(message.payload))  # the kiosk's loop checks and applies it
        elif message.topic == self._cert_topic:
            if self.on_cert is not None:
                self.on_cert(bytes(message.payload))
        else:
            self._acks.put((bytes(message.payload), self._since_boot()))
        self._wake.set()

    # --- the publisher's own thread -----------------------------------------

    def _run(self) -> None:
        outbox = SqliteOutbox(self.outbox_path)
        state = _DrainState()
        while not self._stop.is_set():
            self._wake.wait(timeout=1.0)
            self._wake.clear()
            try:
                self._step(outbox, state)
            except Exception as exc:  # keep delivering whatever one step did
                self.last_error = f"publisher: {exc}"
                log.exception("publisher step failed; retrying")
                time.sleep(1.0)
        outbox.close()

    def _step(self, outbox: SqliteOutbox, state: _DrainState) -> None:
        if self.tls is not None:
            trust_time(self.tls, self.clock_known())  # for the next (re)connection
        self._apply_acks(outbox, state)
        self._apply_presence(state)
        if not self.connected:
            return
        now = time.monotonic()
        if state.generation != self._generation:
            # New connection: whatever was in flight may be lost; start again from the oldest.
            state.reset(self._generation)
            state.status_sent_at = 0.0
            state.status_checked_at = float("-inf")
            self._status_probes.clear()
        if any(self.backoff.due(f.sent_at, now) for f in state.batches):
            log.info(
                "no ack within %.0f s; publishing unacked ratings again (next wait %.0f s)",
                self.backoff.timeout_s,
                min(self.backoff.timeout_s * 2, self.backoff.max_s),
            )
            self.backoff.resent()
            state.reset(state.generation)
        self._publish_ratings(outbox, state, now)
        self._publish_snapshots(outbox, state, now)
        self._publish_status(outbox, state, now)

    def _apply_presence(self, state: _DrainState) -> None:
        """The collector came back (or is a new connection): publish every unacked rating and
        picture again now, and wait for acks with the short timeout again."""
        while True:
            try:
                payload, retained = self._presence_updates.get_nowait()
            except queue.Empty:
                return
            try:
                collector_state, session = wire.decode_collector_status(payload)
            except wire.WireError as exc:
                if payload:  # an empty payload only clears the retained status
                    log.warning("ignoring malformed collector status (%s)", exc)
                continue
            if self.presence.observe(collector_state, session, retained=retained):
                log.info("collector online (session %s): publishing unacked ratings again now", session or "?")
                self.presence_resends += 1
                self.backoff.answered()
                state.reset(state.generation)

    def _apply_acks(self, outbox: SqliteOutbox, state: _DrainState) -> None:
        rating_ids: list[str] = []
        snapshot_ids: list[str] = []
        while True:
            try:
                payload, received = self._acks.get_nowait()
            except queue.Empty:
                break
            try:
                ack = wire.decode_ack(payload)
            except wire.WireError as exc:
                log.warning("ignoring malformed ack (%s): %r", exc, payload[:200])
                continue
            if ack.status is not None:
                self._time_from(ack, ack.status, received)
            rating_ids.extend(ack.ratings)
            snapshot_ids.extend(ack.snapshots)
        if rating_ids or snapshot_ids:
            self.backoff.answered()
        if rating_ids:
            outbox.mark_acked(rating_ids, self._wall())
            state.acked(rating_ids)
        if snapshot_ids:
            for path in outbox.mark_snapshots_acked(snapshot_ids, self._wall()):
                error = remove_file(path)
                if error is not None:
                    log.warning("could not delete delivered snapshot %s: %s", path, error)
            for rid in snapshot_ids:
                state.snapshots.pop(rid, None)

    def _time_from(self, ack: wire.Ack, probe: str, received: float) -> None:
        """The answer to one of this connection's statuses: a sample of the collector's clock. An
        answer to a status of an earlier connection or process (queued in the broker) matches no
        probe and is ignored."""
        sent = self._status_probes.pop(probe, None)
        if sent is None:
            return
        if self.on_status_answered is not None:
            self.on_status_answered()  # connected, and the collector took a status: an update proves itself
        if ack.at is None or self.collector_time is None:
            return
        if self.collector_time.observe(at=ack.at, sent=sent, received=received):
            log.debug("collector time: round trip %.3f s", received - sent)

    def _publish_ratings(self, outbox: SqliteOutbox, state: _DrainState, now: float) -> None:
        topic = self.topics.ratings(self.kiosk_id)
        overhead = wire.batch_overhead(self.kiosk_id)
        while state.inflight_count() < self.max_inflight and not self._stop.is_set():
            rows = outbox.unacked(after_seq=state.cursor, limit=self.batch_size)
            batch: list[wire.Rating] = []
            size = overhead
            for row in rows:
                if not self.is_ready(row):
                    break
                rating = row.to_rating()
                size += wire.rating_size(rating)
                if size > wire.MAX_BATCH_BYTES:
                    break
                batch.append(rating)
            if not batch:
                return
            try:
                publish(self.client, topic, wire.encode_batch(self.kiosk_id, batch), properties=self._expiring())
            except MqttError as exc:
                self.last_error = str(exc)
                return
            self.published_batches += 1
            state.cursor = batch[-1].seq
            state.batches.append(_InFlight(now, {r.id for r in batch}))
            if len(batch) < len(rows):
                return  # the next row is not ready yet, or the batch was full by size

    def _publish_snapshots(self, outbox: SqliteOutbox, state: _DrainState, now: float) -> None:
        for rid, sent_at in list(state.snapshots.items()):
            if self.backoff.due(sent_at, now):
                del state.snapshots[rid]
        room = self.snapshot_inflight - len(state.snapshots)
        if room <= 0:
            return
        for pending in outbox.snapshots_to_upload(room, skip=state.snapshots):
            try:
                data = Path(pending.path).read_bytes()
            except OSError as exc:
                log.warning("snapshot %s is gone (%s); the rating stays, the picture is lost", pending.rating_id, exc)
                outbox.mark_snapshots_acked([pending.rating_id], self._wall())
                continue
            try:
                publish(
                    self.client,
                    self.topics.snapshot(self.kiosk_id, pending.rating_id),
                    data,
                    properties=self._expiring(),
                )
            except MqttError as exc:
                self.last_error = str(exc)
                return
            state.snapshots[pending.rating_id] = now

    def _expiring(self) -> Properties:
        """An MQTT v5 message expiry: a copy the broker still queues when the next one goes out lapses."""
        return expiring(self.backoff.expiry_s())

    def _publish_status(self, outbox: SqliteOutbox, state: _DrainState, now: float) -> None:
        # Building the status counts the backlog: not on every step of a drain, once a second is enough.
        if now - state.status_checked_at < STATUS_CHECK_S:
            return
        state.status_checked_at = now
        status = self.status_source(outbox)
        # An update's state matters, its byte count (every second while downloading) does not.
        key = (*(status.get(k) for k in _STATUS_KEYS_THAT_MATTER), (status.get("update") or {}).get("state"))
        backlog = status.get("backlog")
        due = now - state.status_sent_at >= self.status_interval_s
        changed = key != state.status_key or (backlog != state.status_backlog and now - state.status_sent_at >= 5.0)
        if not (due or changed):
            return
        probe = secrets.token_hex(8)
        status = {**status, "probe": probe}
        try:
            payload = wire.encode_status(status)
        except wire.WireError as exc:
            # A part the contract refuses (an old self-test file, an odd certificate date) must not
            # silence the status: send the fields every status has, without the optional ones.
            log.warning("status field refused (%s); sending the status without its optional parts", exc)
            payload = wire.encode_status({k: v for k, v in status.items() if k in _CORE_STATUS})
        sent = self._since_boot()  # before the publish: the answer cannot come earlier
        try:
            publish(self.client, self.topics.status(self.kiosk_id), payload, retain=True)
        except MqttError as exc:
            self.last_error = str(exc)
        else:
            self._status_probes[probe] = sent
            while len(self._status_probes) > 8:
                self._status_probes.popitem(last=False)
            state.status_sent_at = now
            state.status_key = key
            state.status_backlog = backlog


class OfflinePublisher:
    """A publisher that delivers nothing: for the kiosk's logic under test and for benchmarks of
    the press path (the outbox keeps everything for a real publisher later)."""

    def __init__(self) -> None:
        self.last_error: str | None = None
        self.status_interval_s = 60.0
        self.wakes = 0
        self.csrs: list[bytes] = []
        self.certificates: list[tuple[str, str]] = []

    @property
    def connected(self) -> bool:
        return False

    @property
    def generation(self) -> int:
        return 0

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def wake(self) -> None:
        self.wakes += 1

    def send_csr(self, payload: bytes) -> bool:
        self.csrs.append(payload)
        return False

    def use_certificate(self, cert: str, key: str) -> None:
        self.certificates.append((cert, key))


class _DrainState:
    """What this connection has sent and not yet seen acked (memory only: the outbox is the truth)."""

    def __init__(self) -> None:
        self.generation = -1
        self.cursor = 0
        self.batches: list[_InFlight] = []
        self.snapshots: dict[str, float] = {}
        self.status_sent_at = 0.0
        self.status_checked_at = float("-inf")
        self.status_key: tuple[Any, ...] | None = None
        self.status_backlog: Mapping[str, int] | None = None

    def reset(self, generation: int) -> None:
        self.generation = generation
        self.cursor = 0
        self.batches = []
        self.snapshots = {}

    def inflight_count(self) -> int:
        return sum(len(b.ids) for b in self.batches)

    def acked(self, rating_ids: list[str]) -> None:
        done = set(rating_ids)
        for batch in self.batches:
            batch.ids -= done
        self.batches = [b for b in self.batches if b.ids]
