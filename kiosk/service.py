"""The kiosk: turns presses into committed ratings and keeps the pieces around them going.

Panel, camera and MQTT callbacks arrive on their own threads; they only put events on one
queue, and this loop — the only writer of presses — handles them in order.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import shutil
import ssl
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kiosk import __version__, remote, selftest, systemd, wire
from kiosk.camera import Camera, SnapshotResult, SnapshotTaker
from kiosk.clock import Clock, CollectorTime, Stamp, clock_source, stamp
from kiosk.config import KioskSettings
from kiosk.errors import OutboxError
from kiosk.files import remove_file
from kiosk.mqtt import tls_context
from kiosk.outbox import OutboxRow, SqliteOutbox
from kiosk.panel import ButtonPanel
from kiosk.ports import Outbox, Publisher
from kiosk.press import Outcome, PressGate
from kiosk.publisher import MqttPublisher
from kiosk.renewal import RETRY_EVERY_S, CertStore, Pair, RenewalError, cert_store_for, with_pair_in_use
from kiosk.selftest import last_selftest
from kiosk.update import Installer, Updater, pip_install

log = logging.getLogger(__name__)

CERT_TRIAL_S = 300.0  # a renewed certificate must bring a connection within this, or the old one is used again


@dataclass(frozen=True)
class ConfigMessage:
    """The retained remote settings as they arrived (checked and applied by the loop)."""

    payload: bytes


@dataclass(frozen=True)
class CertMessage:
    """The collector's answer to this kiosk's certificate request."""

    payload: bytes


@dataclass(frozen=True)
class StatusAnswered:
    """The collector answered one of this connection's statuses."""


@dataclass(frozen=True)
class Press:
    button: int
    wall: float
    since_boot_s: float
    clock: str  # synced, corrected (from the collector's time) or unsynced


class Kiosk:
    def __init__(
        self,
        *,
        settings: KioskSettings,
        panel: ButtonPanel,
        camera: Camera | None,
        clock: Clock,
        outbox: Outbox | None = None,
        publisher: Publisher | None = None,
        installer: Installer | None = None,
    ) -> None:
        """``outbox`` and ``publisher`` default to the real ones (SQLite at ``settings.outbox_path``,
        MQTT to ``settings.mqtt``); tests and benchmarks pass others (kiosk/ports.py)."""
        self.settings = settings
        self.local_settings = settings  # kiosk.toml's; remote settings go over these
        self.remote: dict[str, Any] | None = None  # {"revision", "state", "error"?} for the status
        self._remote_payload: bytes | None = None
        self.panel = panel
        self.clock = clock
        self.collector_time = CollectorTime()
        self.gate = PressGate(settings.panel.rules())
        self.events: queue.Queue[Press | SnapshotResult | ConfigMessage | CertMessage | StatusAnswered] = queue.Queue()
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        if outbox is not None and publisher is None:
            raise ValueError("the MQTT publisher reads the outbox file itself: pass a publisher with an outbox")
        self.outbox: Outbox = outbox if outbox is not None else SqliteOutbox(settings.outbox_path)
        # Pictures asked for before a crash or power cut will never come.
        self.outbox.expire_pending_snapshots(boot_id="", since_boot_s=float("inf"), error="interrupted")
        self.snapshots = SnapshotTaker(
            camera=camera,
            directory=settings.snapshot_dir,
            on_result=self.events.put,
            timeout_s=settings.camera.timeout_s,
        )
        # Certificate renewal (kiosk/renewal.py): a renewed pair in data_dir/tls wins over the bundle's.
        self.certs: CertStore | None = None
        self.renewal: dict[str, Any] | None = None  # for the status: requested | renewed | refused | failed
        self._cert_trial: tuple[float, int, Pair] | None = None  # (deadline, generation, pair before)
        self.certs = cert_store_for(settings.mqtt, settings.data_dir, settings.kiosk_id)
        mqtt_settings = with_pair_in_use(settings.mqtt, self.certs)
        before = self.certs.pending_trial() if self.certs is not None else None
        if before is not None:  # restarted while a renewed pair was on trial: the trial goes on
            self._cert_trial = (clock.since_boot() + CERT_TRIAL_S, 0, before)
        if mqtt_settings.tls_cert != settings.mqtt.tls_cert:
            log.info("using the renewed client certificate %s", mqtt_settings.tls_cert)
        self.publisher: Publisher = publisher or MqttPublisher(
            kiosk_id=settings.kiosk_id,
            outbox_path=settings.outbox_path,
            settings=mqtt_settings,
            status_source=self.status,
            is_ready=self.is_ready,
            ack_timeout_s=settings.outbox.ack_timeout_s,
            ack_timeout_max_s=settings.outbox.ack_timeout_max_s,
            status_interval_s=settings.outbox.status_interval_s,
            wall=clock.wall,
            since_boot=clock.since_boot,
            collector_time=self.collector_time,
            clock_known=self._wall_clock_right,
            on_config=lambda payload: self.events.put(ConfigMessage(payload)),
            on_cert=lambda payload: self.events.put(CertMessage(payload)),
            on_status_answered=lambda: self.events.put(StatusAnswered()),
        )
        self.updater = Updater(
            data_dir=settings.data_dir,
            ca=Path(settings.mqtt.tls_ca) if settings.mqtt.tls_ca else None,
            tls=self._download_tls,
            restart=self.restart,
            installer=installer or pip_install,
            now=self._known_time,
            may_switch=self._may_restart,
        )
        self.exit_code = 0
        self._load_remote()
        self._started_at = clock.since_boot()
        self._unsynced_pending = True  # check once at start for leftovers of this boot
        self._unstored: list[tuple[Press, str | None]] = []  # the disk refused them; retried
        self._last_press_epoch = self.outbox.last_press_epoch()
        self._suppressed = self.outbox.suppressed_presses
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._timers: dict[str, float] = {}
        self._started = False
        self._selftest = last_selftest(settings)  # the self-test runs while the service is stopped

    # --- life cycle ---------------------------------------------------------

    def start(self) -> None:
        if self._started:
            return
        self._started = True
        self.panel.start(self._on_press)
        self.publisher.start()
        systemd.notify("READY=1")
        log.info(
            "kiosk %s at counter %s ready (install %s, fw %s)",
            self.settings.kiosk_id,
            self.settings.counter,
            self.outbox.install_id,
            __version__,
        )

    def run(self) -> None:
        """Handle events until :meth:`stop` is called (starts the kiosk if not started)."""
        self.start()
        try:
            while not self._stop.is_set():
                self.run_once(timeout_s=0.5)
        finally:
            self.close()

    def stop(self) -> None:
        self._stop.set()

    def restart(self) -> None:
        """End the loop so systemd starts the service again (through the launcher): after an
        update switched versions, or when the version on trial could not prove itself."""
        log.info("kiosk restarting")
        self.exit_code = 0
        self._stop.set()

    def _download_tls(self) -> ssl.SSLContext | None:
        """HTTPS to the collector's release server with this kiosk's certificate (the renewed one if any)."""
        mqtt = with_pair_in_use(self.settings.mqtt, self.certs)
        if not (mqtt.tls_ca and mqtt.tls_cert and mqtt.tls_key):
            return None
        return tls_context(mqtt, check_time=self._wall_clock_right())

    def close(self) -> None:
        systemd.notify("STOPPING=1")
        self.updater.stop()
        # The panel first, then every press it handed over into the outbox, then the rest: a
        # citizen pressing while the kiosk restarts (into an update) is still recorded.
        self.panel.close()
        self._drain_presses()
        self.publisher.stop()
        self.snapshots.stop()
        self._write_state()
        self.outbox.close()

    def _drain_presses(self) -> None:
        while True:
            try:
                event = self.events.get_nowait()
            except queue.Empty:
                break
            if isinstance(event, Press):
                try:
                    self.handle_press(event)
                except Exception:  # noqa: BLE001 - keep draining the others
                    log.exception("press not recorded while stopping")
        for press, flag in self._unstored:
            self._store(press, flag)

    def run_once(self, timeout_s: float = 0.0) -> None:
        try:
            event = self.events.get(timeout=timeout_s) if timeout_s else self.events.get_nowait()
        except queue.Empty:
            event = None
        try:
            if isinstance(event, Press):
                self.handle_press(event)
            elif isinstance(event, SnapshotResult):
                self.handle_snapshot(event)
            elif isinstance(event, ConfigMessage):
                self.handle_config(event.payload)
            elif isinstance(event, CertMessage):
                self.handle_cert(event.payload)
            elif isinstance(event, StatusAnswered) and self.updater.answered():
                self.publisher.wake()
            self.housekeeping()
        except Exception as exc:  # the kiosk must keep answering presses
            self.last_error = str(exc)
            log.exception("kiosk loop error; carrying on")

    # --- presses ------------------------------------------------------------

    def _on_press(self, button: int) -> None:
        # Panel thread: stamp it now, decide later.
        now = self.now()
        self.events.put(Press(button, now.wall, now.since_boot_s, now.clock))

    def handle_press(self, press: Press) -> None:
        verdict = self.gate.judge(press.button, press.since_boot_s)
        if verdict.outcome is Outcome.BOUNCE:
            return
        if verdict.outcome is Outcome.SUPPRESSED:
            self.outbox.count_suppressed()
            self._suppressed += 1
            return
        if not self._store(press, verdict.flag):
            self._unstored.append((press, verdict.flag))
            self.panel.fault()
            return
        if verdict.outcome is Outcome.RATING:
            self.panel.show_choice(press.button)
            self.panel.thank_you()

    def _store(self, press: Press, flag: str | None) -> bool:
        has_camera = self.snapshots.camera is not None and self.settings.camera.enabled
        if flag is not None:
            snapshot_state, snapshot_error = "none", None
        elif has_camera:
            snapshot_state, snapshot_error = "pending", None
        else:
            snapshot_state, snapshot_error = "error", "camera_disabled"
        try:
            stored = self.outbox.record_press(
                counter=self.settings.counter,
                score=self.settings.panel.scores[press.button - 1],
                flag=flag,
                pressed_epoch=press.wall,
                clock=press.clock,
                boot_id=self.clock.boot_id,
                since_boot_s=press.since_boot_s,
                fw=__version__,
                snapshot_state=snapshot_state,
                snapshot_error=snapshot_error,
            )
        except OutboxError as exc:
            self.last_error = str(exc)
            log.error("%s — press kept in memory and retried", exc)
            return False
        if press.clock == "unsynced":
            self._unsynced_pending = True
        if flag is None:
            self._last_press_epoch = press.wall
            if snapshot_state == "pending":
                self.snapshots.request(stored.id)
        self.publisher.wake()
        return True

    def handle_snapshot(self, result: SnapshotResult) -> None:
        if result.error is not None:
            self.outbox.fail_snapshot(result.rating_id, result.error)
        elif result.path is not None and result.sha256 is not None:
            attached = self.outbox.attach_snapshot(
                result.rating_id,
                path=result.path,
                sha256=result.sha256,
                nbytes=result.nbytes,
                taken_epoch=result.taken_epoch,
            )
            if not attached:
                remove_file(result.path)  # too late: the rating went without it
        self.publisher.wake()

    # --- certificate renewal -------------------------------------------------

    def renew_if_due(self) -> bool:
        """Ask for a new certificate when the one in use is near its end (and the time is known)."""
        if self.certs is None or self.settings.mqtt.renew_before_days <= 0 or not self.publisher.connected:
            return False
        now = self.now()
        if now.clock == "unsynced":
            return False  # a clock in 2000 or 2040 cannot tell how long the certificate has left
        moment = datetime.fromtimestamp(now.wall, UTC)
        if not self.certs.due(moment, self.settings.mqtt.renew_before_days):
            return False
        last = (self.renewal or {}).get("since_boot")
        if self._cert_trial is not None or (last is not None and now.since_boot_s - last < RETRY_EVERY_S):
            return False
        try:
            csr = self.certs.request()
            cert_pem, proof = self.certs.prove(csr)
        except (RenewalError, OSError, ValueError) as exc:
            self.renewal = {"state": "failed", "error": _printable(str(exc), 300), "since_boot": now.since_boot_s}
            log.error("cannot ask for a new certificate: %s", exc)
            return False
        if not self.publisher.send_csr(wire.encode_csr(self.settings.kiosk_id, csr, cert_pem=cert_pem, proof=proof)):
            return False
        self.renewal = {"state": "requested", "at": wire.format_epoch(now.wall), "since_boot": now.since_boot_s}
        log.info("client certificate expires %s: asked the collector for a new one", self.certs.not_after())
        self.publisher.wake()
        return True

    def handle_cert(self, payload: bytes) -> None:
        if self.certs is None:
            return
        now = self.now()
        try:
            cert_pem, refused = wire.decode_cert(payload, kiosk=self.settings.kiosk_id)
        except wire.WireError as exc:
            log.warning("ignoring a malformed certificate message: %s", exc)
            return
        if (self.renewal or {}).get("state") != "requested":
            log.info("ignoring a certificate answer: no request of this run is waiting for one")
            return
        if refused is not None:
            self.renewal = {**(self.renewal or {}), "state": "refused", "error": _printable(refused, 300)}
            log.error("the collector refused this kiosk's certificate request: %s", refused)
            return
        assert cert_pem is not None
        before = self.certs.current()
        try:
            pair = self.certs.install(cert_pem)
        except (RenewalError, OSError) as exc:
            self.renewal = {**(self.renewal or {}), "state": "failed", "error": _printable(str(exc), 300)}
            log.error("renewed certificate not used: %s", exc)
            return
        self.renewal = {"state": "renewed", "at": wire.format_epoch(now.wall), "since_boot": now.since_boot_s}
        log.info("renewed client certificate installed (expires %s); reconnecting with it", self.certs.not_after())
        self._cert_trial = (now.since_boot_s + CERT_TRIAL_S, self.publisher.generation, before)
        self.certs.begin_trial(before)  # kept on disk: a restart in the trial still finds the way back
        self.publisher.use_certificate(str(pair.cert), str(pair.key))

    def _check_cert_trial(self) -> None:
        """A renewed certificate proves itself by a connection; if none comes, go back to the old."""
        if self._cert_trial is None or self.certs is None:
            return
        deadline, generation, before = self._cert_trial
        if self.publisher.connected and self.publisher.generation > generation:
            self._cert_trial = None
            self.certs.end_trial()
            log.info("connected with the renewed certificate")
            return
        if self.clock.since_boot() < deadline:
            return
        self._cert_trial = None
        self.certs.revert(before)
        self.certs.end_trial()
        self.renewal = {
            **(self.renewal or {}),
            "state": "failed",
            "error": "the broker refused the renewed certificate",
        }
        log.error("no connection with the renewed certificate in %.0f s; back to %s", CERT_TRIAL_S, before.cert)
        self.publisher.use_certificate(str(before.cert), str(before.key))

    # --- remote settings ----------------------------------------------------

    def handle_config(self, payload: bytes, *, persist: bool = True) -> None:
        """Check the whole message, then use all of it, or none of it and say why in the status."""
        if payload == self._remote_payload or (not payload and not self._remote_payload):
            return  # the retained copy again, on a reconnect; or "none" while there are none
        if not payload:  # the collector cleared it: kiosk.toml alone again, and no release offered
            self.updater.withdraw()
            self._use(self.local_settings)
            self._remote_payload, self.remote = payload, None
            self._save_remote(payload)
            log.info("remote settings cleared; kiosk.toml applies")
            return
        try:
            config = remote.decode_config(payload, kiosk=self.settings.kiosk_id)
        except remote.RemoteSettingsError as exc:
            self._updates_from(payload)  # a setting only a newer release knows must not block that release
            self.remote = {
                "revision": getattr(exc, "revision", None),
                "state": "refused",
                "error": _printable(str(exc), 300),
            }
            self._remote_payload = payload
            log.warning("remote settings refused, the kiosk keeps what it had: %s", exc)
            self.publisher.wake()
            return
        try:
            merged = config.settings.over(self.local_settings)
        except (ValueError, TypeError) as exc:  # valid alone, not with kiosk.toml (a zone this Pi lacks)
            self.remote = {"revision": config.revision, "state": "refused", "error": _printable(str(exc), 300)}
            self._remote_payload = payload
            log.warning("remote settings refused with this kiosk.toml, the kiosk keeps what it had: %s", exc)
            self.publisher.wake()
            return
        self._use(merged)
        self._remote_payload = payload
        self.remote = {"revision": config.revision, "state": "applied"}
        if config.ignored:
            self.remote["ignored"] = [n for n in config.ignored if wire.is_setting_name(n)]
            log.warning("remote settings revision %d: not known to this version, ignored: %s", config.revision,
                        ", ".join(config.ignored))  # fmt: skip
        if persist:
            self._save_remote(payload)
        log.info("remote settings revision %d applied: %s", config.revision, config.settings.given())
        if config.selftest is not None:
            self.remote_selftest(config.selftest)
        if "update_action" in config.extra and self.updater.act(config.extra["update_action"]):
            self.restart()
            return
        if "update" not in config.extra:
            self.updater.withdraw()  # a paused rollout: nothing offered any more
        elif self.updater.offer(config.extra["update"]):
            log.info("release %s offered: checking and downloading it", config.extra["update"].get("version"))
        self.publisher.wake()

    def _updates_from(self, payload: bytes) -> None:
        """The update parts of a config message whose settings were refused."""
        try:
            doc = wire.loads(payload, long_texts=True)
        except wire.WireError:
            return
        if not isinstance(doc, dict) or doc.get("kiosk") != self.settings.kiosk_id:
            return
        if "update_action" in doc and self.updater.act(doc["update_action"]):
            self.restart()
        elif "update" in doc:
            self.updater.offer(doc["update"])
        else:
            self.updater.withdraw()

    def remote_selftest(self, request: str) -> bool:
        """Run the unattended self-test for a request from the collector, once per request id
        (the retained config brings the same id on every reconnect)."""
        done = self.settings.data_dir / "remote-selftest-done"
        try:
            if done.read_text(encoding="ascii").strip() == request:
                return False
        except (OSError, UnicodeDecodeError):
            pass
        now = self.now()
        report = selftest.unattended(
            self.settings,
            at=now.wall,
            clock=now.clock,
            camera=self.snapshots.state,
            camera_error=self.snapshots.last_error,
            panel=self.panel.state,
            connected=self.publisher.connected,
            request=request,
        )
        try:
            selftest.save_report(self.settings, report)
            done.write_text(request + "\n", encoding="ascii")
        except OSError as exc:
            log.error("remote self-test %s: could not keep the report: %s", request, exc)
        self._selftest = selftest.last_selftest(self.settings)
        failed = [c["name"] for c in report["checks"] if not c["ok"]]
        log.info("remote self-test %s: %s", request, "all passed" if not failed else "failed: " + ", ".join(failed))
        return True

    def _use(self, settings: KioskSettings) -> None:
        self.settings = settings
        self.gate.rules = settings.panel.rules()
        self.publisher.status_interval_s = settings.outbox.status_interval_s
        camera = self.snapshots.camera
        for name in ("width", "jpeg_quality"):
            if camera is not None and hasattr(camera, name):
                setattr(camera, name, getattr(settings.camera, name))

    def _load_remote(self) -> None:
        """The settings in force before a restart, until the broker delivers the retained copy."""
        try:
            payload = self.settings.remote_settings_path.read_bytes()
        except FileNotFoundError:
            return
        except OSError as exc:
            log.warning("could not read %s: %s", self.settings.remote_settings_path, exc)
            return
        if payload:
            self.handle_config(payload, persist=False)

    def _save_remote(self, payload: bytes) -> None:
        path = self.settings.remote_settings_path
        tmp = path.with_suffix(".tmp")
        try:
            tmp.write_bytes(payload)
            os.replace(tmp, path)
        except OSError as exc:
            log.warning("could not keep the remote settings in %s: %s", path, exc)

    # --- readiness and status (called from the publisher's thread) ----------

    def is_ready(self, row: OutboxRow) -> bool:
        """A row may go out once its picture is settled and its clock as good as it will get."""
        if row.snapshot_state == "pending":
            return False
        if row.clock == "unsynced" and row.boot_id == self.clock.boot_id:
            waited = self.clock.since_boot() - row.since_boot_s
            return waited >= self.settings.clock.unsynced_hold_s
        return True

    def _may_restart(self) -> bool:
        """Whether an update may restart the kiosk now: outside the office hours in force, or
        whenever they or the time are unknown (an update must not wait for ever)."""
        office = self.settings.office
        known = self._known_time()
        return not office.weekdays or known is None or not office.is_open(known)

    def _wall_clock_right(self) -> bool:
        """Whether this machine's own clock — the one TLS checks certificate dates with — is right:
        NTP-synchronised, or within an hour of the collector's time."""
        if self.clock.is_synced():
            return True
        now = self.now()
        return clock_source(now.clock) == "collector" and abs(self.clock.wall() - now.wall) < 3600

    def _known_time(self) -> datetime | None:
        """The wall time when NTP or the collector vouches for it (a release signer's validity is
        checked against it), else None."""
        now = self.now()
        if clock_source(now.clock) == "none":
            return None
        return datetime.fromtimestamp(now.wall, UTC)

    def now(self) -> Stamp:
        """The time from the best source: NTP, else the collector's acks, else the bare clock."""
        return stamp(self.clock, self.collector_time)

    def status(self, outbox: SqliteOutbox) -> dict[str, Any]:
        backlog = outbox.backlog()
        now = self.now()
        status: dict[str, Any] = {
            "kiosk": self.settings.kiosk_id,
            "state": "online",
            "at": wire.format_epoch(now.wall),
            "fw": __version__,
            "install": outbox.install_id,
            "boot": self.clock.boot_id,
            "uptime_s": int(self.clock.since_boot() - self._started_at),
            "counter": self.settings.counter,
            "backlog": {"ratings": backlog.ratings, "snapshots": backlog.snapshots, "oldest_at": backlog.oldest_at},
            "camera": self.snapshots.state if self.settings.camera.enabled else "disabled",
            "clock": now.clock,
            "clock_source": clock_source(now.clock),
            "disk_free_mb": _disk_free_mb(self.settings.data_dir),
            "suppressed_presses": self._suppressed,
            "last_press_at": None if self._last_press_epoch is None else wire.format_epoch(self._last_press_epoch),
            "panel": self.panel.state,
            "selftest": self._selftest,
        }
        if self.remote is not None:
            status["settings"] = self.remote
        if self.certs is not None:
            expires = self.certs.not_after()
            if expires is not None and expires.year <= wire.STATUS_YEARS[1]:  # "no expiry" (9999): left out
                status["cert_not_after"] = wire.format_time(expires)
        if self.renewal is not None:
            status["renewal"] = {k: v for k, v in self.renewal.items() if k != "since_boot"}
        if self.updater.report is not None:
            status["update"] = dict(self.updater.report)
        if now.error_s is not None:
            status["clock_error_ms"] = round(now.error_s * 1000)
        return status

    # --- housekeeping -------------------------------------------------------

    def housekeeping(self) -> None:
        now = self.clock.since_boot()
        if self._unstored and self._due("retry", now, 5.0):
            waiting, self._unstored = self._unstored, []
            for press, flag in waiting:
                if not self._store(press, flag):
                    self._unstored.append((press, flag))
        stale = self.outbox.expire_pending_snapshots(
            boot_id=self.clock.boot_id,
            since_boot_s=now - self.settings.camera.timeout_s - 1.0,
            error="timeout",
        )
        if stale:
            self.publisher.wake()
        if self._unsynced_pending:
            best = self.now()
            if best.clock != "unsynced":
                source = "NTP" if best.clock == "synced" else "the collector's time"
                fixed = self.outbox.correct_unsynced(
                    boot_id=self.clock.boot_id, wall_minus_boot_s=best.wall - best.since_boot_s
                )
                self._unsynced_pending = False
                if fixed:
                    log.info("clock set by %s: corrected %d press time(s) from the boot clock", source, fixed)
                    self.publisher.wake()
        if self._due("prune", now, 3600.0):
            retention_s = self.settings.outbox.retention_days * 86400
            gone = self.outbox.prune(older_than_epoch=self.clock.wall() - retention_s)
            if gone:
                log.info(
                    "pruned %d acked rating(s) older than %.0f days",
                    gone,
                    self.settings.outbox.retention_days,
                )
        if self._due("pictures", now, 60.0):
            for path in self.outbox.drop_snapshot_files(self.settings.camera.max_storage_mb * 1024 * 1024):
                log.warning("picture budget full: dropping undelivered snapshot %s", path)
                remove_file(path)
        if self._due("state", now, 10.0):
            self._write_state()
        if self._due("renewal", now, 60.0):
            self.renew_if_due()
        if self._due("update", now, 5.0):
            if self.updater.trial_expired():
                self.restart()
            else:
                self.updater.retry_due()
        self._check_cert_trial()
        if self._due("watchdog", now, 5.0):
            systemd.notify("WATCHDOG=1")

    def _due(self, name: str, now: float, every_s: float) -> bool:
        last = self._timers.get(name)
        if last is not None and now - last < every_s:
            return False
        self._timers[name] = now
        return True

    def _write_state(self) -> None:
        """A small file for `kiosk status` (the outbox holds the truth; this holds the mood)."""
        state = {
            "at": wire.format_epoch(self.clock.wall()),
            "kiosk": self.settings.kiosk_id,
            "connected": self.publisher.connected,
            "camera": self.snapshots.state,
            "panel": self.panel.state,
            "clock": self.now().clock,
            "last_error": self.last_error or self.publisher.last_error or self.snapshots.last_error,
            "unstored_presses": len(self._unstored),
        }
        tmp = self.settings.state_path.with_suffix(".tmp")
        try:
            tmp.write_text(json.dumps(state, indent=1))
            os.replace(tmp, self.settings.state_path)
        except OSError as exc:
            log.warning("could not write %s: %s", self.settings.state_path, exc)


def _printable(text: str, longest: int) -> str:
    return "".join(c if c.isprintable() else "?" for c in text)[:longest]


def _disk_free_mb(path: os.PathLike[str] | str) -> int:
    try:
        return int(shutil.disk_usage(path).free // (1024 * 1024))
    except OSError:
        return 0
