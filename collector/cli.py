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
    ca = sub.add_parser("ca", help="the fleet's certificate authority")
    ca_sub = ca.add_subparsers(dest="action", required=True)
    ca_init = ca_sub.add_parser("init", help="make the CA, the broker's and the collector's certificates")
    ca_init.add_argument(
        "--broker-host",
        action="append",
        default=None,
        metavar="NAME_OR_IP",
        help="name or address kiosks use for the broker (repeat for several)",
    )
    ca_init.add_argument("--config", required=True)
    kiosk = sub.add_parser("kiosk", help="enrol and revoke kiosks")
    kiosk_sub = kiosk.add_subparsers(dest="action", required=True)
    enrol = kiosk_sub.add_parser("enrol", help="register a kiosk and write its provisioning bundle")
    enrol.add_argument("kiosk_id")
    enrol.add_argument("--counter", required=True)
    enrol.add_argument("--out", required=True, help="folder for kiosk.toml, ca.crt, kiosk.crt, kiosk.key")
    enrol.add_argument("--broker-host", help="default: [mqtt] host of collector.toml")
    enrol.add_argument("--broker-port", type=int, default=8883)
    enrol.add_argument("--days", type=int, default=5 * 365, help="certificate lifetime (default 5 years)")
    enrol.add_argument("--replace", action="store_true", help="a new card for an enrolled kiosk: revoke the old")
    enrol.add_argument("--config", required=True)
    revoke = kiosk_sub.add_parser("revoke", help="put a kiosk's certificates on the broker's revocation list")
    revoke.add_argument("kiosk_id")
    revoke.add_argument("--config", required=True)
    broker = sub.add_parser("broker", help="the production Mosquitto")
    broker_sub = broker.add_subparsers(dest="action", required=True)
    broker_conf = broker_sub.add_parser("config", help="write mosquitto.conf and the ACL for the fleet")
    broker_conf.add_argument("--out", required=True)
    broker_conf.add_argument("--port", type=int, default=8883)
    broker_conf.add_argument("--bind", default="", help="address to listen on (default: all)")
    broker_conf.add_argument("--persistence", default="/var/lib/mosquitto/")
    broker_conf.add_argument("--config", required=True)
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
            if args.command in ("ca", "kiosk", "broker"):
                return _fleet(args, store, settings)
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


def _fleet(args: argparse.Namespace, store: SqliteStore, settings: CollectorSettings) -> int:
    from pathlib import Path

    from collector import fleet
    from collector.registry import KioskEntry, Registry

    ca = fleet.FleetCA(settings.data_dir / "fleet")
    if args.command == "ca":
        hosts = tuple(args.broker_host or [settings.mqtt.host, "localhost"])
        ca.init(broker_hosts=tuple(dict.fromkeys(hosts)))
        print(
            f"fleet CA made in {ca.folder}: ca.crt, broker.crt/.key for {', '.join(hosts)}, "
            f"collector.crt/.key ({fleet.COLLECTOR_IDENTITY}), crl.pem"
        )
        return 0
    if args.command == "broker":
        out = Path(args.out)
        acl = out / "acl"
        out.mkdir(parents=True, exist_ok=True)
        acl.write_text(fleet.acl_text(settings.mqtt.topic_prefix))
        template = Path(__file__).resolve().parent.parent / "config" / "mosquitto" / "production.conf"
        (out / "mosquitto.conf").write_text(
            fleet.mosquitto_conf(
                ca,
                port=args.port,
                bind=args.bind,
                acl_path=acl.resolve(),
                persistence_dir=args.persistence,
                template=template,
            )
        )
        print(f"wrote {out / 'mosquitto.conf'} and {acl}")
        return 0
    kiosk_id = args.kiosk_id
    if args.action == "revoke":
        count = ca.revoke(kiosk_id)
        print(f"revoked {count} certificate(s) of {kiosk_id}; restart the broker so it reads {ca.crl}")
        return 0
    registry = store.load_registry()
    registry.counter(args.counter)
    if kiosk_id == fleet.COLLECTOR_IDENTITY:
        raise fleet.FleetError("that name belongs to the collector")
    if ca.active(kiosk_id):
        if not args.replace:
            raise fleet.FleetError(f"{kiosk_id} is enrolled already; --replace issues a new card and revokes the old")
        ca.revoke(kiosk_id)
    kiosks = [k for k in registry.kiosks.values() if k.id != kiosk_id] + [KioskEntry(kiosk_id, args.counter)]
    store.replace_registry(Registry.build(registry.units.values(), registry.counters.values(), kiosks))
    if settings.registry is not None and kiosk_id not in _registry_file_kiosks(settings.registry):
        # `collector serve` reloads the file at start: the kiosk must be in it too.
        with open(settings.registry, "a", encoding="utf-8") as fh:
            fh.write(f'\n[[kiosk]]\nid = "{kiosk_id}"\ncounter = "{args.counter}"\n')
    files = fleet.write_bundle(
        ca,
        Path(args.out),
        kiosk_id=kiosk_id,
        counter=args.counter,
        broker_host=args.broker_host or settings.mqtt.host,
        broker_port=args.broker_port,
        prefix=settings.mqtt.topic_prefix,
        days=args.days,
    )
    _audit_enrolment(store, f"kiosk:{kiosk_id}", f"enrolled at {args.counter}")
    print(f"kiosk {kiosk_id} enrolled at counter {args.counter}; bundle: {', '.join(str(f) for f in files)}")
    return 0


def _registry_file_kiosks(path: object) -> set[str]:
    from collector.registry import load_registry

    return set(load_registry(str(path)).kiosks)


def _audit_enrolment(store: SqliteStore, target: str, detail: str) -> None:
    from collector.accounts import Accounts

    Accounts(store).audit("cli", "enrol_kiosk", target, detail)


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
