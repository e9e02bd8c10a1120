"""collector.toml: read once in main(), checked strictly."""

from __future__ import annotations

import socket
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from collector.errors import ConfigError
from kiosk.publisher import MqttSettings


@dataclass(frozen=True)
class IngestSettings:
    client_id: str = field(default_factory=lambda: f"collector-{socket.gethostname()}".lower()[:60])
    share_group: str = "collector"  # "" = a plain (not shared) subscription
    batch_messages: int = 200  # commit after this many messages …
    batch_wait_s: float = 0.2  # … or after this long, whichever comes first
    snapshot_retention_days: float = 90.0
    session_expiry_s: int = 7 * 24 * 3600


@dataclass(frozen=True)
class HttpSettings:
    host: str = "127.0.0.1"
    port: int = 8080


@dataclass(frozen=True)
class ReportSettings:
    neutral_as: str = "hai_long"  # three-level form: score 2 counts as "hai_long" or "khong_hai_long"


@dataclass(frozen=True)
class CollectorSettings:
    data_dir: Path
    registry: Path | None = None
    timezone: str = "Asia/Ho_Chi_Minh"
    store_url: str = ""
    mqtt: MqttSettings = field(default_factory=MqttSettings)
    ingest: IngestSettings = field(default_factory=IngestSettings)
    http: HttpSettings = field(default_factory=HttpSettings)
    reports: ReportSettings = field(default_factory=ReportSettings)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def snapshot_dir(self) -> Path:
        return self.data_dir / "snapshots"

    @property
    def resolved_store_url(self) -> str:
        return self.store_url or f"sqlite:///{self.data_dir / 'collector.db'}"


def load_settings(path: str | Path) -> CollectorSettings:
    path = Path(path)
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file {path} not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return settings_from_dict(doc, base_dir=path.parent)


def settings_from_dict(doc: dict[str, Any], *, base_dir: Path) -> CollectorSettings:
    doc = dict(doc)
    sections = {name: doc.pop(name, {}) for name in ("mqtt", "ingest", "http", "store", "reports")}
    _no_unknown(doc, {"data_dir", "registry", "timezone"}, "top level")
    if "data_dir" not in doc:
        raise ConfigError("collector.toml: data_dir is required")
    store = sections.pop("store")
    _no_unknown(store, {"url"}, "[store]")
    url = str(store.get("url", ""))
    if url and not url.startswith(("sqlite:///", "postgresql://", "postgres://")):
        raise ConfigError(f"[store] url must be sqlite:///path.db or postgresql://…, not {url!r}")
    if url.startswith("sqlite:///") and not Path(url[len("sqlite:///") :]).is_absolute():
        url = f"sqlite:///{base_dir / url[len('sqlite:///') :]}"
    timezone = str(doc.get("timezone", "Asia/Ho_Chi_Minh"))
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"timezone {timezone!r} is not a known IANA time zone") from None
    settings = CollectorSettings(
        data_dir=_path(doc["data_dir"], base_dir),
        registry=_path(doc["registry"], base_dir) if "registry" in doc else None,
        timezone=timezone,
        store_url=url,
        mqtt=_section(MqttSettings, sections["mqtt"], "mqtt", base_dir),
        ingest=_section(IngestSettings, sections["ingest"], "ingest", base_dir),
        http=_section(HttpSettings, sections["http"], "http", base_dir),
        reports=_section(ReportSettings, sections["reports"], "reports", base_dir),
    )
    if settings.reports.neutral_as not in ("hai_long", "khong_hai_long"):
        raise ConfigError('[reports] neutral_as must be "hai_long" or "khong_hai_long"')
    return settings


def _path(value: Any, base_dir: Path) -> Path:
    path = Path(str(value))
    return path if path.is_absolute() else base_dir / path


def _section(cls: type, values: Any, name: str, base_dir: Path) -> Any:
    if not isinstance(values, dict):
        raise ConfigError(f"[{name}] must be a table")
    _no_unknown(values, {f.name for f in fields(cls)}, f"[{name}]")
    values = dict(values)
    for key in ("tls_ca", "tls_cert", "tls_key"):
        if values.get(key):
            values[key] = str(_path(values[key], base_dir))
    try:
        return cls(**values)
    except TypeError as exc:
        raise ConfigError(f"[{name}]: {exc}") from None


def _no_unknown(values: dict[str, Any], known: set[str], where: str) -> None:
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(
            f"collector.toml {where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
        )
