"""Fake hardware for laptops, demos and tests: the real GPIO panel on gpiozero's mock pins,
pressed from the keyboard or by simulated citizens."""

from __future__ import annotations

import logging
import random
import sys
import threading
import time
from collections.abc import Sequence

from gpiozero.pins.mock import MockFactory

from kiosk.gpio_panel import GpioButtonPanel

log = logging.getLogger(__name__)


def fake_gpio_panel(pins: Sequence[int]) -> tuple[GpioButtonPanel, MockFactory]:
    factory = MockFactory()
    return GpioButtonPanel(pins, pin_factory=factory), factory


def press_pin(factory: MockFactory, pin: int, hold_s: float = 0.05) -> None:
    """One press as the wiring sees it: the pull-up pin goes low, then high again."""
    mock = factory.pin(pin)
    mock.drive_low()
    time.sleep(hold_s)
    mock.drive_high()
    # A mock pin records every change for tests' assertions; a simulated kiosk pressed for days
    # would keep them all (about 200 bytes a press).
    mock.clear_states()


class KeyboardPresser:
    """Keys 1..4 press buttons 1..4 (left to right); q quits."""

    def __init__(self, factory: MockFactory, pins: Sequence[int], on_quit) -> None:  # type: ignore[no-untyped-def]
        self.factory = factory
        self.pins = list(pins)
        self.on_quit = on_quit
        self._thread = threading.Thread(target=self._run, name="keyboard", daemon=True)

    def start(self) -> None:
        if sys.stdin.isatty():
            print(
                "Fake panel: type 1 (Rất hài lòng) 2 (Hài lòng) 3 (Bình thường) "
                "4 (Không hài lòng), then Enter; q to quit.",
                flush=True,
            )
        self._thread.start()

    def _run(self) -> None:
        for line in sys.stdin:
            for key in line.strip():
                if key in "1234":
                    press_pin(self.factory, self.pins[int(key) - 1])
                elif key.lower() == "q":
                    self.on_quit()
                    return
        # stdin closed (e.g. run under a service manager): keep running without a keyboard


class CitizenSimulator:
    """Presses buttons at random, at about ``per_minute`` presses a minute.

    Most citizens are satisfied; now and then one presses twice (a refused press inside
    the lock-out), so the demo shows flagged presses too.
    """

    def __init__(
        self,
        factory: MockFactory,
        pins: Sequence[int],
        *,
        per_minute: float,
        weights: Sequence[float] = (0.62, 0.28, 0.07, 0.03),
        seed: int | None = None,
    ) -> None:
        self.factory = factory
        self.pins = list(pins)
        self.per_minute = per_minute
        self.weights = list(weights)
        self.rng = random.Random(seed)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="citizens", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(self.rng.expovariate(self.per_minute / 60.0)):
            button = self.rng.choices(range(4), weights=self.weights)[0]
            press_pin(self.factory, self.pins[button])
            if self.rng.random() < 0.05:
                time.sleep(0.6)
                press_pin(self.factory, self.pins[button])
