"""`collector backup` and `collector restore`: the store, the pictures and the fleet CA, consistent,
with a manifest that says what is in the backup and lets `restore` check it.

SQLite is copied with the online backup API (a consistent copy while ingest runs); PostgreSQL with
``pg_dump --format=custom`` (one snapshot of the database). Pictures and the fleet CA are files,
each listed in the manifest with its size and sha256. The registry file, when the configuration
names one, is kept too, so that `serve` after a restore does not replace the registry.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from collector.config import CollectorSettings
from collector.errors import CollectorError
from kiosk import __version__

MANIFEST = "manifest.json"
FORMAT = 1


class BackupError(CollectorError, RuntimeError):
    """A backup could not be made, or a restore cannot go on (with what to check)."""


@dataclass(frozen=True)
class Summary:
    """What a store holds, for the manifest and for checking a restore against it."""

    ratings: int
    rollup_total: int
    quarantine: int
    units: int
    kiosks: int
    users: int

    @classmethod
    def of(cls, conn: Any) -> Summary:
        def one(sql: str) -> int:
            row = conn.execute(sql).fetchone()
            return int(row[0] or 0)

        return cls(
            ratings=one("SELECT COUNT(*) FROM ratings"),
            rollup_total=one("SELECT COALESCE(SUM(n), 0) FROM daily"),
            quarantine=one("SELECT COUNT(*) FROM quarantine"),
            units=one("SELECT COUNT(*) FROM units"),
            kiosks=one("SELECT COUNT(*) FROM kiosks"),
            users=one("SELECT COUNT(*) FROM users"),
        )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _copy_tree(source: Path, target: Path) -> list[dict[str, Any]]:
    files: list[dict[str, Any]] = []
    if not source.is_dir():
        return files
    for path in sorted(p for p in source.rglob("*") if p.is_file()):
        relative = path.relative_to(source)
        destination = target / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, destination)
        files.append({"path": str(relative), "bytes": path.stat().st_size, "sha256": _sha256(destination)})
    return files


def _is_postgres(url: str) -> bool:
    return url.startswith(("postgresql://", "postgres://"))


def _pg_tool(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), key=lambda p: int(p.parts[4]))
    if not candidates:
        raise BackupError(f"{name} not found — install the PostgreSQL client (apt install postgresql-client)")
    return str(candidates[-1])


def backup(settings: CollectorSettings, out: Path) -> dict[str, Any]:
    """Write a backup into ``out`` (created; must be empty) and return its manifest."""
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise BackupError(f"{out} is not empty; give a new folder for each backup")
    out.mkdir(parents=True, exist_ok=True)
    out.chmod(0o700)  # it holds the fleet CA's private key
    url = settings.resolved_store_url
    if _is_postgres(url):
        store_file = out / "store.pgdump"
        subprocess.run(
            [_pg_tool("pg_dump"), "--format=custom", "--no-owner", "--file", str(store_file), url],
            check=True,
            capture_output=True,
        )
        import psycopg

        with psycopg.connect(url) as conn:
            summary = Summary.of(conn)
        kind = "postgresql"
    else:
        source_path = Path(url[len("sqlite:///") :])
        if not source_path.exists():
            raise BackupError(f"no store at {source_path} — is data_dir right in the configuration?")
        store_file = out / "store.db"
        source = sqlite3.connect(str(source_path), timeout=30)
        target = sqlite3.connect(str(store_file))
        try:
            source.backup(target)  # consistent even while ingest writes
        finally:
            source.close()
        summary = Summary.of(target)
        target.close()
        kind = "sqlite"
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "made_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "collector_version": __version__,
        "store": {"kind": kind, "file": store_file.name, "sha256": _sha256(store_file), "summary": summary.__dict__},
        "snapshot_dir": str(settings.snapshot_dir),
        "snapshots": _copy_tree(settings.snapshot_dir, out / "snapshots"),
        "fleet": _copy_tree(settings.data_dir / "fleet", out / "fleet"),
    }
    if settings.registry is not None and settings.registry.exists():
        shutil.copy2(settings.registry, out / "registry.toml")
        manifest["registry"] = {"file": "registry.toml", "sha256": _sha256(out / "registry.toml")}
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1, ensure_ascii=False))
    return manifest


def verify(folder: Path) -> dict[str, Any]:
    """Read a backup's manifest and check every file in it against its sha256."""
    folder = Path(folder)
    try:
        manifest: dict[str, Any] = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError) as exc:
        raise BackupError(f"{folder / MANIFEST}: {exc} — is this a backup folder?") from None
    if manifest.get("format") != FORMAT:
        raise BackupError(f"backup format {manifest.get('format')!r}; this collector reads format {FORMAT}")
    checks = [(folder / manifest["store"]["file"], manifest["store"]["sha256"])]
    for part in ("snapshots", "fleet"):
        checks += [(folder / part / entry["path"], entry["sha256"]) for entry in manifest.get(part, [])]
    if "registry" in manifest:
        checks.append((folder / manifest["registry"]["file"], manifest["registry"]["sha256"]))
    for path, expected in checks:
        if not path.exists() or _sha256(path) != expected:
            raise BackupError(f"{path} is missing or damaged (sha256 differs from the manifest)")
    return manifest


def restore(settings: CollectorSettings, folder: Path) -> Summary:
    """Put a backup back on a machine whose store is empty; returns what the store then holds."""
    folder = Path(folder)
    manifest = verify(folder)
    url = settings.resolved_store_url
    expected = Summary(**manifest["store"]["summary"])
    kind = manifest["store"]["kind"]
    if kind != ("postgresql" if _is_postgres(url) else "sqlite"):
        raise BackupError(
            f"the backup is of a {kind} store, the configuration's [store] url is another kind; "
            "`collector store copy` moves data between kinds"
        )
    fleet_dir = settings.data_dir / "fleet"
    if fleet_dir.exists() and any(fleet_dir.iterdir()):
        raise BackupError(f"{fleet_dir} is not empty: restore goes to a machine without a fleet CA")
    if kind == "postgresql":
        import psycopg

        with psycopg.connect(url) as conn:
            tables = conn.execute("SELECT COUNT(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()
        if tables and tables[0]:
            raise BackupError("the configured PostgreSQL database is not empty: create an empty one to restore into")
        subprocess.run(
            [_pg_tool("pg_restore"), "--no-owner", "--exit-on-error", "--dbname", url, str(folder / "store.pgdump")],
            check=True,
            capture_output=True,
        )
        with psycopg.connect(url) as conn:
            got = Summary.of(conn)
    else:
        target = Path(url[len("sqlite:///") :])
        if target.exists() and target.stat().st_size > 0:
            raise BackupError(f"{target} exists: restore goes to an empty machine (move it away first)")
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(".restoring")
        shutil.copy2(folder / "store.db", partial)
        os.replace(partial, target)
        db = sqlite3.connect(str(target))
        got = Summary.of(db)
        db.close()
    for part, destination in (("snapshots", settings.snapshot_dir), ("fleet", fleet_dir)):
        for entry in manifest.get(part, []):
            path = destination / entry["path"]
            path.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(folder / part / entry["path"], path)
    old_dir, new_dir = manifest.get("snapshot_dir"), str(settings.snapshot_dir)
    if old_dir and old_dir != new_dir:
        _move_snapshot_paths(url, old_dir, new_dir)
    if "registry" in manifest and settings.registry is not None:
        settings.registry.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(folder / manifest["registry"]["file"], settings.registry)
    if got != expected:
        raise BackupError(f"restored store holds {got}, the manifest says {expected}")
    return got


def _move_snapshot_paths(url: str, old_dir: str, new_dir: str) -> None:
    """The store names each picture by its path: point them at the new data folder."""
    sql = "UPDATE snapshots SET path = {p} || substr(path, {n}) WHERE substr(path, 1, {m}) = {p2}"
    if _is_postgres(url):
        import psycopg

        with psycopg.connect(url) as conn:
            conn.execute(
                sql.format(p="%s", n=len(old_dir) + 1, m=len(old_dir), p2="%s"),  # type: ignore[arg-type]
                (new_dir, old_dir),
            )
    else:
        db = sqlite3.connect(url[len("sqlite:///") :])
        with db:
            db.execute(sql.format(p="?", n=len(old_dir) + 1, m=len(old_dir), p2="?"), (new_dir, old_dir))
        db.close()
