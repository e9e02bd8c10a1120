"""collector.toml: read once in main(), checked strictly."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from collector.errors import ConfigError
from kiosk.mqtt import MqttSettings
from kiosk.sections import build_section, limits
from kiosk.tomlfile import check_keys, read_toml


@dataclass(frozen=True)
class IngestSettings:
    client_id: str = field(default_factory=lambda: f"collector-{socket.gethostname()}".lower()[:60])
    share_group: str = "collector"  # "" = a plain (not shared) subscription
    batch_messages: int = field(default=200, metadata=limits(1, 10_000))  # commit after this many messages …
    batch_wait_s: float = field(default=0.2, metadata=limits(0, 10))  # … or after this long, whichever first
    snapshot_retention_days: float = field(default=90.0, metadata=limits(above=0))
    session_expiry_s: int = field(default=7 * 24 * 3600, metadata=limits(0, 2**32 - 1))
    # older quarantine entries are removed (and counted) …
    quarantine_retention_days: float = field(default=365.0, metadata=limits(above=0))
    # … and beyond this size the oldest too
    quarantine_max_mb: float = field(default=1024.0, metadata=limits(above=0))


@dataclass(frozen=True)
class HttpSettings:
    host: str = "127.0.0.1"
    port: int = field(default=8080, metadata=limits(1, 65535))
    secure_cookies: bool = False  # true behind HTTPS: cookies are then never sent over plain HTTP
    access_log: bool = False  # one key=value line per HTTP request (uvicorn's access log)


@dataclass(frozen=True)
class OfficeSettings:
    weekdays: tuple[int, ...] = field(default=(0, 1, 2, 3, 4), metadata=limits(0, 6))  # 0 = Monday
    spans: tuple[str, ...] = ("07:30-11:30", "13:30-17:00")


@dataclass(frozen=True)
class AlertSettings:
    """Defaults for every unit; a unit's own rules (set in the web UI) apply to everything below it."""

    # share of score 1 that raises an alert …
    dissatisfied_share: float = field(default=0.25, metadata=limits(above=0, high=1))
    window_h: float = field(default=24.0, metadata=limits(above=0, high=24 * 366))  # … among this many hours …
    min_ratings: int = field(default=8, metadata=limits(1, 1_000_000))  # … when there are at least this many
    # no rating at a counter for this long during office hours
    silent_min: int = field(default=90, metadata=limits(1, 100_000))
    offline_min: int = field(default=15, metadata=limits(1, 100_000))  # kiosk offline for this long
    interval_s: float = field(default=60.0, metadata=limits(1, 86400))
    webhook: str = ""  # POST each new alert as JSON here
    topic: str = ""  # MQTT topic for alerts; default <topic_prefix>/alerts


@dataclass(frozen=True)
class MailSettings:
    host: str = ""  # no host: no e-mail
    port: int = field(default=25, metadata=limits(1, 65535))
    sender: str = "bao-cao@localhost"
    username: str = ""
    password: str = ""
    starttls: bool = False
    monthly: tuple[dict[str, Any], ...] = ()  # [[mail.monthly]] unit = "10", to = ["a@b.vn"]
    # While kiosks still hold ratings of the month, its report waits up to this many days after the
    # month's end; then it goes anyway and says what is missing.
    backlog_wait_days: int = field(default=3, metadata=limits(0, 60))


@dataclass(frozen=True)
class FleetSettings:
    """How the collector keeps the fleet CA's revocation list alive (collector/crl.py)."""

    broker_reload_command: str = ""  # e.g. "systemctl reload mosquitto" (Debian's unit sends SIGHUP)
    broker_pid_file: str = ""  # or: SIGHUP the pid in this file (mosquitto's pid_file)
    crl_check_interval_h: float = field(default=6.0, metadata=limits(above=0, high=24 * 14))


@dataclass(frozen=True)
class UpdateSettings:
    """Where kiosks download releases (collector/releaseserver.py): HTTPS, kiosk certificates only."""

    host: str = ""  # address to listen on ("" = all)
    port: int = field(default=8443, metadata=limits(0, 65535))  # 0: no release server in this process
    public_url: str = (
        ""  # what kiosks use, e.g. https://collector.example.gov.vn:8443 ("": https://<[mqtt] host>:<port>)
    )
    tls_cert: str = ""  # server certificate ("": the fleet's broker.crt, which names the broker hosts)
    tls_key: str = ""


@dataclass(frozen=True)
class ReportSettings:
    # three-level form: score 2 counts as "hai_long" or "khong_hai_long"
    neutral_as: str = field(default="hai_long", metadata=limits(choices=("hai_long", "khong_hai_long")))
    # Three-level form: leave out ratings pressed while the kiosk's clock was unsynced (time unverified).
    three_level_exclude_unsynced: bool = False


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
    fleet: FleetSettings = field(default_factory=FleetSettings)
    update: UpdateSettings = field(default_factory=UpdateSettings)

    @property
    def release_url(self) -> str:
        return self.update.public_url or f"https://{self.mqtt.host}:{self.update.port}"

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
        name: doc.pop(name, {})
        for name in ("mqtt", "ingest", "http", "store", "reports", "office", "alerts", "mail", "fleet", "update")
    }
    _no_unknown(doc, {"data_dir", "registry", "timezone"}, "top level")
    if "data_dir" not in doc:
        raise ConfigError("collector.toml: data_dir is required")
    for key in ("data_dir", "registry", "timezone"):
        if key in doc and (not isinstance(doc[key], str) or "\x00" in doc[key] or not doc[key]):
            raise ConfigError(f"collector.toml {key} = {doc[key]!r}: expected a non-empty text")
    store = sections.pop("store")
    if not isinstance(store, dict):
        raise ConfigError(f"collector.toml [store] must be a table, not {store!r}")
    _no_unknown(store, {"url"}, "[store]")
    if not isinstance(store.get("url", ""), str):
        raise ConfigError(
            f"collector.toml [store] url = {store['url']!r}: expected sqlite:///path.db or postgresql://…"
        )
    url = str(store.get("url", ""))
    if url and not url.startswith(("sqlite:///", "postgresql://", "postgres://")):
        raise ConfigError(f"[store] url must be sqlite:///path.db or postgresql://…, not {url!r}")
    if url.startswith("sqlite:///") and not Path(url[len("sqlite:///") :]).is_absolute():
        url = f"sqlite:///{base_dir / url[len('sqlite:///') :]}"
    timezone = str(doc.get("timezone", "Asia/Ho_Chi_Minh"))
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError, OSError):
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
        fleet=_section(FleetSettings, sections["fleet"], "fleet", base_dir),
        update=_section(UpdateSettings, sections["update"], "update", base_dir),
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
    section = build_section(cls, values, where=f"collector.toml [{name}]", error=ConfigError)
    paths = {
        key: str(_path(getattr(section, key), base_dir))
        for key in ("tls_ca", "tls_cert", "tls_key")
        if getattr(section, key, None)
    }
    return replace(section, **paths) if paths else section


def _no_unknown(values: dict[str, Any], known: set[str], where: str) -> None:
    check_keys(values, known, f"collector.toml {where}", ConfigError)
