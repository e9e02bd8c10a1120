"""The kiosk's structure: the loop runs without a broker behind its ports, and configuration
modules do not pull in the MQTT client library."""

from __future__ import annotations

import subprocess
import sys

from kiosk.clock import FakeClock
from kiosk.publisher import OfflinePublisher
from tests.kiosk.conftest import KioskRig, kiosk_settings


def test_configuration_modules_do_not_import_paho():
    code = (
        "import sys, kiosk.config, collector.config, kiosk.remote;"
        "loaded = sorted(m for m in sys.modules if m.startswith('paho'));"
        "print(loaded); sys.exit(1 if loaded else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_presses_clock_and_settings_work_behind_an_offline_publisher(tmp_path):
    rig = KioskRig(kiosk_settings(tmp_path, 1), clock=FakeClock(synced=False), connect=False)
    publisher = rig.kiosk.publisher
    assert isinstance(publisher, OfflinePublisher)
    try:
        rig.press(1)
        assert rig.kiosk.outbox.backlog().ratings == 1
        assert publisher.wakes >= 1  # the publisher was told; it would deliver
        rig.kiosk.handle_config(
            b'{"v":1,"kiosk":"k-vb-q1","revision":2,"settings":{"outbox":{"status_interval_s":30}}}'
        )
        assert publisher.status_interval_s == 30
        assert rig.kiosk.status(rig.kiosk.outbox)["clock_source"] == "none"
        assert not rig.kiosk.renew_if_due()  # not connected, no certificate: nothing asked
    finally:
        rig.close()
