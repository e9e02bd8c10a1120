"""A Pi without a real-time clock on a LAN that blocks NTP boots at its image's date, often before
the fleet CA was made. Certificate dates are checked only when the kiosk's own clock is right;
the chain and the broker's name always are."""

from __future__ import annotations

import datetime as dt
import socket
import ssl
import threading

import pytest

import collector.fleet as fleet
from kiosk.mqtt import MqttSettings, tls_context, trust_time


def _handshake(context: ssl.SSLContext, server: ssl.SSLContext, name: str = "127.0.0.1") -> str:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)

    def serve() -> None:
        conn, _ = listener.accept()
        try:
            server.wrap_socket(conn, server_side=True).close()
        except (OSError, ssl.SSLError):
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        with socket.create_connection(listener.getsockname(), timeout=5) as raw:
            context.wrap_socket(raw, server_hostname=name).close()
        return "ok"
    except ssl.SSLCertVerificationError as exc:
        return str(exc.verify_message)
    finally:
        thread.join(5)
        listener.close()


def test_certificate_dates_are_checked_only_when_the_wall_clock_is_right(tmp_path, monkeypatch):
    real_now = fleet._now
    monkeypatch.setattr(fleet, "_now", lambda: real_now() + dt.timedelta(days=120))  # made "after" this clock
    ca = fleet.FleetCA(tmp_path / "fleet")
    ca.init(broker_hosts=("127.0.0.1",))
    key, crt = ca.issue_client("k-vb-q1")
    (tmp_path / "k.key").write_bytes(key)
    (tmp_path / "k.crt").write_bytes(crt)
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(ca.folder / "broker.crt", ca.folder / "broker.key")
    settings = MqttSettings(
        host="127.0.0.1",
        port=1,
        tls_ca=str(ca.ca_crt),
        tls_cert=str(tmp_path / "k.crt"),
        tls_key=str(tmp_path / "k.key"),
    )
    assert _handshake(tls_context(settings), server) == "certificate is not yet valid"
    unsure = tls_context(settings, check_time=False)
    assert _handshake(unsure, server) == "ok"
    assert "mismatch" in _handshake(unsure, server, name="other.example")  # the name still counts
    trust_time(unsure, True)  # the clock became right (NTP, or the collector's time): dates count again
    assert _handshake(unsure, server) == "certificate is not yet valid"
    other = fleet.FleetCA(tmp_path / "other")
    other.init(broker_hosts=("127.0.0.1",))
    stranger = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    stranger.load_cert_chain(other.folder / "broker.crt", other.folder / "broker.key")
    with pytest.raises(AssertionError):  # another CA's broker is refused whatever the clock
        assert _handshake(tls_context(settings, check_time=False), stranger) == "ok"
