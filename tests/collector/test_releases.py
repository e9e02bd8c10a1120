"""Releases on the collector: packed and signed with a code-signing certificate from the fleet CA,
offered in stages in the kiosks' retained config, served over HTTPS to kiosk certificates only,
resumable."""

from __future__ import annotations

import base64
import http.client
import json
import ssl
import zipfile
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from collector.cli import main as collector_main
from collector.config import load_settings
from collector.localbroker import free_port
from collector.releases import ReleaseBook, ReleaseError, bucket
from collector.releaseserver import ReleaseServer
from collector.remotesettings import ConfigSender
from collector.store import SqliteStore
from tests.conftest import wait_for

AT = "2026-11-22T03:00:00.000Z"


def wheelhouse(
    folder: Path, version: str = "0.2.0", extra: tuple[str, ...] = ("paho_mqtt-2.1.0-py3-none-any.whl",)
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in (f"satisfaction_kiosk-{version}-py3-none-any.whl", *extra):
        with zipfile.ZipFile(folder / name, "w") as whl:
            whl.writestr("README", f"{name}\n" * 2000)
    return folder


def test_a_release_is_packed_signed_by_a_code_signing_certificate_of_the_fleet_ca(fleet, capsys):
    dist = wheelhouse(fleet["tmp"] / "dist")
    capsys.readouterr()
    fleet["cli"]("release", "add", str(dist))
    assert "release 0.2.0: 2 wheels" in capsys.readouterr().out
    folder = fleet["tmp"] / "data" / "releases" / "0.2.0"
    manifest = (folder / "manifest.json").read_bytes()
    doc = json.loads(manifest)
    assert doc["size"] == (folder / "release.tar").stat().st_size and len(doc["sha256"]) == 64
    signer = x509.load_pem_x509_certificate((folder / "signer.crt").read_bytes())
    ca = x509.load_pem_x509_certificate(fleet["ca"].ca_crt.read_bytes())
    signer.verify_directly_issued_by(ca)
    assert signer.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value == x509.ExtendedKeyUsage(
        [ExtendedKeyUsageOID.CODE_SIGNING]
    )
    public = signer.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    public.verify(base64.b64decode((folder / "manifest.sig").read_bytes()), manifest, ec.ECDSA(hashes.SHA256()))
    # A release is never changed: the same version again is refused, and so are odd folders.
    assert collector_main(["release", "add", str(dist), "--config", str(fleet["conf"])]) == 2
    (dist / "notes.txt").write_text("x")
    with pytest.raises(ReleaseError, match="more than wheels"):
        ReleaseBook(None, fleet["tmp"] / "data").add(dist, by="t", at=AT)
    two = wheelhouse(fleet["tmp"] / "two", "0.3.0", extra=("satisfaction_kiosk-0.3.1-py3-none-any.whl",))
    with pytest.raises(ReleaseError, match="exactly one"):
        ReleaseBook(None, fleet["tmp"] / "data").add(two, by="t", at=AT)


def test_a_ca_made_before_releases_gets_a_release_key_from_ca_init(fleet, capsys):
    ca = fleet["ca"]
    ca.release_key.unlink()
    ca.release_crt.unlink()
    old_ca = ca.ca_crt.read_bytes()
    capsys.readouterr()
    fleet["cli"]("ca", "init")
    assert "release-signing key was added" in capsys.readouterr().out
    assert ca.release_crt.exists() and ca.ca_crt.read_bytes() == old_ca


def test_rollouts_offer_a_stable_share_of_the_kiosks_of_some_units_and_pause(any_store, tmp_path):
    from collector.fleet import FleetCA

    data = tmp_path / "data"
    FleetCA(data / "fleet").init()
    book = ReleaseBook(any_store, data)
    book.add(wheelhouse(tmp_path / "dist"), by="t", at=AT)
    registry = any_store.load_registry()
    with pytest.raises(ReleaseError):
        book.rollout("0.2.0", [], 50, registry, by="t", at=AT)
    book.rollout("0.2.0", ["10.085"], 100, registry, by="t", at=AT)  # Văn Bàn only
    offers = book.offers(registry, "https://c.example:8443")
    vb = [k for k in registry.kiosks if registry.counters[registry.kiosks[k].counter].unit.startswith("10.085")]
    assert vb and all(offers(k)[0] is not None for k in vb)
    assert offers("k-psp-q1")[0] is None  # Sa Pa: told there is nothing for it
    doc, revision = offers(vb[0])
    assert doc["url"] == "https://c.example:8443/releases/0.2.0/release.tar" and revision >= 1
    assert json.loads(base64.b64decode(doc["manifest"]))["sha256"] == doc["sha256"]
    # 30 %: the kiosks whose bucket is under 30; raising it keeps them in.
    book.rollout("0.2.0", ["10"], 30, registry, by="t", at="2026-11-22T03:01:00.000Z")
    chosen = {k for k in registry.kiosks if book.offers(registry, "u")(k)[0] is not None}
    assert chosen == {k for k in registry.kiosks if bucket(k, "0.2.0") < 30}
    book.set_state("0.2.0", "paused", by="t", at="2026-11-22T03:02:00.000Z")
    assert all(book.offers(registry, "u")(k)[0] is None for k in registry.kiosks)
    book.set_state("0.2.0", "active", by="t", at="2026-11-22T03:03:00.000Z")
    assert {k for k in registry.kiosks if book.offers(registry, "u")(k)[0] is not None} == chosen


def test_the_offer_travels_in_the_retained_config_of_the_chosen_kiosks_only(fleet, tmp_path):
    settings = load_settings(fleet["conf"])
    store = SqliteStore(settings.data_dir / "collector.db")
    book = ReleaseBook(store, settings.data_dir)
    book.add(wheelhouse(tmp_path / "dist"), by="t", at=AT)
    book.rollout("0.2.0", ["10.085"], 100, store.load_registry(), by="t", at=AT)
    sent: dict[str, bytes] = {}
    sender = ConfigSender(
        store, store.load_registry, sent.__setitem__, offers=lambda r: book.offers(r, settings.release_url)
    )
    assert sender.run_once(lambda k: k) == 2  # both kiosks hear of the rollout …
    assert "update" not in json.loads(sent["k-sp-q1"])  # … but Sa Pa is not offered it
    doc = json.loads(sent["k-vb-q1"])
    assert doc["update"]["version"] == "0.2.0" and doc["update"]["url"].startswith("https://127.0.0.1:8443/")
    assert doc["settings"] == {} and doc["revision"] >= 1
    assert sender.run_once(lambda k: k) == 0  # unchanged: not sent again
    book.set_state("0.2.0", "paused", by="t", at="2026-11-22T03:05:00.000Z")
    assert sender.run_once(lambda k: k) == 2  # a new revision for every kiosk
    assert "update" not in json.loads(sent["k-vb-q1"])  # withdrawn from the retained message
    store.close()


def _get(port: int, ca: Path, cert: Path | None, key: Path | None, path: str, headers: dict | None = None):
    context = ssl.create_default_context(cafile=str(ca))
    if cert is not None:
        context.load_cert_chain(str(cert), str(key))
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=10)
    try:
        conn.request("GET", path, headers=headers or {})
        answer = conn.getresponse()
        return answer.status, dict(answer.getheaders()), answer.read()
    finally:
        conn.close()


def test_releases_are_served_to_kiosk_certificates_only_and_resume(fleet, tmp_path):
    settings = load_settings(fleet["conf"])
    store = SqliteStore(settings.data_dir / "collector.db")
    ReleaseBook(store, settings.data_dir).add(wheelhouse(tmp_path / "dist"), by="t", at=AT)
    whole = (settings.data_dir / "releases" / "0.2.0" / "release.tar").read_bytes()
    server = ReleaseServer(settings, store.load_registry, port=free_port(), refresh_s=0.2)
    server.start()
    vb = fleet["tmp"] / "k-vb-q1"
    ca = vb / "ca.crt"
    path = "/releases/0.2.0/release.tar"
    try:
        assert wait_for(lambda: "k-vb-q1" in server.registry().kiosks)
        status, headers, body = _get(server.port, ca, vb / "kiosk.crt", vb / "kiosk.key", path)
        assert (status, body) == (200, whole) and headers["Accept-Ranges"] == "bytes"
        # A broken 3G download goes on from where it stopped.
        status, headers, rest = _get(
            server.port, ca, vb / "kiosk.crt", vb / "kiosk.key", path, {"Range": "bytes=1000-"}
        )
        assert status == 206 and rest == whole[1000:]
        assert headers["Content-Range"] == f"bytes 1000-{len(whole) - 1}/{len(whole)}"
        status, _, _ = _get(
            server.port, ca, vb / "kiosk.crt", vb / "kiosk.key", path, {"Range": f"bytes={len(whole)}-"}
        )
        assert status == 416
        for bad in ("/releases/../fleet/ca.key", "/releases/0.9.9/release.tar", "/releases/0.2.0/manifest.json", "/"):
            assert _get(server.port, ca, vb / "kiosk.crt", vb / "kiosk.key", bad)[0] == 404, bad
        # The collector's own certificate is from the CA, but it is not a kiosk.
        fleet_dir = fleet["ca"].folder
        assert _get(server.port, ca, fleet_dir / "collector.crt", fleet_dir / "collector.key", path)[0] == 403
        # No certificate: no handshake.
        with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
            _get(server.port, ca, None, None, path)
        # Revoked: refused from the next connection on (the revocation list is re-read).
        fleet["cli"]("kiosk", "revoke", "k-vb-q1")
        with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
            _get(server.port, ca, vb / "kiosk.crt", vb / "kiosk.key", path)
        sp = fleet["tmp"] / "k-sp-q1"
        assert _get(server.port, ca, sp / "kiosk.crt", sp / "kiosk.key", path)[0] == 200
        assert [(k, v) for k, v, _, _ in server.downloads][:1] == [("k-vb-q1", "0.2.0")]
    finally:
        server.stop()
        store.close()
