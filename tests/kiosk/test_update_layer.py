"""An update's install over the first-boot install as a layer (kiosk.update.pip_install): real
virtual environments and a real pip, with small wheels made here (no network, no build backend).
A dependency the release ships at the version the layer holds is not installed again; one at
another version is installed in the new environment only; the layer is never changed."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from kiosk.update import UpdateError, pip_install, release_pins

PY = f"python{sys.version_info[0]}.{sys.version_info[1]}"


def make_wheel(folder: Path, name: str, version: str, requires: tuple[str, ...] = ()) -> Path:
    """A pure-Python wheel holding module ``<name>_mod`` whose VERSION is ``version``."""
    module = f"{name}_mod"
    files = {
        f"{module}/__init__.py": f'VERSION = "{version}"\n',
        f"{name}-{version}.dist-info/METADATA": "Metadata-Version: 2.1\n"
        f"Name: {name.replace('_', '-')}\nVersion: {version}\n"
        + "".join(f"Requires-Dist: {r}\n" for r in requires)
        + ("Provides-Extra: kiosk\n" if requires else ""),
        f"{name}-{version}.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
        "Tag: py3-none-any\n",
    }
    if name == "satisfaction_kiosk":
        scripts = "[console_scripts]\nkiosk = satisfaction_kiosk_mod:VERSION\n"
        files[f"{name}-{version}.dist-info/entry_points.txt"] = scripts
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(text.encode())}")
    record.append(f"{name}-{version}.dist-info/RECORD,,")
    files[f"{name}-{version}.dist-info/RECORD"] = "\n".join(record) + "\n"
    wheel = folder / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for path, text in files.items():
            zf.writestr(path, text)
    return wheel


def site(venv: Path) -> Path:
    return venv / "lib" / PY / "site-packages"


def versions_seen(venv: Path) -> dict[str, str]:
    code = (
        "import json, dep_a_mod, dep_b_mod, satisfaction_kiosk_mod as k;"
        "print(json.dumps({m.__name__: m.VERSION + '@' + m.__file__ for m in (dep_a_mod, dep_b_mod, k)}))"
    )
    out = subprocess.run([str(venv / "bin" / "python"), "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


@pytest.fixture(scope="module")
def layer(tmp_path_factory) -> Path:
    """A first-boot install: a virtual environment with pip, dep_a 1.0 and dep_b 1.0."""
    tmp = tmp_path_factory.mktemp("layer")
    wheels = tmp / "first"
    wheels.mkdir()
    make_wheel(wheels, "dep_a", "1.0")
    make_wheel(wheels, "dep_b", "1.0")
    base = tmp / "base"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(base)], check=True)
    subprocess.run(
        [str(base / "bin" / "pip"), "install", "-q", "--no-index", "--find-links", str(wheels), "dep_a", "dep_b"],
        check=True,
    )
    return base


def release(tmp: Path, version: str, *, dep_b: str) -> Path:
    wheels = tmp / f"release-{version}"
    wheels.mkdir()
    make_wheel(wheels, "satisfaction_kiosk", version, ('dep_a; extra == "kiosk"', 'dep_b; extra == "kiosk"'))
    make_wheel(wheels, "dep_a", "1.0")
    make_wheel(wheels, "dep_b", dep_b)
    return wheels


def test_an_unchanged_dependency_comes_from_the_layer_a_changed_one_is_installed_beside(layer, tmp_path):
    before = sorted(p.name for p in site(layer).iterdir())
    venv = tmp_path / "versions" / "9.9.1"
    pip_install("9.9.1", release(tmp_path, "9.9.1", dep_b="2.0"), venv, base=site(layer))
    own = {p.name for p in site(venv).iterdir()}
    assert "satisfaction_kiosk_mod" in own and "dep_b_mod" in own
    assert "dep_a_mod" not in own  # the same 1.0 as the layer's: not unpacked again
    seen = versions_seen(venv)
    assert seen["dep_a_mod"].startswith(f"1.0@{site(layer)}")
    assert seen["dep_b_mod"].startswith(f"2.0@{site(venv)}")  # in front of the layer's 1.0
    assert seen["satisfaction_kiosk_mod"].startswith(f"9.9.1@{site(venv)}")
    assert (venv / "bin" / "kiosk").exists()
    assert sorted(p.name for p in site(layer).iterdir()) == before  # the layer is never changed


def test_the_release_pins_what_runs_even_below_the_layer(layer, tmp_path):
    """The layer holds dep_b 1.0; a release that ships dep_b 0.9 runs with 0.9, not the newer one."""
    venv = tmp_path / "v"
    pip_install("9.9.2", release(tmp_path, "9.9.2", dep_b="0.9"), venv, base=site(layer))
    assert versions_seen(venv)["dep_b_mod"].startswith(f"0.9@{site(venv)}")


def test_without_a_first_boot_install_everything_is_installed(tmp_path, monkeypatch):
    monkeypatch.setenv("KIOSK_BASE", str(tmp_path / "no-such-install"))
    venv = tmp_path / "v"
    pip_install("9.9.3", release(tmp_path, "9.9.3", dep_b="2.0"), venv)
    own = {p.name for p in site(venv).iterdir()}
    assert {"satisfaction_kiosk_mod", "dep_a_mod", "dep_b_mod"} <= own
    assert not (site(venv) / "_kiosk_base.pth").exists()


def test_a_file_not_named_as_a_wheel_is_refused(tmp_path):
    (tmp_path / "evil.whl").write_bytes(b"")
    with pytest.raises(UpdateError, match="not named as a wheel"):
        release_pins(tmp_path)
