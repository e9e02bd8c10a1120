"""`collector serve`, `collector registry load`, `collector quarantine list|replay`."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from pathlib import Path
from typing import Any

from collector.anystore import Store
from collector.config import CollectorSettings, load_settings
from collector.errors import CollectorError
from collector.registry import load_registry, save_registry
from collector.store import open_store
from kiosk import __version__
from kiosk.logs import setup_logging
from kiosk.shipped import shipped_file

log = logging.getLogger("collector")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="collector", description="Satisfaction collector.")
    parser.add_argument("--version", action="version", version=f"collector {__version__}")
    parser.add_argument("--log-level", default="INFO")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="ingest from MQTT and serve the HTTP API")
    serve.add_argument(
        "--role",
        choices=("all", "ingest", "web", "jobs"),
        default="all",
        help="ingest: MQTT in (several may run); web: pages and API; jobs: alerts, monthly mail, purge, "
        "CRL renewal (one at a time runs them; others stand by); all: everything (default)",
    )
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
    user_list = user_sub.add_parser("list", help="users, their role, unit and state")
    user_list.add_argument("--config", required=True)
    for action, text in (
        ("passwd", "set a new password (read from standard input)"),
        ("disable", "refuse the user's logins, Basic auth and tokens; end their sessions"),
        ("enable", "let a disabled user in again"),
        ("unlock", "lift the lock after repeated failed logins"),
    ):
        p = user_sub.add_parser(action, help=text)
        p.add_argument("name")
        if action == "passwd":
            p.add_argument("--password-stdin", action="store_true", required=True, help="read it from standard input")
        p.add_argument("--config", required=True)
    token = sub.add_parser("token", help="API tokens for scripts that poll the API and exports")
    token_sub = token.add_subparsers(dest="action", required=True)
    token_add = token_sub.add_parser("add", help="make a token acting as a user; it is printed once")
    token_add.add_argument("name", help="what uses it, e.g. 'kho-du-lieu-tinh'")
    token_add.add_argument("--user", required=True, help="the user whose role and units the token has")
    token_add.add_argument("--config", required=True)
    token_list = token_sub.add_parser("list", help="tokens (never the secrets themselves)")
    token_list.add_argument("--config", required=True)
    token_revoke = token_sub.add_parser("revoke", help="stop a token from working")
    token_revoke.add_argument("id", type=int)
    token_revoke.add_argument("--config", required=True)
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
    monthly.add_argument(
        "--force",
        action="store_true",
        help="send now: again if sent already, and without waiting for kiosks that still hold ratings of the month",
    )
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
    ca_crl = ca_sub.add_parser("refresh-crl", help="sign the revocation list again now and tell the broker")
    ca_crl.add_argument("--config", required=True)
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
    kiosk_list = kiosk_sub.add_parser("list", help="kiosks: counter, state, firmware, certificate expiry, settings")
    kiosk_list.add_argument("--config", required=True)
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
    release = sub.add_parser("release", help="software releases for the kiosks: add, roll out, pause")
    release_sub = release.add_subparsers(dest="action", required=True)
    release_add = release_sub.add_parser("add", help="pack and sign a wheelhouse (scripts/build-wheelhouse)")
    release_add.add_argument("dist", help="the wheelhouse folder: the project's wheel and its dependencies")
    release_out = release_sub.add_parser("rollout", help="offer a release to a share of the kiosks of some units")
    release_out.add_argument("version")
    release_out.add_argument("--units", required=True, help="unit ids, comma-separated (everything below each)")
    release_out.add_argument("--percent", type=int, default=100, help="share of those kiosks (default 100)")
    for name, text in (("pause", "stop offering a release"), ("resume", "offer a paused release again")):
        release_sub.add_parser(name, help=text).add_argument("version")
    release_sub.add_parser("list", help="releases, their rollouts, and which kiosks run what")
    for p in release_sub.choices.values():
        p.add_argument("--config", required=True)
    migrate = sub.add_parser("migrate", help="bring the store to the current schema version (serve does it too)")
    migrate.add_argument("--config", required=True)
    backup = sub.add_parser("backup", help="a consistent copy of the store, the pictures and the fleet CA")
    backup.add_argument("--out", required=True, help="a new, empty folder")
    backup.add_argument("--config", required=True)
    restore = sub.add_parser("restore", help="put a backup back on a machine with an empty store")
    restore.add_argument("folder", help="a folder made by `collector backup`")
    restore.add_argument("--config", required=True)
    store_cmd = sub.add_parser("store", help="the store itself")
    store_sub = store_cmd.add_subparsers(dest="action", required=True)
    store_copy = store_sub.add_parser("copy", help="copy every table into a new, empty store (e.g. to PostgreSQL)")
    store_copy.add_argument(
        "--from", dest="source", required=True, metavar="URL", help="sqlite:///path.db or postgresql://…"
    )
    store_copy.add_argument("--to", dest="target", required=True, metavar="URL")
    quar = sub.add_parser("quarantine", help="messages that broke the contract")
    quar_sub = quar.add_subparsers(dest="action", required=True)
    for name, text in (("list", "list quarantined messages"), ("replay", "run them through ingest again")):
        p = quar_sub.add_parser(name, help=text)
        p.add_argument("--config", required=True)
    args = parser.parse_args(argv)
    setup_logging(args.log_level)
    if args.command == "store":
        return _copy_store(args.source, args.target)
    try:
        settings = load_settings(args.config)
        if args.command == "serve":
            return serve_forever(settings, role=args.role)
        if args.command in ("backup", "restore"):
            return _backup(args, settings)
        store = open_store(settings.resolved_store_url)  # opening migrates
        if args.command == "migrate":
            where = settings.resolved_store_url.split("@")[-1]
            print(f"store {where}: schema version {store.schema_version()}")
            store.close()
            return 0
        try:
            if args.command != "registry":
                ensure_registry(store, settings)
            if args.command in ("ca", "kiosk", "broker"):
                return _fleet(args, store, settings)
            if args.command == "release":
                return _release(args, store, settings)
            if args.command == "user":
                return _user(args, store)
            if args.command == "token":
                return _token(args, store)
            if args.command == "roster":
                return _roster(args, store, settings)
            if args.command == "report":
                from datetime import datetime

                from collector.mailer import send_monthly

                if not settings.mail.host:
                    print("collector: [mail] host is empty, so no e-mail is sent (see collector.toml)", file=sys.stderr)
                    return 2
                sent = send_monthly(settings, store, datetime.now(settings.tz).date(), force=args.force)
                print(f"sent: {', '.join(sent) or 'nothing due'}")
                return 0
            if args.command == "registry":
                registry = load_registry(args.file)
                store.replace_registry(registry)
                kept = ""
                if settings.registry is not None and Path(args.file).resolve() != settings.registry.resolve():
                    # `collector serve` loads the configured file at start: it must say the same.
                    save_registry(registry, settings.registry)
                    kept = f"; written to {settings.registry}, which serve loads"
                print(
                    f"registry loaded: {len(registry.units)} units, {len(registry.counters)} counters, "
                    f"{len(registry.kiosks)} kiosks{kept}"
                )
                return 0
            return _quarantine(args.action, store, settings)
        finally:
            store.close()
    except CollectorError as exc:
        print(f"collector: {exc}", file=sys.stderr)
        return 2


def _copy_store(source: str, target: str) -> int:
    from collector.storecopy import copy_store

    try:
        report = copy_store(source, target)
    except CollectorError as exc:
        print(f"collector: {exc}", file=sys.stderr)
        return 2
    for table, n in sorted(report.tables.items()):
        print(f"{table:<22} {n:>10}")
    print(f"copied and checked: every table's row count and the roll-ups ({report.rollup_total} ratings)")
    if report.pictures_moved or report.pictures_missing:
        print(f"pictures put into the database: {report.pictures_moved}")
    if report.pictures_missing:
        print(
            f"collector: {report.pictures_missing} picture file(s) not found or not matching their sha256;"
            " their rows still name the file",
            file=sys.stderr,
        )
    return 0


def _backup(args: argparse.Namespace, settings: CollectorSettings) -> int:
    from pathlib import Path

    from collector import backup

    if args.command == "backup":
        manifest = backup.backup(settings, Path(args.out))
        summary = manifest["store"]["summary"]
        print(
            f"backup in {args.out}: {manifest['store']['kind']} store ({summary['ratings']} ratings, "
            f"{summary['quarantine']} in quarantine), {len(manifest['snapshots'])} pictures, "
            f"{len(manifest['fleet'])} fleet CA files"
        )
        return 0
    got = backup.restore(settings, Path(args.folder))
    print(f"restored: {got.ratings} ratings, {got.units} units, {got.kiosks} kiosks, {got.users} users")
    return 0


def _fleet(args: argparse.Namespace, store: Store, settings: CollectorSettings) -> int:
    from pathlib import Path

    from collector import fleet
    from collector.registry import KioskEntry, Registry

    ca = fleet.FleetCA(settings.data_dir / "fleet")
    if args.command == "ca" and args.action == "refresh-crl":
        from collector.crl import check_crl

        result = check_crl(settings, force=True)
        if result.outcome == "no_ca":
            raise fleet.FleetError(f"no fleet CA in {ca.folder}: run `collector ca init` first")
        if result.outcome == "failed":
            raise fleet.FleetError(result.detail)
        told = result.detail or "the broker was not told (no [fleet] broker_reload_command or broker_pid_file)"
        print(f"CRL renewed until {result.next_update:%Y-%m-%d %H:%M} UTC; {told}")
        return 0
    if args.command == "ca":
        hosts = tuple(args.broker_host or [settings.mqtt.host, "localhost"])
        existed = ca.exists()
        ca.init(broker_hosts=tuple(dict.fromkeys(hosts)))
        if existed:
            print(f"the fleet CA in {ca.folder} is kept; a release-signing key was added (release.crt/.key)")
            return 0
        print(
            f"fleet CA made in {ca.folder}: ca.crt, broker.crt/.key for {', '.join(hosts)}, "
            f"collector.crt/.key ({fleet.COLLECTOR_IDENTITY}), release.crt/.key (signs releases), crl.pem"
        )
        return 0
    if args.command == "broker":
        out = Path(args.out)
        acl = out / "acl"
        out.mkdir(parents=True, exist_ok=True)
        acl.write_text(fleet.acl_text(settings.mqtt.topic_prefix))
        template = shipped_file(__file__, "mosquitto/production.conf")
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
    if args.action == "list":
        return _kiosk_list(ca, store)
    kiosk_id = args.kiosk_id
    if args.action == "revoke":
        count = ca.revoke(kiosk_id)
        print(
            f"revoked {count} certificate(s) of {kiosk_id}; reload the broker (systemctl reload mosquitto, or SIGHUP)"
            f" so it reads {ca.crl}"
        )
        return 0
    registry = store.load_registry()
    registry.counter(args.counter)
    if kiosk_id in (fleet.COLLECTOR_IDENTITY, fleet.RELEASE_SIGNER):
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


def _audit_enrolment(store: Store, target: str, detail: str) -> None:
    from collector.accounts import Accounts

    Accounts(store).audit("cli", "enrol_kiosk", target, detail)


def _user(args: argparse.Namespace, store: Store) -> int:
    from collector.accounts import Accounts

    accounts = Accounts(store)
    if args.action == "list":
        for u in accounts.users():
            state = "disabled" if u.disabled_at else "locked" if u.locked_until else "active"
            print(f"{u.username:<20} {u.role:<10} {u.unit:<16} {state}")
        return 0
    if args.action == "add":
        password = sys.stdin.readline().rstrip("\n")
        accounts.add_user(args.name, password, role=args.role, unit=args.unit, registry=store.load_registry())
        accounts.audit("cli", "add_user", f"user:{args.name}", f"{args.role} @ {args.unit}")
        print(f"user {args.name} added: {args.role} of unit {args.unit} and everything below it")
        return 0
    if args.action == "passwd":
        accounts.set_password(args.name, sys.stdin.readline().rstrip("\n"))
        print(f"new password set for {args.name}; their sessions ended")
    elif args.action == "disable":
        ended = accounts.disable(args.name)
        print(f"{args.name} disabled; {ended} session(s) ended; Basic auth and tokens refused")
    elif args.action == "enable":
        accounts.enable(args.name)
        print(f"{args.name} enabled")
    else:
        accounts.unlock(args.name)
        print(f"{args.name} unlocked")
    accounts.audit("cli", f"user_{args.action}", f"user:{args.name}")
    return 0


def _token(args: argparse.Namespace, store: Store) -> int:
    from collector.accounts import Accounts

    accounts = Accounts(store)
    if args.action == "add":
        token = accounts.add_token(args.name, args.user, by="cli")
        accounts.audit("cli", "add_token", f"user:{args.user}", args.name)
        print(token)
        print(
            f"token {args.name!r} acts as {args.user}; this is the only time it is shown — keep it secret. "
            "Use it as: Authorization: Bearer <token>",
            file=sys.stderr,
        )
        return 0
    if args.action == "list":
        for t in accounts.tokens():
            state = f"revoked {t.revoked_at}" if t.revoked_at else f"last used {t.last_used_at or 'never'}"
            print(f"{t.id:>4}  {t.name:<24} {t.username:<16} made {t.created_at} by {t.created_by}; {state}")
        return 0
    accounts.revoke_token(args.id)
    accounts.audit("cli", "revoke_token", f"token:{args.id}")
    print(f"token {args.id} revoked")
    return 0


def _roster(args: argparse.Namespace, store: Store, settings: CollectorSettings) -> int:
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


def _quarantine(action: str, store: Store, settings: CollectorSettings) -> int:
    if action == "list":
        shown = after = 0
        while entries := store.quarantined(after_id=after, limit=1000):
            for e in entries:
                preview = e.payload[:80].decode("utf-8", "replace").replace("\n", " ")
                print(f"{e.id:>6}  {e.received_at}  {e.reason:<18} {e.topic}  {e.detail}  [{preview}]")
            shown += len(entries)
            after = entries[-1].id
        stats = store.quarantine_stats()
        print(f"{shown} message(s) in quarantine ({stats.payload_bytes / 1e6:.1f} MB of payloads)")
        for (reason, why), n in sorted(stats.dropped.items()):
            print(f"removed earlier ({'expired' if why == 'expired' else 'over the size cap'}): {n} {reason}")
        return 0
    from collector.ingest import replay_quarantine

    results = replay_quarantine(store=store, settings=settings)
    for entry_id, outcome in results:
        print(f"{entry_id:>6}  {outcome}")
    stored = sum(1 for _, o in results if o in ("stored", "split"))
    print(f"replayed {len(results)}: {stored} stored, {len(results) - stored} still in quarantine")
    return 0


def ensure_registry(store: Store, settings: CollectorSettings) -> None:
    """A fresh collector's store has no registry until `serve` starts: admin commands read the
    configured file then, instead of answering "no unit '10'"."""
    if settings.registry is not None and settings.registry.exists() and not store.load_registry().units:
        store.replace_registry(load_registry(settings.registry))


def prepare_store(settings: CollectorSettings) -> Store:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = open_store(settings.resolved_store_url)
    if settings.registry is not None:
        store.replace_registry(load_registry(settings.registry))
    return store


def _release(args: argparse.Namespace, store: Store, settings: CollectorSettings) -> int:
    from collector.releases import ReleaseBook
    from collector.store import now_text

    book = ReleaseBook(store, settings.data_dir)
    by = "cli"
    if args.action == "add":
        made = book.add(Path(args.dist), by=by, at=now_text())
        doc = made.doc
        print(
            f"release {made.version}: {len(doc['wheels'])} wheels, {doc['size'] / 1e6:.1f} MB, sha256 {doc['sha256']},"
            f" signed; offer it with `collector release rollout {made.version} --units … --percent N`"
        )
        _audit_release(store, f"release:{made.version}", f"added, sha256 {doc['sha256']}")
        return 0
    if args.action == "rollout":
        units = [u.strip() for u in args.units.split(",") if u.strip()]
        rollout = book.rollout(args.version, units, args.percent, store.load_registry(), by=by, at=now_text())
        from urllib.parse import urlsplit

        if urlsplit(settings.release_url).hostname in ("127.0.0.1", "localhost", "::1"):
            print(
                f"collector: kiosks will download from {settings.release_url}, which is the kiosk itself:"
                " set [update] public_url to this collector's address as kiosks reach it",
                file=sys.stderr,
            )
        registry = store.load_registry()
        chosen = [k for k in registry.kiosks if book.offer_for(k, registry, [rollout]) is not None]
        print(
            f"release {rollout.version} offered to {rollout.percent}% of the kiosks under {', '.join(units)}:"
            f" {len(chosen)} kiosk(s) now"
        )
        _audit_release(store, f"release:{args.version}", f"rollout {rollout.percent}% of {', '.join(units)}")
        return 0
    if args.action in ("pause", "resume"):
        book.set_state(args.version, "paused" if args.action == "pause" else "active", by=by, at=now_text())
        print(f"release {args.version}: rollout {'paused' if args.action == 'pause' else 'resumed'}")
        _audit_release(store, f"release:{args.version}", args.action)
        return 0
    rollouts = {r.version: r for r in book.rollouts()}
    statuses = store.kiosk_statuses()
    running: dict[str, int] = {}
    for status in statuses.values():
        running[str(status.get("fw") or "?")] = running.get(str(status.get("fw") or "?"), 0) + 1
    for made in book.releases():
        r = rollouts.get(made.version)
        offer = f"{r.state}, {r.percent}% of {', '.join(r.units)}" if r else "not offered"
        print(
            f"{made.version:<12} {made.created_at}  {made.doc['size'] / 1e6:7.1f} MB  {offer};"
            f" {running.get(made.version, 0)} kiosk(s) run it"
        )
    others = {v: n for v, n in running.items() if v not in {m.version for m in book.releases()}}
    for version, n in sorted(others.items()):
        print(f"{version:<12} (not a release here)  {n} kiosk(s) run it")
    return 0


def _audit_release(store: Store, target: str, detail: str) -> None:
    from collector.accounts import Accounts

    Accounts(store).audit("cli", "release", target, detail)


def _kiosk_list(ca: Any, store: Store) -> int:
    """One line per registered kiosk, certificates expiring soonest first."""
    from datetime import UTC, datetime, timedelta

    registry = store.load_registry()
    statuses = store.kiosk_statuses()
    now = datetime.now(UTC)
    rows = []
    expiries = ca.expiries() if ca.exists() else {}
    for kiosk in registry.kiosks.values():
        status = statuses.get(kiosk.id) or {}
        expires = ca.expiry_in_use(kiosk.id, status, expiries) if ca.exists() else None
        if expires is None:
            cert = "no certificate" if ca.exists() else "no CA here"
        else:
            left = (expires - now).days
            cert = f"{expires:%Y-%m-%d} ({left} d{', RENEW' if expires - now <= timedelta(days=30) else ''})"
        reported = status.get("settings") or {}
        settings_text = f"r{reported.get('revision') or '?'} {reported.get('state')}" if reported.get("state") else "-"
        renewal = (status.get("renewal") or {}).get("state")
        if renewal:
            cert = f"{cert} renewal {renewal}"
        rows.append(
            (
                expires or datetime.max.replace(tzinfo=UTC),
                kiosk.id,
                kiosk.counter,
                status.get("state", "never seen"),
                status.get("received_at", "-"),
                status.get("fw") or "-",
                cert,
                settings_text,
            )
        )
    print(f"{'kiosk':<20} {'counter':<12} {'state':<10} {'last seen':<25} {'fw':<10} {'certificate':<28} settings")
    for _, *cells in sorted(rows):
        kiosk_id, counter, state, seen, fw, cert, settings_text = cells
        print(f"{kiosk_id:<20} {counter:<12} {state:<10} {seen:<25} {fw:<10} {cert:<28} {settings_text}")
    print(f"{len(rows)} kiosk(s)")
    return 0


def raise_fleet_alert(settings: CollectorSettings, notifier: object, detail: str) -> None:
    """An alert about the whole fleet (the CRL), for the admins of the top unit."""
    from datetime import UTC, datetime

    from collector.alerts import AlertBook, AlertNotifier

    store = open_store(settings.resolved_store_url)
    try:
        roots = store.load_registry().roots()
        alert = AlertBook(store, settings).open_alert(
            "crl_expiry", "fleet", roots[0].id if roots else "", {"error": detail}, datetime.now(UTC)
        )
    finally:
        store.close()
    if alert is not None and isinstance(notifier, AlertNotifier):
        notifier.notify(alert)


def _release_server(settings: CollectorSettings) -> Any:
    """Kiosks download releases here (collector/releaseserver.py), where the fleet CA is."""
    from collector.fleet import FleetCA
    from collector.releaseserver import ReleaseServer

    if settings.update.port == 0 or not FleetCA(settings.data_dir / "fleet").exists():
        return None
    opened: list[Any] = []

    def load_registry() -> Any:  # on the server's refresher thread, with a store of its own
        if not opened:
            opened.append(open_store(settings.resolved_store_url))
        return opened[0].load_registry()

    try:
        server = ReleaseServer(settings, load_registry)
        server.start()
    except (OSError, ValueError) as exc:
        log.error("release server not started ([update] port %d): %s", settings.update.port, exc)
        return None
    return server


def serve_forever(settings: CollectorSettings, *, role: str = "all") -> int:
    """Run the parts of the collector ``role`` names until SIGTERM or Ctrl-C."""
    import uvicorn

    from collector.alerts import AlertLoop, AlertNotifier
    from collector.crl import CrlKeeper
    from collector.ingest import Housekeeper, Ingestor
    from collector.joblock import JobLock, JobRunner
    from collector.mailer import MonthlyMailer
    from collector.metrics import Metrics
    from collector.web import create_app
    from kiosk import memtrace

    memtrace.start_from_env()  # SAT_TRACEMALLOC=<s>: where memory grows, for a leak hunt
    store = prepare_store(settings)
    closing: list[Any] = []
    metrics = Metrics()
    ingestor = None
    if role in ("all", "ingest"):
        ingest_store = open_store(settings.resolved_store_url)
        ingestor = Ingestor(settings=settings, store=ingest_store, housekeeping=False)
        ingestor.start()
        metrics.watch_ingest(ingestor)
        closing += [ingestor.stop, ingest_store.close]
        release_server = _release_server(settings)
        if release_server is not None:
            closing.insert(0, release_server.stop)
    if role in ("all", "jobs"):
        jobs: list[Any] = []
        publish = ingestor.publish if ingestor is not None else None

        def start_jobs() -> None:
            jobs_store = open_store(settings.resolved_store_url)
            notifier = AlertNotifier(settings, publish)
            started: list[Any] = [
                AlertLoop(settings=settings, notifier=notifier),
                MonthlyMailer(settings),
                CrlKeeper(settings, raise_alert=lambda detail: raise_fleet_alert(settings, notifier, detail)),
                Housekeeper(settings=settings, store=jobs_store),
            ]
            for job in started:
                job.start()
            jobs[:] = [*started, jobs_store]

        def stop_jobs() -> None:
            for job in jobs:
                (job.close if hasattr(job, "close") else job.stop)()
            jobs.clear()

        runner = JobRunner(JobLock(settings.resolved_store_url, settings.data_dir), start=start_jobs, stop=stop_jobs)
        runner.start()
        closing.insert(0, runner.stop)
    # An ingest or jobs process answers only /healthz, /readyz and /metrics on its port.
    app = create_app(
        settings,
        store,
        ingest_health=ingestor.health if ingestor else None,
        metrics=metrics,
        pages=role in ("all", "web"),
    )
    # log_config=None: uvicorn's loggers go through ours (key=value lines); its access log (one line
    # per request) only when [http] access_log is on.
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=settings.http.host,
            port=settings.http.port,
            log_config=None,
            access_log=settings.http.access_log,
        )
    )
    logging.getLogger("uvicorn.error").setLevel(logging.WARNING)
    logging.getLogger("uvicorn.access").setLevel(logging.INFO if settings.http.access_log else logging.WARNING)
    signal.signal(signal.SIGTERM, lambda *_: setattr(server, "should_exit", True))
    log.info(
        "collector (%s) serving http://%s:%d/ (API /api/v1, OpenAPI /openapi.json)",
        role,
        settings.http.host,
        settings.http.port,
    )
    try:
        server.run()
    finally:
        for close in closing:
            close()
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
