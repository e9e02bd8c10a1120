"""collector.toml: read once in main(), checked strictly."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from collector.errors import ConfigError
from kiosk.publisher import MqttSettings
from kiosk.tomlfile import check_keys, read_toml


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
    secure_cookies: bool = False  # true behind HTTPS: cookies are then never sent over plain HTTP


@dataclass(frozen=True)
class OfficeSettings:
    weekdays: tuple[int, ...] = (0, 1, 2, 3, 4)  # 0 = Monday
    spans: tuple[str, ...] = ("07:30-11:30", "13:30-17:00")


@dataclass(frozen=True)
class AlertSettings:
    """Defaults for every unit; a unit's own rules (set in the web UI) apply to everything below it."""

    dissatisfied_share: float = 0.25  # share of score 1 that raises an alert …
    window_h: float = 24.0  # … among the ratings of this many hours …
    min_ratings: int = 8  # … when there are at least this many
    silent_min: int = 90  # no rating at a counter for this long during office hours
    offline_min: int = 15  # kiosk offline (will, or no status) for this long
    interval_s: float = 60.0
    webhook: str = ""  # POST each new alert as JSON here
    topic: str = ""  # MQTT topic for alerts; default <topic_prefix>/alerts


@dataclass(frozen=True)
class MailSettings:
    host: str = ""  # no host: no e-mail
    port: int = 25
    sender: str = "bao-cao@localhost"
    username: str = ""
    password: str = ""
    starttls: bool = False
    monthly: tuple[dict[str, Any], ...] = ()  # [[mail.monthly]] unit = "10", to = ["a@b.vn"]


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
    office: OfficeSettings = field(default_factory=OfficeSettings)
    alerts: AlertSettings = field(default_factory=AlertSettings)
    mail: MailSettings = field(default_factory=MailSettings)

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
    doc = read_toml(path, ConfigError)
    return settings_from_dict(doc, base_dir=path.parent)


def settings_from_dict(doc: dict[str, Any], *, base_dir: Path) -> CollectorSettings:
    doc = dict(doc)
    sections = {
        name: doc.pop(name, {}) for name in ("mqtt", "ingest", "http", "store", "reports", "office", "alerts", "mail")
    }
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
        office=_section(OfficeSettings, sections["office"], "office", base_dir),
        alerts=_section(AlertSettings, sections["alerts"], "alerts", base_dir),
        mail=_section(MailSettings, sections["mail"], "mail", base_dir),
    )
    try:
        from collector.office import OfficeHours

        OfficeHours(settings.office.weekdays, settings.office.spans)
    except ValueError as exc:
        raise ConfigError(f"[office] {exc}") from None
    for entry in settings.mail.monthly:
        if not isinstance(entry, dict) or set(entry) != {"unit", "to"} or not isinstance(entry["to"], list):
            raise ConfigError('[[mail.monthly]] needs unit = "…" and to = ["…"]')
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
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
    for key in ("tls_ca", "tls_cert", "tls_key"):
        if values.get(key):
            values[key] = str(_path(values[key], base_dir))
    try:
        return cls(**values)
    except TypeError as exc:
        raise ConfigError(f"[{name}]: {exc}") from None


def _no_unknown(values: dict[str, Any], known: set[str], where: str) -> None:
    check_keys(values, known, f"collector.toml {where}", ConfigError)
