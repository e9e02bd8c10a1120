"""The one place that speaks paho-mqtt: settings, the client factory and a publish that raises.

The kiosk publisher, the self-test and the collector's ingest all make their clients here, so
TLS, reconnect back-off, timeouts and MQTT v5 session properties are the same everywhere.
:class:`MqttSettings` needs no paho: configuration modules import it without the client library.
"""

from __future__ import annotations

import contextlib
import random
import socket
import ssl
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from kiosk import wire
from kiosk.errors import MqttError
from kiosk.sections import limits

if TYPE_CHECKING:
    import paho.mqtt.client as mqtt
    from paho.mqtt.properties import Properties

SESSION_EXPIRY_S = 7 * 24 * 3600


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
    # Ask the collector for a new client certificate this many days before the one in use expires
    # (0: never). The collector alerts 30 days before any kiosk certificate expires unrenewed.
    renew_before_days: float = field(default=60.0, metadata=limits(0, 3650))


CONNECT_TIMEOUT_S = 30.0


def tls_context(settings: MqttSettings, *, check_time: bool = True) -> ssl.SSLContext:
    """TLS as paho's ``tls_set`` makes it (the broker's certificate and name checked against the
    CA), held by the caller so that a renewed client certificate can be loaded into it later."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=settings.tls_ca)
    if settings.tls_cert:
        context.load_cert_chain(settings.tls_cert, settings.tls_key)
    trust_time(context, check_time)
    return context


NO_CHECK_TIME = 0x200000  # OpenSSL's X509_V_FLAG_NO_CHECK_TIME (Python names no constant for it)


def trust_time(context: ssl.SSLContext, clock_known: bool) -> None:
    """Check certificate dates only when the wall clock is known (NTP, or the collector's time).
    A Pi without a real-time clock on a LAN that blocks NTP boots at its image's date, often
    before the fleet CA was made: checking dates then would refuse the broker for ever, and the
    collector's time only comes over that connection. The chain and the name are always checked."""
    flags = int(context.verify_flags)
    wanted = flags & ~NO_CHECK_TIME if clock_known else flags | NO_CHECK_TIME
    if wanted != flags:
        context.verify_flags = ssl.VerifyFlags(wanted)


def reconnect_delays(*, few: bool = False) -> tuple[float, float]:
    """(first, longest) delay before reconnecting, drawn with jitter for each client.

    paho doubles the delay from the first up to the longest while the broker stays away, so a
    client is back at most the longest delay after the broker's return, however long the outage
    was. Kiosks (thousands of them) draw it from 2–4 s: they are back within 5 s, spread over a
    few seconds instead of all knocking in the same one. ``few``: a process of which a deployment
    has a handful (the collector) is back within 2 s."""
    if few:
        return random.uniform(0.2, 0.5), random.uniform(1.0, 2.0)
    return random.uniform(0.5, 1.5), random.uniform(2.0, 4.0)


def make_client(
    client_id: str,
    settings: MqttSettings,
    *,
    manual_ack: bool = False,
    tls: ssl.SSLContext | None = None,
    few: bool = False,
) -> mqtt.Client:
    """A paho client for MQTT v5 with TLS and credentials from the settings; ``few``: see
    :func:`reconnect_delays`."""
    import paho.mqtt.client as mqtt

    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=mqtt.MQTTv5,
        manual_ack=manual_ack,
    )
    if settings.tls_ca:
        client.tls_set_context(tls or tls_context(settings))
    if settings.username:
        client.username_pw_set(settings.username, settings.password)
    # (paho types these as int; it only adds and compares them, so fractions of a second work.)
    first, longest = reconnect_delays(few=few)
    client.reconnect_delay_set(min_delay=first, max_delay=longest)  # type: ignore[arg-type]
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
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = expiry_s
    return props


def publish(
    client: mqtt.Client,
    topic: str,
    payload: bytes,
    *,
    qos: int = 1,
    retain: bool = False,
    properties: Properties | None = None,
) -> mqtt.MQTTMessageInfo:
    """Publish, or raise :class:`MqttError` saying why paho would not take the message (not
    connected, queue full, payload too large): a publish that silently went nowhere is how
    messages get lost."""
    import paho.mqtt.client as mqtt

    try:
        info = client.publish(topic, payload, qos=qos, retain=retain, properties=properties)
    except ValueError as exc:  # a topic with wildcards, a payload over 256 MiB
        raise MqttError(f"publish to {topic}: {exc}") from None
    if info.rc != mqtt.MQTT_ERR_SUCCESS:
        raise MqttError(f"publish to {topic}: {mqtt.error_string(info.rc)}")
    return info


def expiring(seconds: float) -> Properties:
    """MQTT v5 PUBLISH properties with a message expiry (whole seconds, at least 1)."""
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    props = Properties(PacketTypes.PUBLISH)
    props.MessageExpiryInterval = max(1, int(seconds))
    return props
