"""kiosk.toml: read once in main(), checked strictly (a typo in a key is an error, not a default)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from kiosk import wire
from kiosk.errors import ConfigError
from kiosk.hours import DEFAULT_TIMEZONE, WEEKDAY, OfficeHours, check_hours, zone
from kiosk.mqtt import MqttSettings
from kiosk.press import PressRules
from kiosk.sections import build_section, limits
from kiosk.tomlfile import check_keys, read_toml

DEFAULT_PINS = (17, 27, 22, 23)


BCM = limits(0, 27)  # the GPIO numbers of a Raspberry Pi's 40-pin header


@dataclass(frozen=True)
class PanelSettings:
    kind: str = field(default="gpio", metadata=limits(choices=("gpio", "serial")))
    pins: tuple[int, ...] = field(default=DEFAULT_PINS, metadata=BCM)
    lamp_pins: tuple[int, ...] = field(default=(), metadata=BCM)
    buzzer_pin: int | None = field(default=None, metadata=BCM)
    serial_port: str | None = None
    scores: tuple[int, ...] = field(default=(4, 3, 2, 1), metadata=limits(1, 4, length=4))
    lockout_s: float = field(default=5.0, metadata=limits(0, 3600))
    max_per_minute: int = field(default=4, metadata=limits(1, 1_000_000))  # high only in tests and benchmarks
    flagged_per_minute: int = field(default=3, metadata=limits(0, 600))
    debounce_s: float = field(default=0.25, metadata=limits(0, 5))

    def rules(self) -> PressRules:
        return PressRules(
            lockout_s=self.lockout_s,
            max_per_minute=self.max_per_minute,
            flagged_per_minute=self.flagged_per_minute,
            debounce_s=self.debounce_s,
        )


@dataclass(frozen=True)
class CameraSettings:
    source: str = ""  # "" = no camera; index, /dev/videoN, rtsp://…, a file, or "picamera2"
    enabled: bool = True  # false: no pictures (a unit may switch this remotely)
    timeout_s: float = field(default=3.0, metadata=limits(above=0, high=60))
    width: int = field(default=640, metadata=limits(16, 4096))
    jpeg_quality: int = field(default=80, metadata=limits(1, 100))
    max_storage_mb: int = field(default=500, metadata=limits(1, 1_000_000))


@dataclass(frozen=True)
class ClockSettings:
    assume_synced: bool = False
    unsynced_hold_s: float = field(default=900.0, metadata=limits(0, 86400))


@dataclass(frozen=True)
class OutboxSettings:
    retention_days: float = field(default=7.0, metadata=limits(0, 3650))
    # first wait for an ack; doubles after each unanswered re-send …
    ack_timeout_s: float = field(default=30.0, metadata=limits(0.1, 3600))
    ack_timeout_max_s: float = field(default=600.0, metadata=limits(0.1, 86400))  # … up to this
    status_interval_s: float = field(default=60.0, metadata=limits(1, 3600))


@dataclass(frozen=True)
class OfficeSettings:
    """When citizens are served here: an update waits outside these hours to restart the kiosk.
    No weekdays (the default): office hours unknown, an update restarts it at once."""

    weekdays: tuple[int, ...] = field(default=(), metadata=WEEKDAY)  # 0 Monday .. 6 Sunday
    spans: tuple[str, ...] = ("07:30-11:30", "13:30-17:00")
    timezone: str = DEFAULT_TIMEZONE

    def __post_init__(self) -> None:
        check_hours(self.weekdays, self.spans, self.timezone)

    def is_open(self, moment: datetime) -> bool:
        return OfficeHours(self.weekdays, self.spans).is_open(moment, zone(self.timezone))


@dataclass(frozen=True)
class KioskSettings:
    kiosk_id: str
    counter: str
    data_dir: Path
    mqtt: MqttSettings = field(default_factory=MqttSettings)
    panel: PanelSettings = field(default_factory=PanelSettings)
    camera: CameraSettings = field(default_factory=CameraSettings)
    clock: ClockSettings = field(default_factory=ClockSettings)
    outbox: OutboxSettings = field(default_factory=OutboxSettings)
    office: OfficeSettings = field(default_factory=OfficeSettings)

    @property
    def outbox_path(self) -> Path:
        return self.data_dir / "outbox.db"

    @property
    def snapshot_dir(self) -> Path:
        return self.data_dir / "snapshots"

    @property
    def state_path(self) -> Path:
        return self.data_dir / "state.json"

    @property
    def remote_settings_path(self) -> Path:
        """The last remote settings message used (kiosk/remote.py), kept across restarts."""
        return self.data_dir / "remote-settings.json"


FAKE_DEFAULTS: dict[str, Any] = {
    "kiosk_id": "k-demo-q1",
    "counter": "demo-q1",
    "data_dir": "kiosk-data",
}


def load_settings(path: str | Path | None, *, fake_hardware: bool = False) -> KioskSettings:
    if path is None:
        if not fake_hardware:
            raise ConfigError("kiosk run needs --config kiosk.toml (or --fake-hardware on a laptop)")
        return settings_from_dict(dict(FAKE_DEFAULTS), base_dir=Path.cwd())
    path = Path(path)
    doc = read_toml(path, ConfigError)
    return settings_from_dict(doc, base_dir=path.parent)


def settings_from_dict(doc: dict[str, Any], *, base_dir: Path) -> KioskSettings:
    doc = dict(doc)
    sections = {name: doc.pop(name, {}) for name in ("mqtt", "panel", "camera", "clock", "outbox", "office")}
    _no_unknown(doc, {"kiosk_id", "counter", "data_dir"}, "top level")
    for key in ("kiosk_id", "counter", "data_dir"):
        if key not in doc:
            raise ConfigError(f"kiosk.toml: {key} is required")
    for key in ("kiosk_id", "counter", "data_dir"):
        if not isinstance(doc[key], str):
            raise ConfigError(f"kiosk.toml {key} = {doc[key]!r}: expected a text")
    kiosk_id, counter = str(doc["kiosk_id"]), str(doc["counter"])
    if not wire.KIOSK_ID.match(kiosk_id):
        raise ConfigError(f"kiosk_id {kiosk_id!r}: lowercase letters, digits and '-', 2..63 characters")
    if not wire.COUNTER_ID.match(counter):
        raise ConfigError(f"counter {counter!r} is not a valid counter id")
    if "\x00" in doc["data_dir"]:
        raise ConfigError("kiosk.toml data_dir: a path cannot hold a NUL character")
    data_dir = Path(str(doc["data_dir"]))
    if not data_dir.is_absolute():
        data_dir = base_dir / data_dir
    settings = KioskSettings(
        kiosk_id=kiosk_id,
        counter=counter,
        data_dir=data_dir,
        mqtt=_section(MqttSettings, sections["mqtt"], "mqtt"),
        panel=_section(PanelSettings, sections["panel"], "panel"),
        camera=_section(CameraSettings, sections["camera"], "camera"),
        clock=_section(ClockSettings, sections["clock"], "clock"),
        outbox=_section(OutboxSettings, sections["outbox"], "outbox"),
        office=_section(OfficeSettings, sections["office"], "office"),
    )
    _check_panel(settings.panel)
    paths: dict[str, Any] = {}
    for key in ("tls_ca", "tls_cert", "tls_key"):
        value = getattr(settings.mqtt, key)
        if value and not Path(value).is_absolute():
            paths[key] = str(base_dir / value)
    return replace(settings, mqtt=replace(settings.mqtt, **paths)) if paths else settings


def _section(cls: type, values: Any, name: str) -> Any:
    return build_section(cls, values, where=f"kiosk.toml [{name}]", error=ConfigError)


def _check_panel(panel: PanelSettings) -> None:
    if panel.kind not in ("gpio", "serial"):
        raise ConfigError(f'[panel] kind must be "gpio" or "serial", not {panel.kind!r}')
    if sorted(panel.scores) != [1, 2, 3, 4]:
        raise ConfigError(f"[panel] scores must give each of 1, 2, 3, 4 once, not {list(panel.scores)}")
    if panel.kind == "gpio" and len(panel.pins) != 4:
        raise ConfigError(f"[panel] pins needs 4 BCM numbers, not {list(panel.pins)}")
    if panel.kind == "serial" and not panel.serial_port:
        raise ConfigError('[panel] serial_port is required with kind = "serial" (e.g. /dev/serial/by-id/usb-…-if00)')
    try:
        panel.rules()
    except ValueError as exc:
        raise ConfigError(f"[panel] {exc}") from None


def _no_unknown(values: dict[str, Any], known: set[str], where: str) -> None:
    check_keys(values, known, f"kiosk.toml {where}", ConfigError)
