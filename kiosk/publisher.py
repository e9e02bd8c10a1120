"""Delivers the outbox to the collector over MQTT (paho-mqtt 2.x, MQTT v5).

The outbox is the only durable queue: paho keeps nothing on disk, and a broker's PUBACK is
not an ack. A rating leaves the outbox only when the collector's ack names it; until then it
is published again after the ack timeout — ``ack_timeout_s``, doubling after each unanswered
re-send up to ``ack_timeout_max_s`` (kiosk/resend.py) — and after every reconnect. Each publish
carries an MQTT message expiry, so the broker drops a copy once the next one is due.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import random
import socket
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from kiosk import wire
from kiosk.files import remove_file
from kiosk.outbox import OutboxRow, SqliteOutbox
from kiosk.presence import CollectorPresence
from kiosk.resend import MAX_TIMEOUT_S, ResendBackoff
from kiosk.sections import limits

log = logging.getLogger(__name__)

SESSION_EXPIRY_S = 7 * 24 * 3600
STATUS_CHECK_S = 1.0


@dataclass(frozen=True)
class MqttSettings:
    host: str = "localhost"
    port: int = field(default=1883, metadata=limits(1, 65535))
    tls_ca: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    username: str | None = None
    password: str | None = None
    keepalive_s: int = field(default=30, metadata=limits(5, 3600))
    topic_prefix: str = wire.DEFAULT_PREFIX


CONNECT_TIMEOUT_S = 30.0


def make_client(client_id: str, settings: MqttSettings, *, manual_ack: bool = False) -> mqtt.Client:
    """A paho client for MQTT v5 with TLS and credentials from the settings."""
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=mqtt.MQTTv5,
        manual_ack=manual_ack,
    )
    if settings.tls_ca:
        client.tls_set(
            ca_certs=settings.tls_ca,
            certfile=settings.tls_cert,
            keyfile=settings.tls_key,
            cert_reqs=ssl.CERT_REQUIRED,
        )
    if settings.username:
        client.username_pw_set(settings.username, settings.password)
    # Back within a few seconds of the broker's return, however long it was away (paho doubles the
    # delay up to the maximum), and with jitter: thousands of kiosks that lost the broker at the
    # same instant must not all knock at the same second when it is back.
    # (paho types these as int; it only adds and compares them, so fractions of a second work.)
    client.reconnect_delay_set(
        min_delay=random.uniform(0.5, 1.5),  # type: ignore[arg-type]
        max_delay=random.uniform(4.0, 8.0),  # type: ignore[arg-type]
    )
    client.max_queued_messages_set(0)
    # paho gives up on a connection (TCP, TLS handshake, CONNACK) after 5 s and starts again. A
    # broker handshaking with 2,000 kiosks that came back at once, or a 3G link, can take longer:
    # 5 s made the fleet benchmark's kiosks retry in a loop, each retry adding to the queue.
    client.connect_timeout = CONNECT_TIMEOUT_S
    return client


def set_nodelay(client: mqtt.Client) -> None:
    """Send small packets (a rating, an ack) at once; paho leaves Nagle's algorithm on."""
    sock = client.socket()
    if sock is not None and hasattr(sock, "setsockopt"):
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def session_properties(expiry_s: int = SESSION_EXPIRY_S) -> Properties:
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = expiry_s
    return props


@dataclass
class _InFlight:
    sent_at: float
    ids: set[str] = field(default_factory=set)


StatusSource = Callable[[SqliteOutbox], dict[str, Any]]
ReadyCheck = Callable[[OutboxRow], bool]

_STATUS_KEYS_THAT_MATTER = ("state", "camera", "clock", "panel", "counter")


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
        self.last_error: str | None = None
        self.published_batches = 0
        self._acks: queue.Queue[bytes] = queue.Queue()
        self._presence_updates: queue.Queue[tuple[bytes, bool]] = queue.Queue()
        self.presence = CollectorPresence()
        self.presence_resends = 0
        self._presence_topic = wire.collector_status_topic(settings.topic_prefix)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._connected = threading.Event()
        self._generation = 0
        self._thread: threading.Thread | None = None
        self.client = make_client(kiosk_id, settings)
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
            info = self.client.publish(
                self.topics.status(self.kiosk_id), wire.offline_will(self.kiosk_id), qos=1, retain=True
            )
            with contextlib.suppress(RuntimeError, ValueError):
                info.wait_for_publish(timeout=timeout_s)
        self.client.disconnect()
        self.client.loop_stop()

    # --- paho callbacks (paho's thread): hand over, never touch the outbox here ---

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if reason.is_failure:
            self.last_error = f"broker refused the connection: {reason}"
            log.warning("%s — check the kiosk's certificate and the broker ACL", self.last_error)
            return
        set_nodelay(client)
        client.subscribe([(self.topics.acks(self.kiosk_id), 1), (self._presence_topic, 1)])
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
        else:
            self._acks.put(bytes(message.payload))
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
                payload = self._acks.get_nowait()
            except queue.Empty:
                break
            try:
                ack = wire.decode_ack(payload)
            except wire.WireError as exc:
                log.warning("ignoring malformed ack (%s): %r", exc, payload[:200])
                continue
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
            info = self.client.publish(
                topic, wire.encode_batch(self.kiosk_id, batch), qos=1, properties=self._expiring()
            )
            if info.rc != mqtt.MQTT_ERR_SUCCESS:
                self.last_error = f"publish failed: {mqtt.error_string(info.rc)}"
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
            info = self.client.publish(
                self.topics.snapshot(self.kiosk_id, pending.rating_id), data, qos=1, properties=self._expiring()
            )
            if info.rc != mqtt.MQTT_ERR_SUCCESS:
                return
            state.snapshots[pending.rating_id] = now

    def _expiring(self) -> Properties:
        """An MQTT v5 message expiry: a copy the broker still queues when the next one goes out lapses."""
        props = Properties(PacketTypes.PUBLISH)
        props.MessageExpiryInterval = self.backoff.expiry_s()
        return props

    def _publish_status(self, outbox: SqliteOutbox, state: _DrainState, now: float) -> None:
        # Building the status counts the backlog: not on every step of a drain, once a second is enough.
        if now - state.status_checked_at < STATUS_CHECK_S:
            return
        state.status_checked_at = now
        status = self.status_source(outbox)
        key = tuple(status.get(k) for k in _STATUS_KEYS_THAT_MATTER)
        backlog = status.get("backlog")
        due = now - state.status_sent_at >= self.status_interval_s
        changed = key != state.status_key or (backlog != state.status_backlog and now - state.status_sent_at >= 5.0)
        if not (due or changed):
            return
        try:
            payload = wire.encode_status(status)
        except wire.WireError as exc:
            # A part the contract refuses (an old self-test file, say) must not silence the status.
            log.warning("status field refused (%s); sending the status without the self-test", exc)
            payload = wire.encode_status({k: v for k, v in status.items() if k != "selftest"})
        info = self.client.publish(self.topics.status(self.kiosk_id), payload, qos=1, retain=True)
        if info.rc == mqtt.MQTT_ERR_SUCCESS:
            state.status_sent_at = now
            state.status_key = key
            state.status_backlog = backlog


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
