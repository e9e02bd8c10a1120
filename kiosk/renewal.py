"""Certificate renewal over MQTT: a kiosk's certificate outlives the kiosk's years on the wall.

The enrolment bundle's certificate sits in /etc/kiosk, which the kiosk service may not write
(systemd ``ProtectSystem=strict``). Renewed pairs live in ``data_dir/tls/``:

- ``pending.key`` — the key of the request in flight (made once, kept until a certificate for it
  comes back, so an answer to an earlier request still fits);
- ``<serial>/kiosk.crt`` and ``<serial>/kiosk.key`` — a renewed pair, written whole (files
  fsynced, the folder renamed into place) before ``current`` (one line: the folder's name) is
  replaced atomically to point at it.

A power cut at any step leaves either the old pair in use or the new one, never half of each.
A ``current`` that names a missing or mismatched pair is ignored (the bundle's pair is used).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import shutil
from dataclasses import dataclass, replace
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from kiosk.files import write_atomically
from kiosk.mqtt import MqttSettings

log = logging.getLogger(__name__)

RENEW_BEFORE_DAYS = 60  # ask this long before the certificate expires (the collector alerts at 30)
RETRY_EVERY_S = 6 * 3600  # a request without an answer is sent again after this


class RenewalError(ValueError):
    """A certificate that came back cannot be used: it is not for this kiosk, this key or this CA."""


@dataclass(frozen=True)
class Pair:
    cert: Path
    key: Path
    renewed: bool  # False: the enrolment bundle's own pair


class CertStore:
    def __init__(self, *, folder: Path, bundle_cert: Path, bundle_key: Path, ca: Path, kiosk_id: str) -> None:
        self.folder = folder
        self.bundle = Pair(bundle_cert, bundle_key, False)
        self.ca = ca
        self.kiosk_id = kiosk_id

    # --- the pair in use ------------------------------------------------------------------

    def current(self) -> Pair:
        """The newest renewed pair if it is whole and matches, else the bundle's."""
        try:
            name = (self.folder / "current").read_text(encoding="ascii").strip()
        except (OSError, UnicodeDecodeError):
            return self.bundle
        if not name.isalnum():
            return self.bundle
        pair = Pair(self.folder / name / "kiosk.crt", self.folder / name / "kiosk.key", True)
        try:
            cert = x509.load_pem_x509_certificate(pair.cert.read_bytes())
            key = serialization.load_pem_private_key(pair.key.read_bytes(), password=None)
        except (OSError, ValueError) as exc:
            log.error("renewed certificate in %s unusable (%s); using the enrolment bundle's", pair.cert.parent, exc)
            return self.bundle
        if _public_der(cert.public_key()) != _public_der(key.public_key()):
            log.error("renewed certificate in %s does not match its key; using the bundle's", pair.cert.parent)
            return self.bundle
        return pair

    def not_after(self) -> dt.datetime | None:
        try:
            return x509.load_pem_x509_certificate(self.current().cert.read_bytes()).not_valid_after_utc
        except (OSError, ValueError):
            return None

    def due(self, now: dt.datetime, renew_before_days: float = RENEW_BEFORE_DAYS) -> bool:
        expires = self.not_after()
        return expires is not None and expires - now <= dt.timedelta(days=renew_before_days)

    # --- a request ----------------------------------------------------------------------

    def request(self) -> str:
        """A PEM request (CN = the kiosk id) for the pending key, made now if there is none."""
        key = self._pending_key()
        csr = (
            x509.CertificateSigningRequestBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, self.kiosk_id)]))
            .sign(key, hashes.SHA256())
        )
        return csr.public_bytes(serialization.Encoding.PEM).decode("ascii")

    def prove(self, csr_pem: str) -> tuple[str, bytes]:
        """The certificate in use and the request signed with its key: the collector renews only
        for the holder of a certificate it has not revoked."""
        pair = self.current()
        key = serialization.load_pem_private_key(pair.key.read_bytes(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise RenewalError("the key in use is not EC")
        proof = key.sign(csr_pem.encode("ascii"), ec.ECDSA(hashes.SHA256()))
        return pair.cert.read_text(encoding="ascii"), proof

    def _pending_key(self) -> ec.EllipticCurvePrivateKey:
        path = self.folder / "pending.key"
        try:
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
            if isinstance(key, ec.EllipticCurvePrivateKey):
                return key
        except (OSError, ValueError):
            pass
        key = ec.generate_private_key(ec.SECP256R1())
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        write_atomically(path, pem, mode=0o600)
        return key

    # --- the answer ---------------------------------------------------------------------

    def install(self, cert_pem: str) -> Pair:
        """Check the certificate (this kiosk, the pending key, signed by the fleet CA, newer than
        the one in use) and make it the pair in use. RenewalError when any check fails."""
        try:
            cert = x509.load_pem_x509_certificate(cert_pem.encode("ascii"))
            ca = x509.load_pem_x509_certificate(self.ca.read_bytes())
        except (OSError, ValueError) as exc:
            raise RenewalError(f"certificate unreadable: {exc}") from None
        names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        if [n.value for n in names] != [self.kiosk_id]:
            raise RenewalError(f"certificate is for {[n.value for n in names]}, not {self.kiosk_id}")
        try:
            cert.verify_directly_issued_by(ca)
        except (ValueError, TypeError, Exception) as exc:  # InvalidSignature is not a ValueError
            raise RenewalError(f"certificate not signed by the fleet CA: {exc or type(exc).__name__}") from None
        pending = self.folder / "pending.key"
        try:
            key = serialization.load_pem_private_key(pending.read_bytes(), password=None)
        except (OSError, ValueError):
            raise RenewalError("no request is pending (an answer to an old one, or sent twice)") from None
        if _public_der(cert.public_key()) != _public_der(key.public_key()):
            raise RenewalError("certificate is not for the key of the pending request")
        current = self.not_after()
        if current is not None and cert.not_valid_after_utc < current:
            raise RenewalError("certificate expires before the one in use")
        name = f"{cert.serial_number:x}"
        staging = self.folder / f".{name}.tmp"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True, mode=0o700)
        write_atomically(staging / "kiosk.crt", cert_pem.encode("ascii"))
        write_atomically(staging / "kiosk.key", pending.read_bytes(), mode=0o600)
        final = self.folder / name
        shutil.rmtree(final, ignore_errors=True)
        os.replace(staging, final)
        _fsync_dir(self.folder)
        previous = self.current()
        write_atomically(self.folder / "current", f"{name}\n".encode("ascii"))
        pending.unlink(missing_ok=True)
        _fsync_dir(self.folder)
        # Keep the pair before this one (a way back); remove older renewed pairs.
        keep = {name, previous.cert.parent.name if previous.renewed else ""}
        for old in self.folder.iterdir():
            if old.is_dir() and old.name not in keep and not old.name.startswith("."):
                shutil.rmtree(old, ignore_errors=True)
        return Pair(final / "kiosk.crt", final / "kiosk.key", True)

    def begin_trial(self, previous: Pair) -> None:
        """Remember the pair to go back to until the renewed one has connected."""
        name = previous.cert.parent.name if previous.renewed else ""
        write_atomically(self.folder / "trial", f"{name}\n".encode("ascii"))

    def end_trial(self) -> None:
        (self.folder / "trial").unlink(missing_ok=True)

    def pending_trial(self) -> Pair | None:
        """The pair before a renewal whose trial a restart interrupted, if any."""
        try:
            name = (self.folder / "trial").read_text(encoding="ascii").strip()
        except (OSError, UnicodeDecodeError):
            return None
        if not name:
            return self.bundle
        if not name.isalnum():
            return None
        return Pair(self.folder / name / "kiosk.crt", self.folder / name / "kiosk.key", True)

    def revert(self, pair: Pair) -> None:
        """Use ``pair`` again (the one before a renewal the broker refused)."""
        current = self.folder / "current"
        if pair.renewed:
            write_atomically(current, f"{pair.cert.parent.name}\n".encode("ascii"))
        else:
            current.unlink(missing_ok=True)
        _fsync_dir(self.folder)


def cert_store_for(mqtt: MqttSettings, data_dir: Path, kiosk_id: str) -> CertStore | None:
    """The kiosk's certificate store, when it connects with a client certificate."""
    if not (mqtt.tls_ca and mqtt.tls_cert and mqtt.tls_key):
        return None
    return CertStore(
        folder=data_dir / "tls",
        bundle_cert=Path(mqtt.tls_cert),
        bundle_key=Path(mqtt.tls_key),
        ca=Path(mqtt.tls_ca),
        kiosk_id=kiosk_id,
    )


def with_pair_in_use(mqtt: MqttSettings, certs: CertStore | None) -> MqttSettings:
    """``mqtt`` with the renewed pair, when there is one (the kiosk and its self-test connect alike)."""
    if certs is None:
        return mqtt
    pair = certs.current()
    return replace(mqtt, tls_cert=str(pair.cert), tls_key=str(pair.key))


def _public_der(key: object) -> bytes:
    return key.public_bytes(  # type: ignore[attr-defined,no-any-return]
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
