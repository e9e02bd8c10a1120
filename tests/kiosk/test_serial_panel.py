import os
import tty

from kiosk.serial_panel import SerialButtonPanel
from tests.conftest import wait_for


def pty_panel(**kwargs):
    master, slave = os.openpty()
    tty.setraw(slave)
    return master, SerialButtonPanel(os.ttyname(slave), **kwargs)


def test_panel_lines_become_presses_and_commands_reach_the_panel():
    master, panel = pty_panel()
    seen = []
    panel.start(seen.append)
    assert wait_for(lambda: panel._port is not None)
    os.write(master, b"H\nP3\r\nP1\n")
    assert wait_for(lambda: seen == [3, 1])
    assert panel.state == "ok"
    panel.show_choice(3)
    panel.thank_you()
    panel.fault()
    received = b""
    while received.count(b"\n") < 3:
        received += os.read(master, 64)
    assert received.split() == [b"L3", b"T", b"E"]
    panel.close()


def test_unknown_lines_are_logged_and_ignored(caplog):
    panel = SerialButtonPanel("loop://")
    seen = []
    panel.start(seen.append)
    assert wait_for(lambda: panel._port is not None)
    panel._port.write(b"P9\nHELLO\n\xff\xfe\nP2\n")
    assert wait_for(lambda: seen == [2])
    assert panel.unknown_lines == 3
    assert "unknown line" in caplog.text
    panel.close()


def test_silent_panel_is_missing_until_it_speaks_again():
    now = [0.0]
    master, panel = pty_panel(heartbeat_timeout_s=15, monotonic=lambda: now[0])
    panel.start(lambda b: None)
    assert wait_for(lambda: panel._port is not None)
    now[0] = 16.0
    assert panel.state == "missing"
    os.write(master, b"H\n")
    assert wait_for(lambda: panel.state == "ok")
    panel.close()


def test_unplugged_panel_is_reopened_when_it_returns(tmp_path):
    link = tmp_path / "panel"
    master, slave = os.openpty()
    tty.setraw(slave)
    link.symlink_to(os.ttyname(slave))
    panel = SerialButtonPanel(str(link), max_backoff_s=0.5)
    seen = []
    panel.start(seen.append)
    assert wait_for(lambda: panel._port is not None)
    os.close(master)  # the far end goes away: reads fail with EIO
    os.close(slave)
    link.unlink()
    assert wait_for(lambda: panel.state == "missing", timeout_s=5)
    master2, slave2 = os.openpty()
    tty.setraw(slave2)
    link.symlink_to(os.ttyname(slave2))
    assert wait_for(lambda: panel._port is not None, timeout_s=5)
    os.write(master2, b"P4\n")
    assert wait_for(lambda: seen == [4])
    panel.close()
