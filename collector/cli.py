"""`collector serve`, `collector registry load`, `collector quarantine list|replay`."""

from __future__ import annotations

import argparse
import logging
import signal
import sys

from collector.config import CollectorSettings, load_settings
from collector.errors import CollectorError
from collector.registry import load_registry
from collector.store import SqliteStore, open_store
from kiosk import __version__

log = logging.getLogger("collector")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="collector", description="Satisfaction collector.")
    parser.add_argument("--version", action="version", version=f"collector {__version__}")
    parser.add_argument("--log-level", default="INFO")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="ingest from MQTT and serve the HTTP API")
    serve.add_argument("--config", required=True)
    reg = sub.add_parser("registry", help="the registry of units, counters and kiosks")
    reg_sub = reg.add_subparsers(dest="action", required=True)
    reg_load = reg_sub.add_parser("load", help="check a registry file and make it the registry")
    reg_load.add_argument("file")
    reg_load.add_argument("--config", required=True)
    user = sub.add_parser("user", help="people who use the reports")
    user_sub = user.add_subparsers(dest="action", required=True)
    user_add = user_sub.add_parser("add", help="create a user (the first admin too)")
    user_add.add_argument("name")
    user_add.add_argument("--role", required=True, choices=("admin", "inspector", "viewer"))
    user_add.add_argument("--unit", required=True, help="the unit granted: this unit and everything below it")
    user_add.add_argument(
        "--password-stdin",
        action="store_true",
        required=True,
        help="read the password from standard input (never from the command line)",
    )
    user_add.add_argument("--config", required=True)
    roster = sub.add_parser("roster", help="officers and their duty roster")
    roster_sub = roster.add_subparsers(dest="action", required=True)
    officer_add = roster_sub.add_parser("add-officer", help="add or rename an officer")
    officer_add.add_argument("id")
    officer_add.add_argument("--name", required=True)
    officer_add.add_argument("--unit", required=True)
    officer_add.add_argument("--config", required=True)
    roster_import = roster_sub.add_parser("import", help="import duties from CSV: officer,counter,start,end")
    roster_import.add_argument("file")
    roster_import.add_argument("--config", required=True)
    report = sub.add_parser("report", help="reports by e-mail")
    report_sub = report.add_subparsers(dest="action", required=True)
    monthly = report_sub.add_parser("send-monthly", help="send last month's reports to [[mail.monthly]] now")
    monthly.add_argument("--force", action="store_true", help="send again even if sent already")
    monthly.add_argument("--config", required=True)
    quar = sub.add_parser("quarantine", help="messages that broke the contract")
    quar_sub = quar.add_subparsers(dest="action", required=True)
    for name, text in (("list", "list quarantined messages"), ("replay", "run them through ingest again")):
        p = quar_sub.add_parser(name, help=text)
        p.add_argument("--config", required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = load_settings(args.config)
        if args.command == "serve":
            return serve_forever(settings)
        store = open_store(settings.resolved_store_url)
        try:
            if args.command == "user":
                return _add_user(args, store)
            if args.command == "roster":
                return _roster(args, store, settings)
            if args.command == "report":
                from datetime import datetime

                from collector.mailer import send_monthly

                sent = send_monthly(settings, store, datetime.now(settings.tz).date(), force=args.force)
                print(f"sent: {', '.join(sent) or 'nothing due'}")
                return 0
            if args.command == "registry":
                registry = load_registry(args.file)
                store.replace_registry(registry)
                print(
                    f"registry loaded: {len(registry.units)} units, {len(registry.counters)} counters, "
                    f"{len(registry.kiosks)} kiosks"
                )
                return 0
            return _quarantine(args.action, store, settings)
        finally:
            store.close()
    except CollectorError as exc:
        print(f"collector: {exc}", file=sys.stderr)
        return 2


def _add_user(args: argparse.Namespace, store: SqliteStore) -> int:
    from collector.accounts import Accounts

    password = sys.stdin.readline().rstrip("\n")
    Accounts(store).add_user(args.name, password, role=args.role, unit=args.unit, registry=store.load_registry())
    Accounts(store).audit("cli", "add_user", f"user:{args.name}", f"{args.role} @ {args.unit}")
    print(f"user {args.name} added: {args.role} of unit {args.unit} and everything below it")
    return 0


def _roster(args: argparse.Namespace, store: SqliteStore, settings: CollectorSettings) -> int:
    from pathlib import Path

    from collector.officers import Officers

    book = Officers(store, settings.tz)
    registry = store.load_registry()
    if args.action == "add-officer":
        book.add_officer(args.id, args.name, args.unit, registry)
        print(f"officer {args.id} ({args.name}) of unit {args.unit}")
        return 0
    added = book.import_csv(Path(args.file).read_text(encoding="utf-8-sig"), registry)
    print(f"{added} duties imported")
    return 0


def _quarantine(action: str, store: SqliteStore, settings: CollectorSettings) -> int:
    if action == "list":
        entries = store.quarantined()
        for e in entries:
            preview = e.payload[:80].decode("utf-8", "replace").replace("\n", " ")
            print(f"{e.id:>6}  {e.received_at}  {e.reason:<18} {e.topic}  {e.detail}  [{preview}]")
        print(f"{len(entries)} message(s) in quarantine")
        return 0
    from collector.ingest import replay_quarantine

    results = replay_quarantine(store=store, settings=settings)
    for entry_id, outcome in results:
        print(f"{entry_id:>6}  {outcome}")
    stored = sum(1 for _, o in results if o == "stored")
    print(f"replayed {len(results)}: {stored} stored, {len(results) - stored} still in quarantine")
    return 0


def prepare_store(settings: CollectorSettings) -> SqliteStore:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = open_store(settings.resolved_store_url)
    if settings.registry is not None:
        store.replace_registry(load_registry(settings.registry))
    return store


def serve_forever(settings: CollectorSettings) -> int:
    import uvicorn

    from collector.alerts import AlertLoop, AlertNotifier
    from collector.ingest import Ingestor
    from collector.mailer import MonthlyMailer
    from collector.web import create_app

    store = prepare_store(settings)
    ingest_store = open_store(settings.resolved_store_url)
    ingestor = Ingestor(settings=settings, store=ingest_store)
    ingestor.start()
    alerts = AlertLoop(settings=settings, notifier=AlertNotifier(settings, ingestor.publish))
    alerts.start()
    mailer = MonthlyMailer(settings)
    mailer.start()
    app = create_app(settings, store)
    server = uvicorn.Server(uvicorn.Config(app, host=settings.http.host, port=settings.http.port, log_level="warning"))
    signal.signal(signal.SIGTERM, lambda *_: setattr(server, "should_exit", True))
    log.info(
        "collector serving http://%s:%d/ (API /api/v1, OpenAPI /openapi.json)",
        settings.http.host,
        settings.http.port,
    )
    try:
        server.run()
    finally:
        mailer.stop()
        alerts.stop()
        ingestor.stop()
        ingest_store.close()
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
