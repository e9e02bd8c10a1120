"""The registry: administrative units as a tree, counters in units, kiosks at counters.

Loaded from TOML (``[[unit]] id, name, level, parent?``; ``[[counter]] id, unit, name``;
``[[kiosk]] id, counter``) and checked as a whole: unknown parents, cycles, duplicate ids and
dangling references are refused with the offending entry named.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from collector.errors import NotFound, RegistryError
from kiosk import wire
from kiosk.tomlfile import read_toml


@dataclass(frozen=True)
class Unit:
    id: str
    name: str
    level: str = ""
    parent: str | None = None


@dataclass(frozen=True)
class Counter:
    id: str
    unit: str
    name: str


@dataclass(frozen=True)
class KioskEntry:
    id: str
    counter: str


@dataclass
class Registry:
    units: dict[str, Unit] = field(default_factory=dict)
    counters: dict[str, Counter] = field(default_factory=dict)
    kiosks: dict[str, KioskEntry] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._children: dict[str | None, list[str]] = {}
        for unit in self.units.values():
            self._children.setdefault(unit.parent, []).append(unit.id)
        self._counters_of: dict[str, list[str]] = {}
        for counter in self.counters.values():
            self._counters_of.setdefault(counter.unit, []).append(counter.id)

    @classmethod
    def build(cls, units: Iterable[Unit], counters: Iterable[Counter], kiosks: Iterable[KioskEntry]) -> Registry:
        registry = cls(_unique(units, "unit"), _unique(counters, "counter"), _unique(kiosks, "kiosk"))
        registry.check()
        return registry

    def check(self) -> None:
        for unit in self.units.values():
            if not wire.UNIT_ID.match(unit.id):
                raise RegistryError(f"unit id {unit.id!r} is not valid (A-Z a-z 0-9 . _ -, 1..64)")
            if unit.parent is not None and unit.parent not in self.units:
                raise RegistryError(f"unit {unit.id}: parent {unit.parent!r} is not a unit")
        for unit in self.units.values():
            seen = {unit.id}
            parent = unit.parent
            while parent is not None:
                if parent in seen:
                    raise RegistryError(f"unit {unit.id}: parents form a cycle through {parent}")
                seen.add(parent)
                parent = self.units[parent].parent
        for counter in self.counters.values():
            if not wire.COUNTER_ID.match(counter.id):
                raise RegistryError(f"counter id {counter.id!r} is not valid")
            if counter.unit not in self.units:
                raise RegistryError(f"counter {counter.id}: unit {counter.unit!r} is not a unit")
        for kiosk in self.kiosks.values():
            if not wire.KIOSK_ID.match(kiosk.id):
                raise RegistryError(f"kiosk id {kiosk.id!r} is not valid (a-z 0-9 -, 2..63)")
            if kiosk.counter not in self.counters:
                raise RegistryError(f"kiosk {kiosk.id}: counter {kiosk.counter!r} is not a counter")

    # --- the tree --------------------------------------------------------------

    def unit(self, unit_id: str) -> Unit:
        try:
            return self.units[unit_id]
        except KeyError:
            raise NotFound(f"no unit {unit_id!r}") from None

    def counter(self, counter_id: str) -> Counter:
        try:
            return self.counters[counter_id]
        except KeyError:
            raise NotFound(f"no counter {counter_id!r}") from None

    def roots(self) -> list[Unit]:
        return [self.units[u] for u in sorted(self._children.get(None, []))]

    def child_units(self, unit_id: str) -> list[Unit]:
        return [self.units[u] for u in sorted(self._children.get(unit_id, []))]

    def own_counters(self, unit_id: str) -> list[Counter]:
        return [self.counters[c] for c in sorted(self._counters_of.get(unit_id, []))]

    def subtree(self, unit_id: str) -> list[str]:
        """The unit and every unit below it."""
        self.unit(unit_id)
        out, stack = [], [unit_id]
        while stack:
            current = stack.pop()
            out.append(current)
            stack.extend(self._children.get(current, []))
        return out

    def counters_under(self, unit_id: str) -> list[str]:
        return [c for u in self.subtree(unit_id) for c in self._counters_of.get(u, [])]

    def path(self, unit_id: str) -> list[Unit]:
        """From the root down to the unit (breadcrumbs)."""
        chain = []
        current: str | None = unit_id
        while current is not None:
            unit = self.unit(current)
            chain.append(unit)
            current = unit.parent
        return chain[::-1]

    def to_toml(self) -> str:
        """The registry file format (CONTRACT.md), units parents first."""
        q = json.dumps  # a JSON string is a valid TOML basic string
        lines = ["# Registry: units (a tree), counters in units, kiosks at counters."]
        order: list[str] = []
        for root in self.roots():
            order.extend(self.subtree_in_order(root.id))
        for unit_id in order:
            u = self.units[unit_id]
            lines += [
                "",
                "[[unit]]",
                f"id = {q(u.id)}",
                f"name = {q(u.name, ensure_ascii=False)}",
                f"level = {q(u.level, ensure_ascii=False)}",
            ]
            if u.parent is not None:
                lines.append(f"parent = {q(u.parent)}")
        for c in sorted(self.counters.values(), key=lambda c: c.id):
            lines += [
                "",
                "[[counter]]",
                f"id = {q(c.id)}",
                f"unit = {q(c.unit)}",
                f"name = {q(c.name, ensure_ascii=False)}",
            ]
        for k in sorted(self.kiosks.values(), key=lambda k: k.id):
            lines += ["", "[[kiosk]]", f"id = {q(k.id)}", f"counter = {q(k.counter)}"]
        return "\n".join(lines) + "\n"

    def subtree_in_order(self, unit_id: str) -> list[str]:
        out = [unit_id]
        for child in self.child_units(unit_id):
            out.extend(self.subtree_in_order(child.id))
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "unit": [{k: v for k, v in u.__dict__.items() if v is not None} for u in self.units.values()],
            "counter": [c.__dict__ for c in self.counters.values()],
            "kiosk": [k.__dict__ for k in self.kiosks.values()],
        }


def save_registry(registry: Registry, path: str | Path) -> None:
    """Write the registry file that `collector serve` loads at start, atomically."""
    from kiosk.files import write_atomically

    write_atomically(Path(path), registry.to_toml().encode("utf-8"))


def load_registry(path: str | Path) -> Registry:
    path = Path(path)
    return registry_from_dict(read_toml(path, RegistryError, "registry file"), source=str(path))


def registry_from_dict(doc: dict[str, Any], *, source: str = "registry") -> Registry:
    unknown = set(doc) - {"unit", "counter", "kiosk"}
    if unknown:
        raise RegistryError(f"{source}: unknown table(s) {', '.join(sorted(unknown))}")
    for kind in ("unit", "counter", "kiosk"):
        if not isinstance(doc.get(kind, []), list):
            raise RegistryError(f"{source}: {kind} must be an array of tables ([[{kind}]]), not {doc[kind]!r:.60}")
    units = [_entry(Unit, item, ("id", "name"), ("level", "parent"), source, "unit") for item in doc.get("unit", [])]
    counters = [_entry(Counter, item, ("id", "unit", "name"), (), source, "counter") for item in doc.get("counter", [])]
    kiosks = [_entry(KioskEntry, item, ("id", "counter"), (), source, "kiosk") for item in doc.get("kiosk", [])]
    return Registry.build(units, counters, kiosks)


HIDDEN = ("Cc", "Cf", "Co", "Cs", "Zl", "Zp")


def _entry(cls: type, item: Any, required: tuple[str, ...], optional: tuple[str, ...], source: str, kind: str) -> Any:
    if not isinstance(item, dict):
        raise RegistryError(f"{source}: each [[{kind}]] must be a table")
    label = item.get("id", "?")
    missing = [k for k in required if k not in item]
    if missing:
        raise RegistryError(f"{source}: [[{kind}]] {label} lacks {', '.join(missing)}")
    extra = set(item) - set(required) - set(optional)
    if extra:
        raise RegistryError(f"{source}: [[{kind}]] {label} has unknown key(s) {', '.join(sorted(extra))}")
    bad = [k for k, v in item.items() if not isinstance(v, str) or not v or len(v) > 200 or "\x00" in v]
    if bad:
        raise RegistryError(f"{source}: [[{kind}]] {label!r:.60}: {', '.join(bad)} must be a short, non-empty text")
    # names are printed on signed forms: no control or formatting characters (a right-to-left
    # override turns the text after it around)
    hidden = [k for k, v in item.items() if any(unicodedata.category(ch) in HIDDEN for ch in v)]
    if hidden:
        raise RegistryError(
            f"{source}: [[{kind}]] {label!r:.60}: {', '.join(hidden)} holds a control or formatting character"
        )
    return cls(**item)


def _unique(entries: Iterable[Any], kind: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for entry in entries:
        if entry.id in out:
            raise RegistryError(f"duplicate {kind} id {entry.id!r}")
        out[entry.id] = entry
    return out
