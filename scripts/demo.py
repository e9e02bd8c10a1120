"""The demo: a private Mosquitto, the collector on SQLite, and a kiosk at every counter of the
example registry (real kiosk code on gpiozero's mock pins, pressed by simulated citizens, with
generated camera pictures). Everything lives in one folder; Ctrl-C stops it all."""

from __future__ import annotations

import argparse
import base64
import json
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

sys.path.insert(0, str(ROOT / "scripts"))

import demo_history  # noqa: E402

from collector.localbroker import LocalBroker, free_port  # noqa: E402
from collector.registry import load_registry  # noqa: E402

REGISTRY = ROOT / "config" / "registry.example.toml"
BIN = Path(sys.executable).parent

DEMO_PASSWORD = "demo-password"
# Demo accounts: the province's admin, a provincial inspector, Văn Bàn district's viewer.
DEMO_USERS = (("admin", "admin", "10"), ("thanhtra", "inspector", "10"), ("vanban", "viewer", "10.085"))


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-dir", default=str(ROOT / "demo-data"), help="everything the demo keeps")
    parser.add_argument("--http-port", type=int, default=8080)
    parser.add_argument("--presses-per-minute", type=float, default=2.0, help="average per kiosk")
    parser.add_argument("--fresh", action="store_true", help="start from an empty data folder")
    parser.add_argument("--duration-s", type=float, default=0, help="stop by itself after this long")
    parser.add_argument(
        "--history-days", type=int, default=365, help="days of past ratings made up on a new data folder (0: none)"
    )
    args = parser.parse_args()

    data = Path(args.data_dir).resolve()
    if args.fresh and data.exists():
        shutil.rmtree(data)
    data.mkdir(parents=True, exist_ok=True)
    if not (data / "registry.toml").exists():
        # A copy: enrolling a kiosk on the demo appends to the registry file, never to the example.
        shutil.copy(REGISTRY, data / "registry.toml")
    mqtt_port = 1883 if port_is_free(1883) else free_port()
    http_port = args.http_port if port_is_free(args.http_port) else free_port()
    processes: list[subprocess.Popen[bytes]] = []
    broker = LocalBroker(data / "broker", port=mqtt_port)
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        broker.start()
        print(f"broker     mosquitto on 127.0.0.1:{mqtt_port} (log {broker.log_path})")
        collector_conf = data / "collector.toml"
        collector_conf.write_text(
            f'timezone = "Asia/Ho_Chi_Minh"\nregistry = "{data / "registry.toml"}"\ndata_dir = "{data / "collector"}"\n'
            f'[mqtt]\nhost = "127.0.0.1"\nport = {mqtt_port}\n'
            f'[ingest]\nclient_id = "collector-demo"\n'
            f'[http]\nhost = "127.0.0.1"\nport = {http_port}\n'
            # Simulated citizens come at all hours: so is the demo's office open.
            f'[office]\nweekdays = [0, 1, 2, 3, 4, 5, 6]\nspans = ["00:00-23:59"]\n'
        )
        logs = data / "logs"
        logs.mkdir(exist_ok=True)
        _prepare_accounts_and_roster(collector_conf, data, args.history_days)
        if args.history_days > 0 and not (data / "history.done").exists():
            print(f"history    making up {args.history_days} days of ratings (once, on a new data folder) …")
            made = subprocess.run(
                [sys.executable, str(ROOT / "scripts" / "demo_history.py"), "--config", str(collector_conf),
                 "--days", str(args.history_days)],
                text=True, capture_output=True, check=False,
            )  # fmt: skip
            if made.returncode != 0:
                print(f"history could not be made: {made.stderr[-2000:]}", file=sys.stderr)
                return 1
            print(made.stdout.strip())
            (data / "history.done").write_text(made.stdout)
        processes.append(
            _spawn([str(BIN / "collector"), "serve", "--config", str(collector_conf)], logs / "collector.log")
        )
        base = f"http://127.0.0.1:{http_port}"
        if not _wait_http(f"{base}/healthz", 20):
            print(f"collector did not start; see {logs / 'collector.log'}", file=sys.stderr)
            return 1
        print(f"collector  {base}/ (log {logs / 'collector.log'})")

        registry = load_registry(REGISTRY)
        rng = random.Random(7)
        moods = demo_history.moods(registry)
        for n, kiosk in enumerate(sorted(registry.kiosks.values(), key=lambda k: k.id)):
            mood = moods[kiosk.counter]
            folder = data / "kiosks" / kiosk.id
            folder.mkdir(parents=True, exist_ok=True)
            conf = folder / "kiosk.toml"
            conf.write_text(
                f'kiosk_id = "{kiosk.id}"\ncounter = "{kiosk.counter}"\ndata_dir = "{folder}"\n'
                f'[mqtt]\nhost = "127.0.0.1"\nport = {mqtt_port}\n'
                f"[clock]\nassume_synced = true\n"
            )
            rate = args.presses_per_minute * rng.uniform(0.5, 1.5)
            processes.append(
                _spawn(
                    [
                        str(BIN / "kiosk"),
                        "run",
                        "--fake-hardware",
                        "--config",
                        str(conf),
                        "--auto-press",
                        f"{rate:.2f}",
                        "--auto-weights",
                        ",".join(f"{w:.2f}" for w in demo_history.MOODS[mood]),
                        "--seed",
                        str(n),
                    ],
                    logs / f"{kiosk.id}.log",
                    stdin=subprocess.DEVNULL,
                )
            )
        print(
            f"kiosks     {len(registry.kiosks)} simulated kiosks, about {args.presses_per_minute:g} "
            f"presses a minute each (logs in {logs})"
        )
        print()
        print(f"  Dashboard        : {base}/   (log in as admin, thanhtra or vanban; password {DEMO_PASSWORD})")
        print(f"  Province summary : {base}/api/v1/units/10/summary")
        print(f"  Văn Bàn district : {base}/api/v1/units/10.085/summary")
        print(f"  One counter      : {base}/api/v1/counters/vb-q1/summary")
        print(f"  Kiosk health     : {base}/api/v1/kiosks")
        print(f"  API docs         : {base}/docs")
        print()
        print("Ctrl-C stops everything.")
        started = time.monotonic()
        last_report = 0.0
        reported: set[int] = set()
        while not stopping:
            time.sleep(0.5)
            if args.duration_s and time.monotonic() - started > args.duration_s:
                break
            if time.monotonic() - last_report >= 15:
                last_report = time.monotonic()
                _report(base, ("admin", DEMO_PASSWORD))
            for proc in processes:
                if proc.poll() is not None and proc.pid not in reported:
                    reported.add(proc.pid)
                    print(
                        f"warning: {' '.join(map(str, proc.args[:3]))} exited with {proc.returncode}; "
                        f"see its log in {logs}",
                        file=sys.stderr,
                    )
    finally:
        print("\nstopping kiosks, collector and broker …")
        # Kiosks first, so the collector still hears their "offline" status.
        kiosks, collector = processes[1:], processes[:1]
        for group in (kiosks, collector):
            for proc in group:
                if proc.poll() is None:
                    proc.terminate()
            for proc in group:
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
            time.sleep(0.5)
        broker.stop()
        print(f"stopped; data kept in {data} (--fresh starts over)")
    return 0


def _prepare_accounts_and_roster(conf: Path, data: Path, history_days: int) -> None:
    """The real CLI commands a unit's admin would run: registry, users, officers, duty roster
    (for the days of made-up history too, so that their ratings have officers)."""
    collector = str(BIN / "collector")

    def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [collector, *args, "--config", str(conf)], input=stdin, text=True, capture_output=True, check=False
        )

    run("registry", "load", str(data / "registry.toml"))
    for name, role, unit in DEMO_USERS:
        result = run(
            "user", "add", name, "--role", role, "--unit", unit, "--password-stdin", stdin=DEMO_PASSWORD + "\n"
        )
        if result.returncode not in (0, 2):  # 2: exists already from an earlier run
            raise SystemExit(result.stderr)
    registry = load_registry(REGISTRY)
    for pair in demo_history.officers(registry).values():
        for officer, name, unit in pair:
            run("roster", "add-officer", officer, "--name", name, "--unit", unit)
    today = datetime.now(ZoneInfo("Asia/Ho_Chi_Minh")).date()  # the demo's time zone, as the history's
    roster = data / "roster.csv"
    roster.write_text("\n".join(demo_history.roster(registry, today, max(14, history_days))) + "\n", encoding="utf-8")
    run("roster", "import", str(roster))  # refuses overlaps, so a second run adds nothing


def _spawn(cmd: list[str], log: Path, **kwargs: object) -> subprocess.Popen[bytes]:
    handle = open(log, "ab")  # noqa: SIM115 - handed to the child process
    return subprocess.Popen(cmd, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True, **kwargs)  # type: ignore[call-overload]


def _wait_http(url: str, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                return bool(response.status == 200)
        except OSError:
            time.sleep(0.3)
    return False


def _report(base: str, auth: tuple[str, str]) -> None:
    token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()

    def get(path: str) -> dict:
        request = urllib.request.Request(f"{base}{path}", headers={"Authorization": f"Basic {token}"})
        with urllib.request.urlopen(request, timeout=5) as response:
            return json.load(response)

    try:
        summary = get("/api/v1/units/10/summary")
        kiosks = get("/api/v1/kiosks")["kiosks"]
    except OSError as exc:
        print(f"(collector not answering: {exc})")
        return
    rate = summary["satisfaction_rate"]
    online = sum(1 for k in kiosks if k["online"])
    shown = "—" if rate is None else f"{rate * 100:.1f}".replace(".", ",") + " %"
    print(
        f"{time.strftime('%H:%M:%S')}  Tỉnh Lào Cai, last 30 days: {summary['total']} ratings, "
        f"hài lòng {shown}, {summary['flagged']} flagged; kiosks online {online}/{len(kiosks)}"
    )


if __name__ == "__main__":
    sys.exit(main())
