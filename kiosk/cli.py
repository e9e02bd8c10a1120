"""`kiosk run`, `kiosk status`: the kiosk's command line."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
from pathlib import Path

from kiosk import __version__
from kiosk.camera import Camera, GeneratedCamera
from kiosk.clock import CLOCK_OFFSET_FILE, SteppableClock, SystemClock
from kiosk.config import KioskSettings, load_settings
from kiosk.errors import ConfigError, KioskError
from kiosk.hours import zone
from kiosk.logs import setup_logging
from kiosk.panel import ButtonPanel

log = logging.getLogger("kiosk")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kiosk", description="Satisfaction kiosk at a service counter.")
    parser.add_argument("--version", action="version", version=f"kiosk {__version__}")
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING (default INFO)")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the kiosk")
    run.add_argument("--config", help="kiosk.toml")
    run.add_argument("--fake-hardware", action="store_true", help="simulated panel (keyboard) and camera, for a laptop")
    run.add_argument(
        "--auto-press",
        type=float,
        default=0.0,
        metavar="PER_MINUTE",
        help="with --fake-hardware: simulated citizens press about this often",
    )
    run.add_argument("--seed", type=int, default=None, help="random seed for --auto-press")
    run.add_argument(
        "--auto-weights",
        default="0.62,0.28,0.07,0.03",
        metavar="W1,W2,W3,W4",
        help="with --auto-press: how often citizens choose buttons 1..4",
    )
    selftest = sub.add_parser("selftest", help="on-site check: buttons, lamps, camera, broker, clock, disk")
    selftest.add_argument("--config", help="kiosk.toml")
    selftest.add_argument("--fake-hardware", action="store_true", help="simulated panel pressed for you")
    selftest.add_argument("--press-timeout-s", type=float, default=30.0)
    status = sub.add_parser("status", help="print the outbox backlog and the last error")
    status.add_argument("--config", required=True, help="kiosk.toml")
    args = parser.parse_args(argv)
    setup_logging(args.log_level)
    try:
        if args.command == "run":
            return _run(args)
        if args.command == "selftest":
            return _selftest(args)
        return _status(args)
    except KioskError as exc:
        print(f"kiosk: {exc}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    from kiosk import memtrace
    from kiosk.service import Kiosk

    memtrace.start_from_env()  # SAT_TRACEMALLOC=<s>: where memory grows, for a leak hunt
    settings = load_settings(args.config, fake_hardware=args.fake_hardware)
    if args.fake_hardware:
        from kiosk.simulate import CitizenSimulator, KeyboardPresser, fake_gpio_panel

        fake_panel, factory = fake_gpio_panel(settings.panel.pins)
        panel: ButtonPanel = fake_panel
        # A laptop's webcam (or a video file) is used when configured; otherwise drawn frames.
        camera: Camera | None = make_camera(settings) or GeneratedCamera(
            label=f"{settings.kiosk_id} {settings.counter}", tz=zone(settings.office.timezone)
        )
    else:
        panel = make_panel(settings)
        camera = make_camera(settings)
    clock: SystemClock = SystemClock(assume_synced=settings.clock.assume_synced)
    if args.fake_hardware:  # a simulated kiosk's clock can be stepped: see SteppableClock
        clock = SteppableClock(settings.data_dir / CLOCK_OFFSET_FILE, assume_synced=settings.clock.assume_synced)
    kiosk = Kiosk(settings=settings, panel=panel, camera=camera, clock=clock)
    signal.signal(signal.SIGTERM, lambda *_: kiosk.stop())
    signal.signal(signal.SIGINT, lambda *_: kiosk.stop())
    kiosk.start()  # the panel listens before anything can press it
    if args.fake_hardware:
        if args.auto_press > 0:
            weights = [float(w) for w in args.auto_weights.split(",")]
            if len(weights) != 4 or min(weights) < 0 or sum(weights) <= 0:
                raise ConfigError("--auto-weights needs four non-negative numbers, e.g. 0.6,0.3,0.07,0.03")
            CitizenSimulator(
                factory, settings.panel.pins, per_minute=args.auto_press, weights=weights, seed=args.seed
            ).start()
        else:
            KeyboardPresser(factory, settings.panel.pins, on_quit=kiosk.stop).start()
    kiosk.run()
    return 0


def _selftest(args: argparse.Namespace) -> int:
    from kiosk.selftest import SelfTest, press_when_prompted

    settings = load_settings(args.config, fake_hardware=args.fake_hardware)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    prompt = None
    if args.fake_hardware:
        from kiosk.simulate import fake_gpio_panel, press_pin

        fake_panel, factory = fake_gpio_panel(settings.panel.pins)
        panel: ButtonPanel = fake_panel
        camera: Camera | None = make_camera(settings) or GeneratedCamera(label=f"{settings.kiosk_id} selftest")
        prompt = press_when_prompted(lambda button: press_pin(factory, settings.panel.pins[button - 1]))
    else:
        panel = make_panel(settings)
        camera = make_camera(settings)
    print(f"Self-test of kiosk {settings.kiosk_id} at counter {settings.counter}")
    test = SelfTest(
        settings=settings,
        panel=panel,
        camera=camera,
        clock=SystemClock(assume_synced=settings.clock.assume_synced),
        press_timeout_s=args.press_timeout_s,
        on_prompt=prompt,
    )
    try:
        checks = test.run()
    finally:
        panel.close()
        if camera is not None:
            camera.close()
    failed = [c.name for c in checks if not c.ok]
    print("RESULT: all checks passed" if not failed else f"RESULT: FAILED ({', '.join(failed)})")
    return 0 if not failed else 1


def make_panel(settings: KioskSettings) -> ButtonPanel:
    panel = settings.panel
    if panel.kind == "serial":
        from kiosk.serial_panel import SerialButtonPanel

        return SerialButtonPanel(str(panel.serial_port))
    from kiosk.gpio_panel import GpioButtonPanel

    return GpioButtonPanel(panel.pins, lamp_pins=panel.lamp_pins, buzzer_pin=panel.buzzer_pin)


def make_camera(settings: KioskSettings) -> Camera | None:
    source = settings.camera.source.strip()
    if not source:
        return None
    if source == "picamera2":
        from kiosk.picamera import Picamera2Camera

        return Picamera2Camera(width=settings.camera.width, jpeg_quality=settings.camera.jpeg_quality)
    from kiosk.opencv_camera import OpenCvCamera

    return OpenCvCamera(source, width=settings.camera.width, jpeg_quality=settings.camera.jpeg_quality)


def _status(args: argparse.Namespace) -> int:
    from kiosk.outbox import SqliteOutbox

    settings = load_settings(args.config)
    if not settings.outbox_path.exists():
        print(f"no outbox at {settings.outbox_path}: the kiosk has not run with this config yet")
        return 1
    outbox = SqliteOutbox(settings.outbox_path)
    backlog = outbox.backlog()
    print(f"kiosk       {settings.kiosk_id} (counter {settings.counter}, install {outbox.install_id})")
    oldest = f" (oldest pressed {backlog.oldest_at})" if backlog.oldest_at else ""
    print(f"backlog     {backlog.ratings} rating(s), {backlog.snapshots} snapshot(s) not yet acked{oldest}")
    print(f"suppressed  {outbox.suppressed_presses} press(es) counted but not stored")
    state_path = Path(settings.state_path)
    if state_path.exists():
        state = json.loads(state_path.read_text())
        print(
            f"as of       {state.get('at')}: broker "
            f"{'connected' if state.get('connected') else 'NOT connected'},"
            f" camera {state.get('camera')}, panel {state.get('panel')}, clock {state.get('clock')}"
        )
        print(f"last error  {state.get('last_error') or 'none'}")
    else:
        print("last error  unknown (no state file yet)")
    outbox.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
