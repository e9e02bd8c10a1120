"""The fleet CRL stays alive: renewed before it expires, the running broker re-reads it (SIGHUP,
no restart), and an alert when it cannot be renewed — against a real Mosquitto with TLS."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

from collector.alerts import AlertBook
from collector.cli import main as collector_main
from collector.config import FleetSettings, load_settings
from collector.crl import ALERT_BEFORE, check_crl
from collector.store import SqliteStore
from tests.collector.conftest import mqtt_client_for
from tests.conftest import wait_for


def settings_for(fleet, **fleet_settings):
    settings = load_settings(fleet["conf"])
    return replace(settings, fleet=FleetSettings(**fleet_settings))


def kiosk_accepted(fleet, name: str) -> bool:
    folder = fleet["tmp"] / "k-vb-q1"
    return mqtt_client_for(fleet["port"], folder / "ca.crt", folder / "kiosk.crt", folder / "kiosk.key", name=name)[1]


def expired_crl(fleet) -> None:
    """A CRL signed 400 days ago: the broker refuses everyone while it holds it."""
    fleet["ca"].write_crl(now=dt.datetime.now(dt.UTC) - dt.timedelta(days=400))


def test_an_expired_crl_locks_everyone_out_until_it_is_renewed_and_the_broker_reloads(fleet):
    expired_crl(fleet)
    fleet["broker"].restart()
    assert not kiosk_accepted(fleet, "before")
    pid_file = fleet["tmp"] / "mosquitto.pid"
    pid_file.write_text(str(fleet["broker"].process.pid))
    result = check_crl(settings_for(fleet, broker_pid_file=str(pid_file)))
    assert result.outcome == "renewed"
    assert result.next_update - dt.datetime.now(dt.UTC) > dt.timedelta(days=360)
    pid = fleet["broker"].process.pid
    assert wait_for(lambda: kiosk_accepted(fleet, "after"), timeout_s=10)
    assert fleet["broker"].process.pid == pid  # the same broker process: reloaded, not restarted


def test_a_fresh_crl_is_left_alone_and_one_due_within_30_days_is_renewed(fleet):
    settings = settings_for(fleet)
    assert check_crl(settings).outcome == "fresh"
    fleet["ca"].write_crl(now=dt.datetime.now(dt.UTC) - dt.timedelta(days=340))  # 25 days left
    assert check_crl(settings).outcome == "renewed"
    assert check_crl(settings).outcome == "fresh"


def test_a_revoked_kiosk_stays_refused_after_renewal(fleet):
    sp = fleet["tmp"] / "k-sp-q1"
    fleet["cli"]("kiosk", "revoke", "k-sp-q1")
    pid_file = fleet["tmp"] / "mosquitto.pid"
    pid_file.write_text(str(fleet["broker"].process.pid))
    assert collector_main(["ca", "refresh-crl", "--config", str(fleet["conf"])]) == 0  # by hand; not told
    check_crl(settings_for(fleet, broker_reload_command=f"kill -HUP {fleet['broker'].process.pid}"), force=True)
    wait_for(lambda: False, 0.5)
    assert not mqtt_client_for(fleet["port"], sp / "ca.crt", sp / "kiosk.crt", sp / "kiosk.key", name="k-sp-q1")[1]
    assert kiosk_accepted(fleet, "k-vb-q1")


def test_when_renewal_is_impossible_an_alert_is_raised_within_14_days(fleet):
    settings = settings_for(fleet)
    fleet["ca"].write_crl(now=dt.datetime.now(dt.UTC) - dt.timedelta(days=355))  # 10 days left
    fleet["ca"].ca_key.write_bytes(b"-----BEGIN PRIVATE KEY-----\nbroken\n-----END PRIVATE KEY-----\n")
    raised: list[str] = []
    result = check_crl(settings, raise_alert=raised.append)
    assert result.outcome == "failed"
    assert len(raised) == 1 and "could not be renewed" in raised[0]
    # through the collector's alert book, as `serve` does
    from collector.cli import raise_fleet_alert

    raise_fleet_alert(settings, None, raised[0])
    store = SqliteStore(settings.data_dir / "collector.db")
    (alert,) = AlertBook(store, settings).alerts(open_only=True)
    store.close()
    assert (alert.kind, alert.target) == ("crl_expiry", "fleet")


def test_no_alert_while_more_than_14_days_are_left(fleet):
    fleet["ca"].write_crl(now=dt.datetime.now(dt.UTC) - dt.timedelta(days=365) + ALERT_BEFORE + dt.timedelta(days=2))
    fleet["ca"].ca_key.write_bytes(b"garbage")
    raised: list[str] = []
    assert check_crl(settings_for(fleet), raise_alert=raised.append).outcome == "failed"
    assert raised == []
