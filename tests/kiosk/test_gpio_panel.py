from gpiozero.pins.mock import MockFactory, MockPWMPin

from kiosk.gpio_panel import GpioButtonPanel


def test_each_pin_reports_its_button_number():
    factory = MockFactory()
    panel = GpioButtonPanel((5, 6, 13, 19), pin_factory=factory)
    seen = []
    panel.start(seen.append)
    for pin in (19, 5, 13, 6):
        factory.pin(pin).drive_low()
        factory.pin(pin).drive_high()
    assert seen == [4, 1, 3, 2]
    panel.close()


def test_held_button_is_one_press():
    factory = MockFactory()
    panel = GpioButtonPanel((5, 6, 13, 19), pin_factory=factory)
    seen = []
    panel.start(seen.append)
    factory.pin(5).drive_low()
    factory.pin(5).drive_low()  # still held: no new edge
    factory.pin(5).drive_high()
    assert seen == [1]


def test_lamp_of_chosen_button_lights():
    factory = MockFactory(pin_class=MockPWMPin)
    panel = GpioButtonPanel((5, 6, 13, 19), lamp_pins=(12, 16, 20, 21), buzzer_pin=26, pin_factory=factory)
    panel.show_choice(3)
    panel.thank_you()
    assert factory.pin(20).state  # lamp 3 on (blinking once, on first)
    assert not factory.pin(12).state
    panel.close()
