"""`kiosk selftest`: what a technician checks on site, step by step, with a short report.

Run it with the kiosk service stopped (it needs the panel). The report is printed, kept in
``data_dir/selftest.json`` (the kiosk's status carries it from then on) and published in a
status message, so the collector shows "installed and tested at …".
"""

from __future__ import annotations

import json
import queue
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from kiosk import __version__, wire
from kiosk.camera import Camera
from kiosk.clock import Clock
from kiosk.config import KioskSettings
from kiosk.errors import CameraError, MqttError
from kiosk.mqtt import make_client, publish
from kiosk.outbox import SqliteOutbox
from kiosk.panel import ButtonPanel
from kiosk.renewal import cert_store_for, with_pair_in_use

MIN_FREE_MB = 200


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


class SelfTest:
    def __init__(
        self,
        *,
        settings: KioskSettings,
        panel: ButtonPanel,
        camera: Camera | None,
        clock: Clock,
        say: Callable[[str], None] = print,
        press_timeout_s: float = 30.0,
        on_prompt: Callable[[int], None] | None = None,
    ) -> None:
        self.settings = settings
        self.panel = panel
        self.camera = camera
        self.clock = clock
        self.say = say
        self.press_timeout_s = press_timeout_s
        self.on_prompt = on_prompt  # fake hardware: someone presses the lit button
        self.checks: list[Check] = []

    def run(self) -> list[Check]:
        for step in (
            self.check_outbox,
            self.check_disk,
            self.check_clock,
            self.check_camera,
            self.check_panel,
            self.check_broker,
        ):
            try:
                check = step()
            except Exception as exc:  # a failing step is a failed check, never a crash
                check = Check(step.__name__.removeprefix("check_"), False, f"{type(exc).__name__}: {exc}")
            self.checks.append(check)
            self.say(f"{'OK  ' if check.ok else 'FAIL'} {check.name:<8} {check.detail}")
        self._save()
        return self.checks

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def report(self) -> dict[str, Any]:
        return {
            "at": wire.format_epoch(self.clock.wall()),
            "ok": self.ok,
            "fw": __version__,
            # bounded so the report always fits the status message (the wire refuses long texts)
            "checks": [{**asdict(c), "detail": c.detail[:300]} for c in self.checks[:16]],
        }

    # --- the steps --------------------------------------------------------------------------

    def check_outbox(self) -> Check:
        return check_outbox(self.settings)

    def check_disk(self) -> Check:
        return check_disk(self.settings)

    def check_clock(self) -> Check:
        synced = self.clock.is_synced()
        if self.settings.clock.assume_synced:
            state = "assumed synchronised ([clock] assume_synced = true)"
        else:
            state = "NTP-synchronised" if synced else "NOT synchronised — is the network up and NTP allowed?"
        return Check("clock", synced, f"{wire.format_epoch(self.clock.wall())} {state}")

    def check_camera(self) -> Check:
        if self.camera is None:
            return Check("camera", True, "no camera configured")
        try:
            picture = self.camera.capture()
        except CameraError as exc:
            return Check("camera", False, str(exc))
        path = self.settings.data_dir / "selftest.jpg"
        path.write_bytes(picture)
        return Check(
            "camera",
            picture[:2] == b"\xff\xd8",
            f"picture of {len(picture) // 1024} KiB saved to {path} — "
            "check that it shows the panel and the person pressing it",
        )

    def check_panel(self) -> Check:
        presses: queue.Queue[int] = queue.Queue()
        self.panel.start(presses.put)
        wrong = []
        for button in (1, 2, 3, 4):
            self.panel.show_choice(button)
            self.say(f"     press button {button} ({_label(self.settings, button)}) — its lamp is lit")
            if self.on_prompt is not None:
                self.on_prompt(button)
            try:
                got = presses.get(timeout=self.press_timeout_s)
            except queue.Empty:
                return Check(
                    "panel",
                    False,
                    f"no press of button {button} within {self.press_timeout_s:.0f} s — "
                    "check its wiring (see hardware/README.md)",
                )
            if got != button:
                wrong.append(f"button {button} reported as {got}")
            time.sleep(0.3)
            while not presses.empty():  # bounce of the same press
                presses.get_nowait()
        self.panel.thank_you()
        if wrong:
            return Check("panel", False, "; ".join(wrong) + " — are the wires swapped?")
        return Check("panel", True, f"buttons 1-4 pressed and lamps lit ({self.panel.name}, {self.panel.state})")

    def check_broker(self) -> Check:
        mqtt_settings = with_pair_in_use(
            self.settings.mqtt, cert_store_for(self.settings.mqtt, self.settings.data_dir, self.settings.kiosk_id)
        )
        client = make_client(self.settings.kiosk_id, mqtt_settings)
        answer: queue.Queue[str] = queue.Queue()
        client.on_connect = lambda c, u, f, reason, p: answer.put("" if not reason.is_failure else str(reason))
        try:
            client.connect(mqtt_settings.host, mqtt_settings.port, keepalive=10)
        except OSError as exc:
            return Check(
                "broker", False, f"{mqtt_settings.host}:{mqtt_settings.port}: {exc} — network, address, certificate?"
            )
        client.loop_start()
        try:
            try:
                refusal = answer.get(timeout=10)
            except queue.Empty:
                return Check("broker", False, f"no answer from {mqtt_settings.host}:{mqtt_settings.port} in 10 s")
            if refusal:
                return Check("broker", False, f"refused: {refusal} — is the certificate from this fleet and valid?")
            # The published report holds every step before this one; reaching here proves this one.
            status = {
                "kiosk": self.settings.kiosk_id,
                "state": "offline",
                "at": wire.format_epoch(self.clock.wall()),
                "fw": __version__,
                "counter": self.settings.counter,
                "selftest": self.report(),
            }
            try:
                info = publish(
                    client,
                    wire.Topics(mqtt_settings.topic_prefix).status(self.settings.kiosk_id),
                    wire.encode_status(status),
                    retain=True,
                )
            except MqttError as exc:
                return Check("broker", False, f"connected, but the report could not be sent: {exc}")
            info.wait_for_publish(10)
            if not info.is_published():
                return Check("broker", False, "connected, but the report was not accepted — check the broker ACL")
            tls = "TLS with the kiosk's certificate" if mqtt_settings.tls_ca else "no TLS"
            return Check("broker", True, f"{mqtt_settings.host}:{mqtt_settings.port} ({tls}); report published")
        finally:
            client.disconnect()
            client.loop_stop()

    def _save(self) -> None:
        save_report(self.settings, self.report())


def save_report(settings: KioskSettings, report: dict[str, Any]) -> None:
    path = settings.data_dir / "selftest.json"
    path.write_text(json.dumps(report, ensure_ascii=False, indent=1))


def check_outbox(settings: KioskSettings) -> Check:
    outbox = SqliteOutbox(settings.outbox_path)
    try:
        verdict = outbox.db.conn.execute("PRAGMA quick_check").fetchone()[0]
        backlog = outbox.backlog()
    except sqlite3.Error as exc:
        return Check("outbox", False, f"{exc} — is the data partition healthy?")
    finally:
        outbox.close()
    return Check(
        "outbox",
        verdict == "ok",
        f"integrity {verdict}; {backlog.ratings} rating(s) and {backlog.snapshots} picture(s) waiting",
    )


def check_disk(settings: KioskSettings) -> Check:
    free_mb = shutil.disk_usage(settings.data_dir).free // (1024 * 1024)
    return Check("disk", free_mb >= MIN_FREE_MB, f"{free_mb} MB free in {settings.data_dir} (need {MIN_FREE_MB} MB)")


def unattended(
    settings: KioskSettings,
    *,
    at: float,
    clock: str,
    camera: str,
    camera_error: str | None,
    panel: str,
    connected: bool,
    request: str,
) -> dict[str, Any]:
    """The self-test an admin starts from the collector, run by the kiosk service itself: every
    step that needs nobody at the panel (the buttons and lamps are for `kiosk selftest` on site).
    The camera, panel and broker are judged by the service's live state, not opened again."""
    checks: list[Check] = []
    for step in (lambda: check_outbox(settings), lambda: check_disk(settings)):
        try:
            checks.append(step())
        except Exception as exc:  # a failing step is a failed check, never a crash
            checks.append(Check("outbox" if not checks else "disk", False, f"{type(exc).__name__}: {exc}"))
    checks.append(Check("clock", clock != "unsynced", f"{wire.format_epoch(at)} ({clock})"))
    camera_ok = camera in ("ok", "disabled")
    checks.append(Check("camera", camera_ok, camera if camera_ok else f"{camera}: {camera_error or '?'}"))
    checks.append(Check("panel", panel == "ok", f"panel {panel} (buttons not pressed: nobody on site)"))
    checks.append(Check("broker", connected, "connected" if connected else "not connected"))
    return {
        "at": wire.format_epoch(at),
        "ok": all(c.ok for c in checks),
        "fw": __version__,
        "remote": request,
        "checks": [{**asdict(c), "detail": c.detail[:300]} for c in checks],
    }


def _label(settings: KioskSettings, button: int) -> str:
    from kiosk.scores import LABELS_VI

    return LABELS_VI[settings.panel.scores[button - 1]]


def last_selftest(settings: KioskSettings) -> dict[str, Any] | None:
    """The last report, for the status message (None before the first self-test)."""
    try:
        report = json.loads((settings.data_dir / "selftest.json").read_text())
    except (OSError, ValueError):
        return None
    return {
        "at": report.get("at"),
        "ok": report.get("ok"),
        "failed": [c["name"] for c in report.get("checks", []) if not c.get("ok")],
    }


def press_when_prompted(press: Callable[[int], None], delay_s: float = 0.2) -> Callable[[int], None]:
    """For --fake-hardware: a simulated technician presses each button when asked."""

    def prompt(button: int) -> None:
        threading.Timer(delay_s, press, args=(button,)).start()

    return prompt
