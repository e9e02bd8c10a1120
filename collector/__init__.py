"""Satisfaction collector: ingests ratings over MQTT, stores them once, serves reports."""

from kiosk import __version__

__all__ = ["__version__"]
