"""Keeps the fleet's revocation list alive: a broker with an expired CRL refuses every kiosk and
the collector itself, a year after `collector ca init` if nobody acts.

`collector serve` checks at start and every few hours: with fewer than ``RENEW_BEFORE`` left the
list is signed again and the broker told to re-read it (Mosquitto re-reads its CRL on SIGHUP,
shown by tests/collector/test_crl.py on the Mosquitto the project ships with). When renewal is
impossible (the CA key is unreadable, the disk is full) an alert is raised once ``ALERT_BEFORE``
or less is left. `collector ca refresh-crl` does the same by hand.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import shlex
import signal
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from collector.config import CollectorSettings
from collector.errors import CollectorError
from collector.fleet import FleetCA

log = logging.getLogger(__name__)

RENEW_BEFORE = dt.timedelta(days=30)
ALERT_BEFORE = dt.timedelta(days=14)


class ReloadError(CollectorError, RuntimeError):
    """The broker could not be told to re-read its revocation list."""


@dataclass(frozen=True)
class CrlCheck:
    outcome: str  # no_ca | fresh | renewed | failed
    next_update: dt.datetime | None
    detail: str = ""


def reload_broker(settings: CollectorSettings) -> str:
    """Tell the broker to re-read its files: ``[fleet] broker_reload_command`` or a SIGHUP to the
    pid in ``[fleet] broker_pid_file``. Returns what was done ("" when nothing is configured)."""
    fleet = settings.fleet
    if fleet.broker_reload_command:
        result = subprocess.run(shlex.split(fleet.broker_reload_command), capture_output=True, text=True, timeout=60)
        if result.returncode != 0:
            raise ReloadError(
                f"{fleet.broker_reload_command!r} failed ({result.returncode}): {result.stderr.strip()[:300]}"
            )
        return f"ran {fleet.broker_reload_command!r}"
    if fleet.broker_pid_file:
        try:
            pid = int(Path(fleet.broker_pid_file).read_text(encoding="ascii").strip())
            os.kill(pid, signal.SIGHUP)
        except (OSError, ValueError) as exc:
            raise ReloadError(f"SIGHUP to the broker in {fleet.broker_pid_file}: {exc}") from None
        return f"sent SIGHUP to broker pid {pid}"
    return ""


def check_crl(
    settings: CollectorSettings,
    *,
    now: dt.datetime | None = None,
    force: bool = False,
    raise_alert: Callable[[str], None] | None = None,
) -> CrlCheck:
    """Renew the CRL when due (or when ``force``), tell the broker, and alert when it cannot."""
    ca = FleetCA(settings.data_dir / "fleet")
    if not ca.exists():
        return CrlCheck("no_ca", None)
    now = now or dt.datetime.now(dt.UTC)
    next_update = ca.crl_next_update()
    if not force and next_update is not None and next_update - now >= RENEW_BEFORE:
        return CrlCheck("fresh", next_update)
    try:
        ca.write_crl(now=now)
    except Exception as exc:  # the CA key unreadable, the disk full: say so, loudly when it is late
        left = "unknown" if next_update is None else f"{(next_update - now).days} days"
        detail = f"the fleet CRL could not be renewed ({exc}); it expires {next_update} ({left} left)"
        log.error("%s — then the broker refuses every kiosk; check %s", detail, ca.folder)
        if raise_alert is not None and (next_update is None or next_update - now <= ALERT_BEFORE):
            raise_alert(detail)
        return CrlCheck("failed", next_update, detail)
    renewed = ca.crl_next_update()
    try:
        done = reload_broker(settings)
    except ReloadError as exc:
        log.error("CRL renewed until %s, but %s — reload the broker (SIGHUP) so it reads %s", renewed, exc, ca.crl)
        if raise_alert is not None and next_update is not None and next_update - now <= ALERT_BEFORE:
            raise_alert(f"the fleet CRL was renewed but the broker was not told: {exc}")
        return CrlCheck("failed", renewed, str(exc))
    if done:
        log.info("fleet CRL renewed until %s; %s", renewed, done)
    else:
        log.warning(
            "fleet CRL renewed until %s; no [fleet] broker_reload_command or broker_pid_file is set, so the "
            "broker keeps the old list until it is reloaded (systemctl reload mosquitto)",
            renewed,
        )
    return CrlCheck("renewed", renewed, done)


class CrlKeeper:
    """Runs :func:`check_crl` at start and every ``[fleet] crl_check_interval_h`` on its own thread."""

    def __init__(self, settings: CollectorSettings, raise_alert: Callable[[str], None] | None) -> None:
        self.settings = settings
        self.raise_alert = raise_alert
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="crl", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while True:
            try:
                check_crl(self.settings, raise_alert=self.raise_alert)
            except Exception:  # keep watching; the next round tries again
                log.exception("CRL check failed")
            if self._stop.wait(self.settings.fleet.crl_check_interval_h * 3600):
                return
