"""The fleet's certificate authority: every kiosk gets a client certificate whose CN is its kiosk
id; the broker maps it to the MQTT username and its ACL lets each kiosk write only its own topics.

Kept under the collector's ``data_dir/fleet``. Keys are EC P-256 (small and quick on a Pi). The
collector's own identity is ``collector.central``, a name no kiosk id can take (kiosk ids have no
dots).
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import ipaddress
import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from collector.errors import CollectorError
from kiosk import wire
from kiosk.files import write_atomically

COLLECTOR_IDENTITY = "collector.central"
KIOSK_DAYS = 5 * 365
RELEASE_SIGNER = "release-signer"  # the CN of the release-signing certificate
SIGNER_RENEW_BEFORE = dt.timedelta(days=90)  # a release-signing certificate this close to expiry is replaced
RENEW_AT_MOST_EVERY = dt.timedelta(hours=1)  # a kiosk's certificate is renewed at most this often
CRL_DAYS = 365


class _FolderLock:
    """A re-entrant lock held across processes (``flock`` on a file) and threads."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._rlock = threading.RLock()
        self._depth = 0
        self._fd: int | None = None

    def __enter__(self) -> _FolderLock:
        self._rlock.acquire()
        if self._depth == 0:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(self._fd, fcntl.LOCK_EX)
        self._depth += 1
        return self

    def __exit__(self, *exc: object) -> None:
        self._depth -= 1
        if self._depth == 0 and self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
        self._rlock.release()


_GUARD = threading.Lock()
_LOCKS: dict[str, _FolderLock] = {}


class FleetError(CollectorError, ValueError):
    """The CA is missing, or a kiosk cannot be enrolled or revoked."""


@dataclass(frozen=True)
class Issued:
    cn: str
    serial: int
    not_after: str
    revoked: bool = False


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


class FleetCA:
    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    # --- files ------------------------------------------------------------------------

    @property
    def ca_key(self) -> Path:
        return self.folder / "ca.key"

    @property
    def ca_crt(self) -> Path:
        return self.folder / "ca.crt"

    @property
    def crl(self) -> Path:
        return self.folder / "crl.pem"

    @property
    def index(self) -> Path:
        return self.folder / "issued.json"

    def exists(self) -> bool:
        return self.ca_key.exists() and self.ca_crt.exists()

    # --- the CA itself ------------------------------------------------------------------

    def init(
        self,
        *,
        name: str = "Satisfaction kiosk fleet CA",
        broker_hosts: tuple[str, ...] = ("localhost",),
        days: int = 20 * 365,
    ) -> None:
        """Make the CA, the broker's server certificate, the collector's client certificate and an
        empty revocation list. Refuses to overwrite an existing CA (every kiosk trusts it)."""
        if self.exists():
            if not self.release_crt.exists():  # a CA made before releases: give it a release key
                self.issue_release_signer()
                return
            raise FleetError(f"a fleet CA exists already in {self.folder}; kiosks trust it, so it is kept")
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = _now()
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=False,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        write_atomically(self.ca_key, _pem_key(key), mode=0o600)
        write_atomically(self.ca_crt, cert.public_bytes(serialization.Encoding.PEM))
        write_atomically(self.index, b"[]")
        self.issue_server(broker_hosts)
        key_pem, cert_pem = self.issue_client(COLLECTOR_IDENTITY)
        write_atomically(self.folder / "collector.key", key_pem, mode=0o600)
        write_atomically(self.folder / "collector.crt", cert_pem)
        self.issue_release_signer()
        self.write_crl()

    # --- the release key ---------------------------------------------------------------------

    @property
    def release_key(self) -> Path:
        return self.folder / "release.key"

    @property
    def release_crt(self) -> Path:
        return self.folder / "release.crt"

    def issue_release_signer(self, days: int = 20 * 365) -> None:
        """The key that signs software releases: not the CA key (which stays offline-able), but a
        certificate from the CA for code signing only, so every kiosk can check a release against
        the CA it already trusts without a new file on its card."""
        key = ec.generate_private_key(ec.SECP256R1())
        cert_pem = self._sign(key.public_key(), RELEASE_SIGNER, days, ExtendedKeyUsageOID.CODE_SIGNING, [])
        write_atomically(self.release_key, _pem_key(key), mode=0o600)
        write_atomically(self.release_crt, cert_pem)

    def release_signer(self) -> tuple[ec.EllipticCurvePrivateKey, bytes]:
        if not self.release_key.exists():
            raise FleetError(
                f"no release key in {self.folder}: run `collector ca init` (it adds one to an existing CA)"
            )
        cert = x509.load_pem_x509_certificate(self.release_crt.read_bytes())
        if cert.not_valid_after_utc - _now() < SIGNER_RENEW_BEFORE:
            # Kiosks refuse a release whose signer has expired: a new signer from the same CA,
            # which every kiosk already trusts, before that happens.
            with self.locked():
                cert = x509.load_pem_x509_certificate(self.release_crt.read_bytes())
                if cert.not_valid_after_utc - _now() < SIGNER_RENEW_BEFORE:
                    self.issue_release_signer()
        key = serialization.load_pem_private_key(self.release_key.read_bytes(), password=None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        return key, self.release_crt.read_bytes()

    def _load_ca(self) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
        if not self.exists():
            raise FleetError(f"no fleet CA in {self.folder}: run `collector ca init --config collector.toml` first")
        key = serialization.load_pem_private_key(self.ca_key.read_bytes(), password=None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        return key, x509.load_pem_x509_certificate(self.ca_crt.read_bytes())

    # --- certificates ---------------------------------------------------------------------

    def issue_server(self, hosts: tuple[str, ...], days: int = 5 * 365) -> None:
        names: list[x509.GeneralName] = []
        for host in hosts:
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                names.append(x509.DNSName(host))
        key_pem, cert_pem = self._issue(hosts[0], days, ExtendedKeyUsageOID.SERVER_AUTH, names)
        write_atomically(self.folder / "broker.key", key_pem, mode=0o600)
        write_atomically(self.folder / "broker.crt", cert_pem)

    def issue_client(self, cn: str, days: int = KIOSK_DAYS) -> tuple[bytes, bytes]:
        return self._issue(cn, days, ExtendedKeyUsageOID.CLIENT_AUTH, [])

    def _issue(
        self, cn: str, days: int, usage: x509.ObjectIdentifier, names: list[x509.GeneralName]
    ) -> tuple[bytes, bytes]:
        key = ec.generate_private_key(ec.SECP256R1())
        return _pem_key(key), self._sign(key.public_key(), cn, days, usage, names)

    def _sign(
        self,
        public_key: ec.EllipticCurvePublicKey,
        cn: str,
        days: int,
        usage: x509.ObjectIdentifier,
        names: list[x509.GeneralName],
    ) -> bytes:
        ca_key, ca_cert = self._load_ca()
        now = _now()
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
            .issuer_name(ca_cert.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        )
        if names:
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        cert = builder.sign(ca_key, hashes.SHA256())
        with self.locked():
            issued = self.issued()
            issued.append(Issued(cn, cert.serial_number, cert.not_valid_after_utc.isoformat()))
            self._save(issued)
        return cert.public_bytes(serialization.Encoding.PEM)

    def renew(
        self, request: wire.CertRequest, cn: str, *, days: int = KIOSK_DAYS, now: dt.datetime | None = None
    ) -> bytes:
        """A kiosk's renewal over MQTT. The sender proves it holds a certificate of ``cn`` that this
        CA issued and has not revoked (``request.proof`` is the request signed with that
        certificate's key): a card replaced with ``enrol --replace`` and still connected cannot
        renew itself. At most one renewal an hour per kiosk."""
        try:
            held = x509.load_pem_x509_certificate(request.cert.encode("ascii"))
        except (ValueError, UnicodeEncodeError) as exc:
            raise FleetError(f"the certificate held is unreadable: {exc}") from None
        names = held.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        if [n.value for n in names] != [cn]:
            raise FleetError(f"the certificate held is not {cn}'s")
        _, ca_cert = self._load_ca()
        try:
            held.verify_directly_issued_by(ca_cert)
        except (ValueError, TypeError, InvalidSignature):
            raise FleetError("the certificate held is not from this CA") from None
        record = {i.serial: i for i in self.issued() if i.cn == cn}.get(held.serial_number)
        if record is None or record.revoked:
            raise FleetError(
                f"the certificate held ({held.serial_number:x}) is revoked or unknown: enrol the kiosk again"
            )
        key = held.public_key()
        if not isinstance(key, ec.EllipticCurvePublicKey):
            raise FleetError("the certificate held has no EC key")
        try:
            key.verify(request.proof, request.csr.encode("ascii"), ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            raise FleetError("the proof is not signed with the key of the certificate held") from None
        # The same request again (its answer was lost: a store outage rolled back the batch that
        # signed it) gets the same certificate, not a refusal for the hour.
        digest = hashlib.sha256(request.csr.encode("ascii")).hexdigest()
        answered = self._last_renewal(cn)
        if answered is not None and answered[0] == digest:
            return answered[1]
        newest = self.expiry(cn)
        now = now or _now()
        if newest is not None and newest - now > dt.timedelta(days=days) - RENEW_AT_MOST_EVERY:
            raise FleetError(f"{cn} was given a certificate less than an hour ago; ask again later")
        cert_pem = self.sign_csr(request.csr.encode("ascii"), cn, days)
        folder = self.folder / "renewed"
        folder.mkdir(exist_ok=True)
        write_atomically(folder / f"{cn}.json", json.dumps({"csr": digest, "cert": cert_pem.decode("ascii")}).encode())
        return cert_pem

    def _last_renewal(self, cn: str) -> tuple[str, bytes] | None:
        """(sha256 of the request, the certificate) of ``cn``'s last renewal, while not revoked."""
        try:
            doc = json.loads((self.folder / "renewed" / f"{cn}.json").read_text())
            cert = x509.load_pem_x509_certificate(doc["cert"].encode("ascii"))
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None
        record = {i.serial: i for i in self.issued() if i.cn == cn}.get(cert.serial_number)
        if record is None or record.revoked:
            return None
        return str(doc["csr"]), doc["cert"].encode("ascii")

    def sign_csr(self, csr_pem: bytes, cn: str, days: int = KIOSK_DAYS) -> bytes:
        """A client certificate for the key in ``csr_pem``, issued to ``cn``.

        Refused (FleetError) unless ``cn`` holds a certificate that is not revoked, the CSR is
        well signed, names exactly ``cn`` and carries a P-256 key."""
        if not self.active(cn):
            raise FleetError(f"{cn!r} holds no certificate that is not revoked: enrol it again")
        try:
            csr = x509.load_pem_x509_csr(csr_pem)
        except ValueError as exc:
            raise FleetError(f"not a PEM certificate request: {exc}") from None
        if not csr.is_signature_valid:
            raise FleetError("the request's signature does not match its key")
        names = csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        if len(csr.subject) != 1 or len(names) != 1 or names[0].value != cn:
            raise FleetError(f"the request must name exactly CN={cn}")
        key = csr.public_key()
        if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
            raise FleetError("the request's key must be EC P-256")
        return self._sign(key, cn, days, ExtendedKeyUsageOID.CLIENT_AUTH, [])

    def expiry_in_use(
        self, cn: str, status: dict[str, Any] | None, expiries: dict[str, dt.datetime] | None = None
    ) -> dt.datetime | None:
        """The earlier of the newest certificate issued and the one the kiosk reports using: a
        renewal signed here but lost, refused by the kiosk or switched back from is not one.
        ``expiries`` (from :meth:`expiries`) spares a read of the index per kiosk in a loop."""
        issued = (self.expiries() if expiries is None else expiries).get(cn)
        reported = (status or {}).get("cert_not_after")
        if isinstance(reported, str):
            try:
                used = wire.parse_time(reported)
            except wire.WireError:
                return issued
            return used if issued is None else min(issued, used)
        return issued

    def expiry(self, cn: str) -> dt.datetime | None:
        """When the newest certificate of ``cn`` that is not revoked expires."""
        return self.expiries().get(cn)

    def expiries(self) -> dict[str, dt.datetime]:
        """Each name's newest expiry among its certificates that are not revoked, in one read."""
        out: dict[str, dt.datetime] = {}
        for item in self.issued():
            if not item.revoked:
                when = dt.datetime.fromisoformat(item.not_after)
                if item.cn not in out or when > out[item.cn]:
                    out[item.cn] = when
        return out

    # --- revocation ------------------------------------------------------------------------

    def issued(self) -> list[Issued]:
        if not self.index.exists():
            return []
        return [Issued(**item) for item in json.loads(self.index.read_text())]

    def _save(self, issued: list[Issued]) -> None:
        write_atomically(self.index, json.dumps([i.__dict__ for i in issued], indent=1).encode())

    def active(self, cn: str) -> list[Issued]:
        return [i for i in self.issued() if i.cn == cn and not i.revoked]

    def revoke(self, cn: str) -> int:
        """Revoke every certificate issued to ``cn``; returns how many."""
        with self.locked():
            issued = self.issued()
            count = 0
            for n, item in enumerate(issued):
                if item.cn == cn and not item.revoked:
                    issued[n] = Issued(item.cn, item.serial, item.not_after, True)
                    count += 1
            if not count:
                raise FleetError(f"no valid certificate was issued to {cn!r}")
            self._save(issued)
            self.write_crl()
        return count

    def locked(self) -> _FolderLock:
        """One writer of the CA's list and revocation list at a time, across threads and processes
        (the admin's command line, and every ingest process answering renewals)."""
        with _GUARD:
            key = str(self.folder.resolve())
            if key not in _LOCKS:
                _LOCKS[key] = _FolderLock(self.folder / ".lock")
            return _LOCKS[key]

    def crl_next_update(self) -> dt.datetime | None:
        """When the broker stops trusting the revocation list (and so refuses every client)."""
        try:
            crl = x509.load_pem_x509_crl(self.crl.read_bytes())
        except (OSError, ValueError):
            return None
        return crl.next_update_utc

    def write_crl(self, *, now: dt.datetime | None = None) -> None:
        """Sign a fresh revocation list, valid for CRL_DAYS from ``now``."""
        ca_key, ca_cert = self._load_ca()
        now = now or _now()
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(ca_cert.subject)
            .last_update(now)
            .next_update(now + dt.timedelta(days=CRL_DAYS))
        )
        with self.locked():
            for item in self.issued():
                if item.revoked:
                    builder = builder.add_revoked_certificate(
                        x509.RevokedCertificateBuilder().serial_number(item.serial).revocation_date(now).build()
                    )
            crl = builder.sign(ca_key, hashes.SHA256())
            write_atomically(self.crl, crl.public_bytes(serialization.Encoding.PEM))


def kiosk_toml(kiosk_id: str, counter: str, broker_host: str, broker_port: int, prefix: str) -> str:
    return f"""# Provisioning bundle for kiosk {kiosk_id} at counter {counter}.
# Installed to /etc/kiosk/ on first boot; see config/kiosk.example.toml for every key.
kiosk_id = "{kiosk_id}"
counter = "{counter}"
data_dir = "/var/lib/kiosk"

[mqtt]
host = "{broker_host}"
port = {broker_port}
tls_ca = "ca.crt"
tls_cert = "kiosk.crt"
tls_key = "kiosk.key"
topic_prefix = "{prefix}"

[panel]
kind = "gpio"
pins = [17, 27, 22, 23]

[camera]
source = "/dev/video0"
"""


def write_bundle(
    ca: FleetCA,
    out: Path,
    *,
    kiosk_id: str,
    counter: str,
    broker_host: str,
    broker_port: int,
    prefix: str,
    days: int = KIOSK_DAYS,
) -> list[Path]:
    if not wire.KIOSK_ID.match(kiosk_id):
        raise FleetError(f"kiosk id {kiosk_id!r}: lowercase letters, digits and '-', 2..63 characters")
    key_pem, cert_pem = ca.issue_client(kiosk_id, days)
    out.mkdir(parents=True, exist_ok=True)
    files = {
        "kiosk.toml": (kiosk_toml(kiosk_id, counter, broker_host, broker_port, prefix).encode(), 0o644),
        "ca.crt": (ca.ca_crt.read_bytes(), 0o644),
        "kiosk.crt": (cert_pem, 0o644),
        "kiosk.key": (key_pem, 0o600),
    }
    for name, (data, mode) in files.items():
        write_atomically(out / name, data, mode=mode)
    return [out / name for name in files]


def mosquitto_conf(
    ca: FleetCA, *, port: int = 8883, bind: str = "", acl_path: Path, persistence_dir: str, template: Path
) -> str:
    """The production broker config: TLS only, client certificates required and mapped to usernames."""
    listener = f"listener {port} {bind}".rstrip()
    return template.read_text().format(
        listener=listener,
        cafile=ca.ca_crt,
        certfile=ca.folder / "broker.crt",
        keyfile=ca.folder / "broker.key",
        crlfile=ca.crl,
        acl_file=acl_path,
        persistence_location=persistence_dir,
    )


def acl_text(prefix: str) -> str:
    return f"""# Broker ACL (CONTRACT.md, Security). Usernames are certificate CNs (use_identity_as_username).
# The collector reads and writes everything under the prefix.
user {COLLECTOR_IDENTITY}
topic readwrite {prefix}/#

# Every kiosk writes only its own ratings, snapshots, status and certificate request, and reads only
# its own acks, config and renewed certificate.
pattern write {prefix}/k/%u/ratings
pattern write {prefix}/k/%u/snapshots/+
pattern write {prefix}/k/%u/status
pattern read {prefix}/k/%u/acks
pattern read {prefix}/k/%u/config
# Certificate renewal: a kiosk sends its request and reads its new certificate, its own only.
pattern write {prefix}/k/%u/csr
pattern read {prefix}/k/%u/cert
# Everyone may read (never write) whether a collector is online: kiosks re-send when it returns.
pattern read {prefix}/collector/status
"""
