"""Files the commands read at run time (the broker configs, systemd units): in a source checkout
they are under config/; installed from the wheel they are inside the package (pyproject.toml
force-includes them as ``<package>/shipped/…``)."""

from __future__ import annotations

from pathlib import Path


def shipped_file(package_file: str, relative: str) -> Path:
    """``relative`` (e.g. ``mosquitto/production.conf``) next to the package of ``package_file``,
    or under the checkout's config/ folder."""
    package = Path(package_file).resolve().parent
    installed = package / "shipped" / relative
    if installed.exists():
        return installed
    return package.parent / "config" / relative
