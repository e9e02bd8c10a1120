"""Satisfaction kiosk: reads a four-button panel at a service counter, keeps every
rating in a local SQLite outbox and delivers it to the collector over MQTT."""

__version__ = "0.1.0"
