"""kiosk-flash on a small disk image with a real FAT boot partition, read back with mtools."""

import lzma
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from kiosk.flash import DATA_LABEL, BootFiles, FlashError, boot_partition, device_problems, flash, read_partitions

ROOT = Path(__file__).resolve().parents[2]
MIB = 1024 * 1024
CMDLINE = b"console=serial0,115200 console=tty1 root=PARTUUID=1234abcd-02 rootfstype=ext4 fsck.repair=yes rootwait\n"


def make_image(path: Path, *, user_data: bytes | None = None, firstrun: bytes | None = None) -> Path:
    """8 MiB: partition 1 FAT32 (boot) at 1 MiB, partition 2 Linux after it — like Raspberry Pi OS."""
    with open(path, "wb") as fh:
        fh.truncate(8 * MIB)
        mbr = bytearray(512)
        mbr[446:462] = bytes([0, 0, 0, 0, 0x0C, 0, 0, 0]) + struct.pack("<II", 2048, 8192)
        mbr[462:478] = bytes([0, 0, 0, 0, 0x83, 0, 0, 0]) + struct.pack("<II", 2048 + 8192, 4096)
        mbr[510:512] = b"\x55\xaa"
        fh.write(mbr)
    env = {**os.environ, "MTOOLS_SKIP_CHECK": "1"}
    subprocess.run(["mformat", "-i", f"{path}@@{MIB}", "-T", "8192", "-v", "bootfs", "::"], check=True, env=env)
    files = BootFiles(path, MIB)
    files.write("cmdline.txt", CMDLINE)
    files.write("config.txt", b"[all]\n")
    if user_data is not None:
        files.write("user-data", user_data)
    if firstrun is not None:
        files.write("firstrun.sh", firstrun)
    return path


@pytest.fixture
def bundle(tmp_path):
    folder = tmp_path / "bundle"
    folder.mkdir()
    for name in ("kiosk.toml", "ca.crt", "kiosk.crt"):
        (folder / name).write_text(f"{name} of k-vb-q1\n")
    (folder / "kiosk.key").write_text("-----BEGIN PRIVATE KEY-----\nsecret\n")
    os.chmod(folder / "kiosk.key", 0o600)
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    (wheels / "satisfaction_kiosk-0.1.0-py3-none-any.whl").write_bytes(b"PK wheel bytes" * 100)
    (wheels / "paho_mqtt-2.2.0-py3-none-any.whl").write_bytes(b"PK paho" * 50)
    return folder, wheels


def test_bookworm_image_gets_bundle_wheels_and_firstrun(tmp_path, bundle):
    source = make_image(tmp_path / "raspios.img")
    xz = tmp_path / "raspios.img.xz"
    xz.write_bytes(lzma.compress(source.read_bytes()))
    out = tmp_path / "k-vb-q1.img"
    lines = []
    result = flash(image=xz, bundle=bundle[0], wheels=bundle[1], out=out, progress=lines.append)
    assert result["first_boot"].startswith("firstrun.sh")
    assert any("100 %" in line for line in lines)
    files = BootFiles(out, boot_partition(out).start)
    assert files.read("kiosk/bundle/kiosk.key").startswith(b"-----BEGIN PRIVATE KEY")
    assert files.read("kiosk/wheels/satisfaction_kiosk-0.1.0-py3-none-any.whl") == b"PK wheel bytes" * 100
    firstboot = files.read("kiosk/firstboot.sh").decode()
    assert "install -m 0600 -o kiosk -g kiosk" in firstboot and "RuntimeWatchdogSec=15" in firstboot
    assert "pip install --no-index" in firstboot and "systemctl enable kiosk.service" in firstboot
    assert b"Type=notify" in files.read("kiosk/kiosk.service")
    assert b"bash /boot/firmware/kiosk/firstboot.sh" in files.read("firstrun.sh")
    cmdline = files.read("cmdline.txt").decode()
    assert cmdline.startswith(CMDLINE.decode().strip()) and "systemd.run=/boot/firmware/firstrun.sh" in cmdline
    assert cmdline.count("\n") == 1
    assert files.read("config.txt") == b"[all]\n"  # the rest of the image untouched


def test_imager_firstrun_is_kept_and_extended(tmp_path, bundle):
    imager = (
        b"#!/bin/bash\nset +e\necho hostname\nrm -f /boot/firstrun.sh\n"
        b"sed -i 's| systemd.run.*||g' /boot/cmdline.txt\nexit 0\n"
    )
    source = make_image(tmp_path / "custom.img", firstrun=imager)
    out = tmp_path / "out.img"
    flash(image=source, bundle=bundle[0], wheels=bundle[1], out=out, progress=lambda _: None)
    text = BootFiles(out, boot_partition(out).start).read("firstrun.sh").decode()
    assert text.index("echo hostname") < text.index("kiosk/firstboot.sh") < text.index("rm -f /boot/firstrun.sh")


def test_trixie_image_gets_a_cloud_init_runcmd(tmp_path, bundle):
    source = make_image(
        tmp_path / "trixie.img", user_data=b"#cloud-config\nhostname: raspberrypi\nruncmd:\n  - [echo, hi]\n"
    )
    out = tmp_path / "out.img"
    result = flash(image=source, bundle=bundle[0], wheels=bundle[1], out=out, progress=lambda _: None)
    assert result["first_boot"] == "cloud-init user-data"
    files = BootFiles(out, boot_partition(out).start)
    user_data = files.read("user-data").decode()
    assert "  - [bash, /boot/firmware/kiosk/firstboot.sh]" in user_data and "  - [echo, hi]" in user_data
    assert user_data.count("runcmd:") == 1
    assert "systemd.run" not in files.read("cmdline.txt").decode()


def test_read_only_root_adds_an_ext4_data_partition(tmp_path, bundle):
    source = make_image(tmp_path / "raspios.img")
    out = tmp_path / "out.img"
    flash(image=source, bundle=bundle[0], wheels=bundle[1], out=out, data_mb=8, progress=lambda _: None)
    data = read_partitions(out)[2]
    assert data.type == 0x83 and data.size == 8 * MIB and data.start % (4 * MIB) == 0
    with open(out, "rb") as fh:
        fh.seek(data.start + 1024)
        superblock = fh.read(1024)
    assert superblock[56:58] == b"\x53\xef"  # ext2/3/4 magic
    assert superblock[120:136].rstrip(b"\x00").decode() == DATA_LABEL
    assert BootFiles(out, boot_partition(out).start).read("kiosk/read-only-root")


def test_bad_inputs_are_refused_before_anything_is_written(tmp_path, bundle):
    source = make_image(tmp_path / "raspios.img")
    (bundle[0] / "kiosk.key").unlink()
    with pytest.raises(FlashError, match="lacks kiosk.key"):
        flash(image=source, bundle=bundle[0], wheels=bundle[1], out=tmp_path / "x.img")
    assert not (tmp_path / "x.img").exists()
    junk = tmp_path / "junk.img"
    junk.write_bytes(b"\x00" * 4096)
    with pytest.raises(FlashError, match="no MBR"):
        read_partitions(junk)


def test_devices_that_are_mounted_or_hold_the_system_are_refused(tmp_path):
    root_source = next(
        line.split()[0] for line in Path("/proc/mounts").read_text().splitlines() if line.split()[1] == "/"
    )
    if root_source.startswith("/dev/"):
        problems = device_problems(Path(root_source))
        assert any("mounted" in p for p in problems) and any("running system" in p for p in problems)
    assert "not a block device" in device_problems(Path("/etc/hostname"))[0]
    assert "does not exist" in device_problems(Path("/dev/does-not-exist"))[0]


def test_command_line_refuses_a_device_without_confirmation(tmp_path, bundle):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "kiosk.flash",
            str(tmp_path / "x.img"),
            "--bundle",
            str(bundle[0]),
            "--wheels",
            str(bundle[1]),
            "--device",
            "/dev/sdz",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 2 and "without --yes" in result.stderr
