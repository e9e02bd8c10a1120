"""Remote settings: what a unit may change on a kiosk without a visit.

They travel in the kiosk's retained ``sat/v1/k/{kiosk}/config`` message (docs/contract.md):

    {"v": 1, "kiosk": "k-vb-q1", "revision": 7,
     "settings": {"panel": {"lockout_s": 10, "scores": [4, 3, 2, 1]},
                  "camera": {"enabled": false}, "outbox": {"status_interval_s": 120}}}

A key left out keeps the kiosk.toml value; ``"settings": {}`` gives every key back to kiosk.toml.
The whole message is checked — the same types and ranges as kiosk.toml — before any of it is used:
one bad value refuses all of it (never half-applied), the kiosk keeps what it had, and its status
says ``{"revision": 7, "state": "refused", "error": "…"}``. The collector checks with this same
module before it stores or sends anything. Pure: no I/O.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from kiosk import wire
from kiosk.hours import WEEKDAY, check_hours
from kiosk.sections import build_section, limits

MAX_CONFIG_BYTES = 16 * 1024


class RemoteSettingsError(ValueError):
    """A config message or a settings form that cannot be used as a whole."""


@dataclass(frozen=True)
class RemotePanel:
    lockout_s: float | None = field(default=None, metadata=limits(0, 3600))
    max_per_minute: int | None = field(default=None, metadata=limits(1, 600))
    flagged_per_minute: int | None = field(default=None, metadata=limits(0, 600))
    scores: tuple[int, ...] | None = field(default=None, metadata=limits(1, 4, length=4))


@dataclass(frozen=True)
class RemoteCamera:
    enabled: bool | None = None
    jpeg_quality: int | None = field(default=None, metadata=limits(1, 100))
    width: int | None = field(default=None, metadata=limits(16, 4096))


@dataclass(frozen=True)
class RemoteOutbox:
    status_interval_s: float | None = field(default=None, metadata=limits(10, 3600))


@dataclass(frozen=True)
class RemoteOffice:
    """Office hours: an update waits outside them to restart the kiosk (kiosk.toml [office])."""

    weekdays: tuple[int, ...] | None = field(default=None, metadata=WEEKDAY)  # 0 Monday .. 6 Sunday
    spans: tuple[str, ...] | None = None  # "HH:MM-HH:MM", local time
    timezone: str | None = None  # IANA, e.g. Asia/Ho_Chi_Minh

    def __post_init__(self) -> None:
        check_hours(self.weekdays, self.spans, self.timezone, resolve=True)


SECTIONS: dict[str, type] = {
    "panel": RemotePanel,
    "camera": RemoteCamera,
    "outbox": RemoteOutbox,
    "office": RemoteOffice,
}


@dataclass(frozen=True)
class RemoteSettings:
    """Checked settings: only the keys that were given."""

    panel: RemotePanel = field(default_factory=RemotePanel)
    camera: RemoteCamera = field(default_factory=RemoteCamera)
    outbox: RemoteOutbox = field(default_factory=RemoteOutbox)
    office: RemoteOffice = field(default_factory=RemoteOffice)

    def given(self) -> dict[str, dict[str, Any]]:
        """The keys set, as plain JSON values (what the message and the store carry)."""
        out: dict[str, dict[str, Any]] = {}
        for name in SECTIONS:
            values = {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(getattr(self, name)).items()}
            values = {k: v for k, v in values.items() if v is not None}
            if values:
                out[name] = values
        return out

    def over(self, base: Any) -> Any:
        """``base`` (a KioskSettings) with these keys put over its sections."""
        changed = {}
        for name in SECTIONS:
            section = getattr(self, name)
            values = {f.name: getattr(section, f.name) for f in fields(section) if getattr(section, f.name) is not None}
            if values:
                changed[name] = replace(getattr(base, name), **values)
        return replace(base, **changed)


def check_settings(doc: Any, *, ignored: list[str] | None = None) -> RemoteSettings:
    """``{"panel": {...}, ...}`` checked as a whole; RemoteSettingsError names the first bad value.

    With ``ignored`` (a kiosk reading its config): a section or key this version does not know —
    a newer collector's — is left out and its name added to the list, and the rest is used; a
    known key with a bad value still refuses the whole. Without (the collector): refused."""
    if not isinstance(doc, dict):
        raise RemoteSettingsError("settings must be an object of sections")
    if ignored is not None:
        doc = _known_only(doc, ignored)
    unknown = sorted(set(doc) - set(SECTIONS))
    if unknown:
        raise RemoteSettingsError(
            f"no remote setting section {', '.join(map(repr, unknown))} (known: {', '.join(SECTIONS)})"
        )
    sections = {}
    for name, cls in SECTIONS.items():
        values = doc.get(name, {})
        if isinstance(values, dict) and any(v is None for v in values.values()):
            raise RemoteSettingsError(f"[{name}]: null is not a value; leave the key out to keep kiosk.toml's")
        sections[name] = build_section(cls, values, where=f"[{name}]", error=RemoteSettingsError)
    return RemoteSettings(**sections)


def _known_only(doc: dict[str, Any], ignored: list[str]) -> dict[str, Any]:
    known: dict[str, Any] = {}
    for name, values in doc.items():
        cls = SECTIONS.get(name)
        if cls is None:
            ignored.append(str(name)[:64])
            continue
        if isinstance(values, dict):
            names = {f.name for f in fields(cls)}
            ignored.extend(f"{name}.{key}"[:64] for key in values if key not in names)
            values = {k: v for k, v in values.items() if k in names}
        known[name] = values
    return known


def merge(*layers: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Settings of the province, then the district, then the commune, then the kiosk: later wins per key."""
    out: dict[str, dict[str, Any]] = {}
    for layer in layers:
        for section, values in layer.items():
            out.setdefault(section, {}).update(values)
    return out


@dataclass(frozen=True)
class RemoteConfig:
    kiosk: str
    revision: int
    settings: RemoteSettings
    extra: dict[str, Any] = field(default_factory=dict)  # top-level keys of later additions (updates)
    selftest: str | None = None  # a request to run the unattended self-test, once per id
    ignored: tuple[str, ...] = ()  # sections and keys of a newer collector this kiosk does not know


def encode_config(
    kiosk: str,
    revision: int,
    settings: dict[str, dict[str, Any]],
    *,
    selftest: str | None = None,
    update: dict[str, Any] | None = None,
    update_action: dict[str, str] | None = None,
) -> bytes:
    """``selftest``: run the unattended self-test once for this request id (kiosk/service.py).
    ``update``: a release offered to the kiosk (kiosk/update.py checks it whole)."""
    checked = check_settings(settings)  # the collector never sends what a kiosk would refuse
    doc: dict[str, Any] = {"v": wire.VERSION, "kiosk": kiosk, "revision": revision, "settings": checked.given()}
    if selftest is not None:
        if not wire.PROBE.match(selftest):
            raise RemoteSettingsError("a self-test request id is 8-32 hex digits")
        doc["selftest"] = selftest
    if update is not None:
        doc["update"] = update
    if update_action is not None:
        doc["update_action"] = update_action
    payload = json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()
    if len(payload) > MAX_CONFIG_BYTES:
        raise RemoteSettingsError(f"config message of {len(payload)} bytes > {MAX_CONFIG_BYTES}")
    return payload


def decode_config(payload: bytes, *, kiosk: str) -> RemoteConfig:
    """The kiosk's retained config message, checked whole. ``RemoteSettingsError`` (with the
    revision when it could be read, as ``.revision``) when any of it is wrong."""
    if len(payload) > MAX_CONFIG_BYTES:
        raise RemoteSettingsError(f"config message of {len(payload)} bytes > {MAX_CONFIG_BYTES}")
    try:
        doc = wire.loads(payload, long_texts=True)  # an update offer holds PEM and base64 texts
    except wire.WireError as exc:
        raise RemoteSettingsError(f"config message: {exc}") from None
    if not isinstance(doc, dict) or doc.get("v") != wire.VERSION:
        raise RemoteSettingsError("config message must be an object with v = 1")
    try:
        wire.check_tree({k: v for k, v in doc.items() if k != "update"})  # the offer is checked by kiosk/update.py
    except wire.WireError as exc:
        raise RemoteSettingsError(f"config message: {exc}") from None
    if not wire.is_seq(doc.get("revision")):
        raise RemoteSettingsError("config revision must be a positive integer")
    revision = int(doc["revision"])
    if doc.get("kiosk") != kiosk:
        raise _with_revision(RemoteSettingsError(f"config names kiosk {doc.get('kiosk')!r}, not {kiosk!r}"), revision)
    ignored: list[str] = []
    try:
        settings = check_settings(doc.get("settings", {}), ignored=ignored)
    except RemoteSettingsError as exc:
        raise _with_revision(exc, revision) from None
    extra = {k: v for k, v in doc.items() if k not in ("v", "kiosk", "revision", "settings", "selftest")}
    selftest = doc.get("selftest")
    if selftest is not None and not (isinstance(selftest, str) and wire.PROBE.match(selftest)):
        raise _with_revision(RemoteSettingsError("config selftest must be a request id of 8-32 hex digits"), revision)
    return RemoteConfig(kiosk, revision, settings, extra, selftest, tuple(ignored[:32]))


def _with_revision(exc: RemoteSettingsError, revision: int) -> RemoteSettingsError:
    exc.revision = revision  # type: ignore[attr-defined]
    return exc
