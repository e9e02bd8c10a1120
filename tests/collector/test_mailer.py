"""Monthly reports e-mailed over SMTP, to a real SMTP server the test starts on loopback."""

import email
import email.policy
import io
from dataclasses import replace
from datetime import date

import pytest
from aiosmtpd.controller import Controller
from openpyxl import load_workbook

from collector.config import MailSettings
from collector.localbroker import free_port
from collector.mailer import last_month, send_monthly
from tests.collector.test_exports import october  # noqa: F401 - the October data set


@pytest.fixture
def store(any_store):
    """Every test here runs on SQLite and on a real PostgreSQL."""
    return any_store


class Inbox:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.messages.append((envelope.rcpt_tos, parsed))
        return "250 OK"


@pytest.fixture
def smtp():
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller.port, inbox
    controller.stop()


def test_last_months_reports_are_sent_once(store, settings, users, october, smtp):  # noqa: F811
    port, inbox = smtp
    settings = replace(
        settings,
        mail=MailSettings(
            host="127.0.0.1",
            port=port,
            sender="bao-cao@laocai.gov.vn",
            monthly=({"unit": "10.085", "to": ["chanh-vp@vanban.gov.vn"]},),
        ),
    )
    assert last_month(date(2026, 11, 1)).start == date(2026, 10, 1)
    assert send_monthly(settings, store, date(2026, 11, 2)) == ["10.085"]
    assert send_monthly(settings, store, date(2026, 11, 3)) == []  # the mail log remembers
    assert len(inbox.messages) == 1
    recipients, message = inbox.messages[0]
    assert recipients == ["chanh-vp@vanban.gov.vn"]
    assert "Tháng 10/2026" in message["Subject"] and "Huyện Văn Bàn" in message["Subject"]
    parts = {part.get_filename(): part.get_payload(decode=True) for part in message.walk() if part.get_filename()}
    assert set(parts) == {"bao-cao-10.085-202610.pdf", "bao-cao-3-muc-10.085-202610.xlsx"}
    assert parts["bao-cao-10.085-202610.pdf"][:4] == b"%PDF"
    rows = list(load_workbook(io.BytesIO(parts["bao-cao-3-muc-10.085-202610.xlsx"])).active.iter_rows(values_only=True))
    assert next(r for r in rows if r and r[1] == "Tổng cộng")[3] == 14
    body = next(p for p in message.walk() if p.get_content_type() == "text/plain").get_content()
    assert "64,3 %" in body
