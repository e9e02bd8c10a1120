"""Updates over the air: take an offered release, check it, install it beside the running one,
switch, and prove it — or let the launcher (kiosk/launcher.py) switch back.

The offer comes in the retained config message (docs/contract.md):
``"update": {"version", "url", "size", "sha256", "manifest", "signature", "signer"}``. Steps, on a
thread of their own so presses go on being recorded, each reported in the status
(``"update": {"version", "state", "bytes"?, "error"?}``):

1. **check the offer** — the signer certificate is issued by the kiosk's own CA (``tls_ca``) for
   code signing; the manifest's signature is the signer's; the manifest names this version, size
   and sha256. Nothing is downloaded before that.
2. **download** over HTTPS with the kiosk's client certificate into ``update/<version>.tar.part``,
   resuming with ``Range`` after a broken connection (a 3G link), then the size and sha256.
3. **install** into ``versions/<version>`` (a new virtual environment from the release's wheels,
   ``pip --no-index``, over the first-boot install as a layer below: unchanged dependencies are
   not unpacked again), never touching the running version, the outbox or the config.
4. **switch** — ``update/state.json`` gets a ``trial`` (the version, the one before), then
   ``versions/current`` points at the new version; the service exits and systemd starts it again
   through the launcher.
5. **prove** — the new version, once connected with a status answered by the collector, removes
   the trial (``updated``). If it cannot within ``TRIAL_S`` it marks the trial ``unconfirmed`` and
   exits; the launcher then switches back, as it does after ``MAX_ATTEMPTS`` starts that never
   proved themselves (a crash loop). The kiosk reports ``rolled_back`` with the reason and does
   not take that version again.

The outbox belongs to neither version: its migrations only ever add (a rolled-back version opens a
newer outbox and uses the columns it knows).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import http.client
import json
import logging
import os
import re
import shutil
import ssl
import subprocess
import sys
import tarfile
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from kiosk import __version__, wire
from kiosk.launcher import point_current, read_state, write_state

log = logging.getLogger(__name__)

TRIAL_S = 600.0  # a new version must be connected with a status answered within this
RETRY_S = 60.0  # a download or install that failed is tried again after this, doubling …
RETRY_MAX_S = 3600.0  # … up to this
MAX_TRIES = 10  # then the offer is left until another one comes, or an admin's retry (about 7 h)
WAIT_CHECK_S = 30.0  # an installed update waiting for office hours to end looks this often
RETAKES = 2  # a release rolled back because it never connected is taken again at most this often
SIGNER_SKEW = dt.timedelta(days=1)  # a signer "not yet valid" by less than this is a clock off by hours
CHUNK = 64 * 1024
VERSION = re.compile(r"\A[0-9]+(\.[0-9]+){1,3}([a-z]+[0-9]*)?(\+[a-z0-9.]+)?\Z", re.ASCII)
SHA256 = re.compile(r"\A[0-9a-f]{64}\Z", re.ASCII)
MAX_RELEASE_BYTES = 2 * 1024**3
FREE_MARGIN = 200 * 1024**2  # left for the outbox and pictures whatever an update takes


def version_key(version: str) -> tuple[tuple[int, ...], int, str]:
    """Orders release versions: 0.2.0 < 0.10.0; a pre-release (0.3.0rc1) before its release."""
    found = re.match(r"\A([0-9]+(?:\.[0-9]+)*)([a-z]+[0-9]*)?", version)
    if found is None:
        return ((), 0, version)
    numbers = tuple(int(n) for n in found.group(1).split("."))
    numbers = numbers + (0,) * (4 - len(numbers))
    return (numbers, 0 if found.group(2) else 1, found.group(2) or "")


class UpdateError(ValueError):
    """An offer, a download or an install that cannot be used; the message says why."""


@dataclass(frozen=True)
class Offer:
    version: str
    url: str
    size: int
    sha256: str
    manifest: bytes
    signature: bytes
    signer: str

    @classmethod
    def parse(cls, doc: Any) -> Offer:
        if not isinstance(doc, dict):
            raise UpdateError("update offer must be an object")
        try:
            version, url, size, digest = doc["version"], doc["url"], doc["size"], doc["sha256"]
            manifest = base64.b64decode(str(doc["manifest"]), validate=True)
            signature = base64.b64decode(str(doc["signature"]), validate=True)
            signer = doc["signer"]
        except (KeyError, binascii.Error, ValueError) as exc:
            raise UpdateError(f"update offer incomplete or garbled: {exc}") from None
        if not (isinstance(version, str) and VERSION.match(version)):
            raise UpdateError(f"update version {version!r} is not a version")
        if not (isinstance(url, str) and url.startswith("https://") and len(url) < 512):
            raise UpdateError("update url must be https://")
        if not (isinstance(size, int) and not isinstance(size, bool) and 0 < size <= MAX_RELEASE_BYTES):
            raise UpdateError("update size out of range")
        if not (isinstance(digest, str) and SHA256.match(digest)) or not isinstance(signer, str):
            raise UpdateError("update sha256 or signer malformed")
        return cls(version, url, size, digest, manifest, signature, signer)

    def check(self, ca_path: Path, *, now: dt.datetime | None = None) -> dict[str, Any]:
        """The signer is the fleet's code-signing certificate, valid at ``now`` (the kiosk's best
        time; None: unknown, not checked), and signed this manifest, which names this release.
        Returns the manifest."""
        try:
            ca = x509.load_pem_x509_certificate(ca_path.read_bytes())
            signer = x509.load_pem_x509_certificate(self.signer.encode("ascii"))
        except (OSError, ValueError, UnicodeEncodeError) as exc:
            raise UpdateError(f"release signer unreadable: {exc}") from None
        try:
            signer.verify_directly_issued_by(ca)
        except (ValueError, TypeError, InvalidSignature) as exc:
            raise UpdateError(f"release signer is not from this kiosk's CA ({exc or type(exc).__name__})") from None
        try:
            usage = signer.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        except x509.ExtensionNotFound:
            usage = x509.ExtendedKeyUsage([])
        if ExtendedKeyUsageOID.CODE_SIGNING not in usage:
            raise UpdateError("release signer is not a code-signing certificate")
        if now is not None:
            if now > signer.not_valid_after_utc:
                raise UpdateError(f"release signer expired on {signer.not_valid_after_utc:%Y-%m-%d}")
            if now + SIGNER_SKEW < signer.not_valid_before_utc:
                raise UpdateError(f"release signer not valid before {signer.not_valid_before_utc:%Y-%m-%d}")
        key = signer.public_key()
        if not isinstance(key, ec.EllipticCurvePublicKey):
            raise UpdateError("release signer key is not EC")
        try:
            key.verify(self.signature, self.manifest, ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            raise UpdateError("release manifest signature does not verify") from None
        try:
            doc = json.loads(self.manifest)
        except ValueError:
            raise UpdateError("release manifest is not JSON") from None
        if not isinstance(doc, dict):
            raise UpdateError("release manifest is not an object")
        if (doc.get("version"), doc.get("size"), doc.get("sha256")) != (self.version, self.size, self.sha256):
            raise UpdateError("the offer and its signed manifest disagree (version, size or sha256)")
        return doc


def download(
    offer: Offer,
    target: Path,
    context: ssl.SSLContext,
    *,
    progress: Callable[[int], None] = lambda n: None,
    timeout_s: float = 60.0,
    attempts: int = 50,
    pause_s: float = 2.0,
    stop: threading.Event | None = None,
) -> Path:
    """Fetch the release into ``target`` (``.part`` until whole), resuming after every break. A
    ``target`` already there and whole (an install that failed before) is not fetched again."""
    if target.is_file() and target.stat().st_size == offer.size and _sha256(target) == offer.sha256:
        return target
    part = target.with_name(target.name + ".part")
    parts = urllib.parse.urlsplit(offer.url)
    host, port = parts.hostname or "", parts.port or 443
    last_error = ""
    for _ in range(attempts):
        if stop is not None and stop.is_set():
            raise UpdateError("stopped")
        have = part.stat().st_size if part.exists() else 0
        if have > offer.size:
            part.unlink()
            have = 0
        if have == offer.size:
            break
        conn = http.client.HTTPSConnection(host, port, context=context, timeout=timeout_s)
        try:
            conn.request("GET", parts.path, headers={"Range": f"bytes={have}-"} if have else {})
            answer = conn.getresponse()
            if answer.status == 200:
                have = 0  # the server sends the whole file
            elif answer.status == 416:
                part.unlink(missing_ok=True)
                continue
            elif answer.status == 503:  # the server is busy: come back, as it says, within this try
                wait = answer.getheader("Retry-After", "")
                last_error = "release server busy"
                time.sleep(min(30.0, float(wait)) if wait.isdigit() else pause_s)
                continue
            elif answer.status != 206:
                raise UpdateError(f"{offer.url}: HTTP {answer.status} {answer.read(200).decode('utf-8', 'replace')}")
            elif not (answer.getheader("Content-Range") or "").startswith(f"bytes {have}-"):
                part.unlink(missing_ok=True)  # not the part asked for: start again rather than splice
                raise OSError(f"the server answered another range: {answer.getheader('Content-Range')!r}")
            with part.open("r+b" if have else "wb") as fh:
                fh.seek(have)
                while True:
                    block = answer.read(CHUNK)
                    if not block:
                        break
                    fh.write(block)
                    have += len(block)
                    progress(have)
                    if have > offer.size:
                        raise UpdateError("the server sent more than the release's size")
                fh.flush()
                os.fsync(fh.fileno())
        except (OSError, http.client.HTTPException) as exc:  # a broken link: go on from where it stopped
            last_error = str(exc) or type(exc).__name__
            log.info("release download broken off at %d of %d bytes (%s); resuming", have, offer.size, last_error)
            time.sleep(pause_s)
        finally:
            conn.close()
    else:
        raise UpdateError(f"download did not complete after {attempts} tries: {last_error}")
    if part.stat().st_size != offer.size or _sha256(part) != offer.sha256:
        part.unlink(missing_ok=True)
        raise UpdateError("downloaded release does not match its size and sha256; removed, will fetch again")
    os.replace(part, target)
    return target


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def extract_wheels(tar_path: Path, folder: Path) -> list[Path]:
    """Only plain ``*.whl`` files at the top level are taken from the release tar."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    taken = []
    with tarfile.open(tar_path) as tar:
        for member in tar.getmembers():
            name = member.name
            if not member.isfile() or "/" in name or name.startswith(".") or not name.endswith(".whl"):
                raise UpdateError(f"release holds {name!r}, which is not a wheel at the top level")
            source = tar.extractfile(member)
            assert source is not None
            with source, open(folder / name, "wb") as out:
                shutil.copyfileobj(source, out)
            taken.append(folder / name)
    return taken


def base_layer() -> Path | None:
    """The first-boot install's site-packages (``/opt/kiosk/.venv``, which no update replaces) when
    it is there for this Python, else None."""
    base = Path(os.environ.get("KIOSK_BASE", "/opt/kiosk/.venv"))
    site = base / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}" / "site-packages"
    return site if (site / "pip").is_dir() else None


def release_pins(wheels: Path) -> list[str]:
    """``name==version`` for every wheel of the release: what a version runs with is exactly what
    it ships, whatever the layer below holds."""
    pins = []
    for wheel in sorted(wheels.glob("*.whl")):
        parts = wheel.name[: -len(".whl")].split("-")
        if len(parts) < 5:  # name-version(-build)?-python-abi-platform (the wheel file name spec)
            raise UpdateError(f"{wheel.name} is not named as a wheel is")
        pins.append(f"{parts[0]}=={parts[1]}")
    return pins


def pip_install(version: str, wheels: Path, venv: Path, *, base: Path | None = None) -> None:
    """A new virtual environment with the release installed from its own wheels (no network).

    When the first-boot install is there, the new environment sees it as a layer below its own
    (a ``.pth`` file): a dependency the release ships at the version already installed there is
    taken from it instead of being unpacked again, so an update of the kiosk's own code installs
    one wheel, not numpy and OpenCV (minutes on a Pi, and 150 MB of SD card per kept version).
    The release's wheels are pinned as constraints, so a dependency it ships at another version is
    installed into the new environment, in front of the layer; the layer itself is never touched
    (pip does not uninstall outside the environment it installs into), and no update replaces it,
    so a version kept for rolling back keeps working.
    """
    base = base if base is not None else base_layer()
    if base is None:
        subprocess.run(
            [sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True, capture_output=True
        )
        pip = [str(venv / "bin" / "pip")]
        constraints: list[str] = []
    else:
        subprocess.run(
            [sys.executable, "-m", "venv", "--without-pip", "--system-site-packages", str(venv)],
            check=True,
            capture_output=True,
        )
        site = venv / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}" / "site-packages"
        (site / "_kiosk_base.pth").write_text(f"import site; site.addsitedir({str(base)!r})\n", encoding="utf-8")
        pins = wheels / "release-pins.txt"
        pins.write_text("".join(f"{pin}\n" for pin in release_pins(wheels)), encoding="utf-8")
        pip = [str(venv / "bin" / "python"), "-m", "pip"]  # the layer's pip
        constraints = ["--constraint", str(pins)]
    subprocess.run(
        [
            *pip,
            "install",
            "--no-index",
            "--find-links",
            str(wheels),
            *constraints,
            f"satisfaction-kiosk[kiosk]=={version}",
        ],
        check=True,
        capture_output=True,
        timeout=1800,
    )


Installer = Callable[[str, Path, Path], None]  # (version, wheels folder, new venv folder)


class Updater:
    """One kiosk's updates. ``offer`` is called from the kiosk loop; the work runs on a thread."""

    def __init__(
        self,
        *,
        data_dir: Path,
        ca: Path | None,
        tls: Callable[[], ssl.SSLContext | None],
        restart: Callable[[], None],
        installer: Installer = pip_install,
        running: str = __version__,
        trial_s: float = TRIAL_S,
        monotonic: Callable[[], float] = time.monotonic,
        now: Callable[[], dt.datetime | None] = lambda: None,
        download_tries: int = 50,
        may_switch: Callable[[], bool] = lambda: True,
    ) -> None:
        self.data_dir = data_dir
        self.ca = ca
        self.tls = tls
        self.restart = restart
        self.installer = installer
        self.running = running
        self.trial_s = trial_s
        self._monotonic = monotonic
        self._now = now
        self._download_tries = download_tries  # reconnections within one attempt (a 3G link drops often)
        self._may_switch = may_switch  # False inside office hours: the restart waits for closing time
        self._offer: Offer | None = None  # the release offered last, tried again after a failure
        self._failures = 0
        self._retry_at: float | None = None
        self._started = monotonic()
        self._thread: threading.Thread | None = None
        self._job: tuple[Offer, threading.Event] | None = None  # the offer being worked on, its stop
        self._stopped = False
        self.report: dict[str, Any] | None = None
        state = read_state(data_dir)
        trial = state.get("trial") if isinstance(state.get("trial"), dict) else None
        self.on_trial = trial is not None and trial.get("version") == running
        if self.on_trial:
            self.report = {"version": running, "state": "trial"}
        elif isinstance(state.get("rolled_back"), dict):
            back = state["rolled_back"]
            self.report = {
                "version": str(back.get("version")),
                "state": "rolled_back",
                "error": str(back.get("reason")),
            }
        elif state.get("good") == running:
            self.report = {"version": running, "state": "updated"}

    @property
    def busy(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def refused(self) -> set[str]:
        return {v for v in read_state(self.data_dir).get("refused", []) if isinstance(v, str)}

    def offer(self, doc: Any) -> bool:
        """A release offered in the config message; True when work on it started."""
        try:
            offer = Offer.parse(doc)
        except UpdateError as exc:
            self.report = {
                "version": str(doc.get("version", "?")) if isinstance(doc, dict) else "?",
                "state": "failed",
                "error": str(exc)[:300],
            }
            return False
        if offer != self._offer:
            if self._offer is not None and self._offer.version != offer.version:
                self.withdraw(offer.version)
            self._offer, self._failures, self._retry_at = offer, 0, None
        elif self._failures >= MAX_TRIES or (self._retry_at is not None and self._monotonic() < self._retry_at):
            return False  # the same offer again (every reconnect): its back-off holds, or it was given up
        return self._start(offer)

    def withdraw(self, version: str | None = None) -> bool:
        """The config no longer offers a release (a paused rollout), or offers ``version`` instead:
        call off the work on the one before — the download, the install or the wait for closing
        time — so that it is never switched to. Does not wait for the worker. True when something
        was called off."""
        offer = self._offer
        if offer is None or offer.version == version:
            return False
        self._offer, self._failures, self._retry_at = None, 0, None
        if self._job is not None and self._job[0] == offer:
            self._job[1].set()  # the worker sees it at its next step and switches to nothing
        if (
            self.report is not None
            and self.report.get("version") == offer.version
            and self.report.get("state")
            in (
                "downloading",
                "installing",
                "waiting",
                "failed",
            )
        ):
            self.report = {"version": offer.version, "state": "withdrawn"}
        log.warning("release %s is no longer offered: its update is called off", offer.version)
        return True

    def _start(self, offer: Offer) -> bool:
        if self.busy and self._job is not None and self._job[0] != offer:
            self._retry_at = self._monotonic()  # once the job called off has ended
            return False
        if offer.version == self.running or self.busy or self.on_trial or self._stopped:
            return False
        if version_key(offer.version) < version_key(self.running):
            return False  # never backwards by an offer (a paused newer rollout); an admin's rollback is the way
        if offer.version in self.refused():
            return False  # rolled back from it: not again (a new version is needed), but see answered()
        self._retry_at = None
        stop = threading.Event()
        self._job = (offer, stop)
        self._thread = threading.Thread(target=self._work, args=(offer, stop), name="update", daemon=True)
        self._thread.start()
        return True

    def retry_due(self) -> bool:
        """From the kiosk loop: try the offered release again once its back-off has passed (a
        download cut for good, a release server down, a full disk); True when work started."""
        if self._offer is None or self._retry_at is None or self._monotonic() < self._retry_at:
            return False
        log.info("trying release %s again (attempt %d)", self._offer.version, self._failures + 1)
        return self._start(self._offer)

    def _failed(self, offer: Offer, error: str, *, again: bool) -> None:
        self._say(offer, "failed", error=error[:300])
        if again and offer == self._offer:
            self._failures += 1
            if self._failures >= MAX_TRIES:
                self._retry_at = None
                log.error("release %s failed %d times; left until another release or an admin's retry", offer.version,
                          self._failures)  # fmt: skip
                return
            wait = min(RETRY_MAX_S, RETRY_S * 2 ** (self._failures - 1))
            self._retry_at = self._monotonic() + wait
            self._say(offer, "failed", error=error[:300], retry_in_s=int(wait))

    def _say(self, offer: Offer, state: str, **more: Any) -> None:
        if self._job is not None and self._job[0] == offer and self._job[1].is_set():
            return  # called off: the report says so already
        self.report = {"version": offer.version, "state": state, **more}

    def _work(self, offer: Offer, stop: threading.Event | None = None) -> None:
        stop = stop or threading.Event()
        folder = self.data_dir / "update"
        checked = False
        try:
            folder.mkdir(parents=True, exist_ok=True)
            if self.ca is None:
                raise UpdateError("no tls_ca: this kiosk cannot check a release")
            offer.check(self.ca, now=self._now())
            checked = True  # from here on a failure may pass (the link, the server, the disk)
            context = self.tls()
            if context is None:
                raise UpdateError("no TLS client certificate: releases are only served to kiosk certificates")
            free = shutil.disk_usage(self.data_dir).free
            if free < offer.size * 4 + FREE_MARGIN:
                raise UpdateError(
                    f"{free // 2**20} MiB free; the release needs {offer.size * 4 // 2**20} MiB and the outbox room"
                )
            self._say(offer, "downloading", bytes=0)
            tar_path = download(
                offer,
                folder / f"{offer.version}.tar",
                context,
                progress=lambda n: self._say(offer, "downloading", bytes=n),
                stop=stop,
                attempts=self._download_tries,
            )
            self._say(offer, "installing")
            wheels = extract_wheels(tar_path, folder / f"{offer.version}-wheels")
            if not any(w.name.startswith(f"satisfaction_kiosk-{offer.version}-") for w in wheels):
                raise UpdateError(f"release {offer.version} holds no satisfaction_kiosk {offer.version} wheel")
            versions = self.data_dir / "versions"
            versions.mkdir(parents=True, exist_ok=True)
            # Installed where it will run (a virtual environment's scripts name their own path, so
            # it cannot be moved afterwards); "current" never points at it before it is whole.
            final = versions / offer.version
            current = versions / "current"
            running_from = {Path(sys.prefix).resolve()}
            if current.is_symlink():
                running_from.add(current.resolve())
            if final.resolve() in running_from:
                raise UpdateError(f"{final} is the install running now; it is not replaced")
            shutil.rmtree(final, ignore_errors=True)
            try:
                self.installer(offer.version, folder / f"{offer.version}-wheels", final)
            except subprocess.CalledProcessError as exc:
                shutil.rmtree(final, ignore_errors=True)
                raise UpdateError(f"install failed: {(exc.stderr or b'')[-300:].decode('utf-8', 'replace')}") from None
            except BaseException:
                shutil.rmtree(final, ignore_errors=True)
                raise
            if not (final / "bin" / "kiosk").exists():
                shutil.rmtree(final, ignore_errors=True)
                raise UpdateError(f"install of {offer.version} left no bin/kiosk")
            # The download and the wheels are not needed once installed (the data partition also
            # holds the outbox).
            tar_path.unlink(missing_ok=True)
            shutil.rmtree(folder / f"{offer.version}-wheels", ignore_errors=True)
            if stop.is_set():
                shutil.rmtree(final, ignore_errors=True)
                raise UpdateError("called off")
            self.switch_when_allowed(offer, stop=stop)
        except UpdateError as exc:
            if stop.is_set():  # withdrawn or the kiosk stopping: not a failure to report or retry
                log.info("update to %s called off (%s)", offer.version, exc)
                return
            log.error("update to %s failed: %s", offer.version, exc)
            self._failed(offer, str(exc), again=checked)
        except Exception as exc:  # noqa: BLE001 - an update must never take the kiosk down
            if stop.is_set():
                return
            log.exception("update to %s failed", offer.version)
            self._failed(offer, f"{type(exc).__name__}: {exc}", again=checked)

    def switch_when_allowed(
        self, offer: Offer, *, stop: threading.Event | None = None, check_every_s: float = WAIT_CHECK_S
    ) -> None:
        """Switch to the installed ``offer`` once a restart is allowed: a restart is seconds
        without a panel, so not while citizens are served (office hours). ``stop`` calls it off."""
        stop = stop or threading.Event()
        if not self._may_switch():
            self._say(offer, "waiting")
            log.info("update %s installed; it restarts the kiosk after office hours", offer.version)
            while not self._may_switch():
                if stop.wait(check_every_s):
                    raise UpdateError("stopped while waiting for office hours to end")
        if stop.is_set() or self._stopped:
            raise UpdateError("called off before the switch")
        self.switch(offer.version)

    def switch(self, version: str) -> None:
        """Make ``version`` (installed under versions/) the one systemd starts, on trial."""
        current = self.data_dir / "versions" / "current"
        previous = os.readlink(current) if current.is_symlink() else ""
        state = read_state(self.data_dir)
        state.pop("rolled_back", None)
        state["trial"] = {"version": version, "previous": previous, "attempts": 0}
        write_state(self.data_dir, state)
        point_current(self.data_dir, version)
        self.report = {"version": version, "state": "switching"}
        log.info(
            "update %s installed; restarting into it (on trial, %s before it)", version, previous or "first install"
        )
        self.restart()

    def confirmed(self) -> bool:
        """Called when a status was answered by the collector: the version on trial has proved itself."""
        if not self.on_trial:
            return False
        state = read_state(self.data_dir)
        trial = state.pop("trial", None)
        state["good"] = self.running
        state["previous"] = str(trial.get("previous", "")) if isinstance(trial, dict) else ""
        write_state(self.data_dir, state)
        keep = {self.running, state["previous"], "current"}
        for old in (self.data_dir / "versions").iterdir():
            if old.name not in keep and not old.is_symlink():
                shutil.rmtree(old, ignore_errors=True)  # two versions kept: the one running and the one before
        self.on_trial = False
        self.report = {"version": self.running, "state": "updated"}
        log.info("update %s proved itself: connected and a status acked", self.running)
        return True

    def answered(self) -> bool:
        """A status was answered by the collector. On trial: the new version proved itself (True).
        Otherwise, if the last release was rolled back only because it never connected (the
        collector or the link was down through its trial), that release may be taken again, at
        most ``RETAKES`` times: the link works now, so a new failure is the release's own."""
        if self.on_trial:
            return self.confirmed()
        state = read_state(self.data_dir)
        back = state.get("rolled_back")
        if not (isinstance(back, dict) and back.get("kind") == "unconfirmed"):
            return False
        version = str(back.get("version"))
        given = state.get("retakes")
        retakes: dict[str, Any] = given if isinstance(given, dict) else {}
        if version not in state.get("refused", []) or int(retakes.get(version, 0)) >= RETAKES:
            return False
        retakes[version] = int(retakes.get(version, 0)) + 1
        state["retakes"] = retakes
        state["refused"] = [v for v in state.get("refused", []) if v != version]
        write_state(self.data_dir, state)
        log.warning(
            "release %s was rolled back without ever connecting; the collector answers now: taking it again (%d of %d)",
            version,
            retakes[version],
            RETAKES,
        )
        if self._offer is not None and self._offer.version == version:
            self._failures, self._retry_at = 0, self._monotonic()
        return False

    def trial_expired(self) -> bool:
        """On trial for longer than ``trial_s`` without proof: mark it for the launcher, True to exit."""
        if not self.on_trial or self._monotonic() - self._started < self.trial_s:
            return False
        state = read_state(self.data_dir)
        trial = state.get("trial")
        if isinstance(trial, dict):
            trial["unconfirmed"] = f"no connection with an acked status within {self.trial_s:.0f} s"
            write_state(self.data_dir, state)
        log.error(
            "update %s did not prove itself in %.0f s; restarting so the launcher switches back",
            self.running,
            self.trial_s,
        )
        return True

    def act(self, doc: Any) -> bool:
        """An admin's ``{"id", "do": "retry" | "rollback"}`` from the config, once per id; True
        when the kiosk must restart (a rollback)."""
        if not (isinstance(doc, dict) and isinstance(doc.get("id"), str) and wire.PROBE.match(doc["id"])):
            return False
        state = read_state(self.data_dir)
        if state.get("last_action") == doc["id"] or doc.get("do") not in ("retry", "rollback"):
            return False
        state["last_action"] = doc["id"]
        if doc["do"] == "retry":
            state.pop("rolled_back", None)
            state["refused"] = []
            write_state(self.data_dir, state)
            self.report = None
            self._failures, self._retry_at = 0, (self._monotonic() if self._offer is not None else None)
            log.info("update retry asked by an admin: releases switched back from may be taken again")
            return False
        current = self.data_dir / "versions" / "current"
        if not current.is_symlink() or self.busy or self.on_trial:
            write_state(self.data_dir, state)
            self.report = {"version": self.running, "state": "failed", "error": "nothing to roll back to from here"}
            return False
        previous = str(state.get("previous", ""))
        if previous == self.running or not (previous == "" or (self.data_dir / "versions" / previous).is_dir()):
            write_state(self.data_dir, state)
            self.report = {"version": self.running, "state": "failed", "error": "no earlier version to go back to"}
            return False
        state.pop("good", None)
        state["rolled_back"] = {"version": self.running, "reason": "rolled back by an admin"}
        state["refused"] = sorted({*state.get("refused", []), self.running})
        write_state(self.data_dir, state)
        point_current(self.data_dir, previous)
        self.report = {"version": self.running, "state": "rolled_back", "error": "rolled back by an admin"}
        log.warning("rolling back from %s to %s, as an admin asked", self.running, previous or "the first install")
        return True

    def stop(self) -> None:
        self._stopped = True
        if self._job is not None:
            self._job[1].set()
