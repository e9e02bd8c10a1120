"""Officers, the duty roster and who gets which rating."""

from datetime import date

import pytest

from collector.officers import NOBODY, Officers, RosterError, parse_local
from tests.collector.conftest import PASSWORD
from tests.ratings import make_rating, store_ratings


@pytest.fixture
def store(any_store):
    """Every test here runs on SQLite and on a real PostgreSQL."""
    return any_store


@pytest.fixture
def book(store, settings):
    registry = store.load_registry()
    officers = Officers(store, settings.tz)
    officers.add_officer("an", "Nguyễn Văn An", "10.085", registry)
    officers.add_officer("binh", "Trần Thị Bình", "10.085", registry)
    return officers, registry


def add(store, settings, pressed_local, score, counter="vb-q1", flag=None):
    rating = make_rating(counter=counter, score=score, pressed_at=parse_local(pressed_local, settings.tz), flag=flag)
    store_ratings(store, [rating], tz=settings.tz, kiosk="k-vb-q1")


def test_rating_goes_to_the_officer_on_duty_and_the_rest_to_nobody(book, store, settings):
    officers, registry = book
    tz = settings.tz
    officers.add_duty("an", "vb-q1", parse_local("2026-11-20 07:30", tz), parse_local("2026-11-20 11:30", tz), registry)
    officers.add_duty(
        "binh", "vb-q1", parse_local("2026-11-20 13:30", tz), parse_local("2026-11-20 17:00", tz), registry
    )
    add(store, settings, "2026-11-20 08:00", 4)
    add(store, settings, "2026-11-20 11:29", 1)
    add(store, settings, "2026-11-20 11:30", 3)  # the duty ended: nobody
    add(store, settings, "2026-11-20 14:00", 2)
    add(store, settings, "2026-11-20 14:05", 1, flag="lockout")  # refused presses are nobody's rating
    got = officers.by_officer(["vb-q1"], date(2026, 11, 20), date(2026, 11, 20))
    assert got["an"] == {1: 1, 2: 0, 3: 0, 4: 1}
    assert got["binh"] == {1: 0, 2: 1, 3: 0, 4: 0}
    assert got[NOBODY] == {1: 0, 2: 0, 3: 1, 4: 0}
    assert officers.officer_by_counter("an", date(2026, 11, 1), date(2026, 11, 30)) == {
        "vb-q1": {1: 1, 2: 0, 3: 0, 4: 1}
    }


def test_overlapping_duties_at_one_counter_are_refused(book, settings):
    officers, registry = book
    tz = settings.tz
    officers.add_duty("an", "vb-q1", parse_local("2026-11-20 07:30", tz), parse_local("2026-11-20 11:30", tz), registry)
    with pytest.raises(RosterError, match=r"already has Nguyễn Văn An \(an\) on duty"):
        officers.add_duty(
            "binh", "vb-q1", parse_local("2026-11-20 11:00", tz), parse_local("2026-11-20 12:00", tz), registry
        )
    officers.add_duty(
        "binh", "vb-q2", parse_local("2026-11-20 11:00", tz), parse_local("2026-11-20 12:00", tz), registry
    )  # another counter is fine


def test_csv_import_is_all_or_nothing_with_line_numbers(book, settings):
    officers, registry = book
    good = (
        "officer,counter,start,end\n"
        "an,vb-q1,2026-11-23 07:30,2026-11-23 11:30\n"
        "binh,vb-q1,23/11/2026 13:30,23/11/2026 17:00\n"
    )
    assert officers.import_csv(good, registry) == 2
    bad = "an,vb-q2,2026-11-24 07:30,2026-11-24 11:30\nghost,vb-q2,2026-11-24 13:30,2026-11-24 17:00\n"
    with pytest.raises(RosterError, match="line 2: unknown officer 'ghost'"):
        officers.import_csv(bad, registry)
    assert [d.counter for d in officers.duties()] == ["vb-q1", "vb-q1"]  # the good first line did not stay
    with pytest.raises(RosterError, match="line 1: time"):
        officers.import_csv("an,vb-q2,tomorrow,later\n", registry)
    # saved by Excel on a Vietnamese Windows: a byte-order mark, cells split by «;»
    excel = "\ufeffofficer;counter;start;end\r\nan;vb-q2;25/11/2026 07:30;25/11/2026 11:30\r\n"
    assert officers.import_csv(excel, registry) == 1
    assert sorted(d.counter for d in officers.duties()) == ["vb-q1", "vb-q1", "vb-q2"]


def test_the_roster_page_shows_names_with_units_and_tells_namesakes_apart(client_for, store, settings):
    from collector.officers import Officers, parse_local

    registry = store.load_registry()
    book = Officers(store, settings.tz)
    book.add_officer("vb-07", "Nguyễn Văn An", "10.085", registry)
    book.add_officer("vb-12", "Nguyễn Văn An", "10.085", registry)  # the same name in the same district
    book.add_officer("ky-01", "Lò Thị Hoa", "10.085.02944", registry)
    book.add_duty(
        "vb-12",
        "vb-q1",
        parse_local("2026-11-23 07:30", settings.tz),
        parse_local("2026-11-23 11:30", settings.tz),
        registry,
    )
    client = client_for("admin")
    client.auth = None
    client.post("/login", data={"username": "admin", "password": PASSWORD})
    page = client.get("/admin/roster").text
    assert '<option value="vb-07">Nguyễn Văn An (Huyện Văn Bàn, vb-07)</option>' in page
    assert '<option value="vb-12">Nguyễn Văn An (Huyện Văn Bàn, vb-12)</option>' in page
    assert '<option value="ky-01">Lò Thị Hoa (Thị trấn Khánh Yên)</option>' in page
    duty = page[page.index('data-duty-officer="vb-12"') :].split("</tr>")[0]
    assert "Nguyễn Văn An (Huyện Văn Bàn, vb-12)" in duty and "vb-q1<" not in duty  # names, not ids
    officer_row = page[page.index('data-officer="ky-01"') :].split("</tr>")[0]
    assert "Thị trấn Khánh Yên" in officer_row


def test_an_admin_ends_a_duty_from_the_roster_page(client_for, store, settings):
    from datetime import UTC, datetime, timedelta

    from collector.officers import Officers
    from kiosk import wire

    registry = store.load_registry()
    book = Officers(store, settings.tz)
    book.add_officer("vb-07", "Nguyễn Văn An", "10.085", registry)
    now = datetime.now(UTC)
    going = book.add_duty(
        "vb-07",
        "vb-q1",
        wire.format_time(now - timedelta(hours=1)),
        wire.format_time(now + timedelta(hours=3)),
        registry,
    )
    later = book.add_duty(
        "vb-07",
        "vb-q2",
        wire.format_time(now + timedelta(days=1)),
        wire.format_time(now + timedelta(days=1, hours=4)),
        registry,
    )
    over = book.add_duty(
        "vb-07",
        "vb-q2",
        wire.format_time(now - timedelta(days=1)),
        wire.format_time(now - timedelta(hours=20)),
        registry,
    )
    client = client_for("admin")
    client.auth = None
    client.post("/login", data={"username": "admin", "password": PASSWORD})
    page = client.get("/admin/roster").text
    csrf = page.split('name="csrf" value="')[1].split('"')[0]
    assert f'action="/admin/duties/{going}/end"' in page and f'action="/admin/duties/{over}/end"' not in page
    ended = client.post(f"/admin/duties/{going}/end", data={"csrf": csrf})
    assert "Đã kết thúc ca trực" in ended.text
    assert wire.parse_time(book.duty(going).end_at) <= datetime.now(UTC)
    assert "Đã xóa ca trực chưa bắt đầu" in client.post(f"/admin/duties/{later}/end", data={"csrf": csrf}).text
    assert [d.id for d in book.duties()] == [going, over]  # the one not begun is gone, the past stays
    assert "Ca trực đã kết thúc từ trước" in client.post(f"/admin/duties/{over}/end", data={"csrf": csrf}).text
    assert client.post(f"/admin/duties/{later}/end", data={"csrf": csrf}).status_code == 404
    assert client.post(f"/admin/duties/{going}/end", data={"csrf": "wrong"}).status_code == 403
    assert len(store.audit_for("counter:vb-q1", ["end_duty"])) == 1


def test_a_row_number_no_store_holds_is_refused_before_the_store(client_for):
    client = client_for("admin")
    client.auth = None
    client.post("/login", data={"username": "admin", "password": PASSWORD})
    csrf = client.get("/admin/roster").text.split('name="csrf" value="')[1].split('"')[0]
    for bad in ("99999999999999999999999", "9223372036854775808", "-1", "0"):
        for path in (f"/admin/duties/{bad}/end", f"/alerts/{bad}/ack"):
            assert client.post(path, data={"csrf": csrf, "comment": "x"}).status_code == 422, path
    assert client.post("/admin/duties/9223372036854775807/end", data={"csrf": csrf}).status_code == 404


def test_an_admin_edits_a_duty_and_an_officer_each_change_checked_audited_and_said(client_for, store, settings):
    """A duty entered wrongly is put right from the page (another officer, other times): checked
    against the counter's other duties (a refusal keeps the form), audited with before and after,
    and its ratings count for the new officer. An officer is renamed or moved the same way. An
    admin of another district sees neither."""
    from collector.accounts import Accounts
    from collector.officers import Officers, parse_local
    from tests.ratings import make_rating, store_ratings

    tz = settings.tz
    registry = store.load_registry()
    book = Officers(store, tz)
    book.add_officer("vb-07", "Nguyễn Văn An", "10.085", registry)
    book.add_officer("vb-08", "Trần Thị Mai", "10.085", registry)
    wrong = book.add_duty(
        "vb-07", "vb-q1", parse_local("2026-10-05 07:30", tz), parse_local("2026-10-05 11:30", tz), registry
    )
    book.add_duty("vb-08", "vb-q1", parse_local("2026-10-05 13:30", tz), parse_local("2026-10-05 17:00", tz), registry)
    store_ratings(
        store, [make_rating(seq=1, counter="vb-q1", score=1, pressed_at=parse_local("2026-10-05 12:15", tz))], tz=tz
    )
    client = client_for("admin")
    client.auth = None
    client.post("/login", data={"username": "admin", "password": PASSWORD})
    assert f'href="/admin/duties/{wrong}"' not in client.get("/admin/roster").text  # this month's duties
    roster = client.get("/admin/roster?period=month&at=2026-10-01").text  # October's: the page goes back
    csrf = roster.split('name="csrf" value="')[1].split('"')[0]
    assert f'href="/admin/duties/{wrong}"' in roster and 'href="/admin/officers/vb-07"' in roster
    form = client.get(f"/admin/duties/{wrong}").text
    assert 'value="2026-10-05 07:30"' in form and '<option value="vb-07" selected>' in form
    # overlapping the afternoon duty: refused, the form shown again with the reason
    clash = client.post(
        f"/admin/duties/{wrong}",
        data={"csrf": csrf, "officer": "vb-07", "start": "2026-10-05 12:00", "end": "2026-10-05 14:00"},
    )
    assert clash.status_code == 422 and "vb-08" in clash.text and 'id="duty-form"' in clash.text
    assert (
        client.post(
            f"/admin/duties/{wrong}", data={"csrf": csrf, "officer": "vb-07", "start": "x", "end": "y"}
        ).status_code
        == 422
    )
    done = client.post(
        f"/admin/duties/{wrong}",
        data={"csrf": csrf, "officer": "vb-08", "start": "2026-10-05 07:30", "end": "2026-10-05 12:30"},
        follow_redirects=False,
    )
    assert done.status_code == 303 and done.headers["location"].startswith("/admin/roster?done=edit_duty&name=")
    said = client.get(done.headers["location"]).text
    assert "✓ Đã sửa ca trực: Trần Thị Mai — Quầy 1 — Đất đai (Văn Bàn), 05/10/2026 07:30 – 05/10/2026 12:30" in said
    duty = book.duty(wrong)
    assert (duty.officer, duty.end_at) == ("vb-08", parse_local("2026-10-05 12:30", tz))
    from datetime import date

    assert book.by_officer(["vb-q1"], date(2026, 10, 5), date(2026, 10, 5))["vb-08"][1] == 1  # the 12:15 press
    entry = store.audit_for("counter:vb-q1", ["edit_duty"])
    assert len(entry) == 1 and "vb-07 2026-10-05 07:30 – 2026-10-05 11:30 → vb-08" in str(entry[0])
    # the officer: renamed, and the page says so
    assert 'value="Nguyễn Văn An"' in client.get("/admin/officers/vb-07").text
    renamed = client.post(
        "/admin/officers", data={"csrf": csrf, "officer_id": "vb-07", "name": "Nguyễn Văn Ân", "unit": "10.085"}
    )
    assert "Đã lưu thông tin cán bộ Nguyễn Văn Ân" in renamed.text
    assert book.officer("vb-07").name == "Nguyễn Văn Ân"
    assert len(store.audit_for("officer:vb-07", ["edit_officer"])) == 1
    added = client.post(
        "/admin/officers", data={"csrf": csrf, "officer_id": "vb-09", "name": "Lò Văn Sáng", "unit": "10.085"}
    )
    assert "Đã thêm cán bộ Lò Văn Sáng" in added.text
    # an admin of Sa Pa: neither the duty nor the officer exists for them
    Accounts(store).add_user("sapa-admin", PASSWORD, role="admin", unit="10.082", registry=registry)
    other = client_for("sapa-admin")
    other.auth = None
    other.post("/login", data={"username": "sapa-admin", "password": PASSWORD})
    other_csrf = other.get("/admin/roster").text.split('name="csrf" value="')[1].split('"')[0]
    assert other.get(f"/admin/duties/{wrong}").status_code == 404
    assert other.get("/admin/officers/vb-07").status_code == 404
    assert (
        other.post(
            f"/admin/duties/{wrong}",
            data={"csrf": other_csrf, "officer": "vb-07", "start": "2026-10-05 07:30", "end": "2026-10-05 08:30"},
        ).status_code
        == 404
    )
    assert book.duty(wrong).officer == "vb-08"


def test_from_the_review_roster_edges_are_refused_in_words(book, settings):
    """Names are cleaned (a right-to-left override turned the form's text around, a 1,000-character
    name broke the PDF form), duties stay in 2000-2099 and within a month (year 1 was a 500, a
    72-year duty blocked a counter), and an officer is at one counter at a time."""
    from collector.officers import NAME_MAX, parse_local

    officers, registry = book
    tz = settings.tz
    officers.add_officer("x-1", "  Nguyễn\u00a0Văn   An ", "10.085", registry)
    assert officers.officer("x-1").name == "Nguyễn Văn An"
    officers.add_officer("x-2", "Nguye\u0302\u0303n Văn An", "10.085", registry)  # combining accents
    assert officers.officer("x-2").name == "Nguyễn Văn An"  # composed, so it reads (and compares) the same
    for bad, words in (
        ("An\u202e gnáV", "control or formatting"),
        ("An\x00", "control or formatting"),
        ("A" * (NAME_MAX + 1), "longer than"),
        (" \t ", "needs a name"),
    ):
        with pytest.raises(RosterError, match=words):
            officers.add_officer("x-3", bad, "10.085", registry)
    for bad, words in (("0001-01-01 00:00", "a year from 2000"), ("31/12/9999 22:00", "a year from 2000")):
        with pytest.raises(RosterError, match=words):
            parse_local(bad, tz)
    assert parse_local("03/03/2027 07:30:00", tz) == parse_local("2027-03-03 07:30", tz)  # as Excel writes it
    with pytest.raises(RosterError, match="at most 31 days"):
        officers.add_duty(
            "x-1", "vb-q1", parse_local("2027-05-01 07:00", tz), parse_local("2099-05-01 07:00", tz), registry
        )
    officers.add_duty(
        "x-1", "vb-q1", parse_local("2027-03-04 07:30", tz), parse_local("2027-03-04 11:30", tz), registry
    )
    with pytest.raises(RosterError, match=r"Nguyễn Văn An \(x-1\) is already on duty at counter vb-q1"):
        officers.add_duty(
            "x-1", "vb-q2", parse_local("2027-03-04 09:00", tz), parse_local("2027-03-04 10:00", tz), registry
        )
    with pytest.raises(RosterError, match="line 2: .* is already on duty"):
        officers.import_csv(
            "x-2,vb-q2,2027-03-05 07:30,2027-03-05 11:30\nx-2,vb-q1,2027-03-05 08:00,2027-03-05 09:00\n", registry
        )


def test_a_district_admin_imports_its_roster_and_only_its_own(client_for, store, settings):
    """From the review: every admin below the province got a 500 (their units were built into a
    registry without their parents)."""
    from collector.accounts import Accounts
    from collector.officers import Officers

    registry = store.load_registry()
    book = Officers(store, settings.tz)
    book.add_officer("vb-07", "Nguyễn Văn An", "10.085", registry)
    book.add_officer("sp-01", "Lò Thị Hoa", "10.082", registry)
    Accounts(store).add_user("qtvb", PASSWORD, role="admin", unit="10.085", registry=registry)
    client = client_for("qtvb")
    client.auth = None
    client.post("/login", data={"username": "qtvb", "password": PASSWORD})
    csrf = client.get("/admin/roster").text.split('name="csrf" value="')[1].split('"')[0]

    def upload(text: str):
        return client.post("/admin/roster.csv", data={"csrf": csrf}, files={"file": ("r.csv", text.encode())})

    done = upload("officer,counter,start,end\nvb-07,vb-q1,2026-11-24 07:30,2026-11-24 11:30\n")
    assert done.status_code == 200 and "Đã nhập 1 ca trực" in done.text
    other = upload("sp-01,vb-q1,2026-11-25 07:30,2026-11-25 11:30\n")  # Sa Pa's officer
    assert other.status_code == 422 and "sp-01" in other.text
    elsewhere = upload("vb-07,sp-q1,2026-11-25 07:30,2026-11-25 11:30\n")  # Sa Pa's counter
    assert elsewhere.status_code == 422 and "sp-q1" in elsewhere.text
    assert [d.counter for d in book.duties()] == ["vb-q1"]


def test_a_rate_is_rounded_once(store, settings):
    """From the review: 15 of 19 is 78,9 %; the rate was rounded to 0.7895 first and shown as 79,0 %."""
    from collector import formats
    from collector.reports import figures_of

    shown = figures_of({4: 10, 3: 5, 2: 2, 1: 2})
    assert formats.percent(shown.satisfaction_rate) == "78,9 %"
    assert shown.to_dict()["satisfaction_rate"] == 0.7895  # the API keeps its four decimals


def test_a_district_admin_saving_a_duty_of_a_province_officer_keeps_its_officer(client_for, store, settings):
    """From the second review: a duty put on by the province with one of its officers showed no
    officer chosen on a district admin's form, and saving it unchanged gave it to the first officer
    of the list. Ending a duty going on said its old end."""
    from datetime import UTC, datetime, timedelta

    from collector.accounts import Accounts
    from collector.officers import Officers, parse_local
    from kiosk import wire

    tz = settings.tz
    registry = store.load_registry()
    book = Officers(store, tz)
    book.add_officer("tinh-01", "Hà Văn Tỉnh", "10", registry)  # the province's
    book.add_officer("vb-01", "Lê Thị Huyện", "10.085", registry)
    duty = book.add_duty(
        "tinh-01", "vb-q2", parse_local("2026-11-10 07:30", tz), parse_local("2026-11-10 11:30", tz), registry
    )
    Accounts(store).add_user("qtvb", PASSWORD, role="admin", unit="10.085", registry=registry)
    client = client_for("qtvb")
    client.auth = None
    client.post("/login", data={"username": "qtvb", "password": PASSWORD})
    roster = client.get("/admin/roster?period=month&at=2026-11-01").text
    csrf = roster.split('name="csrf" value="')[1].split('"')[0]
    assert "Hà Văn Tỉnh (Tỉnh Lào Cai)" in roster  # a name with its unit, not the id
    form = client.get(f"/admin/duties/{duty}").text
    assert '<option value="tinh-01" selected>' in form
    saved = client.post(
        f"/admin/duties/{duty}",
        data={"csrf": csrf, "officer": "tinh-01", "start": "2026-11-10 07:30", "end": "2026-11-10 12:00"},
    )
    assert saved.status_code == 200 and "Hà Văn Tỉnh" in saved.text and book.duty(duty).officer == "tinh-01"
    # another officer of the province's: not theirs to give
    assert (
        client.post(
            f"/admin/duties/{duty}",
            data={"csrf": csrf, "officer": "tinh-02", "start": "2026-11-10 07:30", "end": "2026-11-10 12:00"},
        ).status_code
        == 404
    )
    now = datetime.now(UTC)
    going = book.add_duty(
        "vb-01",
        "vb-q1",
        wire.format_time(now - timedelta(hours=1)),
        wire.format_time(now + timedelta(hours=3)),
        registry,
    )
    ended = client.post(f"/admin/duties/{going}/end", data={"csrf": csrf}).text
    end = wire.parse_time(book.duty(going).end_at).astimezone(tz).strftime("%d/%m/%Y %H:%M")
    assert f"– {end}" in ended  # the end it has now, not the one it had
    again = client.post(f"/admin/duties/{going}/end", data={"csrf": csrf}).text
    assert "đã kết thúc từ trước" in again
    assert len(store.audit_for("counter:vb-q1", ["end_duty"])) == 1  # nothing changed the second time
