"""Software releases for the fleet: made once, signed, offered to kiosks in stages.

``collector release add DIST`` takes a wheelhouse (``scripts/build-wheelhouse``: the project's
wheel and the aarch64 wheels it needs), packs it into one tar file, writes a manifest (version,
size, sha256, the wheels) and signs the manifest's bytes with the fleet's release key — a
code-signing certificate from the fleet CA (collector/fleet.py), so a kiosk checks it against the
CA it already trusts. ``collector release rollout VERSION --units … --percent N`` offers it to
that share of the kiosks under those units (the same kiosks each time: a hash of kiosk and
version), in the kiosks' retained config message; ``pause``/``resume`` stop and restart offering.

Files: ``data_dir/releases/<version>/release.tar``, ``manifest.json``, ``manifest.sig``. The store
keeps the manifest, the signature and the rollouts (so every collector offers the same).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from collector.errors import CollectorError, NotFound
from collector.fleet import FleetCA
from collector.registry import Registry
from kiosk.files import write_atomically
from kiosk.update import VERSION  # one notion of a release version, for the kiosk and the collector

PROJECT_WHEEL = re.compile(r"\Asatisfaction_kiosk-(?P<version>[^-]+)-.+\.whl\Z")
ROLLOUT_STATES = ("active", "paused")


class ReleaseError(CollectorError, ValueError):
    """A release that cannot be made or offered."""


@dataclass(frozen=True)
class Release:
    version: str
    manifest: bytes  # the exact bytes that were signed
    signature: str  # base64 ECDSA P-256 / SHA-256 over ``manifest``
    signer: str  # PEM: the release-signing certificate, issued by the fleet CA
    created_by: str
    created_at: str

    @property
    def doc(self) -> dict[str, Any]:
        return dict(json.loads(self.manifest))


@dataclass(frozen=True)
class Rollout:
    version: str
    units: tuple[str, ...]
    percent: int
    state: str
    updated_by: str
    updated_at: str

    def selects(self, kiosk: str, unit_path: list[str]) -> bool:
        """Under one of the units, and inside the share (stable: a kiosk in at 10 % stays in at 50 %)."""
        if self.state != "active" or not set(self.units) & set(unit_path):
            return False
        return bucket(kiosk, self.version) < self.percent


def bucket(kiosk: str, version: str) -> int:
    """0..99, the same for a kiosk and a version every time."""
    return int.from_bytes(hashlib.sha256(f"{version}\0{kiosk}".encode()).digest()[:4], "big") % 100


def folder_of(data_dir: Path, version: str) -> Path:
    if not VERSION.match(version):
        raise ReleaseError(f"{version!r} is not a release version (like 0.2.0)")
    return data_dir / "releases" / version


def make_release(data_dir: Path, dist: Path, *, at: str) -> tuple[str, bytes, str, str]:
    """Pack and sign the wheelhouse ``dist``; returns (version, manifest bytes, signature, signer PEM)."""
    if not dist.is_dir():
        raise ReleaseError(f"{dist} is not a folder of wheels (scripts/build-wheelhouse makes one)")
    files = sorted(p for p in dist.iterdir() if not p.name.startswith("."))
    strays = [p.name for p in files if not p.is_file() or not p.name.endswith(".whl")]
    if strays:
        raise ReleaseError(f"{dist} holds more than wheels: {', '.join(strays[:5])}")
    ours = [m for m in (PROJECT_WHEEL.match(p.name) for p in files) if m]
    if len(ours) != 1:
        raise ReleaseError(f"{dist} must hold exactly one satisfaction_kiosk wheel (found {len(ours)})")
    version = ours[0]["version"]
    target = folder_of(data_dir, version)
    if target.exists():
        raise ReleaseError(f"release {version} exists already; a release is never changed, make a new version")
    ca = FleetCA(data_dir / "fleet")
    key, signer_pem = ca.release_signer()
    staging = target.with_name(f".{version}.tmp")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    tar_path = staging / "release.tar"
    with tarfile.open(tar_path, "w") as tar:
        for path in files:
            info = tar.gettarinfo(str(path), arcname=path.name)
            info.mtime, info.uid, info.gid, info.uname, info.gname, info.mode = 0, 0, 0, "", "", 0o644
            with path.open("rb") as fh:
                tar.addfile(info, fh)
    digest = hashlib.sha256()
    with tar_path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    manifest = json.dumps(
        {
            "v": 1,
            "version": version,
            "file": "release.tar",
            "size": tar_path.stat().st_size,
            "sha256": digest.hexdigest(),
            "wheels": [p.name for p in files],
            "created_at": at,
        },
        sort_keys=True,
        separators=(",", ":"),
    ).encode()
    signature = base64.b64encode(key.sign(manifest, ec.ECDSA(hashes.SHA256()))).decode("ascii")
    write_atomically(staging / "manifest.json", manifest)
    write_atomically(staging / "manifest.sig", signature.encode("ascii"))
    write_atomically(staging / "signer.crt", signer_pem)
    staging.rename(target)
    return version, manifest, signature, signer_pem.decode("ascii")


class ReleaseBook:
    def __init__(self, store: Any, data_dir: Path) -> None:
        self.store = store
        self.data_dir = data_dir

    def add(self, dist: Path, *, by: str, at: str) -> Release:
        version, manifest, signature, signer = make_release(self.data_dir, dist, at=at)
        with self.store.transaction():
            self.store.release_put(version, manifest.decode(), signature, signer, by, at)
        return Release(version, manifest, signature, signer, by, at)

    def releases(self) -> list[Release]:
        return [Release(v, m.encode(), s, signer, by, at) for v, m, s, signer, by, at in self.store.releases_all()]

    def release(self, version: str) -> Release:
        for found in self.releases():
            if found.version == version:
                return found
        raise NotFound(f"no release {version!r}: `collector release add` it first")

    def rollouts(self) -> list[Rollout]:
        return [
            Rollout(v, tuple(json.loads(units)), int(pct), state, by, at)
            for v, units, pct, state, by, at in self.store.rollouts_all()
        ]

    def rollout(self, version: str, units: list[str], percent: int, registry: Registry, *, by: str, at: str) -> Rollout:
        self.release(version)
        if not units:
            raise ReleaseError("name the units to offer it to (--units 10 for the whole province)")
        for unit in units:
            registry.unit(unit)
        if not 0 <= percent <= 100:
            raise ReleaseError("--percent is 0 to 100")
        with self.store.transaction():
            self.store.rollout_put(version, json.dumps(sorted(set(units))), percent, "active", by, at)
            self._bump(version, "active", by, at)
        return Rollout(version, tuple(sorted(set(units))), percent, "active", by, at)

    def _bump(self, version: str, state: str, by: str, at: str) -> None:
        """A new config revision for the kiosks the rollout reaches (remote settings' counter)."""
        self.store.remote_settings_put(f"rollout:{version}", json.dumps({"state": state}), by, at)

    def set_state(self, version: str, state: str, *, by: str, at: str) -> None:
        if state not in ROLLOUT_STATES:
            raise ReleaseError(f"a rollout is {' or '.join(ROLLOUT_STATES)}")
        with self.store.transaction():
            if not self.store.rollout_set_state(version, state, by, at):
                raise NotFound(f"release {version!r} has no rollout")
            self._bump(version, state, by, at)

    def offer_for(self, kiosk: str, registry: Registry, rollouts: list[Rollout] | None = None) -> Rollout | None:
        """The newest active rollout that selects the kiosk (by the time it was last changed)."""
        entry = registry.kiosks.get(kiosk)
        if entry is None or entry.counter not in registry.counters:
            return None
        path = [u.id for u in registry.path(registry.counters[entry.counter].unit)]
        chosen = [r for r in (self.rollouts() if rollouts is None else rollouts) if r.selects(kiosk, path)]
        return max(chosen, key=lambda r: r.updated_at) if chosen else None

    def offers(self, registry: Registry, url_base: str) -> Callable[[str], tuple[dict[str, Any] | None, int] | None]:
        """For the config sender: each kiosk's offer and the revision it counts as. Once any
        rollout exists every kiosk gets an answer — (None, revision) when nothing is offered to
        it — so a paused or narrowed rollout is taken back out of the retained messages too."""
        every = self.rollouts()
        if not every:
            return lambda kiosk: None
        rollouts = [r for r in every if r.state == "active"]
        releases = {r.version: r for r in self.releases()}
        revisions = {
            scope.split(":", 1)[1]: int(revision)
            for scope, _, revision, _, _ in self.store.remote_settings_all()
            if scope.startswith("rollout:")
        }

        latest = max(revisions.values(), default=1)

        def offer(kiosk: str) -> tuple[dict[str, Any] | None, int] | None:
            chosen = self.offer_for(kiosk, registry, rollouts)
            if chosen is None or chosen.version not in releases:
                return None, latest
            release = releases[chosen.version]
            doc = release.doc
            return (
                {
                    "version": release.version,
                    "url": f"{url_base.rstrip('/')}/releases/{release.version}/release.tar",
                    "size": doc["size"],
                    "sha256": doc["sha256"],
                    "manifest": base64.b64encode(release.manifest).decode("ascii"),
                    "signature": release.signature,
                    "signer": release.signer,
                },
                latest,
            )

        return offer
