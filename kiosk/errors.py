"""The kiosk's exceptions: one root, leaves that also inherit the matching builtin."""


class KioskError(Exception):
    """Root of every error the kiosk raises on purpose."""


class ConfigError(KioskError, ValueError):
    """The kiosk configuration is missing a key or has a bad value."""


class OutboxError(KioskError, OSError):
    """The outbox could not commit (disk full, card failing, file locked)."""


class PanelError(KioskError, OSError):
    """The button panel cannot be opened or has gone away."""


class CameraError(KioskError, OSError):
    """The camera cannot be opened or gave no picture."""


class MqttError(KioskError, OSError):
    """The MQTT client would not take a message (not connected, queue full, bad topic)."""
