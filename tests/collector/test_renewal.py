"""Certificate renewal over MQTT: the kiosk makes a key and a request on a topic only it may
write, the collector's fleet CA signs it if the kiosk is enrolled and not revoked, the answer
comes back on a topic only that kiosk may read, and the kiosk reconnects with the new pair —
through the production broker, its TLS and its ACL."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import time
from dataclasses import replace
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from hypothesis import given
from hypothesis import strategies as st

from collector.alerts import AlertBook
from collector.cli import main as collector_main
from collector.fleet import COLLECTOR_IDENTITY, FleetCA, FleetError
from collector.ingest import Ingestor
from collector.store import SqliteStore
from kiosk import wire
from kiosk.clock import FakeClock
from kiosk.config import load_settings as load_kiosk_settings
from kiosk.renewal import CertStore, RenewalError, cert_store_for, with_pair_in_use
from tests.collector.conftest import collector_tls_settings, mqtt_client_for
from tests.conftest import wait_for
from tests.kiosk.conftest import KioskRig
from tests.kiosk.test_kiosk_fuzz import FUZZ, junk


def _store_for(fleet, kiosk="k-vb-q1", folder=None):
    bundle = fleet["tmp"] / kiosk
    return CertStore(
        folder=folder or fleet["tmp"] / f"{kiosk}-tls",
        bundle_cert=bundle / "kiosk.crt",
        bundle_key=bundle / "kiosk.key",
        ca=bundle / "ca.crt",
        kiosk_id=kiosk,
    )


def _csr(cn: str, key=None) -> bytes:
    key = key or ec.generate_private_key(ec.SECP256R1())
    csr = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
    return csr.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def test_the_ca_signs_only_a_well_formed_request_of_an_enrolled_kiosk_in_its_own_name(fleet):
    ca: FleetCA = fleet["ca"]
    cert = x509.load_pem_x509_certificate(ca.sign_csr(_csr("k-vb-q1"), "k-vb-q1"))
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "k-vb-q1"
    assert cert.not_valid_after_utc - dt.datetime.now(dt.UTC) > dt.timedelta(days=5 * 365 - 2)
    assert len(ca.active("k-vb-q1")) == 2  # recorded: the CRL and `kiosk list` know it
    for request, name, words in [
        (_csr("k-sp-q1"), "k-vb-q1", "exactly CN=k-vb-q1"),  # another kiosk's name
        (_csr("k-vb-q1"), "k-nobody", "holds no certificate"),  # never enrolled
        (_csr("k-vb-q1", rsa.generate_private_key(public_exponent=65537, key_size=2048)), "k-vb-q1", "P-256"),
        (b"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n", "k-vb-q1", "PEM"),
    ]:
        with pytest.raises(FleetError, match=words):
            ca.sign_csr(request, name)
    ca.revoke("k-sp-q1")
    with pytest.raises(FleetError, match="not revoked"):
        ca.sign_csr(_csr("k-sp-q1"), "k-sp-q1")


def test_the_kiosk_takes_only_a_certificate_for_its_pending_key_from_its_ca(fleet, tmp_path):
    ca: FleetCA = fleet["ca"]
    certs = _store_for(fleet)
    assert not certs.current().renewed
    bundle_expiry = certs.not_after()
    with pytest.raises(RenewalError, match="no request is pending"):
        certs.install(ca.sign_csr(_csr("k-vb-q1"), "k-vb-q1").decode())
    request = certs.request()
    assert certs.request() == request or "BEGIN CERTIFICATE REQUEST" in certs.request()  # one pending key
    wrong_key = ca.sign_csr(_csr("k-vb-q1"), "k-vb-q1").decode()
    with pytest.raises(RenewalError, match="pending request"):
        certs.install(wrong_key)
    other_ca = FleetCA(tmp_path / "other")
    other_ca.init(broker_hosts=("localhost",))
    other_ca.issue_client("k-vb-q1")  # enrolled there too, so it would sign
    with pytest.raises(RenewalError, match="fleet CA"):
        certs.install(other_ca.sign_csr(request.encode(), "k-vb-q1").decode())
    assert not certs.current().renewed  # nothing above changed the pair in use
    pair = certs.install(ca.sign_csr(request.encode(), "k-vb-q1").decode())
    assert certs.current() == pair and pair.renewed
    assert certs.not_after() >= bundle_expiry
    assert not (certs.folder / "pending.key").exists()
    # A pointer to a pair that is gone (a card restored from an old image) falls back to the bundle.
    (certs.folder / "current").write_text("deadbeef\n")
    assert not certs.current().renewed


def test_the_collector_alerts_30_days_before_a_kiosk_certificate_expires_unrenewed(fleet):
    from collector.config import load_settings

    settings = load_settings(fleet["conf"])
    store = SqliteStore(settings.data_dir / "collector.db")
    registry = store.load_registry()
    book = AlertBook(store, settings)
    now = dt.datetime.now(dt.UTC)

    def certificate_alerts(at: dt.datetime) -> list:  # not the "silent" ones of a weekday morning
        return [a for a in book.evaluate(registry, at) if a.kind == "cert_expiry"]

    assert certificate_alerts(now) == []  # 5 years left
    opened = certificate_alerts(now + dt.timedelta(days=5 * 365 - 29))
    assert sorted((a.kind, a.target) for a in opened) == [("cert_expiry", "k-sp-q1"), ("cert_expiry", "k-vb-q1")]
    assert "chưa được gia hạn" in opened[0].text("vi")
    later = now + dt.timedelta(days=5 * 365 - 29)
    assert all(a is None for a in book._expiring_certificates(registry, later))  # still open: not opened twice
    # Renewed (as it would be near then: five years more): the newest certificate is what counts.
    fleet["ca"].sign_csr(_csr("k-vb-q1"), "k-vb-q1", days=10 * 365)
    assert fleet["ca"].expiry("k-vb-q1") - later > dt.timedelta(days=30)
    store.close()


def _request(bundle, cn: str, key=None) -> wire.CertRequest:
    """A renewal request as a kiosk holding ``bundle``'s certificate makes it."""
    csr = _csr(cn, key).decode()
    held_key = serialization.load_pem_private_key((bundle / "kiosk.key").read_bytes(), password=None)
    proof = held_key.sign(csr.encode(), ec.ECDSA(hashes.SHA256()))
    return wire.CertRequest(csr, (bundle / "kiosk.crt").read_text(), proof)


def test_only_the_holder_of_an_unrevoked_certificate_renews_and_at_most_hourly(fleet):
    ca: FleetCA = fleet["ca"]
    vb, sp = fleet["tmp"] / "k-vb-q1", fleet["tmp"] / "k-sp-q1"
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)
    first = _request(vb, "k-vb-q1")
    signed = ca.renew(first, "k-vb-q1", now=later)
    assert b"BEGIN CERTIFICATE" in signed
    with pytest.raises(FleetError, match="less than an hour"):
        ca.renew(_request(vb, "k-vb-q1"), "k-vb-q1")  # a flood of requests signs nothing more
    # The same request again (its answer lost: a store outage rolled back the batch) gets the
    # same certificate back, nothing new signed.
    issued = len(ca.issued())
    assert ca.renew(first, "k-vb-q1") == signed and len(ca.issued()) == issued
    with pytest.raises(FleetError, match="not k-vb-q1's"):
        ca.renew(_request(sp, "k-vb-q1"), "k-vb-q1", now=later)  # another kiosk's certificate
    forged = _request(vb, "k-vb-q1")
    with pytest.raises(FleetError, match="proof"):
        ca.renew(wire.CertRequest(forged.csr, forged.cert, _request(sp, "k-vb-q1").proof), "k-vb-q1", now=later)
    # A card replaced with `enrol --replace` (its certificate revoked) cannot renew itself.
    old = fleet["tmp"] / "old-card"
    old.mkdir()
    for name in ("kiosk.crt", "kiosk.key"):
        (old / name).write_bytes((vb / name).read_bytes())
    fleet["cli"](
        "kiosk",
        "enrol",
        "k-vb-q1",
        "--counter",
        "vb-q1",
        "--out",
        str(vb),
        "--broker-port",
        str(fleet["port"]),
        "--replace",
    )
    with pytest.raises(FleetError, match="revoked"):
        ca.renew(_request(old, "k-vb-q1"), "k-vb-q1", now=later + dt.timedelta(hours=2))
    assert b"BEGIN CERTIFICATE" in ca.renew(_request(vb, "k-vb-q1"), "k-vb-q1", now=later + dt.timedelta(hours=2))


def test_many_writers_at_once_keep_the_cas_list_whole(fleet):
    import multiprocessing

    ca: FleetCA = fleet["ca"]
    before = len(ca.issued())
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_sign_many, args=(str(ca.folder), 15)) for _ in range(3)]
    for w in workers:
        w.start()
    for _ in range(5):
        ca.revoke("k-sp-q1") if ca.active("k-sp-q1") else ca.sign_csr(_csr("k-vb-q1"), "k-vb-q1")
    for w in workers:
        w.join(60)
        assert w.exitcode == 0
    issued = ca.issued()  # whole JSON, every signature recorded
    assert len(issued) == before + 3 * 15 + 4
    assert not list(ca.folder.glob("*.tmp"))


def _sign_many(folder: str, n: int) -> None:
    ca = FleetCA(Path(folder))
    for _ in range(n):
        ca.sign_csr(_csr("k-vb-q1"), "k-vb-q1")


def test_kiosk_list_shows_certificate_expiry(fleet, capsys):
    capsys.readouterr()
    assert collector_main(["kiosk", "list", "--config", str(fleet["conf"])]) == 0
    out = capsys.readouterr().out
    line = next(row for row in out.splitlines() if row.startswith("k-vb-q1"))
    expected = (dt.datetime.now(dt.UTC) + dt.timedelta(days=5 * 365)).strftime("%Y-%m-%d")
    assert expected[:7] in line and "never seen" in line
    assert "2 kiosk(s)" in out


def test_a_kiosk_renews_over_mqtt_and_reconnects_with_the_new_certificate(fleet):
    # The kiosk's card was made with a certificate that has 10 days left.
    fleet["cli"](
        "kiosk",
        "enrol",
        "k-vb-q1",
        "--counter",
        "vb-q1",
        "--out",
        str(fleet["tmp"] / "k-vb-q1"),
        "--broker-port",
        str(fleet["port"]),
        "--days",
        "10",
        "--replace",
    )
    fleet["broker"].restart()  # the replaced card's certificate is on the revocation list now
    settings = collector_tls_settings(fleet)
    ingestor = Ingestor(settings=settings, store=SqliteStore(settings.data_dir / "collector.db"))
    ingestor.start()
    ks = load_kiosk_settings(fleet["tmp"] / "k-vb-q1" / "kiosk.toml")
    ks = replace(ks, data_dir=fleet["tmp"] / "kiosk-data", panel=replace(ks.panel, debounce_s=0.0))
    rig = KioskRig(ks, clock=FakeClock(time.time()))
    try:
        assert wait_for(lambda: ingestor.connected and rig.kiosk.publisher.connected, 10)
        first_generation = rig.kiosk.publisher.generation
        rig.kiosk.clock.advance(61)  # the hourly look: due (10 days < 60)
        assert rig.pump(lambda: (rig.kiosk.renewal or {}).get("state") == "renewed", 20), rig.kiosk.renewal
        assert rig.kiosk.certs.current().renewed
        # A second answer (to a re-sent request, or redelivered) is not waited for: ignored.
        rig.kiosk.handle_cert(wire.encode_cert("k-vb-q1", error="csr_refused: too soon"))
        assert rig.kiosk.renewal["state"] == "renewed"
        assert rig.kiosk.certs.not_after() - dt.datetime.now(dt.UTC) > dt.timedelta(days=5 * 365 - 2)
        # It reconnected with the new pair, through the broker's TLS and the revocation list.
        assert rig.pump(lambda: rig.kiosk.publisher.generation > first_generation and rig.kiosk._cert_trial is None, 20)
        rig.press(2)
        assert rig.pump(lambda: rig.kiosk.outbox.backlog().ratings == 0, 15)
        store = SqliteStore(settings.data_dir / "collector.db")
        assert store.rating_count() == 1
        audit = [r for r in store.audit_rows() if r[2] == "renew_certificate"]
        assert audit and audit[0][3] == "kiosk:k-vb-q1"
        assert rig.pump(
            lambda: (store.kiosk_statuses().get("k-vb-q1") or {}).get("renewal", {}).get("state") == "renewed", 15
        )
        assert store.kiosk_statuses()["k-vb-q1"]["cert_not_after"] > "2031"
        store.close()
    finally:
        rig.close()
        ingestor.stop()
    # After a restart the kiosk (and its self-test) connect with the renewed pair from its data folder.
    in_use = with_pair_in_use(ks.mqtt, cert_store_for(ks.mqtt, ks.data_dir, ks.kiosk_id))
    assert in_use.tls_cert.startswith(str(fleet["tmp"] / "kiosk-data" / "tls"))


def test_only_the_kiosk_itself_may_ask_for_and_read_its_certificate(fleet):
    ca = fleet["ca"]
    spy, ok = mqtt_client_for(
        fleet["port"], ca.ca_crt, ca.folder / "collector.crt", ca.folder / "collector.key", name=COLLECTOR_IDENTITY
    )
    assert ok
    spy.subscribe("sat/v1/#", qos=1)
    sp = fleet["tmp"] / "k-sp-q1"
    intruder, ok = mqtt_client_for(fleet["port"], sp / "ca.crt", sp / "kiosk.crt", sp / "kiosk.key", name="k-sp-q1")
    assert ok
    intruder.subscribe("sat/v1/k/k-vb-q1/cert", qos=1)
    intruder.subscribe("sat/v1/k/k-sp-q1/cert", qos=1)
    wait_for(lambda: False, 0.5)
    held = (sp / "kiosk.crt").read_text()
    for kiosk in ("k-vb-q1", "k-sp-q1"):
        request = wire.encode_csr(kiosk, _csr(kiosk).decode(), cert_pem=held, proof=b"x")
        intruder.publish(f"sat/v1/k/{kiosk}/csr", request, qos=1)
    spy.publish("sat/v1/k/k-vb-q1/cert", wire.encode_cert("k-vb-q1", error="x"), qos=1)
    spy.publish("sat/v1/k/k-sp-q1/cert", wire.encode_cert("k-sp-q1", error="x"), qos=1)
    assert wait_for(lambda: "sat/v1/k/k-sp-q1/csr" in spy.received and intruder.received, 5)
    wait_for(lambda: False, 1.0)
    assert "sat/v1/k/k-vb-q1/csr" not in spy.received
    assert intruder.received == ["sat/v1/k/k-sp-q1/cert"]
    for c in (spy, intruder):
        c.loop_stop()


messages = st.one_of(
    st.binary(max_size=200),
    junk.map(lambda d: json.dumps(d).encode("utf-8", "surrogatepass")),
    st.fixed_dictionaries(
        {"v": st.sampled_from([1, 2]), "kiosk": st.sampled_from(["k-vb-q1", "k-x"])},
        optional={
            "csr": st.one_of(
                junk,
                st.sampled_from(["-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"]),
            ),
            "cert": st.one_of(
                junk, st.sampled_from(["-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"])
            ),
            "error": junk,
        },
    ).map(lambda d: json.dumps(d).encode("utf-8", "surrogatepass")),
)


@FUZZ
@given(payload=messages)
def test_certificate_messages_are_read_or_refused_never_crash(payload):
    for decode in (
        lambda: wire.decode_csr(payload, topic_kiosk="k-vb-q1"),
        lambda: wire.decode_cert(payload, kiosk="k-vb-q1"),
    ):
        with contextlib.suppress(wire.WireError):
            decode()


def test_a_broken_ca_refuses_the_request_and_ingest_goes_on_for_everyone(ingestor, store, fake_kiosk, tmp_path):
    """Found by the review: an unreadable CA key was taken for a store outage and paused ingest."""
    from tests.ratings import make_rating

    fleet_dir = ingestor.settings.data_dir / "fleet"
    ca = FleetCA(fleet_dir)
    ca.init()
    key_pem, cert_pem = ca.issue_client("k-vb-q1")  # the kiosk's card, made while the CA was well
    (tmp_path / "kiosk.key").write_bytes(key_pem)
    (tmp_path / "kiosk.crt").write_bytes(cert_pem)
    (fleet_dir / "ca.key").unlink()
    (fleet_dir / "ca.key").mkdir()  # unreadable as a key, even for root: an OSError
    request = _request(tmp_path, "k-vb-q1")
    fake_kiosk.publish("csr", wire.encode_csr("k-vb-q1", request.csr, cert_pem=request.cert, proof=request.proof))
    fake_kiosk.publish("ratings", wire.encode_batch("k-vb-q1", [make_rating(seq=1)]))
    assert wait_for(lambda: store.rating_count() == 1, 15)
    assert ingestor.outage is None
    (entry,) = store.quarantined()
    assert entry.reason == "csr_refused" and "IsADirectoryError" in entry.detail


def test_a_restart_during_the_trial_of_a_renewed_pair_still_goes_back_if_it_never_connects(fleet):
    """Found by the review: the trial was kept in memory only; after a power cut a renewed pair the
    broker refuses would have left the kiosk offline for good."""
    ks = load_kiosk_settings(fleet["tmp"] / "k-vb-q1" / "kiosk.toml")
    ks = replace(ks, data_dir=fleet["tmp"] / "kiosk-data")
    certs = cert_store_for(ks.mqtt, ks.data_dir, ks.kiosk_id)
    before = certs.current()
    pair = certs.install(fleet["ca"].sign_csr(certs.request().encode(), "k-vb-q1").decode())
    certs.begin_trial(before)
    assert certs.pending_trial() == before and certs.current() == pair
    clock = FakeClock(time.time())
    rig = KioskRig(ks, clock=clock, connect=False)  # restarted, and no broker will take it
    try:
        assert rig.kiosk._cert_trial is not None
        clock.advance(301)
        rig.kiosk.housekeeping()
        assert certs.current() == before and certs.pending_trial() is None
        assert rig.kiosk.renewal["state"] == "failed"
    finally:
        rig.close()
