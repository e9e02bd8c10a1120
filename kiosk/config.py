"""kiosk.toml: read once in main(), checked strictly (a typo in a key is an error, not a default)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from kiosk import wire
from kiosk.errors import ConfigError
from kiosk.press import PressRules
from kiosk.publisher import MqttSettings
from kiosk.tomlfile import check_keys, read_toml

DEFAULT_PINS = (17, 27, 22, 23)


@dataclass(frozen=True)
class PanelSettings:
    kind: str = "gpio"  # gpio | serial
    pins: tuple[int, ...] = DEFAULT_PINS
    lamp_pins: tuple[int, ...] = ()
    buzzer_pin: int | None = None
    serial_port: str | None = None
    scores: tuple[int, ...] = (4, 3, 2, 1)
    lockout_s: float = 5.0
    max_per_minute: int = 4
    flagged_per_minute: int = 3
    debounce_s: float = 0.25

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
    timeout_s: float = 3.0
    width: int = 640
    jpeg_quality: int = 80
    max_storage_mb: int = 500


@dataclass(frozen=True)
class ClockSettings:
    assume_synced: bool = False
    unsynced_hold_s: float = 900.0


@dataclass(frozen=True)
class OutboxSettings:
    retention_days: float = 7.0
    ack_timeout_s: float = 30.0
    status_interval_s: float = 60.0


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

    @property
    def outbox_path(self) -> Path:
        return self.data_dir / "outbox.db"

    @property
    def snapshot_dir(self) -> Path:
        return self.data_dir / "snapshots"

    @property
    def state_path(self) -> Path:
        return self.data_dir / "state.json"


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
    sections = {name: doc.pop(name, {}) for name in ("mqtt", "panel", "camera", "clock", "outbox")}
    _no_unknown(doc, {"kiosk_id", "counter", "data_dir"}, "top level")
    for key in ("kiosk_id", "counter", "data_dir"):
        if key not in doc:
            raise ConfigError(f"kiosk.toml: {key} is required")
    kiosk_id, counter = str(doc["kiosk_id"]), str(doc["counter"])
    if not wire.KIOSK_ID.match(kiosk_id):
        raise ConfigError(f"kiosk_id {kiosk_id!r}: lowercase letters, digits and '-', 2..63 characters")
    if not wire.COUNTER_ID.match(counter):
        raise ConfigError(f"counter {counter!r} is not a valid counter id")
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
    )
    _check_panel(settings.panel)
    paths: dict[str, Any] = {}
    for key in ("tls_ca", "tls_cert", "tls_key"):
        value = getattr(settings.mqtt, key)
        if value and not Path(value).is_absolute():
            paths[key] = str(base_dir / value)
    return replace(settings, mqtt=replace(settings.mqtt, **paths)) if paths else settings


def _section(cls: type, values: Any, name: str) -> Any:
    if not isinstance(values, dict):
        raise ConfigError(f"[{name}] must be a table")
    known = {f.name: f for f in fields(cls)}
    _no_unknown(values, set(known), f"[{name}]")
    converted: dict[str, Any] = {}
    for key, value in values.items():
        default = getattr(cls(), key) if _has_default(cls) else None
        if isinstance(default, tuple) or key in ("pins", "lamp_pins", "scores"):
            if not isinstance(value, list):
                raise ConfigError(f"[{name}] {key} must be a list")
            value = tuple(value)
        elif isinstance(default, bool):
            if not isinstance(value, bool):
                raise ConfigError(f"[{name}] {key} must be true or false")
        elif isinstance(default, float) and isinstance(value, int):
            value = float(value)
        converted[key] = value
    try:
        return cls(**converted)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"[{name}]: {exc}") from None


def _has_default(cls: type) -> bool:
    try:
        cls()
    except TypeError:
        return False
    return True


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
