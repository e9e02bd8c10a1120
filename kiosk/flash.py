"""`kiosk-flash`: write a Raspberry Pi OS image with a kiosk's provisioning bundle on it.

The bundle, the kiosk's wheels and a first-boot step go into the image's FAT boot partition
through mtools, without mounting anything (no root needed for an image file). The image goes to a
new image file or to an SD card; a card that is mounted or holds the running system is refused.
Everything written is read back and compared.

On the Pi, the first boot (Bookworm: ``firstrun.sh`` from the kernel command line; Trixie:
cloud-init ``user-data``) runs ``kiosk/firstboot.sh``: installs the kiosk from the wheels on the
card, moves the bundle to /etc/kiosk, enables the service, the hardware watchdog and time sync, and
optionally the read-only root with a separate ext4 data partition for the outbox.
"""

from __future__ import annotations

import argparse
import hashlib
import lzma
import os
import shutil
import stat
import struct
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from kiosk.errors import KioskError
from kiosk.shipped import shipped_file

SECTOR = 512
CHUNK = 4 * 1024 * 1024
FAT_TYPES = {0x06, 0x0B, 0x0C, 0x0E}
BUNDLE_FILES = ("kiosk.toml", "ca.crt", "kiosk.crt", "kiosk.key")
DATA_LABEL = "KIOSKDATA"
CMDLINE_RUN = (
    " systemd.run=/boot/firmware/firstrun.sh systemd.run_success_action=reboot systemd.unit=kernel-command-line.target"
)
UNIT_FILE = shipped_file(__file__, "systemd/kiosk.service")


class FlashError(KioskError, RuntimeError):
    """The image, bundle or target is not fit to flash; nothing risky was done."""


@dataclass(frozen=True)
class Partition:
    number: int
    type: int
    start: int  # bytes
    size: int  # bytes


# --- partitions --------------------------------------------------------------------------


def read_partitions(target: Path) -> list[Partition]:
    with open(target, "rb") as fh:
        mbr = fh.read(SECTOR)
    if len(mbr) < SECTOR or mbr[510:512] != b"\x55\xaa":
        raise FlashError(f"{target}: no MBR partition table — is this a Raspberry Pi OS image?")
    parts = []
    for n in range(4):
        entry = mbr[446 + 16 * n : 446 + 16 * (n + 1)]
        kind = entry[4]
        first, count = struct.unpack("<II", entry[8:16])
        if kind == 0xEE:
            raise FlashError(f"{target}: GPT disks are not supported; Raspberry Pi OS images use MBR")
        if kind:
            parts.append(Partition(n + 1, kind, first * SECTOR, count * SECTOR))
    return parts


def boot_partition(target: Path) -> Partition:
    for part in read_partitions(target):
        if part.type in FAT_TYPES:
            return part
    raise FlashError(f"{target}: no FAT boot partition found")


def add_data_partition(target: Path, size_mb: int, *, is_device: bool) -> Partition:
    """Append an ext4 partition labelled KIOSKDATA after the last one (for a read-only root)."""
    parts = read_partitions(target)
    if len(parts) >= 4:
        raise FlashError("no free slot in the MBR for a data partition")
    end = max(p.start + p.size for p in parts)
    start = -(-end // (4 * 1024 * 1024)) * (4 * 1024 * 1024)  # 4 MiB aligned, as Raspberry Pi OS does
    size = size_mb * 1024 * 1024
    if is_device:
        with open(target, "rb") as fh:
            capacity = fh.seek(0, os.SEEK_END)
        if start + size > capacity:
            raise FlashError(f"the card is too small for a {size_mb} MB data partition")
    else:
        with open(target, "r+b") as fh:
            fh.truncate(max(start + size, fh.seek(0, os.SEEK_END)))
    slot = len(parts)
    entry = bytes([0, 0, 0, 0, 0x83, 0, 0, 0]) + struct.pack("<II", start // SECTOR, size // SECTOR)
    with open(target, "r+b") as fh:
        fh.seek(446 + 16 * slot)
        fh.write(entry)
        fh.flush()
        os.fsync(fh.fileno())
    _run(
        [
            "mke2fs",
            "-q",
            "-F",
            "-t",
            "ext4",
            "-L",
            DATA_LABEL,
            "-E",
            f"offset={start}",
            str(target),
            f"{size // 1024}k",
        ],
        "mke2fs (apt install e2fsprogs)",
    )
    return Partition(slot + 1, 0x83, start, size)


# --- the FAT partition through mtools -------------------------------------------------------


class BootFiles:
    """Read and write files in the FAT boot partition of ``target`` at ``offset``, via mtools."""

    def __init__(self, target: Path, offset: int) -> None:
        if shutil.which("mcopy") is None:
            raise FlashError("mtools is not installed — apt install mtools")
        self.image = f"{target}@@{offset}"
        self.env = {**os.environ, "MTOOLS_SKIP_CHECK": "1", "MTOOLS_NO_VFAT": "0"}

    def read(self, name: str) -> bytes | None:
        result = subprocess.run(["mtype", "-i", self.image, f"::/{name}"], capture_output=True, env=self.env)
        return result.stdout if result.returncode == 0 else None

    def write(self, name: str, data: bytes) -> None:
        parts = name.split("/")
        for depth in range(1, len(parts)):
            folder = "/".join(parts[:depth])
            subprocess.run(["mmd", "-i", self.image, f"::/{folder}"], capture_output=True, env=self.env)
        with tempfile.NamedTemporaryFile() as tmp:
            tmp.write(data)
            tmp.flush()
            _run(["mcopy", "-o", "-i", self.image, tmp.name, f"::/{name}"], "mcopy", env=self.env)

    def listing(self) -> str:
        return subprocess.run(
            ["mdir", "-/", "-b", "-i", self.image, "::/"], capture_output=True, text=True, env=self.env
        ).stdout


# --- safety checks for a device -----------------------------------------------------------------


def device_problems(device: Path) -> list[str]:
    """Why writing to ``device`` would be a mistake (empty: fine)."""
    try:
        mode = os.stat(device).st_mode
    except FileNotFoundError:
        return [f"{device} does not exist"]
    if not stat.S_ISBLK(mode):
        return [f"{device} is not a block device (to make an image file, use --out)"]
    real = os.path.realpath(device)
    base = os.path.basename(real)
    problems = []
    mounts = Path("/proc/mounts").read_text().splitlines()
    mounted = [line.split()[:2] for line in mounts if os.path.basename(line.split()[0]).startswith(base)]
    if mounted:
        problems.append(f"{real} is mounted ({', '.join(f'{s} on {m}' for s, m in mounted)}) — unmount it first")
    if base in _system_disks():
        problems.append(f"{real} holds the running system — choose the SD card's device")
    return problems


def _system_disks() -> set[str]:
    disks = set()
    for line in Path("/proc/mounts").read_text().splitlines():
        source, point = line.split()[:2]
        if point in ("/", "/boot", "/boot/firmware", "/usr", "/var") and source.startswith("/dev/"):
            name = os.path.basename(os.path.realpath(source))
            disks.add(name)
            parent = Path(f"/sys/class/block/{name}/..").resolve().name
            if Path(f"/sys/block/{parent}").exists():
                disks.add(parent)
    return disks


# --- copying ---------------------------------------------------------------------------------


def _open_source(image: Path) -> tuple[BinaryIO, BinaryIO]:
    """(stream of image bytes, the file underneath — its position shows progress)."""
    raw = open(image, "rb")  # noqa: SIM115 - closed by copy_image
    if image.suffix == ".xz":
        return lzma.LZMAFile(raw), raw  # type: ignore[return-value]
    return raw, raw


def _chunks(fh: BinaryIO) -> Iterator[bytes]:
    while chunk := fh.read(CHUNK):
        yield chunk


def copy_image(image: Path, target: Path, *, is_device: bool, progress: Callable[[str], None]) -> tuple[str, int]:
    """Copy (decompressing .xz) with progress; returns the sha256 and the size of what was written."""
    digest = hashlib.sha256()
    total = image.stat().st_size
    written = 0
    src, raw = _open_source(image)
    with raw, src, open(target, "r+b" if is_device else "wb") as dst:
        last = -1
        for chunk in _chunks(src):
            dst.write(chunk)
            digest.update(chunk)
            written += len(chunk)
            done = int(100 * raw.tell() / max(1, total))
            if done // 5 != last // 5:
                progress(f"writing {target}: {min(done, 100)} % ({written // (1024 * 1024)} MiB)")
                last = done
        dst.flush()
        os.fsync(dst.fileno())
    return digest.hexdigest(), written


def verify_copy(target: Path, size: int, expected: str) -> None:
    digest = hashlib.sha256()
    with open(target, "rb") as fh:
        if hasattr(os, "posix_fadvise"):
            os.posix_fadvise(fh.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)  # read the card, not the page cache
        left = size
        while left:
            chunk = fh.read(min(CHUNK, left))
            if not chunk:
                break
            digest.update(chunk)
            left -= len(chunk)
    if digest.hexdigest() != expected:
        raise FlashError(f"{target}: what was read back differs from the image — the card may be failing")


# --- first boot ---------------------------------------------------------------------------------

FIRSTBOOT = r"""#!/bin/bash
# Installs the satisfaction kiosk on its first boot, from the files on this card (no internet).
set -euo pipefail
BOOT=/boot/firmware; [ -d "$BOOT/kiosk" ] || BOOT=/boot
SRC="$BOOT/kiosk"
[ -f /etc/kiosk/.installed ] && exit 0
exec >>/var/log/kiosk-firstboot.log 2>&1
echo "kiosk first boot: $(date -Is)"
id kiosk >/dev/null 2>&1 || useradd --system --home-dir /var/lib/kiosk --shell /usr/sbin/nologin kiosk
for group in gpio video dialout; do getent group "$group" >/dev/null && usermod -aG "$group" kiosk; done
# The bundle leaves the FAT partition (readable by anyone holding the card) for /etc/kiosk.
install -d -m 0750 -o root -g kiosk /etc/kiosk
install -m 0640 -o root -g kiosk "$SRC/bundle/kiosk.toml" "$SRC/bundle/ca.crt" "$SRC/bundle/kiosk.crt" /etc/kiosk/
install -m 0600 -o kiosk -g kiosk "$SRC/bundle/kiosk.key" /etc/kiosk/kiosk.key
rm -rf "$SRC/bundle"
python3 -m venv --system-site-packages /opt/kiosk/.venv
/opt/kiosk/.venv/bin/pip install --no-index --find-links "$SRC/wheels" "satisfaction-kiosk[kiosk]"
# The launcher stays here, owned by root; updates install beside it under /var/lib/kiosk/versions.
/opt/kiosk/.venv/bin/python -c "import kiosk.launcher as l, shutil; shutil.copy(l.__file__, '/opt/kiosk/launch')"
chmod 0755 /opt/kiosk/launch
install -d -m 0750 -o kiosk -g kiosk /var/lib/kiosk
if [ -f "$SRC/read-only-root" ]; then
  # The overlay keeps root writes in RAM: the outbox lives on its own ext4 partition.
  entry="LABEL=KIOSKDATA /var/lib/kiosk ext4 defaults,noatime,commit=5 0 2"
  grep -q "LABEL=KIOSKDATA" /etc/fstab || echo "$entry" >> /etc/fstab
  mount /var/lib/kiosk && chown kiosk:kiosk /var/lib/kiosk && chmod 0750 /var/lib/kiosk
  raspi-config nonint enable_overlayfs
fi
install -m 0644 "$SRC/kiosk.service" /etc/systemd/system/kiosk.service
# Hardware watchdog: the Pi's allows 15 s at most.
install -d /etc/systemd/system.conf.d
printf '[Manager]\nRuntimeWatchdogSec=15\n' > /etc/systemd/system.conf.d/kiosk-watchdog.conf
# Time sync on from the next boot (timedatectl needs D-Bus, which this first-boot step runs without).
systemctl enable systemd-timesyncd.service || true
systemctl enable kiosk.service
touch /etc/kiosk/.installed
echo "kiosk installed"
"""

FIRSTRUN = r"""#!/bin/bash
# Bookworm first boot (kernel command line systemd.run): install the kiosk, then tidy up.
set +e
bash /boot/firmware/kiosk/firstboot.sh
rm -f /boot/firmware/firstrun.sh
sed -i 's| systemd.run.*||g' /boot/firmware/cmdline.txt
exit 0
"""

IMAGER_CLEANUP = "rm -f /boot/firstrun.sh"


def add_first_boot(files: BootFiles) -> str:
    """Hook firstboot.sh into the image's own first-boot mechanism; returns which one."""
    user_data = files.read("user-data")
    if user_data is not None:  # Trixie and later: cloud-init
        text = user_data.decode()
        line = "  - [bash, /boot/firmware/kiosk/firstboot.sh]"
        if line not in text:
            if "\nruncmd:" in "\n" + text:
                text = text.replace("runcmd:", "runcmd:\n" + line, 1)
            else:
                text = text.rstrip("\n") + "\nruncmd:\n" + line + "\n"
        files.write("user-data", text.encode())
        return "cloud-init user-data"
    existing = files.read("firstrun.sh")  # made by Raspberry Pi Imager's OS customisation
    if existing is not None:
        text = existing.decode()
        hook = "bash /boot/firmware/kiosk/firstboot.sh\n"
        if hook not in text:
            cut = text.find(IMAGER_CLEANUP)
            text = text[:cut] + hook + text[cut:] if cut >= 0 else text.rstrip("\n") + "\n" + hook
        files.write("firstrun.sh", text.encode())
    else:
        files.write("firstrun.sh", FIRSTRUN.encode())
    cmdline = (files.read("cmdline.txt") or b"").decode().strip()
    if not cmdline:
        raise FlashError("the boot partition has no cmdline.txt — is this a Raspberry Pi OS image?")
    if "systemd.run=" not in cmdline:
        files.write("cmdline.txt", (cmdline + CMDLINE_RUN + "\n").encode())
    return "firstrun.sh (kernel command line)"


# --- the whole job --------------------------------------------------------------------------------


def check_bundle(bundle: Path) -> dict[str, bytes]:
    missing = [name for name in BUNDLE_FILES if not (bundle / name).is_file()]
    if missing:
        raise FlashError(f"bundle {bundle} lacks {', '.join(missing)} — make it with `collector kiosk enrol`")
    return {name: (bundle / name).read_bytes() for name in BUNDLE_FILES}


def check_wheels(wheels: Path) -> dict[str, bytes]:
    found = {p.name: p.read_bytes() for p in sorted(wheels.glob("*.whl"))}
    if not any(name.startswith("satisfaction_kiosk-") for name in found):
        raise FlashError(f"{wheels} has no satisfaction_kiosk-*.whl — run scripts/build-wheelhouse first")
    return found


def flash(
    *,
    image: Path,
    bundle: Path,
    wheels: Path,
    out: Path | None = None,
    device: Path | None = None,
    data_mb: int = 0,
    progress: Callable[[str], None] = print,
) -> dict[str, str]:
    if (out is None) == (device is None):
        raise FlashError("give either --out IMAGE_FILE or --device /dev/sdX")
    if not image.is_file():
        raise FlashError(f"image {image} not found")
    payload = {f"kiosk/bundle/{k}": v for k, v in check_bundle(bundle).items()}
    payload.update({f"kiosk/wheels/{k}": v for k, v in check_wheels(wheels).items()})
    payload["kiosk/firstboot.sh"] = FIRSTBOOT.encode()
    payload["kiosk/kiosk.service"] = UNIT_FILE.read_bytes()
    if data_mb:
        payload["kiosk/read-only-root"] = b"the outbox lives on the KIOSKDATA partition\n"
    target = device or out
    assert target is not None
    if device is not None:
        problems = device_problems(device)
        if problems:
            raise FlashError("; ".join(problems))
    digest, size = copy_image(image, target, is_device=device is not None, progress=progress)
    progress("verifying the copy …")
    verify_copy(target, size, digest)
    if data_mb:
        part = add_data_partition(target, data_mb, is_device=device is not None)
        progress(f"data partition {part.number}: {data_mb} MB ext4 labelled {DATA_LABEL}")
    boot = boot_partition(target)
    files = BootFiles(target, boot.start)
    for name, data in payload.items():
        files.write(name, data)
    hook = add_first_boot(files)
    progress("verifying the files on the boot partition …")
    for name, data in payload.items():
        back = files.read(name)
        if back is None or hashlib.sha256(back).digest() != hashlib.sha256(data).digest():
            raise FlashError(f"{name} did not read back as written")
    return {"target": str(target), "first_boot": hook, "files": str(len(payload))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="kiosk-flash", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("image", type=Path, help="Raspberry Pi OS image (.img or .img.xz)")
    parser.add_argument("--bundle", type=Path, required=True, help="folder from `collector kiosk enrol --out`")
    parser.add_argument("--wheels", type=Path, required=True, help="folder from scripts/build-wheelhouse")
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--out", type=Path, help="write a new image file")
    target.add_argument("--device", type=Path, help="write the SD card (e.g. /dev/sdb; needs root)")
    parser.add_argument(
        "--data-mb", type=int, default=0, help="add an ext4 data partition of this size and turn on the read-only root"
    )
    parser.add_argument("--yes", action="store_true", help="do not ask before overwriting the device")
    args = parser.parse_args(argv)
    if args.device and not args.yes:
        if not sys.stdin.isatty():
            print("kiosk-flash: refusing to overwrite a device without --yes", file=sys.stderr)
            return 2
        answer = input(f"Everything on {args.device} will be erased. Type its name to go on: ")
        if answer.strip() != str(args.device):
            print("kiosk-flash: not confirmed; nothing written", file=sys.stderr)
            return 2
    try:
        result = flash(
            image=args.image,
            bundle=args.bundle,
            wheels=args.wheels,
            out=args.out,
            device=args.device,
            data_mb=args.data_mb,
            progress=lambda line: print(line, file=sys.stderr, flush=True),
        )
    except (FlashError, OSError) as exc:
        print(f"kiosk-flash: {exc}", file=sys.stderr)
        return 2
    print(
        f"done: {result['target']} ({result['files']} files on the boot partition, first boot via "
        f"{result['first_boot']}); put the card in the Pi and power it on"
    )
    return 0


def _run(cmd: list[str], what: str, env: dict[str, str] | None = None) -> None:
    try:
        result = subprocess.run(cmd, capture_output=True, text=True, env=env)
    except FileNotFoundError:
        raise FlashError(f"{cmd[0]} is missing — {what}") from None
    if result.returncode != 0:
        raise FlashError(f"{cmd[0]} failed: {result.stderr.strip() or result.stdout.strip()}")


if __name__ == "__main__":
    sys.exit(main())
