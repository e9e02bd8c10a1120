"""The collector's exceptions: one root, leaves that also inherit the matching builtin."""


class CollectorError(Exception):
    """Root of every error the collector raises on purpose."""


class ConfigError(CollectorError, ValueError):
    """collector.toml is missing a key or has a bad value."""


class RegistryError(CollectorError, ValueError):
    """The registry file breaks a rule (unknown parent, cycle, duplicate id)."""


class NotFound(CollectorError, LookupError):
    """No unit, counter or kiosk with that id."""
