"""A kiosk proved on a booted system (scripts/test-image).

1. **Image.** debootstrap makes a Debian Bookworm root (systemd, Python 3.11, a kernel) for the
   host's architecture — arm64 under qemu-system-aarch64 emulates too slowly on 2 cores for a
   first boot that installs opencv, so this is x86_64 under KVM (or plain emulation when KVM is
   missing). The disk is laid out like Raspberry Pi OS Bookworm: an MBR, a FAT32 ``bootfs``
   partition mounted at /boot/firmware with ``cmdline.txt`` and ``config.txt``, an ext4
   ``rootfs`` found by PARTUUID; groups gpio, video and dialout exist as on Pi OS.
2. **Flash.** The host plays the collector: ``collector ca init`` naming 10.0.2.100, ``kiosk
   enrol``, a broker from ``collector broker config``, ``collector serve --role ingest`` (with the
   release server). ``kiosk-flash`` writes the image with the bundle and the wheelhouse.
3. **Boot.** QEMU boots the kernel with the command line read from the FAT partition's
   ``cmdline.txt``, as the Pi's firmware does, so the first boot runs ``firstrun.sh`` and the
   second boot is the one ``firstrun.sh`` left. The guest's network is QEMU's restricted user
   network: no internet, no host, only 10.0.2.100:8883 (the broker) and :8443 (the release
   server) forwarded to the host. The button panel is the serial panel on the guest's ttyS1,
   played by this script (heartbeats, presses, counting the kiosk's thank-yous); the camera is
   absent. An i6300esb watchdog backs systemd's ``RuntimeWatchdogSec``. A probe unit (part of the
   test image only, as a QEMU guest agent would be) writes systemd's view of the kiosk to ttyS2.

Checked from the host: the first boot installs from the card with no network; the ``kiosk`` unit
runs under its watchdog; presses reach the collector over TLS; an update rolled out is taken and
proved; a broken update is rolled back by itself; QEMU killed in the middle of a burst of presses
loses none the kiosk thanked for. Prints figures (first boot, boot to first delivery, update
download and switch) and exits 1 if any check failed.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import hashlib
import json
import os
import platform
import shutil
import signal
import socket
import sqlite3
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from collector.localbroker import LocalBroker, free_port  # noqa: E402
from kiosk import __version__  # noqa: E402

BIN = Path(sys.executable).parent
MIB = 1024 * 1024
SUITE = "bookworm"
PACKAGES = (
    "systemd,systemd-sysv,udev,dbus,systemd-timesyncd,linux-image-amd64,python3,python3-venv,iproute2,ca-certificates"
)
BOOT_START, BOOT_SIZE, ROOT_EXTRA = 4 * MIB, 256 * MIB, 2048 * MIB
DISK_ID = "4b696f73"  # the MBR disk identifier: PARTUUIDs are 4b696f73-01 and -02
COLLECTOR_IP = "10.0.2.100"  # the collector as the guest sees it (QEMU forwards to the host)
KIOSK = "k-vb-q1"
COUNTER = "vb-q1"
# The guest's clock at power-on: 200 days behind, before the fleet CA was made, as a Pi without a
# real-time clock boots at its image's date on a LAN that blocks NTP.
CLOCK_OFF = dt.timedelta(days=-200)

PROBE = r"""#!/usr/bin/python3
# Test image only: systemd's view of the kiosk, every 2 s, on ttyS2 for the host to read.
import json, os, subprocess, time

def show(*args):
    out = subprocess.run(["systemctl", "show", *args], capture_output=True, text=True).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

def tail(path, n=3):
    try:
        return open(path, errors="replace").read().splitlines()[-n:]
    except OSError:
        return []

with open("/dev/ttyS2", "w") as tty:
    while True:
        current = "/var/lib/kiosk/versions/current"
        doc = {
            "uptime": float(open("/proc/uptime").read().split()[0]),
            "kiosk": show("kiosk.service", "-p", "ActiveState,SubState,WatchdogUSec,NRestarts,MainPID,Type"),
            "manager": show("-p", "RuntimeWatchdogUSec,SystemState"),
            "watchdog_device": os.path.exists("/dev/watchdog0"),
            "installed": os.path.exists("/etc/kiosk/.installed"),
            "current": os.path.basename(os.path.realpath(current)) if os.path.lexists(current) else None,
            "firstboot": tail("/var/log/kiosk-firstboot.log"),
            "bundle_left_on_fat": os.path.exists("/boot/firmware/kiosk/bundle"),
            "journal": subprocess.run(["journalctl", "-u", "kiosk", "-n", "4", "--no-pager", "-o", "cat"],
                                      capture_output=True, text=True).stdout.splitlines()[-4:],
        }
        tty.write(json.dumps(doc) + "\n")
        tty.flush()
        time.sleep(2)
"""

PROBE_UNIT = """[Unit]
Description=Test image probe (host reads systemd's view of the kiosk on ttyS2)
After=basic.target

[Service]
ExecStart=/usr/local/sbin/image-probe
Restart=always

[Install]
WantedBy=multi-user.target
"""

NETWORK = "[Match]\nName=en* eth*\n\n[Network]\nDHCP=yes\n"


def log(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


def run(cmd: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    if result.returncode != 0:
        raise SystemExit(
            f"test-image: {' '.join(map(str, cmd))} failed:\n{result.stderr[-3000:]}{result.stdout[-2000:]}"
        )
    return result


# --- the base image (laid out like Raspberry Pi OS) ---------------------------------------------


def build_rootfs(work: Path, mirror: str) -> Path:
    """debootstrap once; later runs reuse the folder while the package list is the same."""
    rootfs = work / "rootfs"
    stamp = work / "rootfs.stamp"
    want = hashlib.sha256(f"{SUITE} {PACKAGES} {mirror}".encode()).hexdigest()
    if stamp.exists() and stamp.read_text() == want and (rootfs / "usr/bin/python3").exists():
        return rootfs
    shutil.rmtree(rootfs, ignore_errors=True)
    stamp.unlink(missing_ok=True)
    (work / "debs").mkdir(parents=True, exist_ok=True)
    log(f"debootstrap {SUITE} ({platform.machine()}) into {rootfs} …")
    run(
        [
            "debootstrap",
            "--variant=minbase",
            f"--cache-dir={work / 'debs'}",
            f"--include={PACKAGES}",
            SUITE,
            str(rootfs),
            mirror,
        ]
    )
    # As on Raspberry Pi OS: the groups the kiosk's unit names exist; no docs or apt lists.
    for group in ("gpio", "video", "dialout"):
        run(["chroot", str(rootfs), "groupadd", "-f", "-r", group])
    for folder in ("usr/share/doc", "usr/share/man", "var/lib/apt/lists", "var/cache/apt"):
        shutil.rmtree(rootfs / folder, ignore_errors=True)
    (rootfs / "var/lib/apt/lists").mkdir(parents=True)
    stamp.write_text(want)
    return rootfs


def configure_rootfs(rootfs: Path) -> None:
    (rootfs / "etc/hostname").write_text("raspberrypi\n")
    (rootfs / "etc/hosts").write_text("127.0.0.1 localhost\n127.0.1.1 raspberrypi\n")
    (rootfs / "etc/fstab").write_text(
        f"PARTUUID={DISK_ID}-01 /boot/firmware vfat defaults 0 2\nPARTUUID={DISK_ID}-02 / ext4 defaults,noatime 0 1\n"
    )
    (rootfs / "boot/firmware").mkdir(parents=True, exist_ok=True)
    (rootfs / "etc/systemd/network").mkdir(parents=True, exist_ok=True)
    (rootfs / "etc/systemd/network/20-wired.network").write_text(NETWORK)
    probe = rootfs / "usr/local/sbin/image-probe"
    probe.parent.mkdir(parents=True, exist_ok=True)
    probe.write_text(PROBE)
    probe.chmod(0o755)
    (rootfs / "etc/systemd/system/image-probe.service").write_text(PROBE_UNIT)
    run(["chroot", str(rootfs), "systemctl", "enable", "systemd-networkd", "image-probe.service"])
    run(["chroot", str(rootfs), "passwd", "-d", "root"])  # the console is for a human who debugs


def make_image(rootfs: Path, out: Path) -> tuple[Path, Path]:
    """MBR + FAT32 bootfs + ext4 rootfs; returns the kernel and initrd the 'firmware' boots."""
    kernels = sorted((rootfs / "boot").glob("vmlinuz-*"))
    initrds = sorted((rootfs / "boot").glob("initrd.img-*"))
    if not kernels or not initrds:
        raise SystemExit("test-image: no kernel or initrd in the root file system")
    used = int(run(["du", "-sb", str(rootfs)]).stdout.split()[0])
    root_size = (used + ROOT_EXTRA) // MIB * MIB
    with open(out, "wb") as fh:
        fh.truncate(BOOT_START + BOOT_SIZE + root_size)
        mbr = bytearray(512)
        mbr[440:444] = bytes.fromhex(DISK_ID)[::-1]
        mbr[446:462] = bytes([0, 0, 0, 0, 0x0C, 0, 0, 0]) + struct.pack("<II", BOOT_START // 512, BOOT_SIZE // 512)
        mbr[462:478] = bytes([0, 0, 0, 0, 0x83, 0, 0, 0]) + struct.pack(
            "<II", (BOOT_START + BOOT_SIZE) // 512, root_size // 512
        )
        mbr[510:512] = b"\x55\xaa"
        fh.write(mbr)
    env = {**os.environ, "MTOOLS_SKIP_CHECK": "1"}
    fat = f"{out}@@{BOOT_START}"
    run(["mformat", "-i", fat, "-F", "-T", str(BOOT_SIZE // 512), "-v", "bootfs", "::"], env=env)
    files = {
        "cmdline.txt": f"console=ttyS0,115200 root=PARTUUID={DISK_ID}-02 rootfstype=ext4 fsck.repair=yes rootwait\n",
        "config.txt": "# test image: the host plays the Pi's firmware and reads cmdline.txt\n[all]\ncamera_auto_detect=1\n",
        "issue.txt": f"Debian {SUITE} in Raspberry Pi OS layout (scripts/test-image)\n",
    }
    with tempfile.TemporaryDirectory() as tmp:
        for name, text in files.items():
            (Path(tmp) / name).write_text(text)
            run(["mcopy", "-o", "-i", fat, str(Path(tmp) / name), f"::/{name}"], env=env)
    run(
        [
            "mke2fs",
            "-q",
            "-F",
            "-t",
            "ext4",
            "-L",
            "rootfs",
            "-d",
            str(rootfs),
            "-E",
            f"offset={BOOT_START + BOOT_SIZE}",
            str(out),
            f"{root_size // 1024}k",
        ]
    )
    return kernels[-1], initrds[-1]


def read_cmdline(image: Path) -> str:
    env = {**os.environ, "MTOOLS_SKIP_CHECK": "1"}
    return run(["mtype", "-i", f"{image}@@{BOOT_START}", "::/cmdline.txt"], env=env).stdout.strip()


# --- the collector on the host ---------------------------------------------------------------------


class Collector:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.conf = folder / "collector.toml"
        self.data = folder / "data"
        self.broker_port = free_port()
        self.release_port = free_port()
        self.http_port = free_port()
        self.bundle = folder / "bundle"
        self.broker: LocalBroker | None = None
        self.serve: subprocess.Popen[bytes] | None = None

    def cli(self, *args: str) -> str:
        return run([str(BIN / "collector"), *args, "--config", str(self.conf)]).stdout

    def prepare(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        registry = self.folder / "registry.toml"
        registry.write_text((ROOT / "config/registry.example.toml").read_text().split("[[kiosk]]")[0])
        fleet = self.data / "fleet"
        self.conf.write_text(
            f'data_dir = "{self.data}"\nregistry = "{registry}"\n'
            f'[mqtt]\nhost = "127.0.0.1"\nport = {self.broker_port}\n'
            f'tls_ca = "{fleet / "ca.crt"}"\ntls_cert = "{fleet / "collector.crt"}"\ntls_key = "{fleet / "collector.key"}"\n'
            f'[update]\nhost = "127.0.0.1"\nport = {self.release_port}\npublic_url = "https://{COLLECTOR_IP}:8443"\n'
            f'[http]\nhost = "127.0.0.1"\nport = {self.http_port}\n'
        )
        self.cli("registry", "load", str(registry))
        self.cli("ca", "init", "--broker-host", COLLECTOR_IP, "--broker-host", "127.0.0.1")
        self.cli(
            "kiosk", "enrol", KIOSK, "--counter", COUNTER, "--out", str(self.bundle),
            "--broker-host", COLLECTOR_IP, "--broker-port", "8883",
        )  # fmt: skip
        # What a technician sets for this counter's hardware: the USB serial panel, no camera;
        # no lock-out so that the burst below is all ratings; a status every 10 s.
        toml = (self.bundle / "kiosk.toml").read_text()
        for old, new in (
            ('[panel]\nkind = "gpio"\n', '[panel]\nkind = "serial"\nserial_port = "/dev/ttyS1"\nlockout_s = 0\nmax_per_minute = 100000\n'),
            ('[camera]\nsource = "/dev/video0"\n', '[camera]\nsource = ""\nenabled = false\n\n[outbox]\nstatus_interval_s = 10\n'),
        ):  # fmt: skip
            if old not in toml:
                raise SystemExit(f"test-image: the enrolment's kiosk.toml has no {old!r}")
            toml = toml.replace(old, new)
        (self.bundle / "kiosk.toml").write_text(toml)
        broker_dir = self.folder / "broker"
        self.cli(
            "broker", "config", "--out", str(broker_dir), "--port", str(self.broker_port),
            "--bind", "127.0.0.1", "--persistence", f"{broker_dir}/",
        )  # fmt: skip

    def start(self) -> None:
        broker_dir = self.folder / "broker"
        self.broker = LocalBroker(
            broker_dir, port=self.broker_port, config=broker_dir / "mosquitto.conf", own_listener=True
        ).start()
        out = (self.folder / "serve.log").open("ab")
        self.serve = subprocess.Popen(
            [str(BIN / "collector"), "serve", "--role", "ingest", "--config", str(self.conf)],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_for(lambda: _port_open(self.http_port), 30, "the collector to answer")
        if self.serve.poll() is not None:
            raise SystemExit(f"test-image: collector serve exited; see {self.folder / 'serve.log'}")

    def stop(self) -> None:
        if self.serve is not None and self.serve.poll() is None:
            self.serve.send_signal(signal.SIGTERM)
            try:
                self.serve.wait(20)
            except subprocess.TimeoutExpired:
                self.serve.kill()
        if self.broker is not None:
            self.broker.stop()

    def db(self) -> sqlite3.Connection:
        return sqlite3.connect(f"file:{self.data / 'collector.db'}?mode=ro", uri=True, timeout=10)

    def ratings(self) -> int:
        with self.db() as conn:
            return int(conn.execute("SELECT COUNT(*) FROM ratings WHERE kiosk=?", (KIOSK,)).fetchone()[0])

    def ratings_rows(self) -> list[tuple[str, str, str, str]]:
        with self.db() as conn:
            return conn.execute(
                "SELECT id, pressed_at, received_at, clock FROM ratings WHERE kiosk=? ORDER BY received_at", (KIOSK,)
            ).fetchall()

    def status(self) -> dict[str, Any]:
        with self.db() as conn:
            row = conn.execute("SELECT doc FROM kiosk_status WHERE kiosk=?", (KIOSK,)).fetchone()
        return json.loads(row[0]) if row else {}

    def release(self, wheels: Path, version: str) -> None:
        self.cli("release", "add", str(wheels))
        self.cli("release", "rollout", version, "--units", "10", "--percent", "100")


def _parse(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def wait_for(check: Callable[[], Any], timeout_s: float, what: str, *, every_s: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every_s)
    raise TimeoutError(f"gave up after {timeout_s:.0f} s waiting for {what}")


def release_wheels(work: Path, base: Path, version: str, *, broken: bool = False) -> Path:
    """The base wheelhouse with this project's wheel rebuilt as ``version`` (broken: exits at start)."""
    src = work / f"src-{version}"
    shutil.rmtree(src, ignore_errors=True)
    shutil.copytree(
        ROOT, src, ignore=shutil.ignore_patterns(".venv", ".git", "tests", "docs", "__pycache__", "wheelhouse")
    )
    init = src / "kiosk" / "__init__.py"
    head, _, rest = init.read_text().partition("__version__ = ")
    init.write_text(head + f'__version__ = "{version}"\n' + rest.split("\n", 1)[1])
    if broken:
        cli = src / "kiosk" / "cli.py"
        cli.write_text(cli.read_text() + '\nraise SystemExit("this release is broken on purpose")\n')
    wheels = work / f"wheels-{version}"
    shutil.rmtree(wheels, ignore_errors=True)
    wheels.mkdir()
    for wheel in base.glob("*.whl"):
        if not wheel.name.startswith("satisfaction_kiosk-"):
            shutil.copy(wheel, wheels)
    run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(src)])
    shutil.rmtree(src)
    return wheels


# --- the Pi: QEMU and the serial panel -------------------------------------------------------------


class Panel:
    """The four-button serial panel on the guest's ttyS1 (hardware/README.md's protocol)."""

    def __init__(self, path: Path, *, alive: Callable[[], bool]) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        wait_for(lambda: self._connect(path) or not alive(), 30, "QEMU's panel socket", every_s=0.1)
        if not alive():
            raise TimeoutError("QEMU exited")
        self.sent = 0
        self.thanked = 0
        self.faults = 0
        self.first_thanks: float | None = None
        self.lock = threading.Lock()
        self.closed = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._heartbeat, daemon=True).start()

    def _connect(self, path: Path) -> bool:
        try:
            self.sock.connect(str(path))
        except OSError:
            return False
        return True

    def _write(self, line: str) -> None:
        with self.lock:
            try:
                self.sock.sendall(line.encode() + b"\n")
            except OSError:
                self.closed.set()

    def press(self, button: int) -> None:
        self._write(f"P{button}")
        self.sent += 1

    def _heartbeat(self) -> None:
        while not self.closed.wait(2):
            self._write("H")

    def _read(self) -> None:
        buffer = b""
        while True:
            try:
                chunk = self.sock.recv(256)
            except OSError:
                chunk = b""
            if not chunk:
                self.closed.set()
                return
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                line = line.strip(b"\r ")
                if line == b"T":
                    self.thanked += 1
                    if self.first_thanks is None:
                        self.first_thanks = time.monotonic()
                elif line == b"E":
                    self.faults += 1

    def close(self) -> None:
        self.closed.set()
        self.sock.close()


class Pi:
    """One power-on of the flashed card in QEMU, until the guest reboots, halts or is killed."""

    def __init__(self, image: Path, kernel: Path, initrd: Path, run_dir: Path, collector: Collector, n: int) -> None:
        self.run_dir = run_dir
        self.console = run_dir / f"console-{n}.log"
        self.probe_log = run_dir / f"probe-{n}.log"
        self.panel_sock = run_dir / f"panel-{n}.sock"
        self.panel_sock.unlink(missing_ok=True)
        kvm = _kvm_works(kernel)
        relay = f"{shutil.which('socat')} - TCP:127.0.0.1"
        netdev = (
            "user,id=net0,restrict=on,"
            f"guestfwd=tcp:{COLLECTOR_IP}:8883-cmd:{relay}:{collector.broker_port},"
            f"guestfwd=tcp:{COLLECTOR_IP}:8443-cmd:{relay}:{collector.release_port}"
        )
        self.cmdline = read_cmdline(image)
        # One virtual CPU: under emulation two vCPU threads on a busy 2-core host (CI runs this
        # beside the test suite) once left the guest kernel RCU-starved and hung at boot.
        cmd = [
            "qemu-system-x86_64",
            *(["-accel", "kvm", "-cpu", "host"] if kvm else ["-accel", "tcg", "-cpu", "max"]),
            "-m", "1024", "-smp", "1", "-display", "none", "-no-reboot", "-nodefaults",
            "-kernel", str(kernel), "-initrd", str(initrd), "-append", self.cmdline,
            "-drive", f"file={image},format=raw,if=virtio,cache=writeback",
            "-netdev", netdev, "-device", "virtio-net-pci,netdev=net0",
            "-serial", f"file:{self.console}",
            "-chardev", f"socket,id=panel,path={self.panel_sock},server=on,wait=off", "-serial", "chardev:panel",
            "-serial", f"file:{self.probe_log}",
            "-device", "i6300esb", "-action", "watchdog=reset",
            # The Pi has no RTC and NTP is out of reach: its clock starts 200 days behind (TLS
            # must still connect), and only the collector's time in acks puts the presses right.
            "-rtc", f"base={_wrong_time()}",
        ]  # fmt: skip
        self.started = time.monotonic()
        qemu_log = run_dir / f"qemu-{n}.log"
        self.proc = subprocess.Popen(cmd, stdout=qemu_log.open("wb"), stderr=subprocess.STDOUT)
        try:
            self.panel = Panel(self.panel_sock, alive=lambda: self.proc.poll() is None)
        except TimeoutError:
            self.proc.kill()
            raise SystemExit(
                f"test-image: QEMU did not start: {qemu_log.read_text(errors='replace')[-2000:]}"
            ) from None
        self.accel = "KVM" if kvm else "TCG (software emulation)"

    def probes(self) -> list[dict[str, Any]]:
        found = []
        try:
            lines = self.probe_log.read_text(errors="replace").splitlines()
        except OSError:
            return []
        for line in lines:
            line = line.strip()
            if line.startswith("{") and line.endswith("}"):
                with contextlib.suppress(ValueError):
                    found.append(json.loads(line))
        return found

    def last_probe(self) -> dict[str, Any]:
        probes = self.probes()
        return probes[-1] if probes else {}

    def wait_exit(self, timeout_s: float) -> int:
        try:
            return self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            # A failed check with the guest's last words, not a traceback (once a guest hung in its
            # kernel, RCU-starved, while the host was busy with the test suite).
            raise TimeoutError(
                f"the guest did not power off within {timeout_s:.0f} s; its console ends: "
                + " | ".join(self.console.read_text(errors="replace").splitlines()[-3:])
            ) from None
        finally:
            self.panel.close()

    def power_cut(self) -> None:
        self.proc.kill()
        self.proc.wait(10)
        self.panel.close()

    def shutdown(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()  # QEMU's SIGTERM: the guest stops at once, as at a power cut
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.panel.close()


_KVM: list[bool] = []


def _wrong_time() -> str:
    return (dt.datetime.now(dt.UTC) + CLOCK_OFF).strftime("%Y-%m-%dT%H:%M:%S")


def _kvm_works(kernel: Path) -> bool:
    """Whether QEMU boots a kernel under KVM here: /dev/kvm can exist and still run nothing
    (nested, some CPUs refuse MSRs), so a kernel is started and its first line awaited."""
    if _KVM:
        return _KVM[0]
    works = False
    if os.access("/dev/kvm", os.R_OK | os.W_OK):
        try:
            out = subprocess.run(
                ["qemu-system-x86_64", "-accel", "kvm", "-cpu", "host", "-m", "256", "-display", "none",
                 "-nodefaults", "-no-reboot", "-serial", "stdio", "-kernel", str(kernel),
                 "-append", "console=ttyS0 panic=-1"],
                capture_output=True, timeout=20,
            ).stdout  # fmt: skip
        except subprocess.TimeoutExpired as exc:
            out = exc.stdout or b""
        works = b"Linux version" in out
    _KVM.append(works)
    return works


# --- the checks ---------------------------------------------------------------------------------


class Checks:
    def __init__(self) -> None:
        self.results: list[tuple[str, bool, str]] = []
        self.figures: list[tuple[str, str]] = []

    def check(self, name: str, ok: bool, detail: str = "") -> bool:
        self.results.append((name, ok, detail))
        log(f"{'PASS' if ok else 'FAIL'} {name}{' — ' + detail if detail else ''}")
        return ok

    def figure(self, name: str, value: str) -> None:
        self.figures.append((name, value))
        log(f"figure: {name}: {value}")


def scenario(args: argparse.Namespace) -> int:
    work: Path = args.work
    work.mkdir(parents=True, exist_ok=True)
    checks = Checks()
    t0 = time.monotonic()
    rootfs = build_rootfs(work, args.mirror)
    configure_rootfs(rootfs)
    base = work / "base.img"
    kernel, initrd = make_image(rootfs, base)
    checks.figure("base image built", f"{time.monotonic() - t0:.0f} s ({base.stat().st_size // MIB} MiB, sparse)")

    run_dir = work / "run"
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir()
    wheels = work / "wheelhouse"
    shutil.rmtree(wheels, ignore_errors=True)
    arch = {"x86_64": "x86_64", "aarch64": "aarch64"}[platform.machine()]
    run(["scripts/build-wheelhouse", str(wheels), "3.11", f"manylinux_2_36_{arch}"], cwd=ROOT)
    collector = Collector(run_dir / "collector")
    collector.prepare()
    flashed = run_dir / "kiosk.img"
    t = time.monotonic()
    run([str(BIN / "kiosk-flash"), str(base), "--bundle", str(collector.bundle), "--wheels", str(wheels),
         "--out", str(flashed)])  # fmt: skip
    checks.figure("kiosk-flash", f"{time.monotonic() - t:.1f} s")
    collector.start()
    boots = 0
    totals = {"sent": 0, "thanked": 0}
    powered: list[Pi] = []

    def power_on() -> Pi:
        nonlocal boots
        boots += 1
        powered.append(Pi(flashed, kernel, initrd, run_dir, collector, boots))
        return powered[-1]

    def tally(pi: Pi) -> None:  # presses of a boot that has ended
        totals["sent"] += pi.panel.sent
        totals["thanked"] += pi.panel.thanked

    try:
        # 1. First boot: firstrun.sh installs from the card, then the guest reboots (QEMU exits).
        pi = power_on()
        log(f"first boot ({pi.accel}), command line: {pi.cmdline}")
        checks.check("first boot runs firstrun.sh from cmdline.txt", "systemd.run=" in pi.cmdline, pi.cmdline)
        code = pi.wait_exit(args.boot_timeout)
        tally(pi)
        first_boot_s = time.monotonic() - pi.started
        checks.figure("first boot (install from the card, offline) until its reboot", f"{first_boot_s:.0f} s")
        checks.check("first boot ends in a reboot", code == 0, f"QEMU exit {code}")
        cmdline = read_cmdline(flashed)
        checks.check("firstrun.sh took itself off cmdline.txt", "systemd.run" not in cmdline, cmdline)

        # 2. Second boot: the kiosk runs; the panel presses until the kiosk thanks.
        pi = power_on()
        probe = wait_for(
            lambda: (p := pi.last_probe()) and p.get("kiosk", {}).get("ActiveState") == "active" and p,
            args.boot_timeout,
            "the kiosk unit to be active",
        )
        checks.check(
            "first boot installed offline",
            probe["installed"] and "kiosk installed" in " ".join(probe["firstboot"]),
            "; ".join(probe["firstboot"]),
        )
        checks.check("the bundle left the FAT partition", not probe["bundle_left_on_fat"])
        unit = probe["kiosk"]
        checks.check(
            "kiosk unit active under its watchdog",
            unit.get("Type") == "notify" and unit.get("WatchdogUSec") not in (None, "0", "infinity"),
            f"Type={unit.get('Type')} WatchdogUSec={unit.get('WatchdogUSec')}",
        )
        manager = probe["manager"]
        checks.check(
            "systemd drives the hardware watchdog",
            probe["watchdog_device"] and manager.get("RuntimeWatchdogUSec") == "15s",
            f"/dev/watchdog0={probe['watchdog_device']} RuntimeWatchdogUSec={manager.get('RuntimeWatchdogUSec')}",
        )

        def first_delivery() -> bool:
            if pi.panel.thanked == 0:
                pi.panel.press(1)
            return collector.ratings() > 0

        wait_for(first_delivery, args.boot_timeout, "the first press to reach the collector", every_s=1.0)
        boot_to_delivery = time.monotonic() - pi.started
        checks.figure("power on to first press delivered (second boot)", f"{boot_to_delivery:.1f} s")
        checks.check("a press reached the collector over TLS", collector.ratings() > 0)
        # The first status may leave before the first ack has told the kiosk the collector's time.
        with contextlib.suppress(TimeoutError):
            wait_for(lambda: collector.status().get("clock_source") in ("ntp", "collector"), 60, "a timed status")
        status = collector.status()
        checks.check(
            "status: panel ok, clock from somewhere",
            status.get("panel") == "ok" and status.get("clock_source") in ("ntp", "collector"),
            f"panel={status.get('panel')} clock_source={status.get('clock_source')} fw={status.get('fw')}",
        )
        for button in (1, 2, 3, 4):
            pi.panel.press(button)
            time.sleep(0.3)
        wait_for(lambda: collector.ratings() >= pi.panel.thanked, 60, "the four presses")

        # 3. An update, rolled out and taken.
        major, minor, patch = (int(x) for x in __version__.split(".")[:3])
        good, bad = f"{major}.{minor}.{patch + 1}", f"{major}.{minor}.{patch + 2}"
        t = time.monotonic()
        collector.release(release_wheels(work, wheels, good), good)
        log(f"release {good} rolled out ({time.monotonic() - t:.0f} s to build and add)")
        t = time.monotonic()
        seen: list[str] = []

        def update_state(version: str, *states: str) -> bool:
            update = collector.status().get("update") or {}
            text = f"{update.get('version')}:{update.get('state')}"
            if not seen or seen[-1] != text:
                seen.append(text)
            return update.get("version") == version and update.get("state") in states

        wait_for(lambda: update_state(good, "switching", "trial", "updated"), 300, f"the kiosk to take {good}")
        switched = time.monotonic() - t
        wait_for(lambda: update_state(good, "updated") and collector.status().get("fw") == good, 300, f"{good} proved")
        proved = time.monotonic() - t
        checks.figure(f"update {good}: offer to switch", f"{switched:.1f} s")
        checks.figure(f"update {good}: offer to proved (running, acked)", f"{proved:.1f} s")
        checks.check("update taken and proved", collector.status().get("fw") == good, " → ".join(seen))
        before = collector.ratings()
        pi.panel.press(2)
        wait_for(lambda: collector.ratings() > before, 60, "a press on the new release")
        checks.check("presses go on after the update", collector.ratings() > before)

        # 4. A broken update: it dies at start; the launcher goes back by itself.
        seen.clear()
        t = time.monotonic()
        collector.release(release_wheels(work, wheels, bad, broken=True), bad)
        wait_for(lambda: update_state(bad, "rolled_back", "failed"), 600, f"the kiosk to roll {bad} back")
        checks.figure(f"broken update {bad}: offer to rolled back", f"{time.monotonic() - t:.1f} s")
        status = collector.status()
        checks.check(
            "broken update rolled back by itself",
            status.get("fw") == good and (status.get("update") or {}).get("state") == "rolled_back",
            " → ".join(seen) + f"; running {status.get('fw')}",
        )
        unit = wait_for(
            lambda: (u := pi.last_probe().get("kiosk", {})).get("ActiveState") == "active" and u,
            120,
            "the kiosk unit to run again after the rollback",
        )
        checks.check("the unit runs on after the rollback", True, f"systemd restarted it {unit.get('NRestarts')} times")
        before = collector.ratings()
        pi.panel.press(3)
        wait_for(lambda: collector.ratings() > before, 60, "a press after the rollback")

        # 5. Power cut in the middle of a burst: what the kiosk thanked for is never lost.
        boot_before = collector.status().get("boot")
        thanked_before = pi.panel.thanked
        for n in range(args.burst):
            pi.panel.press(1 + n % 4)
            time.sleep(0.05)
            if pi.panel.thanked - thanked_before >= args.burst // 3:
                break
        pi.power_cut()
        log(f"power cut: {pi.panel.sent} presses sent this boot, {pi.panel.thanked} thanked")
        tally(pi)
        pi = power_on()
        wait_for(
            lambda: collector.ratings() >= totals["thanked"], args.boot_timeout, "the thanked presses after the cut"
        )
        wait_for(
            lambda: (
                (s := collector.status()).get("boot") not in (None, boot_before)
                and (s.get("backlog") or {}).get("ratings") == 0
            ),
            args.boot_timeout,
            "a status of the next boot with an empty backlog",
        )
        stored = collector.ratings()
        checks.check(
            "power cut mid-burst: every thanked press delivered, none invented",
            totals["thanked"] <= stored <= totals["sent"],
            f"{totals['sent']} presses sent in all, {totals['thanked']} thanked, {stored} stored",
        )
        rows = collector.ratings_rows()
        worst = max(abs(_parse(pressed) - _parse(received)) for _, pressed, received, _ in rows)
        checks.check(
            f"times right without NTP (guest clock off by {CLOCK_OFF})",
            worst < dt.timedelta(minutes=2),
            f"largest pressed/received gap {worst}; clocks {sorted({r[3] for r in rows})}",
        )
        checks.check("no rating stored twice", len({r[0] for r in rows}) == len(rows), f"{len(rows)} rows")
        pi.shutdown()
        tally(pi)
    except TimeoutError as exc:
        probe = powered[-1].last_probe() if powered else {}
        checks.check(str(exc), False, f"the guest said: {json.dumps(probe)[-2000:]}")
        if powered:
            powered[-1].shutdown()
    finally:
        for pi in powered:  # whatever went wrong, no emulated Pi outlives the check (one once ran on for an hour)
            if pi.proc.poll() is None:
                pi.proc.kill()
                pi.proc.wait()
        collector.stop()
    failed = [name for name, ok, _ in checks.results if not ok]
    print("\nfigures:")
    for name, value in checks.figures:
        print(f"  {name}: {value}")
    print(f"\n{len(checks.results) - len(failed)} of {len(checks.results)} checks passed in "
          f"{time.monotonic() - t0:.0f} s")  # fmt: skip
    for name in failed:
        print(f"  FAILED: {name}")
    return 1 if failed else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path("/var/tmp/kiosk-test-image"), help="cache and run folder")
    parser.add_argument("--mirror", default="http://deb.debian.org/debian")
    parser.add_argument("--boot-timeout", type=float, default=600.0, help="seconds a boot may take")
    parser.add_argument("--burst", type=int, default=60, help="presses in the burst cut by the power cut")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("test-image: needs root (debootstrap and chroot)", file=sys.stderr)
        return 2
    return scenario(args)


if __name__ == "__main__":
    sys.exit(main())
