"""Four buttons (and optional lamps and a buzzer) on the Pi's GPIO header, via gpiozero."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from gpiozero import LED, Button, Buzzer
from gpiozero.exc import GPIOZeroError

from kiosk.errors import PanelError
from kiosk.panel import OnPress

log = logging.getLogger(__name__)


class GpioButtonPanel:
    """Buttons wired between a BCM pin and ground (internal pull-up).

    ``bounce_time`` is left to the kiosk's own debounce (kiosk.press): gpiozero's mock pins
    ignore it and its debounce has open bugs.
    """

    def __init__(
        self,
        pins: Sequence[int],
        *,
        lamp_pins: Sequence[int] = (),
        buzzer_pin: int | None = None,
        pin_factory: Any = None,
    ) -> None:
        if len(pins) != 4:
            raise PanelError(f"a GPIO panel needs 4 button pins, got {list(pins)}")
        if lamp_pins and len(lamp_pins) != 4:
            raise PanelError(f"lamp_pins needs 4 pins or none, got {list(lamp_pins)}")
        self.name = f"gpio{list(pins)}"
        try:
            self.buttons = [Button(pin, pull_up=True, pin_factory=pin_factory) for pin in pins]
            self.lamps = [LED(pin, pin_factory=pin_factory) for pin in lamp_pins]
            self.buzzer = Buzzer(buzzer_pin, pin_factory=pin_factory) if buzzer_pin is not None else None
        except GPIOZeroError as exc:
            raise PanelError(f"GPIO panel on pins {list(pins)}: {exc} — are the pins free and wired?") from exc

    @property
    def state(self) -> str:
        return "ok"

    def start(self, on_press: OnPress) -> None:
        for number, button in enumerate(self.buttons, start=1):
            button.when_pressed = _presser(on_press, number)

    def show_choice(self, button: int) -> None:
        for number, lamp in enumerate(self.lamps, start=1):
            if number == button:
                lamp.blink(on_time=2.0, off_time=0.1, n=1, background=True)
            else:
                lamp.off()

    def thank_you(self) -> None:
        if self.buzzer is not None:
            self.buzzer.beep(on_time=0.12, off_time=0.08, n=2, background=True)

    def fault(self) -> None:
        for lamp in self.lamps:
            lamp.blink(on_time=0.2, off_time=0.2, n=10, background=True)
        if self.buzzer is not None:
            self.buzzer.beep(on_time=0.6, off_time=0.2, n=3, background=True)

    def close(self) -> None:
        for device in [*self.buttons, *self.lamps, *([self.buzzer] if self.buzzer else [])]:
            device.close()


def _presser(on_press: OnPress, number: int):  # type: ignore[no-untyped-def]
    def pressed() -> None:
        on_press(number)

    return pressed
