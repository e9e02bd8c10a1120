"""Remote settings kept by the collector and sent to kiosks (kiosk/remote.py says what they are).

A unit's settings hold for every kiosk under it; a district's under the province's, a commune's
under the district's, a kiosk's own over all of them, key by key. Every change gets a new
revision. The store is the one truth: the web only writes there, and each ingest process sends
every kiosk whose settings changed its retained ``…/config`` message (``ConfigSender``), so any
number of web and ingest processes agree without talking to each other.
"""

from __future__ import annotations

import json
import logging
import secrets
import typing
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, fields
from typing import Any, Protocol

from collector.errors import CollectorError, NotFound
from collector.registry import Registry
from kiosk import remote
from kiosk.remote import RemoteSettingsError

log = logging.getLogger(__name__)

SCOPES = ("unit", "kiosk")
UPDATE_ACTIONS = ("retry", "rollback")
Offers = Callable[[str], "tuple[dict[str, Any] | None, int] | None"]  # kiosk -> (update offer, revision)


class SettingsFormError(CollectorError):
    """A settings form or command that cannot be used as a whole."""


@dataclass(frozen=True)
class Layer:
    scope: str  # "unit:<id>", "kiosk:<id>" (settings) or "command:<kiosk>" (a self-test request)
    settings: dict[str, Any]
    revision: int
    updated_by: str
    updated_at: str


@dataclass(frozen=True)
class Effective:
    kiosk: str
    revision: int
    settings: dict[str, dict[str, Any]]
    layers: tuple[Layer, ...]  # the ones that apply, the widest first
    selftest: str | None = None  # a self-test request not yet superseded
    update: dict[str, Any] | None = None  # a release offered to this kiosk (collector/releases.py)
    update_action: dict[str, str] | None = None  # an admin's retry or rollback, once per id

    def payload(self) -> bytes:
        return remote.encode_config(
            self.kiosk,
            self.revision,
            self.settings,
            selftest=self.selftest,
            update=self.update,
            update_action=self.update_action,
        )


class SettingsStore(Protocol):
    def transaction(self) -> AbstractContextManager[Any]: ...
    def remote_settings_put(self, scope: str, doc: str, by: str, at: str) -> int: ...
    def remote_settings_all(self) -> list[tuple[str, str, int, str, str]]: ...


def scope_key(kind: str, ident: str) -> str:
    if kind not in SCOPES:
        raise SettingsFormError(f"settings are kept per unit or per kiosk, not per {kind!r}")
    return f"{kind}:{ident}"


class SettingsBook:
    def __init__(self, store: SettingsStore) -> None:
        self.store = store

    def layers(self) -> dict[str, Layer]:
        """Every stored scope: ``unit:…`` and ``kiosk:…`` settings, ``command:…`` requests."""
        return {
            scope: Layer(scope, json.loads(doc), int(revision), by, at)
            for scope, doc, revision, by, at in self.store.remote_settings_all()
        }

    def request_selftest(self, kiosk: str, registry: Registry, *, by: str, at: str) -> Layer:
        """Ask the kiosk to run its unattended self-test (once; a new request runs it again)."""
        return self._command(kiosk, registry, "selftest", secrets.token_hex(8), by=by, at=at)

    def request_update_action(self, kiosk: str, action: str, registry: Registry, *, by: str, at: str) -> Layer:
        """``retry``: take again a release it switched back from; ``rollback``: go back to the
        version before the one it runs now (and not take that one again)."""
        if action not in UPDATE_ACTIONS:
            raise SettingsFormError(f"an update action is {' or '.join(UPDATE_ACTIONS)}")
        return self._command(kiosk, registry, "update_action", {"id": secrets.token_hex(8), "do": action}, by=by, at=at)

    def _command(self, kiosk: str, registry: Registry, key: str, value: Any, *, by: str, at: str) -> Layer:
        if kiosk not in registry.kiosks:
            raise NotFound(f"no kiosk {kiosk!r} in the registry")
        scope = f"command:{kiosk}"
        with self.store.transaction():
            old = self.layers().get(scope)
            doc = {**(old.settings if old else {}), key: value}
            revision = self.store.remote_settings_put(scope, json.dumps(doc), by, at)
        return Layer(scope, doc, revision, by, at)

    def put(self, kind: str, ident: str, values: Mapping[str, Any], registry: Registry, *, by: str, at: str) -> Layer:
        """Set a unit's or a kiosk's own settings (``{}`` clears them), checked as a whole first."""
        scope = scope_key(kind, ident)
        if kind == "unit":
            registry.unit(ident)
        elif ident not in registry.kiosks:
            raise NotFound(f"no kiosk {ident!r} in the registry")
        try:
            checked = remote.check_settings(dict(values))
        except RemoteSettingsError as exc:
            raise SettingsFormError(str(exc)) from None
        doc = json.dumps(checked.given(), sort_keys=True)
        with self.store.transaction():
            revision = self.store.remote_settings_put(scope, doc, by, at)
        return Layer(scope, checked.given(), revision, by, at)

    def effective(
        self, kiosk: str, registry: Registry, layers: dict[str, Layer] | None = None, offers: Offers | None = None
    ) -> Effective | None:
        """What the kiosk should use over its kiosk.toml; None when nothing was ever set for it.
        ``offers`` gives the release offered to a kiosk and the rollout's revision."""
        layers = self.layers() if layers is None else layers
        entry = registry.kiosks.get(kiosk)
        if entry is None:
            return None
        counter = registry.counters.get(entry.counter)
        chain = [f"unit:{u.id}" for u in registry.path(counter.unit)] if counter is not None else []
        found = tuple(layers[s] for s in [*chain, f"kiosk:{kiosk}"] if s in layers)
        command = layers.get(f"command:{kiosk}")
        offer = offers(kiosk) if offers is not None else None
        if not found and command is None and offer is None:
            return None
        revisions = [layer.revision for layer in (*found, *([command] if command else []))]
        if offer is not None:
            revisions.append(offer[1])
        return Effective(
            kiosk,
            max(revisions),
            remote.merge(*(layer.settings for layer in found)),
            found,
            selftest=str(command.settings["selftest"]) if command and command.settings.get("selftest") else None,
            update_action=command.settings.get("update_action") if command else None,
            update=offer[0] if offer is not None else None,
        )

    def all_effective(self, registry: Registry, offers: Offers | None = None) -> dict[str, Effective]:
        layers = self.layers()
        if not layers:
            return {}
        out = {}
        for kiosk in registry.kiosks:
            found = self.effective(kiosk, registry, layers, offers)
            if found is not None:
                out[kiosk] = found
        return out


FORM_KEYS: tuple[tuple[str, str], ...] = tuple(
    (section, f.name) for section, cls in remote.SECTIONS.items() for f in fields(cls)
)


def from_form(form: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """Settings from a form whose fields are named ``section.key``; an empty field inherits."""
    out: dict[str, dict[str, Any]] = {}
    for section, key in FORM_KEYS:
        raw = str(form.get(f"{section}.{key}", "")).strip()
        if not raw:
            continue
        hint = typing.get_type_hints(remote.SECTIONS[section])[key]
        out.setdefault(section, {})[key] = _parse(raw, hint, f"{section}.{key}")
    return out


def _parse(raw: str, hint: Any, label: str) -> Any:
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    kind = args[0] if args else hint
    try:
        if kind is bool:
            if raw.lower() in ("true", "on", "yes", "1"):
                return True
            if raw.lower() in ("false", "off", "no", "0"):
                return False
            raise ValueError(raw)
        if kind is int:
            return int(raw)
        if kind is float:
            return float(raw)
        if kind is str:
            return raw
        if typing.get_origin(kind) is tuple:
            parts = [part for part in raw.replace(" ", ",").split(",") if part]
            return parts if typing.get_args(kind)[0] is str else [int(part) for part in parts]
    except ValueError:
        pass
    raise SettingsFormError(f"{label} = {raw[:40]!r}: not a {_kind_name(kind)}")


def _kind_name(kind: Any) -> str:
    if kind is bool:
        return "yes/no value"
    if typing.get_origin(kind) is tuple:
        return "list of whole numbers" if typing.get_args(kind)[0] is int else "list"
    return {int: "whole number", float: "number"}.get(kind, "value")


class ConfigSender:
    """Sends each kiosk its retained config when its effective settings change (and all of them
    again on every new connection: a broker that lost its retained messages gets them back)."""

    def __init__(
        self,
        store: SettingsStore,
        registry: Callable[[], Registry],
        publish: Callable[[str, bytes], None],
        offers: Callable[[Registry], Offers] | None = None,
    ) -> None:
        self.book = SettingsBook(store)
        self.registry = registry
        self.publish = publish
        self.offers = offers
        self._sent: dict[str, bytes] = {}

    def forget(self) -> None:
        """A new connection: send everything again."""
        self._sent = {}

    def run_once(self, topic_of: Callable[[str], str]) -> int:
        sent = 0
        registry = self.registry()
        offers = self.offers(registry) if self.offers is not None else None
        effectives = self.book.all_effective(registry, offers)
        for kiosk in registry.kiosks:
            if kiosk not in effectives and self._sent.get(kiosk) != b"":
                # Nothing for it (never, or no longer: moved to a unit without settings): an empty
                # retained message clears what the broker may still hold for it.
                self.publish(topic_of(kiosk), b"")
                self._sent[kiosk] = b""
        for kiosk, effective in effectives.items():
            try:
                payload = effective.payload()
            except RemoteSettingsError as exc:  # stored before a check tightened: say so, send nothing
                log.error("remote settings of kiosk %s no longer pass the check: %s", kiosk, exc)
                continue
            if self._sent.get(kiosk) == payload:
                continue
            self.publish(topic_of(kiosk), payload)
            self._sent[kiosk] = payload
            sent += 1
        if sent:
            log.info("sent remote settings to %d kiosk(s)", sent)
        return sent
