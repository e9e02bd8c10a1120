"""Host-side tests of the serial panel firmware's logic, and the firmware talking to the kiosk's
SerialButtonPanel over a pty as a real Pico would over USB."""

import os
import sys
import threading
import time
import tty
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "hardware" / "pico"))

from panel_logic import DEBOUNCE_MS, HEARTBEAT_MS, PanelLogic  # noqa: E402

from kiosk.serial_panel import SerialButtonPanel  # noqa: E402
from tests.conftest import wait_for  # noqa: E402

RELEASED = [1, 1, 1, 1]


def levels(pressed=None):
    return [0 if i + 1 == pressed else 1 for i in range(4)]


def test_contact_bounce_is_one_press_and_a_held_button_too():
    logic = PanelLogic()
    out = logic.sample(RELEASED, 0)
    t = 10
    for level in (0, 1, 0, 1, 0):  # bouncing for a few ms
        out += logic.sample(levels(2) if level == 0 else RELEASED, t)
        t += 2
    for _ in range(100):  # held for a second
        out += logic.sample(levels(2), t)
        t += 10
    out += logic.sample(RELEASED, t)
    out += logic.sample(RELEASED, t + DEBOUNCE_MS + 1)
    assert [line for line in out if line.startswith("P")] == ["P2"]


def test_heartbeat_at_least_every_five_seconds():
    logic = PanelLogic()
    beats = [t for t in range(0, 20000, 5) if "H" in logic.sample(RELEASED, t)]
    assert beats[0] == 0 and max(b - a for a, b in zip(beats, beats[1:], strict=False)) <= HEARTBEAT_MS + 5


def test_commands_drive_lamps_and_buzzer_and_unknown_lines_are_ignored():
    logic = PanelLogic()
    logic.command("L3", 0)
    assert logic.outputs(0) == ([0, 0, 1, 0], 0)
    logic.command("T", 100)
    lamps, beep = logic.outputs(110)
    assert lamps == [0, 0, 1, 0] and beep == 1
    assert logic.outputs(2000) == ([0, 0, 0, 0], 0)  # thanks over: lamps off
    logic.command("E", 3000)
    assert {tuple(logic.outputs(t)[0]) for t in range(3000, 4000, 125)} == {(0, 0, 0, 0), (1, 1, 1, 1)}
    logic.command("BOGUS", 0)
    logic.command("L9", 0)
    assert logic.unknown == 2


def test_firmware_logic_and_kiosk_panel_talk_over_a_serial_line():
    master, slave = os.openpty()
    tty.setraw(slave)
    logic = PanelLogic()
    pressed = {"button": None}
    stop = threading.Event()

    def pico():
        received = b""
        while not stop.is_set():
            now = int(time.monotonic() * 1000)
            for line in logic.sample(levels(pressed["button"]), now):
                os.write(master, (line + "\n").encode())
            import select

            if select.select([master], [], [], 0.005)[0]:
                received += os.read(master, 64)
                while b"\n" in received:
                    line, received = received.split(b"\n", 1)
                    logic.command(line.decode(), now)

    thread = threading.Thread(target=pico, daemon=True)
    thread.start()
    panel = SerialButtonPanel(os.ttyname(slave))
    seen = []
    panel.start(seen.append)
    try:
        assert wait_for(lambda: panel.state == "ok")
        pressed["button"] = 4
        time.sleep(0.1)
        pressed["button"] = None
        assert wait_for(lambda: seen == [4])
        panel.show_choice(4)
        panel.thank_you()
        assert wait_for(lambda: logic.mode == "thanks" and logic.lamps == [0, 0, 0, 1])
    finally:
        panel.close()
        stop.set()
        thread.join(2)
