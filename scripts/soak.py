"""A province in miniature on one machine, under faults, for as long as you like.

A private Mosquitto, `collector serve` (SQLite or PostgreSQL), N kiosk processes with fake
hardware pressing at a given rate and taking generated pictures, and a fault schedule: broker
restarts and outages, collector SIGKILL, kiosk SIGKILL, a full disk under a kiosk's data folder
(a small tmpfs, filled and freed: needs root), a step of a kiosk's wall clock. Every few seconds it samples each
process's memory (RSS), threads, open descriptors and CPU, and the kiosks' backlog. At the end it
lets the backlog drain and checks exactly once, kiosk outboxes against the store (ratings and
pictures: missing, extra, doubled), prints the recovery time after each fault and each process's
growth per hour and per press, and draws memory and backlog over time to a PNG.

    scripts/soak --kiosks 10 --rate 20 --duration 1800 --out soak-run
    scripts/soak --duration 120 --faults "20:broker-restart,40:broker-stop=15,70:collector-kill,90:kiosk-kill=2"
    scripts/soak --duration 300 --faults "60:disk-full=30,150:clock-step=-3600,200:clock-step=900"

disk-full=S fills the last kiosk's data folder for S seconds; clock-step=S moves the first kiosk's
wall clock by S seconds (as NTP stepping a Pi's clock) and leaves it there. A step of more than 5
minutes ahead makes the collector quarantine that kiosk's presses as time_in_future (replayable):
they are counted as held, not as lost.

Exit status 0 when every press arrived exactly once and every fault was recovered from; 1 if not.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from collector.localbroker import LocalBroker, free_port  # noqa: E402
from collector.registry import load_registry  # noqa: E402
from kiosk.clock import CLOCK_OFFSET_FILE  # noqa: E402

REGISTRY = ROOT / "config" / "registry.example.toml"
BIN = Path(sys.executable).parent
TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Fault:
    at_s: float
    kind: str  # broker-restart | broker-stop | collector-kill | kiosk-kill | disk-full | clock-step
    arg: float = 0.0
    started: float = 0.0  # monotonic, when it was applied
    ended: float = 0.0  # when the system was whole again (broker back, process restarted)
    recovered_s: float | None = None  # from `ended` until everything pressed before it was acked


@dataclass
class Proc:
    name: str
    cmd: list[str]
    log: Path
    popen: subprocess.Popen[bytes] | None = None
    samples: list[tuple[float, float, int, int, float]] = field(default_factory=list)  # t, MiB, threads, fds, cpu s
    started_at: float = 0.0  # monotonic, of the latest (re)start: growth is measured from there

    def start(self, *, measured: bool = True) -> None:
        handle = open(self.log, "ab")  # noqa: SIM115 - the child writes it
        self.popen = subprocess.Popen(self.cmd, stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        if measured:
            self.started_at = time.monotonic()

    def steady(self, since: float, warmup_s: float = 20.0) -> list[tuple[float, float, int, int, float]]:
        """Samples of the latest run after it warmed up (imports, caches, first connection)."""
        return [s for s in self.samples if s[0] >= self.started_at - since + warmup_s]

    def kill(self) -> None:
        if self.popen and self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait()

    def stop(self) -> None:
        if self.popen and self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.popen.kill()

    def sample(self, t: float) -> None:
        if not self.popen or self.popen.poll() is not None:
            return
        pid = self.popen.pid
        try:
            status = Path(f"/proc/{pid}/status").read_text()
            rss_kib = int(status.split("VmRSS:")[1].split()[0])
            threads = int(status.split("Threads:")[1].split()[0])
            fds = len(os.listdir(f"/proc/{pid}/fd"))
            stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            cpu_s = (int(stat[11]) + int(stat[12])) / TICKS
        except (OSError, IndexError, ValueError):
            return  # it just died or restarted
        self.samples.append((t, rss_kib / 1024, threads, fds, cpu_s))


KINDS = ("broker-restart", "broker-stop", "collector-kill", "kiosk-kill", "disk-full", "clock-step")
DISK_MIB = 48  # the tmpfs under the disk-full kiosk's data folder


def parse_faults(text: str) -> list[Fault]:
    faults = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        at, _, rest = part.partition(":")
        kind, _, arg = rest.partition("=")
        if kind not in KINDS:
            raise SystemExit(
                f"unknown fault {kind!r} (broker-restart, broker-stop=S, collector-kill, kiosk-kill=N, disk-full=S,"
                " clock-step=S)"
            )
        faults.append(Fault(float(at), kind, float(arg or 0)))
    return sorted(faults, key=lambda f: f.at_s)


def default_faults(duration: float) -> str:
    d = duration
    return (
        f"{d * 0.15:.0f}:broker-restart,{d * 0.3:.0f}:broker-stop={max(5, d * 0.05):.0f},"
        f"{d * 0.5:.0f}:collector-kill,{d * 0.65:.0f}:kiosk-kill=1,{d * 0.8:.0f}:broker-restart"
    )


def outbox_rows(path: Path) -> list[tuple[str, str, int, float, float | None, str]]:
    """(id, install, seq, pressed_epoch, acked_epoch, snapshot_state) of every press in an outbox."""
    if not path.exists():
        return []
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        install = db.execute("SELECT value FROM meta WHERE key='install'").fetchone()[0]
        return [
            (rid, install, seq, pressed, acked, snap)
            for rid, seq, pressed, acked, snap in db.execute(
                "SELECT id, seq, pressed_epoch, acked_epoch, snapshot_state FROM ratings"
            )
        ]
    except sqlite3.Error:
        return []
    finally:
        db.close()


def unacked_before(outboxes: list[Path], moment_epoch: float) -> int:
    total = 0
    for path in outboxes:
        total += sum(1 for r in outbox_rows(path) if r[4] is None and r[3] < moment_epoch)
    return total


def backlog(outboxes: list[Path]) -> int:
    return sum(sum(1 for r in outbox_rows(p) if r[4] is None) for p in outboxes)


def wait_http(url: str, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as answer:
                return bool(answer.status == 200)
        except OSError:
            time.sleep(0.3)
    return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kiosks", type=int, default=10)
    parser.add_argument("--rate", type=float, default=20.0, help="presses a minute per kiosk")
    parser.add_argument("--duration", type=float, default=600.0, help="seconds of pressing")
    parser.add_argument("--faults", default=None, help='e.g. "60:broker-restart,120:broker-stop=30,200:collector-kill"')
    parser.add_argument("--store", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--postgres-url", default="", help="an empty database, with --store postgresql")
    parser.add_argument("--sample-s", type=float, default=2.0)
    parser.add_argument("--drain-s", type=float, default=180.0, help="how long the backlog may take to drain")
    parser.add_argument("--out", default="soak-out")
    parser.add_argument(
        "--warmup-s",
        type=float,
        default=None,
        help="memory growth is measured after this (default: a quarter of the run, 20 s to 30 min):"
        " imports, connections, SQLite's page caches and the allocator's arenas fill first",
    )
    args = parser.parse_args(argv)
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    faults = parse_faults(args.faults if args.faults is not None else default_faults(args.duration))

    broker = LocalBroker(out / "broker").start()
    http_port = free_port()
    store_line = ""
    if args.store == "postgresql":
        if not args.postgres_url:
            raise SystemExit("--store postgresql needs --postgres-url of an empty database")
        store_line = f'[store]\nurl = "{args.postgres_url}"\n'
    conf = out / "collector.toml"
    conf.write_text(
        f'registry = "{REGISTRY}"\ndata_dir = "{out / "collector"}"\n{store_line}'
        f'[mqtt]\nhost = "127.0.0.1"\nport = {broker.port}\n'
        f'[ingest]\nclient_id = "collector-soak"\n[http]\nhost = "127.0.0.1"\nport = {http_port}\n'
    )
    collector = Proc("collector", [str(BIN / "collector"), "serve", "--config", str(conf)], out / "collector.log")
    kiosks: list[Proc] = []
    outboxes: list[Path] = []
    folders: list[Path] = []
    registry = load_registry(REGISTRY)
    chosen = sorted(registry.kiosks.values(), key=lambda k: k.id)
    for n in range(args.kiosks):
        entry = chosen[n % len(chosen)]
        kiosk_id = entry.id if n < len(chosen) else f"{entry.id}-{n}"
        if kiosk_id not in registry.kiosks:
            raise SystemExit(f"the example registry has {len(chosen)} kiosks; use --kiosks {len(chosen)} or fewer")
        folder = out / "kiosks" / kiosk_id
        folder.mkdir(parents=True, exist_ok=True)
        if n == args.kiosks - 1 and any(f.kind == "disk-full" for f in faults):
            small_disk(folder)
        folders.append(folder)
        kconf = folder / "kiosk.toml"
        kconf.write_text(
            f'kiosk_id = "{kiosk_id}"\ncounter = "{entry.counter}"\ndata_dir = "{folder}"\n'
            f'[mqtt]\nhost = "127.0.0.1"\nport = {broker.port}\n'
            f"[clock]\nassume_synced = true\n"
            f"[panel]\nlockout_s = 0\nmax_per_minute = 100000\n"
        )
        kiosks.append(
            Proc(
                kiosk_id,
                [str(BIN / "kiosk"), "run", "--fake-hardware", "--config", str(kconf)]
                + ["--auto-press", f"{args.rate}", "--seed", str(n)],
                out / f"{kiosk_id}.log",
            )
        )
        outboxes.append(folder / "outbox.db")

    backlog_samples: list[tuple[float, int]] = []
    started = time.monotonic()
    try:
        collector.start()
        if not wait_http(f"http://127.0.0.1:{http_port}/healthz", 30):
            print(f"collector did not start; see {collector.log}", file=sys.stderr)
            return 1
        for kiosk in kiosks:
            kiosk.start()
        pending = list(faults)
        recovering: list[Fault] = []
        last_sample = 0.0
        while time.monotonic() - started < args.duration:
            now = time.monotonic() - started
            if pending and now >= pending[0].at_s:
                fault = pending.pop(0)
                apply_fault(fault, broker, collector, kiosks, folders)
                recovering.append(fault)
            for fault in recovering:
                if fault.recovered_s is None and unacked_before(outboxes, wall_at(fault.ended)) == 0:
                    fault.recovered_s = time.monotonic() - fault.ended
            if now - last_sample >= args.sample_s:
                last_sample = now
                for proc in (collector, *kiosks):
                    proc.sample(now)
                backlog_samples.append((now, backlog(outboxes)))
            time.sleep(0.2)
        # Pressing stops (the kiosks stop cleanly); the backlog drains; then everything is compared.
        for kiosk in kiosks:
            kiosk.stop()
        for kiosk in kiosks:  # start them again without pressing: they deliver what they hold
            kiosk.cmd = [c for c in kiosk.cmd[: kiosk.cmd.index("--auto-press")]]
            kiosk.start(measured=False)
        drain_started = time.monotonic()
        while backlog(outboxes) and time.monotonic() - drain_started < args.drain_s:
            now = time.monotonic() - started
            for fault in recovering:
                if fault.recovered_s is None and unacked_before(outboxes, wall_at(fault.ended)) == 0:
                    fault.recovered_s = time.monotonic() - fault.ended
            backlog_samples.append((now, backlog(outboxes)))
            time.sleep(1.0)
        for fault in recovering:
            if fault.recovered_s is None and unacked_before(outboxes, wall_at(fault.ended)) == 0:
                fault.recovered_s = time.monotonic() - fault.ended
        time.sleep(3)  # the last pictures after their ratings' acks
        verdict = verify(out, outboxes, conf, args)
    finally:
        for kiosk in kiosks:
            kiosk.stop()
        collector.stop()
        broker.stop()
        if any(f.kind == "disk-full" for f in faults) and folders:
            subprocess.run(["umount", "--lazy", str(folders[-1])], check=False)
    warmup_s = args.warmup_s if args.warmup_s is not None else min(1800.0, max(20.0, args.duration / 4))
    ok = report(out, faults, collector, kiosks, verdict, started=started, rate=args.rate, warmup_s=warmup_s)
    plot(out / "soak.png", collector, kiosks, backlog_samples, faults)
    print(f"plot: {out / 'soak.png'}")
    return 0 if ok else 1


_wall_offset = time.time() - time.monotonic()


def wall_at(monotonic_s: float) -> float:
    return _wall_offset + monotonic_s


def small_disk(folder: Path) -> None:
    """A small filesystem of its own under a kiosk's data folder, so that filling it is a full disk
    for that kiosk alone."""
    if os.geteuid() != 0:
        raise SystemExit("the disk-full fault mounts a small tmpfs under a kiosk's data folder: run as root")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK_MIB}m,mode=0755", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode:
        raise SystemExit(f"the disk-full fault could not mount a tmpfs on {folder}: {mounted.stderr.strip()}")


def fill_disk(folder: Path) -> Path:
    """Write a file until the filesystem is full; the file, to remove when the fault ends."""
    filler = folder / "filler.bin"
    chunk = b"\0" * (1 << 20)
    with open(filler, "wb", buffering=0) as f:
        for size in (1 << 20, 4096, 1):  # then the last kilobytes, then the last bytes
            try:
                while True:
                    f.write(chunk[:size])
            except OSError:
                pass
    return filler


def apply_fault(fault: Fault, broker: LocalBroker, collector: Proc, kiosks: list[Proc], folders: list[Path]) -> None:
    fault.started = time.monotonic()
    print(f"{fault.at_s:7.0f} s  fault: {fault.kind}{'=' + format(fault.arg, 'g') if fault.arg else ''}", flush=True)
    if fault.kind == "broker-restart":
        broker.restart()
    elif fault.kind == "broker-stop":
        broker.stop()
        time.sleep(fault.arg)
        broker.start()
    elif fault.kind == "collector-kill":
        collector.kill()
        time.sleep(2)
        collector.start()
    elif fault.kind == "kiosk-kill":
        victim = kiosks[int(fault.arg) % len(kiosks)]
        victim.kill()
        time.sleep(2)
        victim.start()
    elif fault.kind == "disk-full":
        filler = fill_disk(folders[-1])
        time.sleep(fault.arg)
        filler.unlink()
    elif fault.kind == "clock-step":
        offset_file = folders[0] / CLOCK_OFFSET_FILE
        before = float(offset_file.read_text()) if offset_file.exists() else 0.0
        offset_file.write_text(f"{before + fault.arg:g}\n")
    fault.ended = time.monotonic()


@dataclass
class Verdict:
    presses: int
    missing: list[str]
    extra: list[str]
    doubled: int
    pictures_expected: int
    pictures_missing: int
    undelivered: int
    held: dict[str, int] = field(default_factory=dict)  # presses in quarantine, by reason (replayable)


# Presses refused alone and kept for a replay (a kiosk's clock stepped ahead: time_in_future).
QUARANTINED = "SELECT install, seq, reason FROM quarantine WHERE install IS NOT NULL AND seq IS NOT NULL"


def verify(out: Path, outboxes: list[Path], conf: Path, args: argparse.Namespace) -> Verdict:
    rows = [row for path in outboxes for row in outbox_rows(path)]
    sent = {r[0] for r in rows}
    if args.store == "postgresql":
        import psycopg

        with psycopg.connect(args.postgres_url) as db:
            stored = [tuple(r) for r in db.execute("SELECT id, install, seq FROM ratings").fetchall()]
            pictures = {r[0] for r in db.execute("SELECT rating_id FROM snapshots").fetchall()}
            quarantined = [tuple(r) for r in db.execute(QUARANTINED).fetchall()]
    else:
        db = sqlite3.connect(f"file:{out / 'collector' / 'collector.db'}?mode=ro", uri=True)
        stored = list(db.execute("SELECT id, install, seq FROM ratings"))
        pictures = {r[0] for r in db.execute("SELECT rating_id FROM snapshots")}
        quarantined = list(db.execute(QUARANTINED))
        db.close()
    held_seqs = {(install, seq): reason for install, seq, reason in quarantined}
    held_ids = {r[0]: held_seqs[(r[1], r[2])] for r in rows if (r[1], r[2]) in held_seqs}
    stored_ids = Counter(r[0] for r in stored)
    by_seq = Counter((r[1], r[2]) for r in stored)
    with_picture = {r[0] for r in rows if r[5] == "done"}
    return Verdict(
        presses=len(rows),
        missing=sorted(sent - set(stored_ids) - set(held_ids)),
        extra=sorted(set(stored_ids) - sent),
        doubled=sum(n - 1 for n in stored_ids.values() if n > 1) + sum(n - 1 for n in by_seq.values() if n > 1),
        pictures_expected=len(with_picture),
        pictures_missing=len(with_picture - pictures - set(held_ids)),
        undelivered=sum(1 for r in rows if r[4] is None),
        held=dict(Counter(held_ids.values())),
    )


def growth(samples: list[tuple[float, float, int, int, float]]) -> tuple[float, float, float]:
    """(first MiB, last MiB, MiB per hour by least squares) of a process's RSS."""
    if len(samples) < 2:
        return (samples[0][1], samples[0][1], 0.0) if samples else (0.0, 0.0, 0.0)
    ts = [s[0] for s in samples]
    ms = [s[1] for s in samples]
    n = len(ts)
    mean_t, mean_m = sum(ts) / n, sum(ms) / n
    var = sum((t - mean_t) ** 2 for t in ts) or 1.0
    slope = sum((t - mean_t) * (m - mean_m) for t, m in zip(ts, ms, strict=True)) / var
    return ms[0], ms[-1], slope * 3600


def report(
    out: Path,
    faults: list[Fault],
    collector: Proc,
    kiosks: list[Proc],
    verdict: Verdict,
    *,
    started: float,
    rate: float,
    warmup_s: float = 20.0,
) -> bool:
    print()
    print(f"presses {verdict.presses}; missing {len(verdict.missing)}, extra {len(verdict.extra)}, doubled "
          f"{verdict.doubled}; still unacked on kiosks {verdict.undelivered}; pictures {verdict.pictures_expected}, "
          f"missing {verdict.pictures_missing}")  # fmt: skip
    if verdict.held:
        held = ", ".join(f"{n} {reason}" for reason, n in sorted(verdict.held.items()))
        print(f"held in quarantine (replayable, not lost): {held}")
    print("faults:")
    for fault in faults:
        recovered = "not recovered" if fault.recovered_s is None else f"recovered in {fault.recovered_s:.1f} s"
        print(f"  {fault.at_s:7.0f} s  {fault.kind:<15} {recovered}")
    print(
        f"processes after a {warmup_s:.0f} s warm-up (RSS first → last, growth per hour and per press;"
        " threads, descriptors):"
    )
    summary: dict[str, object] = {"verdict": verdict.__dict__ | {"missing": len(verdict.missing)}}
    processes: dict[str, object] = {}
    for proc in (collector, *kiosks):
        steady = proc.steady(started, warmup_s)
        if len(steady) < 2:  # restarted too late (a kiosk-kill fault) to be warm before the end
            print(
                f"  {proc.name:<14} restarted at {proc.started_at - started:.0f} s: not warm before the end, not measured"
            )
            processes[proc.name] = {"measured": False, "restarted_at_s": round(proc.started_at - started, 1)}
            continue
        first, last, per_hour = growth(steady)
        presses_per_hour = rate * 60 * (len(kiosks) if proc is collector else 1)
        per_press_kib = per_hour * 1024 / presses_per_hour if presses_per_hour else 0.0
        threads, fds = (proc.samples[-1][2], proc.samples[-1][3]) if proc.samples else (0, 0)
        print(f"  {proc.name:<14} {first:6.1f} → {last:6.1f} MiB  {per_hour:+7.2f} MiB/h  {per_press_kib:+6.3f} KiB/press"
              f"  threads {threads}  fds {fds}")  # fmt: skip
        processes[proc.name] = {
            "rss_first_mib": first, "rss_last_mib": last, "mib_per_hour": per_hour,
            "kib_per_press": per_press_kib, "threads": threads, "fds": fds,
            "samples": [[round(t, 1), round(m, 2)] for t, m, *_ in proc.samples],  # (s, RSS MiB), to look again
        }  # fmt: skip
    summary["warmup_s"] = warmup_s
    summary["processes"] = processes
    summary["faults"] = [{"at_s": f.at_s, "kind": f.kind, "recovered_s": f.recovered_s} for f in faults]
    (out / "soak.json").write_text(json.dumps(summary, indent=1, default=str))
    ok = (
        not verdict.missing
        and not verdict.extra
        and not verdict.doubled
        and verdict.undelivered == 0
        and verdict.pictures_missing == 0
        and all(f.recovered_s is not None for f in faults)
    )
    print("OK: every press exactly once, every fault recovered" if ok else "FAILED: see above")
    return ok


def plot(path: Path, collector: Proc, kiosks: list[Proc], backlog_samples, faults: list[Fault]) -> None:  # type: ignore[no-untyped-def]
    """Memory of every process and the kiosks' backlog over time, faults marked (OpenCV draws it)."""
    import cv2
    import numpy as np

    width, height, margin = 1200, 700, 60
    image = np.full((height, width, 3), 255, np.uint8)
    series = [(p.name, [(s[0], s[1]) for s in p.samples]) for p in (collector, *kiosks)]
    end = max([t for _, pts in series for t, _ in pts] + [t for t, _ in backlog_samples] + [1.0])
    top_mib = max([m for _, pts in series for _, m in pts] + [1.0]) * 1.1
    top_backlog = max([b for _, b in backlog_samples] + [1]) * 1.1
    upper = (margin, margin, width - margin, height // 2 + 40)  # memory
    lower = (margin, height // 2 + 90, width - margin, height - margin)  # backlog

    def to_xy(box, t, v, top):  # type: ignore[no-untyped-def]
        x0, y0, x1, y1 = box
        return int(x0 + (x1 - x0) * t / end), int(y1 - (y1 - y0) * v / top)

    for box, label in ((upper, f"RSS MiB (0..{top_mib:.0f})"), (lower, f"kiosks' backlog (0..{top_backlog:.0f})")):
        cv2.rectangle(image, box[:2], box[2:], (0, 0, 0), 1)
        cv2.putText(image, label, (box[0], box[1] - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1)
    colours = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75)]
    for n, (name, pts) in enumerate(series):
        colour = (0, 0, 0) if n == 0 else colours[n % len(colours)]
        line = [to_xy(upper, t, m, top_mib) for t, m in pts]
        for a, b in zip(line, line[1:], strict=False):
            cv2.line(image, a, b, colour, 2 if n == 0 else 1)
        if n < 8 and line:
            cv2.putText(image, name, (line[-1][0] - 90, line[-1][1] - 4), cv2.FONT_HERSHEY_SIMPLEX, 0.35, colour, 1)
    line = [to_xy(lower, t, b, top_backlog) for t, b in backlog_samples]
    for a, b in zip(line, line[1:], strict=False):
        cv2.line(image, a, b, (214, 39, 40), 2)
    for fault in faults:
        x = to_xy(upper, fault.at_s, 0, 1)[0]
        cv2.line(image, (x, upper[1]), (x, lower[3]), (180, 180, 180), 1)
        cv2.putText(image, fault.kind, (x + 3, lower[3] - 5), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (90, 90, 90), 1)
    cv2.putText(
        image, f"time 0..{end:.0f} s", (width // 2 - 40, height - 20), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1
    )
    cv2.imwrite(str(path), image)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    sys.exit(main())
