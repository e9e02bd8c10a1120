"""The button panel port: four buttons facing the citizen, lamps and a buzzer."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

OnPress = Callable[[int], None]
"""Called with the button number 1..4 (left to right), on the panel's own thread."""


class ButtonPanel(Protocol):
    name: str

    def start(self, on_press: OnPress) -> None: ...

    @property
    def state(self) -> str:
        """``ok`` or ``missing`` (unplugged, no heartbeat)."""

    def show_choice(self, button: int) -> None:
        """Light the lamp of the button just accepted."""

    def thank_you(self) -> None:
        """The rating is safely stored: lamps and beep."""

    def fault(self) -> None:
        """The kiosk cannot record: tell the citizen and the officer."""

    def close(self) -> None: ...
