"""Monthly reports by e-mail: each configured unit's PDF report and three-level XLSX for the
month just ended, sent once (the mail log remembers), over SMTP.

A month is closed only when the kiosks have delivered it: while a kiosk of the unit still reports
unacked ratings pressed in the month (an offline kiosk: as it last reported), the report waits, up
to ``[mail] backlog_wait_days`` after the month's end; then it goes anyway and says which kiosks
and how many ratings are missing. Ratings that arrive for a month already mailed are listed as
late arrivals in the unit's next mail."""

from __future__ import annotations

import logging
import smtplib
import ssl
import threading
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage

from collector import documents, exports, formats, i18n, reports
from collector.anystore import Store
from collector.config import CollectorSettings
from collector.periods import Period, period_of
from collector.registry import Registry
from collector.store import KioskBacklog, now_text

log = logging.getLogger(__name__)


def last_month(today: date) -> Period:
    return period_of("month", today.replace(day=1) - timedelta(days=1))


def build_message(
    settings: CollectorSettings,
    store: Store,
    unit: str,
    recipients: list[str],
    period: Period,
    today: date,
    *,
    missing: list[KioskBacklog] | None = None,
    late: list[tuple[str, dict[int, int]]] | None = None,
) -> EmailMessage:
    """The month's mail; ``missing``: kiosks that still held ratings of the month when it was made;
    ``late``: (month, ratings per score) that arrived after earlier reports were sent."""
    registry = store.load_registry()
    name = registry.unit(unit).name
    pdf, summary = documents.unit_report_pdf(store, registry, unit, period, today, tz=settings.tz)
    form = documents.three_level_form(settings, store, registry, unit, period, today)
    message = EmailMessage()
    message["Subject"] = f"Báo cáo mức độ hài lòng {period.label_vi()} — {name}"
    message["From"] = settings.mail.sender
    message["To"] = ", ".join(recipients)
    message.set_content(
        f"Kính gửi,\n\nBáo cáo mức độ hài lòng của {name}, {period.label_vi()}:\n"
        f"- Tổng số lượt đánh giá: {summary.total}\n"
        f"- Tỷ lệ hài lòng: {formats.percent(summary.satisfaction_rate)}\n"
        f"- {i18n.text('unsynced', 'vi')}: {formats.number(summary.unsynced)}\n\n"
        + _missing_text(missing or [], registry, settings)
        + _late_text(late or [])
        + "Đính kèm: báo cáo PDF và mẫu báo cáo 3 mức (XLSX).\n"
    )
    stamp = f"{period.start:%Y%m}"
    message.add_attachment(pdf, maintype="application", subtype="pdf", filename=f"bao-cao-{unit}-{stamp}.pdf")
    message.add_attachment(
        exports.three_level_xlsx(form),
        maintype="application",
        subtype="vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        filename=f"bao-cao-3-muc-{unit}-{stamp}.xlsx",
    )
    return message


def _missing_text(missing: list[KioskBacklog], registry: Registry, settings: CollectorSettings) -> str:
    if not missing:
        return ""
    lines = [i18n.text("mail_missing", "vi").format(n=formats.number(sum(m.ratings for m in missing)))]
    for m in missing:
        entry = registry.kiosks.get(m.kiosk)
        counter = registry.counters[entry.counter].name if entry and entry.counter in registry.counters else ""
        lines.append(
            "- "
            + i18n.text("mail_missing_kiosk", "vi").format(
                kiosk=m.kiosk,
                counter=counter,
                n=formats.number(m.ratings),
                at=formats.moment(m.oldest_at, settings.tz) if m.oldest_at else i18n.text("unknown_time", "vi"),
                reported=formats.moment(m.reported_at, settings.tz),
                state=i18n.text(m.state, "vi"),
            )
        )
    return "\n".join([*lines, i18n.text("mail_missing_after", "vi")]) + "\n\n"


def _late_text(late: list[tuple[str, dict[int, int]]]) -> str:
    if not late:
        return ""
    labels = i18n.SCORE_LABELS["vi"]
    lines = [i18n.text("mail_late", "vi")]
    for month, by_score in late:
        scores = ", ".join(f"{labels[s]} {formats.number(by_score.get(s, 0))}" for s in (4, 3, 2, 1))
        lines.append(f"- {month[5:]}/{month[:4]}: {formats.number(sum(by_score.values()))} lượt ({scores})")
    return "\n".join(lines) + "\n\n"


def send(settings: CollectorSettings, message: EmailMessage) -> None:
    mail = settings.mail
    with smtplib.SMTP(mail.host, mail.port, timeout=30) as smtp:
        if mail.starttls:
            smtp.starttls(context=ssl.create_default_context())
        if mail.username:
            smtp.login(mail.username, mail.password)
        smtp.send_message(message)


def send_monthly(
    settings: CollectorSettings, store: Store, today: date, *, force: bool = False, period: Period | None = None
) -> list[str]:
    """Send the reports of the month before ``today`` that have not gone out yet and are not
    waiting for kiosks' backlog; returns the units sent. ``force``: send again, and do not wait."""
    period = period or last_month(today)
    month = f"{period.start:%Y-%m}"
    month_end = reports.period_end_utc(period.end, settings.tz)
    wait_until = period.end + timedelta(days=settings.mail.backlog_wait_days)
    registry = store.load_registry()
    log_book = store.mails_sent()
    sent = []
    for entry in settings.mail.monthly:
        unit, recipients = str(entry["unit"]), [str(r) for r in entry["to"]]
        mine = [m for m in log_book if m.unit == unit]
        if any(m.month == month for m in mine) and not force:
            continue
        counters = registry.counters_under(unit) if unit in registry.units else []
        missing = reports.completeness(store, registry, counters).missing_before(month_end)
        if missing and not force and today <= wait_until:
            log.info(
                "monthly report %s for unit %s waits for %d rating(s) still at kiosk(s) %s (until %s at the latest)",
                month,
                unit,
                sum(m.ratings for m in missing),
                ", ".join(m.kiosk for m in missing),
                wait_until,
            )
            continue
        last_sent = max((m.sent_at for m in mine), default="")
        late = []
        for earlier in mine:
            if earlier.month < month:
                by_score = store.late_arrivals(counters, earlier.month, max(earlier.sent_at, last_sent))
                if by_score:
                    late.append((earlier.month, by_score))
        send(settings, build_message(settings, store, unit, recipients, period, today, missing=missing, late=late))
        store.record_mail(unit, month, now_text(), ", ".join(recipients))
        log.info(
            "monthly report %s for unit %s sent to %s%s",
            month,
            unit,
            ", ".join(recipients),
            f" with {sum(m.ratings for m in missing)} rating(s) still missing" if missing else "",
        )
        sent.append(unit)
    return sent


class MonthlyMailer:
    """Checks every hour; after 07:00 local on any day of a new month, sends what is due."""

    def __init__(self, settings: CollectorSettings) -> None:
        self.settings = settings
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="mailer", daemon=True)

    def start(self) -> None:
        if self.settings.mail.host and self.settings.mail.monthly:
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def _run(self) -> None:
        from collector.store import open_store

        while not self._stop.wait(5):
            now = datetime.now(UTC).astimezone(self.settings.tz)
            if now.hour >= 7:
                store = open_store(self.settings.resolved_store_url)
                try:
                    send_monthly(self.settings, store, now.date())
                except (OSError, smtplib.SMTPException, exports.ExportError) as exc:
                    log.warning("monthly reports not sent (%s); trying again in an hour", exc)
                finally:
                    store.close()
            self._stop.wait(3600)
