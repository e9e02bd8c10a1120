"""Monthly reports by e-mail: each configured unit's PDF report and three-level XLSX for the
month just ended, sent once (the mail log remembers), over SMTP."""

from __future__ import annotations

import logging
import smtplib
import ssl
import threading
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage

from collector import documents, exports, formats
from collector.config import CollectorSettings
from collector.periods import Period, period_of
from collector.store import SqliteStore, now_text

log = logging.getLogger(__name__)


def last_month(today: date) -> Period:
    return period_of("month", today.replace(day=1) - timedelta(days=1))


def build_message(
    settings: CollectorSettings, store: SqliteStore, unit: str, recipients: list[str], period: Period, today: date
) -> EmailMessage:
    registry = store.load_registry()
    name = registry.unit(unit).name
    pdf, summary = documents.unit_report_pdf(store, registry, unit, period, today)
    form = documents.three_level_form(settings, store, registry, unit, period, today)
    message = EmailMessage()
    message["Subject"] = f"Báo cáo mức độ hài lòng {period.label_vi()} — {name}"
    message["From"] = settings.mail.sender
    message["To"] = ", ".join(recipients)
    message.set_content(
        f"Kính gửi,\n\nBáo cáo mức độ hài lòng của {name}, {period.label_vi()}:\n"
        f"- Tổng số lượt đánh giá: {summary['total']}\n"
        f"- Tỷ lệ hài lòng: {formats.percent(summary['satisfaction_rate'])}\n\n"
        "Đính kèm: báo cáo PDF và mẫu báo cáo 3 mức (XLSX).\n"
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


def send(settings: CollectorSettings, message: EmailMessage) -> None:
    mail = settings.mail
    with smtplib.SMTP(mail.host, mail.port, timeout=30) as smtp:
        if mail.starttls:
            smtp.starttls(context=ssl.create_default_context())
        if mail.username:
            smtp.login(mail.username, mail.password)
        smtp.send_message(message)


def send_monthly(
    settings: CollectorSettings, store: SqliteStore, today: date, *, force: bool = False, period: Period | None = None
) -> list[str]:
    """Send the reports of the month before ``today`` that have not gone out yet; returns the units sent."""
    period = period or last_month(today)
    month = f"{period.start:%Y-%m}"
    sent = []
    for entry in settings.mail.monthly:
        unit, recipients = str(entry["unit"]), [str(r) for r in entry["to"]]
        already = store.conn.execute("SELECT 1 FROM mail_log WHERE unit=? AND month=?", (unit, month)).fetchone()
        if already and not force:
            continue
        send(settings, build_message(settings, store, unit, recipients, period, today))
        with store.transaction():
            store.conn.execute(
                "INSERT INTO mail_log VALUES (?,?,?,?) ON CONFLICT (unit, month) DO UPDATE SET"
                " sent_at=excluded.sent_at, recipients=excluded.recipients",
                (unit, month, now_text(), ", ".join(recipients)),
            )
        log.info("monthly report %s for unit %s sent to %s", month, unit, ", ".join(recipients))
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
