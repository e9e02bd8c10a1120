"""MicroPython firmware for a Raspberry Pi Pico serial panel (copy panel_logic.py and this file to
the Pico, e.g. `mpremote cp panel_logic.py main.py :`). USB serial shows up on the kiosk as
/dev/ttyACM0 (the udev rule in hardware/ gives it the stable name /dev/kiosk-panel)."""

import select
import sys
import time

from machine import Pin

from panel_logic import PanelLogic

BUTTON_PINS = (2, 3, 4, 5)  # GP2..GP5 to ground, internal pull-ups
LAMP_PINS = (6, 7, 8, 9)  # GP6..GP9 through a transistor to each button's lamp
BUZZER_PIN = 10

buttons = [Pin(n, Pin.IN, Pin.PULL_UP) for n in BUTTON_PINS]
lamps = [Pin(n, Pin.OUT, value=0) for n in LAMP_PINS]
buzzer = Pin(BUZZER_PIN, Pin.OUT, value=0)
logic = PanelLogic(len(buttons))
poll = select.poll()
poll.register(sys.stdin, select.POLLIN)
pending = ""

while True:
    now = time.ticks_ms()
    for line in logic.sample([b.value() for b in buttons], now):
        sys.stdout.write(line + "\n")
    while poll.poll(0):
        char = sys.stdin.read(1)
        if char == "\n":
            logic.command(pending, now)
            pending = ""
        elif len(pending) < 16:
            pending += char
    levels, beep = logic.outputs(now)
    for lamp, level in zip(lamps, levels):
        lamp.value(level)
    buzzer.value(beep)
    time.sleep_ms(5)
