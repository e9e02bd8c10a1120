"""Updates over the air, kiosk side: an offer is checked against the kiosk's own CA before anything
is fetched, the release is downloaded over HTTPS with the kiosk's certificate (resuming), installed
beside the running version, switched to on trial, proved by an acked status — or switched back by
the launcher."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import time
from dataclasses import replace
from pathlib import Path

import pytest

from collector.config import load_settings
from collector.fleet import FleetCA
from collector.ingest import Ingestor
from collector.localbroker import free_port
from collector.releases import ReleaseBook
from collector.releaseserver import ReleaseServer
from collector.store import SqliteStore
from kiosk import launcher
from kiosk.clock import FakeClock
from kiosk.config import load_settings as load_kiosk_settings
from kiosk.outbox import SqliteOutbox
from kiosk.update import Offer, UpdateError, Updater, download
from tests.collector.conftest import collector_tls_settings
from tests.collector.test_releases import AT, wheelhouse
from tests.conftest import wait_for
from tests.kiosk.conftest import KioskRig


def fake_installer(calls: list):
    """Stands in for pip (no network here, and no aarch64): a venv folder with a kiosk program."""

    def install(version: str, wheels: Path, venv: Path) -> None:
        calls.append((version, sorted(p.name for p in wheels.iterdir())))
        (venv / "bin").mkdir(parents=True)
        program = venv / "bin" / "kiosk"
        program.write_text(f"#!/bin/sh\necho kiosk {version}\n")
        program.chmod(0o755)

    return install


def _offer_doc(book: ReleaseBook, registry, kiosk: str, url: str) -> dict:
    doc, _ = book.offers(registry, url)(kiosk)
    assert doc is not None
    return doc


@pytest.fixture
def released(fleet, tmp_path):
    settings = load_settings(fleet["conf"])
    store = SqliteStore(settings.data_dir / "collector.db")
    book = ReleaseBook(store, settings.data_dir)
    book.add(wheelhouse(tmp_path / "dist"), by="t", at=AT)
    book.rollout("0.2.0", ["10"], 100, store.load_registry(), by="t", at=AT)
    server = ReleaseServer(settings, store.load_registry, port=free_port(), refresh_s=0.2)
    server.start()
    assert wait_for(lambda: "k-vb-q1" in server.registry().kiosks)
    url = f"https://127.0.0.1:{server.port}"
    yield {"settings": settings, "store": store, "book": book, "server": server, "url": url}
    server.stop()
    store.close()


def test_an_offer_is_checked_against_the_kiosks_own_ca_before_anything_is_fetched(fleet, released, tmp_path):
    ca = fleet["tmp"] / "k-vb-q1" / "ca.crt"
    doc = _offer_doc(released["book"], released["store"].load_registry(), "k-vb-q1", released["url"])
    assert Offer.parse(doc).check(ca)["version"] == "0.2.0"
    manifest = json.loads(base64.b64decode(doc["manifest"]))
    tampered = [
        ({**doc, "sha256": "0" * 64}, "disagree"),
        ({**doc, "manifest": base64.b64encode(json.dumps({**manifest, "size": 1}).encode()).decode()}, "signature"),
        ({**doc, "signature": base64.b64encode(b"\x30\x06\x02\x01\x01\x02\x01\x01").decode()}, "signature"),
        ({**doc, "url": "http://127.0.0.1/x"}, "https"),
        ({**doc, "signer": (fleet["tmp"] / "k-vb-q1" / "kiosk.crt").read_text()}, "code-signing"),  # a kiosk cert
    ]
    other = FleetCA(tmp_path / "other-ca")
    other.init()
    tampered.append(({**doc, "signer": other.release_crt.read_text()}, "not from this kiosk's CA"))
    for bad, words in tampered:
        with pytest.raises(UpdateError, match=words):
            Offer.parse(bad).check(ca)
    for garbage in (None, [], {"version": "0.2.0"}, {**doc, "manifest": "%%%"}, {**doc, "size": -1}):
        with pytest.raises(UpdateError):
            Offer.parse(garbage)


def test_a_broken_download_resumes_and_a_corrupt_one_is_thrown_away(fleet, released, tmp_path):
    import ssl

    vb = fleet["tmp"] / "k-vb-q1"
    context = ssl.create_default_context(cafile=str(vb / "ca.crt"))
    context.load_cert_chain(str(vb / "kiosk.crt"), str(vb / "kiosk.key"))
    offer = Offer.parse(_offer_doc(released["book"], released["store"].load_registry(), "k-vb-q1", released["url"]))
    whole = (released["settings"].data_dir / "releases" / "0.2.0" / "release.tar").read_bytes()
    target = tmp_path / "dl" / "0.2.0.tar"
    target.parent.mkdir()
    target.with_name("0.2.0.tar.part").write_bytes(whole[:5000])  # the link broke at 5,000 bytes
    seen: list[int] = []
    assert download(offer, target, context, progress=seen.append).read_bytes() == whole
    assert released["server"].downloads[-1][2] == 5000  # asked for the rest only
    assert seen[0] > 5000
    target.unlink()
    target.with_name("0.2.0.tar.part").write_bytes(b"x" * len(whole))  # whole size, wrong bytes
    with pytest.raises(UpdateError, match="sha256"):
        download(offer, target, context)
    assert not target.with_name("0.2.0.tar.part").exists()


def test_a_kiosk_takes_the_offer_installs_beside_itself_and_switches_on_trial(fleet, released):
    settings = collector_tls_settings(fleet)
    settings = replace(settings, update=replace(settings.update, public_url=released["url"]))
    ingestor = Ingestor(settings=settings, store=SqliteStore(settings.data_dir / "collector.db"))
    ingestor.start()
    ks = load_kiosk_settings(fleet["tmp"] / "k-vb-q1" / "kiosk.toml")
    ks = replace(ks, data_dir=fleet["tmp"] / "kiosk-data", panel=replace(ks.panel, debounce_s=0.0))
    calls: list = []
    rig = KioskRig(ks, clock=FakeClock(time.time()), installer=fake_installer(calls))
    try:
        assert rig.pump(lambda: rig.kiosk._stop.is_set(), timeout_s=30), rig.kiosk.updater.report
        # Presses during the update were never in danger: the outbox is not the update's.
        assert calls == [("0.2.0", ["paho_mqtt-2.1.0-py3-none-any.whl", "satisfaction_kiosk-0.2.0-py3-none-any.whl"])]
        data = ks.data_dir
        assert os.readlink(data / "versions" / "current") == "0.2.0"
        state = launcher.read_state(data)
        assert state["trial"] == {"version": "0.2.0", "previous": "", "attempts": 0}
        assert rig.kiosk.updater.report == {"version": "0.2.0", "state": "switching"}
    finally:
        rig.close()
        ingestor.stop()
    # The launcher starts the new version on trial …
    assert launcher.decide(data) == data / "versions" / "current" / "bin" / "kiosk"
    # … which proves itself when the collector answers its status.
    fresh = Updater(data_dir=data, ca=None, tls=lambda: None, restart=lambda: None, running="0.2.0")
    assert fresh.on_trial and fresh.report["state"] == "trial"
    assert fresh.confirmed()
    assert launcher.read_state(data) == {"good": "0.2.0", "previous": ""}
    assert Updater(data_dir=data, ca=None, tls=lambda: None, restart=lambda: None, running="0.2.0").report == {
        "version": "0.2.0",
        "state": "updated",
    }


def test_the_launcher_switches_back_from_a_version_that_cannot_prove_itself(tmp_path):
    data = tmp_path / "data"
    (data / "versions" / "0.2.0" / "bin").mkdir(parents=True)
    (data / "versions" / "0.2.0" / "bin" / "kiosk").write_text("#!/bin/sh\n")
    (data / "versions" / "0.3.0" / "bin").mkdir(parents=True)
    (data / "versions" / "0.3.0" / "bin" / "kiosk").write_text("#!/bin/sh\n")
    launcher.point_current(data, "0.2.0")
    clock = [0.0]
    new = Updater(data_dir=data, ca=None, tls=lambda: None, restart=lambda: None, running="0.2.0")
    new.switch("0.3.0")
    # A crash loop: started 3 times, never proved; the 4th start goes back to 0.2.0.
    for _ in range(3):
        assert launcher.decide(data) == data / "versions" / "current" / "bin" / "kiosk"
        assert os.readlink(data / "versions" / "current") == "0.3.0"
    launcher.decide(data, now=AT)
    assert os.readlink(data / "versions" / "current") == "0.2.0"
    state = launcher.read_state(data)
    assert state["rolled_back"]["version"] == "0.3.0" and "crash loop" in state["rolled_back"]["reason"]
    old = Updater(data_dir=data, ca=None, tls=lambda: None, restart=lambda: None, running="0.2.0")
    assert old.report["state"] == "rolled_back" and old.report["version"] == "0.3.0"
    assert old.refused() == {"0.3.0"}
    # A version that runs but cannot connect says so before its trial time is up.
    launcher.write_state(data, {"trial": {"version": "0.3.0", "previous": "0.2.0", "attempts": 1}})
    launcher.point_current(data, "0.3.0")
    trial = Updater(
        data_dir=data,
        ca=None,
        tls=lambda: None,
        restart=lambda: None,
        running="0.3.0",
        trial_s=600,
        monotonic=lambda: clock[0],
    )
    clock[0] = 599
    assert not trial.trial_expired()
    clock[0] = 601
    assert trial.trial_expired()
    launcher.decide(data, now=AT)
    assert os.readlink(data / "versions" / "current") == "0.2.0"
    assert "no connection with an acked status within 600 s" in launcher.read_state(data)["rolled_back"]["reason"]
    # No versions at all (the first-boot install): the launcher runs that one.
    (data / "versions" / "current").unlink()
    assert launcher.decide(data) == launcher.BASE / "bin" / "kiosk"


def test_an_admin_retries_or_rolls_back_an_update_from_the_kiosk_page(settings, store, users, tmp_path):
    from fastapi.testclient import TestClient

    from collector.remotesettings import ConfigSender
    from collector.web import create_app
    from kiosk import remote
    from tests.collector.conftest import PASSWORD

    client = TestClient(create_app(settings, store), raise_server_exceptions=False)
    client.post("/login", data={"username": "admin", "password": PASSWORD})
    csrf = client.get("/kiosks/k-vb-q1").text.split('name="csrf" value="')[1].split('"')[0]
    assert client.post("/kiosks/k-vb-q1/update", data={"csrf": csrf, "action": "wipe"}).status_code == 400
    answer = client.post("/kiosks/k-vb-q1/update", data={"csrf": csrf, "action": "rollback"}, follow_redirects=False)
    assert answer.status_code == 303
    sent: dict[str, bytes] = {}
    ConfigSender(store, store.load_registry, sent.__setitem__).run_once(lambda k: k)
    action = remote.decode_config(sent["k-vb-q1"], kiosk="k-vb-q1").extra["update_action"]
    assert action["do"] == "rollback" and len(action["id"]) == 16
    # A self-test request afterwards keeps the action (one command record per kiosk).
    client.post("/kiosks/k-vb-q1/selftest", data={"csrf": csrf})
    ConfigSender(store, store.load_registry, sent.__setitem__).run_once(lambda k: k)
    again = remote.decode_config(sent["k-vb-q1"], kiosk="k-vb-q1")
    assert again.selftest and again.extra["update_action"] == action

    # The kiosk side: 0.3.0 proved itself over 0.2.0; the admin rolls it back.
    data = tmp_path / "kiosk"
    for version in ("0.2.0", "0.3.0"):
        (data / "versions" / version / "bin").mkdir(parents=True)
    launcher.point_current(data, "0.2.0")
    Updater(data_dir=data, ca=None, tls=lambda: None, restart=lambda: None, running="0.2.0").switch("0.3.0")
    running = Updater(data_dir=data, ca=None, tls=lambda: None, restart=lambda: None, running="0.3.0")
    assert running.confirmed()
    assert running.act(action)  # restart into 0.2.0
    assert os.readlink(data / "versions" / "current") == "0.2.0"
    assert not running.act(action)  # the retained copy on a reconnect: done already
    back = Updater(data_dir=data, ca=None, tls=lambda: None, restart=lambda: None, running="0.2.0")
    assert back.report == {"version": "0.3.0", "state": "rolled_back", "error": "rolled back by an admin"}
    assert back.refused() == {"0.3.0"}
    # Retry: 0.3.0 may be taken again.
    assert not back.act({"id": "00112233aabbccdd", "do": "retry"})
    assert back.refused() == set() and back.report is None


def test_review_findings_on_updates_hold(tmp_path):
    """From the second adversarial review: the launcher keeps the admin's last action; a stale
    trial is dropped; no downgrade by an offer; no second rollback to the same version."""
    data = tmp_path / "data"
    for version in ("0.2.0", "0.3.0"):
        (data / "versions" / version / "bin").mkdir(parents=True)
    launcher.point_current(data, "0.2.0")
    launcher.write_state(data, {"last_action": "00112233aabbccdd", "good": "0.2.0"})
    Updater(data_dir=data, ca=None, tls=lambda: None, restart=lambda: None, running="0.2.0").switch("0.3.0")
    for _ in range(launcher.MAX_ATTEMPTS + 1):
        launcher.decide(data, now=AT)
    state = launcher.read_state(data)
    assert state["last_action"] == "00112233aabbccdd" and state["rolled_back"]["version"] == "0.3.0"
    # A trial whose version "current" does not name (a power cut inside the switch) is dropped.
    launcher.write_state(data, {**state, "trial": {"version": "0.3.0", "previous": "0.2.0", "attempts": 0}})
    launcher.decide(data)
    assert "trial" not in launcher.read_state(data) and launcher.read_state(data)["refused"] == ["0.3.0"]
    # Never backwards by an offer (a newer rollout paused leaves an older one offered).
    running = Updater(data_dir=data, ca=None, tls=lambda: None, restart=lambda: None, running="0.3.0")
    assert not running.offer(
        {
            "version": "0.2.0",
            "url": "https://x/r",
            "size": 1,
            "sha256": "0" * 64,
            "manifest": "",
            "signature": "",
            "signer": "",
        }
    )
    from kiosk.update import version_key

    assert version_key("0.10.0") > version_key("0.9.1") > version_key("0.9.1rc1") > version_key("0.9.0")
    # An admin's rollback twice does not "roll back" to the version running.
    launcher.write_state(data, {"good": "0.2.0", "previous": "0.2.0"})
    again = Updater(data_dir=data, ca=None, tls=lambda: None, restart=lambda: None, running="0.2.0")
    assert not again.act({"id": "aabbccdd00112233", "do": "rollback"})
    assert again.report["error"] == "no earlier version to go back to"


def test_presses_made_while_the_kiosk_stops_are_recorded(tmp_path):
    from tests.kiosk.conftest import PINS, kiosk_settings

    rig = KioskRig(kiosk_settings(tmp_path, 1), clock=FakeClock(), connect=False)
    pin = rig.factory.pin(PINS[0])
    pin.drive_low()
    pin.drive_high()  # queued, not yet handled by the loop …
    assert wait_for(lambda: rig.kiosk.events.qsize() == 1, 2)
    rig.close()  # … when the kiosk restarts into an update
    outbox = SqliteOutbox(rig.kiosk.settings.outbox_path)
    assert outbox.backlog().ratings == 1
    outbox.close()


def test_a_setting_only_a_newer_release_knows_does_not_block_that_release(tmp_path):
    from tests.kiosk.conftest import kiosk_settings

    rig = KioskRig(kiosk_settings(tmp_path, 1), clock=FakeClock(), connect=False)
    offered: list = []
    rig.kiosk.updater.offer = offered.append
    try:
        rig.kiosk.handle_config(
            json.dumps(
                {
                    "v": 1,
                    "kiosk": "k-vb-q1",
                    "revision": 5,
                    "settings": {"panel": {"night_mode": True}},
                    "update": {"version": "0.3.0"},
                }
            ).encode()
        )
        # A key it does not know is ignored (a newer collector's), the rest applied, the offer taken …
        assert rig.kiosk.remote == {"revision": 5, "state": "applied", "ignored": ["panel.night_mode"]}
        assert offered == [{"version": "0.3.0"}]
        # … and a value it refuses does not block the release either.
        rig.kiosk.handle_config(
            json.dumps(
                {"v": 1, "kiosk": "k-vb-q1", "revision": 6, "settings": {"panel": {"lockout_s": -1}},
                 "update": {"version": "0.3.1"}}
            ).encode()
        )  # fmt: skip
        assert rig.kiosk.remote["state"] == "refused" and offered[-1] == {"version": "0.3.1"}
    finally:
        rig.close()


def test_a_release_signer_is_checked_against_the_known_time_and_renewed_before_it_expires(fleet, released, tmp_path):
    import datetime as dt

    from cryptography import x509

    ca = fleet["tmp"] / "k-vb-q1" / "ca.crt"
    offer = Offer.parse(_offer_doc(released["book"], released["store"].load_registry(), "k-vb-q1", released["url"]))
    now = dt.datetime.now(dt.UTC)
    assert offer.check(ca, now=now)["version"] == "0.2.0"
    assert offer.check(ca, now=None)["version"] == "0.2.0"  # no trusted time: the signature still holds
    with pytest.raises(UpdateError, match="expired"):
        offer.check(ca, now=now + dt.timedelta(days=21 * 365))
    with pytest.raises(UpdateError, match="not valid before"):
        offer.check(ca, now=now - dt.timedelta(days=3))
    # The collector replaces a signer close to its end before it signs with it.
    fleet_ca: FleetCA = fleet["ca"]
    fleet_ca.issue_release_signer(days=30)
    _, pem = fleet_ca.release_signer()
    assert x509.load_pem_x509_certificate(pem).not_valid_after_utc - now > dt.timedelta(days=19 * 365)


def test_a_failed_download_is_tried_again_with_back_off_and_then_taken(fleet, released, tmp_path):
    import ssl

    vb = fleet["tmp"] / "k-vb-q1"
    good = ssl.create_default_context(cafile=str(vb / "ca.crt"))
    good.load_cert_chain(str(vb / "kiosk.crt"), str(vb / "kiosk.key"))
    anonymous = ssl.create_default_context(cafile=str(vb / "ca.crt"))  # the server refuses it
    contexts = [anonymous]
    clock = [0.0]
    calls: list = []
    restarts: list = []
    data = tmp_path / "data"
    updater = Updater(
        data_dir=data,
        ca=vb / "ca.crt",
        tls=lambda: contexts[0],
        restart=lambda: restarts.append(1),
        installer=fake_installer(calls),
        running="0.1.0",
        monotonic=lambda: clock[0],
        download_tries=2,
    )
    doc = _offer_doc(released["book"], released["store"].load_registry(), "k-vb-q1", released["url"])
    assert updater.offer(doc)
    assert wait_for(lambda: not updater.busy, 30)
    assert updater.report["state"] == "failed" and updater.report["retry_in_s"] == 60
    assert not updater.retry_due()  # not before its time
    clock[0] = 61
    assert updater.retry_due()
    assert wait_for(lambda: not updater.busy, 30)
    assert updater.report["retry_in_s"] == 120  # doubled
    assert not updater.offer(doc)  # the same offer again (a reconnect) does not reset the back-off …
    clock[0] = 61 + 121
    contexts[0] = good  # … and once the link (here: the certificate) is right, it is taken
    assert updater.retry_due()
    assert wait_for(lambda: restarts == [1], 30), updater.report
    assert calls and calls[0][0] == "0.2.0"
    # A release whose signature is wrong is not tried again: waiting cannot mend it.
    other = Updater(data_dir=tmp_path / "other", ca=fleet["tmp"] / "k-sp-q1" / "ca.crt", tls=lambda: good,
                    restart=lambda: None, monotonic=lambda: clock[0], running="0.1.0")  # fmt: skip
    assert other.offer({**doc, "sha256": "0" * 64})
    assert wait_for(lambda: not other.busy, 10)
    assert other.report["state"] == "failed" and "retry_in_s" not in other.report


def test_a_release_rolled_back_only_because_it_never_connected_is_taken_again_when_the_link_returns(tmp_path):
    data = tmp_path / "data"
    (data / "versions" / "0.2.0" / "bin").mkdir(parents=True)
    launcher.point_current(data, "0.2.0")
    clock = [0.0]
    offer = {"version": "0.3.0", "url": "https://x/r", "size": 1, "sha256": "0" * 64, "manifest": "",
             "signature": "", "signer": ""}  # fmt: skip
    for retake in range(1, 4):
        # On trial, 0.3.0 runs but the collector is down for its whole trial: unconfirmed.
        launcher.write_state(
            data,
            {
                **launcher.read_state(data),
                "trial": {"version": "0.3.0", "previous": "0.2.0", "attempts": 1, "unconfirmed": "no connection"},
            },
        )
        launcher.point_current(data, "0.3.0")
        launcher.decide(data, now=AT)
        state = launcher.read_state(data)
        assert state["rolled_back"]["kind"] == "unconfirmed" and "0.3.0" in state["refused"]
        old = Updater(data_dir=data, ca=None, tls=lambda: None, restart=lambda: None, running="0.2.0",
                      monotonic=lambda: clock[0])  # fmt: skip
        started: list = []
        old._work = lambda offer, stop=None, started=started: started.append(offer.version)  # type: ignore[method-assign]
        old.offer(offer)
        assert started == []  # refused while rolled back
        assert not old.answered()  # the old version's status is answered: the link works again
        assert old.retry_due() == (retake <= 2), retake  # taken again, twice at most
        if old._thread is not None:  # the download and install are not the point here
            old._thread.join(5)
        assert started == (["0.3.0"] if retake <= 2 else []), (retake, started)
    # A crash loop is the release's own fault: never lifted by a working link.
    launcher.write_state(data, {"rolled_back": {"version": "0.4.0", "kind": "crash_loop"}, "refused": ["0.4.0"]})
    old = Updater(data_dir=data, ca=None, tls=lambda: None, restart=lambda: None, running="0.2.0")
    old.answered()
    assert old.refused() == {"0.4.0"}


def test_a_paused_rollout_calls_off_an_update_in_progress_and_one_waiting_to_retry(fleet, released, tmp_path):
    """From the review: a withdrawn offer was retried, and a kiosk waiting for closing time switched."""
    import ssl
    import threading

    vb = fleet["tmp"] / "k-vb-q1"
    good = ssl.create_default_context(cafile=str(vb / "ca.crt"))
    good.load_cert_chain(str(vb / "kiosk.crt"), str(vb / "kiosk.key"))
    clock = [0.0]
    restarts: list = []
    calls: list = []
    failing = [True]

    def installer(version, wheels, venv):
        if failing[0]:
            raise subprocess.CalledProcessError(1, "pip", stderr=b"No space left on device")
        fake_installer(calls)(version, wheels, venv)

    office_open = threading.Event()
    updater = Updater(data_dir=tmp_path / "data", ca=vb / "ca.crt", tls=lambda: good,
                      restart=lambda: restarts.append(1), installer=installer, running="0.1.0",
                      monotonic=lambda: clock[0], may_switch=lambda: not office_open.is_set())  # fmt: skip
    doc = _offer_doc(released["book"], released["store"].load_registry(), "k-vb-q1", released["url"])
    assert updater.offer(doc)
    assert wait_for(lambda: not updater.busy, 30)
    assert updater.report["state"] == "failed" and updater.report["retry_in_s"] == 60
    assert updater.withdraw()  # the admin paused the rollout: the config comes without "update"
    clock[0] = 1000
    assert not updater.retry_due()
    assert updater.report == {"version": "0.2.0", "state": "withdrawn"}
    served = len(released["server"].downloads)
    # Offered again, installed during office hours, waiting — and paused again: never switched.
    failing[0] = False
    office_open.set()
    assert updater.offer(doc)
    assert wait_for(lambda: (updater.report or {}).get("state") == "waiting", 30), updater.report
    assert len(released["server"].downloads) == served  # the verified download of the failed install was used
    assert updater.withdraw()
    office_open.clear()  # closing time comes
    assert wait_for(lambda: not updater.busy, 40)
    assert restarts == [] and not (tmp_path / "data" / "versions" / "current").exists()
    assert updater.report["state"] == "withdrawn"


def test_an_offer_that_keeps_failing_is_left_after_max_tries_until_an_admins_retry(tmp_path):
    from kiosk.update import MAX_TRIES, RETRY_MAX_S

    doc = {"version": "0.3.0", "url": "https://x/r", "size": 1, "sha256": "0" * 64, "manifest": "", "signature": "",
           "signer": ""}  # fmt: skip
    clock = [0.0]
    updater = Updater(data_dir=tmp_path, ca=None, tls=lambda: None, restart=lambda: None, running="0.2.0",
                      monotonic=lambda: clock[0])  # fmt: skip
    offer = Offer.parse(doc)
    updater._offer = offer
    waits = []
    for _ in range(MAX_TRIES):
        updater._failed(offer, "install failed: no matching distribution", again=True)
        waits.append(updater.report.get("retry_in_s"))
    assert waits[:3] == [60, 120, 240] and max(w for w in waits if w) == RETRY_MAX_S and waits[-1] is None
    clock[0] = 10**6
    assert not updater.retry_due() and not updater.offer(doc)  # given up, also on a reconnect
    updater.act({"id": "0011223344556677", "do": "retry"})
    updater._work = lambda offer, stop=None: None  # type: ignore[method-assign]
    assert updater.retry_due()  # an admin's retry starts it again


def test_idle_sockets_from_one_address_do_not_keep_kiosks_from_their_downloads(fleet, released, monkeypatch):
    """From the review: 64 idle TCP sockets (no TLS) took every download slot for 2 minutes."""
    import socket
    import ssl

    import collector.releaseserver as releaseserver

    monkeypatch.setattr(releaseserver, "HANDSHAKE_S", 1.0)
    idle = []
    for _ in range(releaseserver.MAX_CLIENTS + 16):  # more than every download slot
        sock = socket.socket()
        sock.bind(("127.0.0.2", 0))  # the attacker's address
        sock.connect(("127.0.0.1", released["server"].port))
        idle.append(sock)
    vb = fleet["tmp"] / "k-vb-q1"
    context = ssl.create_default_context(cafile=str(vb / "ca.crt"))
    context.load_cert_chain(str(vb / "kiosk.crt"), str(vb / "kiosk.key"))
    offer = Offer.parse(_offer_doc(released["book"], released["store"].load_registry(), "k-vb-q1", released["url"]))
    target = fleet["tmp"] / "dl" / "0.2.0.tar"
    target.parent.mkdir()
    assert download(offer, target, context, attempts=3).stat().st_size == offer.size  # from 127.0.0.1: served
    assert wait_for(lambda: sum(released["server"]._open.values()) == 0, 10)  # the idle ones dropped after 1 s
    for sock in idle:
        sock.close()


def test_power_cuts_on_trial_are_not_a_crash_loop(tmp_path):
    """From the review: three power cycles without a link rolled a good release back as a crash loop."""
    data = tmp_path / "data"
    for version in ("0.2.0", "0.3.0"):
        (data / "versions" / version / "bin").mkdir(parents=True)
    launcher.point_current(data, "0.2.0")
    Updater(data_dir=data, ca=None, tls=lambda: None, restart=lambda: None, running="0.2.0").switch("0.3.0")
    for boot in range(1, launcher.MAX_BOOTS - 1):  # a power cut each time, one start per boot
        launcher.decide(data, now=AT, boot=f"boot-{boot}")
        assert os.readlink(data / "versions" / "current") == "0.3.0", boot
    launcher.decide(data, now=AT, boot="boot-crashes")
    for _ in range(launcher.MAX_ATTEMPTS - 1):  # a real crash loop within one boot still goes back
        launcher.decide(data, now=AT, boot="boot-crashes")
    assert os.readlink(data / "versions" / "current") == "0.3.0"
    launcher.decide(data, now=AT, boot="boot-crashes")
    assert os.readlink(data / "versions" / "current") == "0.2.0"
    assert launcher.read_state(data)["rolled_back"]["kind"] == "crash_loop"
    # Very many boots without proof go back too, as "unconfirmed" (it may be the link's fault).
    launcher.write_state(data, {"trial": {"version": "0.3.0", "previous": "0.2.0", "attempts": 0}})
    launcher.point_current(data, "0.3.0")
    for boot in range(launcher.MAX_BOOTS + 1):
        launcher.decide(data, now=AT, boot=f"again-{boot}")
    assert os.readlink(data / "versions" / "current") == "0.2.0"
    assert launcher.read_state(data)["rolled_back"]["kind"] == "unconfirmed"
