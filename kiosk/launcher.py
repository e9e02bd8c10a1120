"""Starts the kiosk version in use, and switches back when an update did not prove itself.

systemd runs this file (copied to ``/opt/kiosk/launch`` on first boot, owned by root, never
replaced by an update) with the system Python; it uses the standard library only, so a broken
release cannot break it. It then ``exec``s the kiosk of ``/var/lib/kiosk/versions/current`` (a
symlink to an installed release), or of the first-boot install ``/opt/kiosk/.venv``.

The update state (``/var/lib/kiosk/update/state.json``, written by kiosk/update.py) may hold a
``trial``: a release just switched to that has not yet been connected with a status acked by the
collector. Every start under trial counts an attempt. The launcher switches back to the version
before when the trial version said it could not connect in time (``unconfirmed``) or when it has
been started ``MAX_ATTEMPTS`` times without confirming (a crash loop), and records
``rolled_back`` with the reason and the version, which the kiosk then reports and does not take
again.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
from pathlib import Path

MAX_ATTEMPTS = 3  # starts within one boot without proof: a crash loop
MAX_BOOTS = 10  # boots on trial without proof (power cut after power cut) before going back
DATA = Path(os.environ.get("KIOSK_DATA", "/var/lib/kiosk"))
BASE = Path(os.environ.get("KIOSK_BASE", "/opt/kiosk/.venv"))


def state_path(data: Path) -> Path:
    return data / "update" / "state.json"


def read_state(data: Path) -> dict:  # type: ignore[type-arg]
    try:
        doc = json.loads(state_path(data).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def write_state(data: Path, doc: dict) -> None:  # type: ignore[type-arg]
    path = state_path(data)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(doc, fh, indent=1)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def point_current(data: Path, target: str) -> None:
    """Make ``versions/current`` name ``target`` (a folder under versions/), or remove it ("")."""
    versions = data / "versions"
    current = versions / "current"
    if not target:
        current.unlink(missing_ok=True)
        return
    versions.mkdir(parents=True, exist_ok=True)
    tmp = versions / ".current.tmp"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(target)
    os.replace(tmp, current)
    fd = os.open(versions, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _save(data: Path, state: dict) -> None:  # type: ignore[type-arg]
    """Write the state; a full disk must not stop the kiosk from starting."""
    try:
        write_state(data, state)
    except OSError as exc:
        print(f"kiosk launcher: could not write the update state: {exc}", file=sys.stderr)


def boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def decide(data: Path, *, now: str | None = None, boot: str | None = None) -> Path:
    """Count the attempt, roll back if the trial failed, and return the kiosk program to run."""
    state = read_state(data)
    trial = state.get("trial")
    current = data / "versions" / "current"
    pointed = os.readlink(current) if current.is_symlink() else ""
    if isinstance(trial, dict) and str(trial.get("version")) != pointed:
        # A power cut between writing the trial and moving "current": the new version never ran.
        state.pop("trial", None)
        _save(data, state)
        trial = None
    if isinstance(trial, dict):
        # Starts are counted per boot: power cuts during the trial (a weekend of them) are not a
        # crash loop; only very many boots without proof are.
        this_boot = boot_id() if boot is None else boot
        if trial.get("boot") != this_boot:
            trial["boot"] = this_boot
            trial["boots"] = int(trial.get("boots", 0)) + 1
            trial["attempts"] = 0
        trial["attempts"] = int(trial.get("attempts", 0)) + 1
        reason = kind = ""
        if trial.get("unconfirmed"):
            reason, kind = str(trial.get("unconfirmed")), "unconfirmed"
        elif trial["attempts"] > MAX_ATTEMPTS:
            reason = f"started {MAX_ATTEMPTS} times without a connection and an acked status (crash loop?)"
            kind = "crash_loop"
        elif trial["boots"] > MAX_BOOTS:
            reason = f"{MAX_BOOTS} boots on trial without a connection and an acked status"
            kind = "unconfirmed"  # maybe the link's fault: may be taken again when the collector answers
        if reason:
            version = str(trial.get("version", "?"))
            try:
                point_current(data, str(trial.get("previous", "")))
            except OSError as exc:
                print(f"kiosk launcher: could not switch back: {exc}", file=sys.stderr)
            refused = [v for v in state.get("refused", []) if isinstance(v, str)]
            # Everything else in the state (the admin's last action, the good version) is kept.
            state.pop("trial", None)
            state["rolled_back"] = {
                "version": version,
                "reason": reason[:300],
                "kind": kind,  # "unconfirmed": ran but never connected, maybe the link's fault (retaken)
                "at": now or dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            }
            state["refused"] = sorted({*refused, version})
            print(f"kiosk launcher: rolled back from {version}: {reason}", file=sys.stderr)
        else:
            state["trial"] = trial
        _save(data, state)
    program = current / "bin" / "kiosk"
    if current.is_symlink() and program.exists():
        return program
    return BASE / "bin" / "kiosk"


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    program = decide(DATA)
    os.execv(program, [str(program), *args])


if __name__ == "__main__":
    main()
