"""Exports opened and read back: the CSV, the XLSX and the PDF say what the page says."""

import io
from datetime import date

import pytest
from openpyxl import load_workbook
from pypdf import PdfReader

from collector import exports
from collector.officers import Officers, parse_local
from kiosk import wire
from tests.collector.conftest import PASSWORD, read_csv
from tests.ratings import make_rating, store_ratings


@pytest.fixture
def store(any_store):
    """Every test here runs on SQLite and on a real PostgreSQL."""
    return any_store


MONTH = "period=month&at=2026-10-15"


@pytest.fixture
def october(store, settings, users):
    """Văn Bàn in October 2026: 10 ratings at Khánh Yên Hạ (8 with officer An on duty), 4 at vb-q1."""
    registry = store.load_registry()
    officers = Officers(store, settings.tz)
    officers.add_officer("an", "Nguyễn Văn An", "10.085.02953", registry)
    officers.add_duty(
        "an",
        "kyh-q1",
        parse_local("2026-10-05 07:00", settings.tz),
        parse_local("2026-10-05 17:00", settings.tz),
        registry,
    )
    rows = [("kyh-q1", s, "2026-10-05 09:00") for s in (4, 4, 4, 3, 3, 2, 1, 1)]
    rows += [("kyh-q1", 4, "2026-10-06 09:00"), ("kyh-q1", 2, "2026-10-06 10:00")]
    rows += [("vb-q1", s, "2026-10-20 15:00") for s in (4, 3, 3, 1)]
    ratings = [
        make_rating(seq=i + 1, counter=c, score=s, pressed_at=parse_local(t, settings.tz))
        for i, (c, s, t) in enumerate(rows)
    ]
    store_ratings(store, ratings, tz=settings.tz, received_at=wire.format_epoch(0))


@pytest.fixture
def admin(client_for):
    client = client_for("admin")
    client.auth = None
    client.post("/login", data={"username": "admin", "password": PASSWORD})
    return client


def test_unit_table_csv_and_xlsx_match_the_api(admin, october):
    api = admin.get("/api/v1/units/10.085/summary?from=2026-10-01&to=2026-10-31").json()
    by_name = {c["name"]: c for c in api["children"]}
    rows = read_csv(admin.get(f"/units/10.085/table.csv?{MONTH}").content)
    assert rows[0][:4] == ["Tên", "Loại", "Tổng lượt", "Tỷ lệ hài lòng (%)"]
    khanh = next(r for r in rows if r[0] == "Xã Khánh Yên Hạ")
    assert int(khanh[2]) == by_name["Xã Khánh Yên Hạ"]["total"] == 10
    # Excel on a Vietnamese Windows: decimal comma, one decimal as on the page
    assert khanh[3] == f"{by_name['Xã Khánh Yên Hạ']['satisfaction_rate'] * 100:.1f}".replace(".", ",") == "60,0"
    assert khanh[4] == f"{by_name['Xã Khánh Yên Hạ']['index']:.1f}".replace(".", ",")
    # for scripts and BI tools: commas between cells, decimal points, no byte-order mark
    data = read_csv(admin.get(f"/units/10.085/table.csv?{MONTH}&csv=data").content, "data")
    assert data[0] == rows[0]
    khanh = next(r for r in data if r[0] == "Xã Khánh Yên Hạ")
    assert khanh[3] == "60.0" and khanh[4] == f"{by_name['Xã Khánh Yên Hạ']['index']:.1f}"
    assert admin.get(f"/units/10.085/table.csv?{MONTH}&csv=semicolon").status_code == 422
    sheet = load_workbook(io.BytesIO(admin.get(f"/units/10.085/table.xlsx?{MONTH}").content)).active
    values = list(sheet.iter_rows(values_only=True))
    assert values[0] == ("Huyện Văn Bàn", *[None] * 10)
    row = next(r for r in values if r[0] == "Quầy 1 — Đất đai (Văn Bàn)")
    assert row[2] == 4 and row[3] == pytest.approx(0.75)
    row_no = next(i for i, r in enumerate(values, start=1) if r[0] == "Quầy 1 — Đất đai (Văn Bàn)")
    assert sheet.cell(row=row_no, column=4).number_format == "0.0%"  # Excel shows 75,0 % in Vietnamese
    assert sheet.cell(row=row_no, column=5).number_format == "0.0"


def test_three_level_form_maps_scores_and_attributes_officers(admin, october):
    sheet = load_workbook(io.BytesIO(admin.get(f"/units/10.085/three-level.xlsx?{MONTH}").content)).active
    values = list(sheet.iter_rows(values_only=True))
    assert values[0][0] == exports.FORM_TITLE
    assert values[1][0] == "Đơn vị: Huyện Văn Bàn"
    assert values[2][0] == "Kỳ báo cáo: Tháng 10/2026 (từ 01/10/2026 đến 31/10/2026)"
    body = {(r[1], r[2]): r for r in values if r and isinstance(r[0], int)}
    an = body[("Xã Khánh Yên Hạ", "Nguyễn Văn An")]
    assert an[3:10] == (8, 3, pytest.approx(3 / 8), 3, pytest.approx(3 / 8), 2, pytest.approx(2 / 8))  # 2 → Hài lòng
    nobody = body[("Xã Khánh Yên Hạ", "(không có cán bộ trực)")]
    assert nobody[3] == 2 and (nobody[4], nobody[6], nobody[8]) == (1, 1, 0)
    district = body[("Huyện Văn Bàn", "(không có cán bộ trực)")]
    assert (district[4], district[6], district[8]) == (1, 2, 1)
    total = next(r for r in values if r and r[1] == "Tổng cộng")
    assert (total[3], total[4], total[6], total[8]) == (14, 5, 6, 3)
    assert any(r and "THỦ TRƯỞNG ĐƠN VỊ" in [str(v) for v in r] for r in values)


def test_neutral_can_count_as_dissatisfied():
    assert exports.three_levels({4: 1, 3: 2, 2: 3, 1: 4}, "hai_long") == (1, 5, 4)
    assert exports.three_levels({4: 1, 3: 2, 2: 3, 1: 4}, "khong_hai_long") == (1, 2, 7)


def pdf_text(data):
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


def test_three_level_pdf_and_unit_report_pdf_carry_the_numbers(admin, october):
    form = pdf_text(admin.get(f"/units/10.085/three-level.pdf?{MONTH}").content)
    assert "BÁO CÁO KẾT QUẢ ĐÁNH GIÁ MỨC ĐỘ HÀI LÒNG" in form
    assert "Nguyễn Văn An" in form and "Tổng cộng" in form and "NGƯỜI LẬP BIỂU" in form
    assert "37,5 %" in form  # An: 3 of 8 Rất hài lòng
    report = pdf_text(admin.get(f"/units/10.085/report.pdf?{MONTH}").content)
    assert "Huyện Văn Bàn" in report and "Tháng 10/2026" in report
    assert "64,3 %" in report  # 9 of 14 satisfied
    counter = pdf_text(admin.get(f"/counters/kyh-q1/report.pdf?{MONTH}").content)
    assert "Quầy một cửa xã Khánh Yên Hạ" in counter and "60,0 %" in counter


def test_counter_day_series_export(admin, october):
    rows = read_csv(admin.get(f"/counters/kyh-q1/days.csv?{MONTH}").content)
    by_day = {r[0]: r for r in rows[1:]}
    assert len(by_day) == 31
    assert by_day["05/10/2026"][1] == "8" and by_day["06/10/2026"][1] == "2" and by_day["07/10/2026"][1] == "0"


def test_exports_period_labels(admin, october):
    assert (
        exports.form_heading("X", "Quý 4/2026", date(2026, 10, 1), date(2026, 12, 31), date(2027, 1, 2))[3]
        == "Ngày lập: 02/01/2027"
    )


# --- no formulas from data ------------------------------------------------------------------


def test_a_kiosk_fw_that_looks_like_a_formula_stays_text_in_xlsx_and_csv(admin, store):
    lure = '=HYPERLINK("http://e.vn","x")'
    with store.transaction():
        store.record_status(
            "k-vb-q1", {"v": 1, "kiosk": "k-vb-q1", "state": "online", "fw": lure}, "2026-11-22T00:00:00.000Z"
        )
    sheet = load_workbook(io.BytesIO(admin.get("/kiosks.xlsx").content)).active
    cells = [c for row in sheet.iter_rows() for c in row if c.value == lure]
    assert cells and all(c.data_type == "s" for c in cells)
    rows = read_csv(admin.get("/kiosks.csv").content)
    cells = [cell for row in rows for cell in row if "HYPERLINK" in cell]
    assert cells == ["'" + lure]


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(derandomize=True, max_examples=300, deadline=None)
@given(value=st.one_of(st.text(max_size=30), st.sampled_from(["=1+1", "+1", "-1", "@SUM(A1)", "\t=1", "\x1f=1"])))
def test_no_text_cell_is_ever_a_formula(value):
    from openpyxl import Workbook

    book = Workbook()
    cell = exports.put_cell(book.active, 1, 1, value)
    assert cell.data_type == "s" and len(cell.value) == len(value)
    out = exports.csv_text(value)
    assert not exports.is_formula_like(out)
    assert out.endswith(value)


def test_raw_ratings_export_has_every_press_with_its_officer_scoped_and_audited(store, settings, client_for):
    import io

    from openpyxl import load_workbook

    from collector.accounts import Accounts
    from collector.officers import Officers, parse_local
    from tests.ratings import make_rating, store_ratings

    registry = store.load_registry()
    officers = Officers(store, settings.tz)
    officers.add_officer("an", "Nguyễn Văn An", "10.085", registry)
    tz = settings.tz
    officers.add_duty("an", "vb-q1", parse_local("2026-10-05 07:00", tz), parse_local("2026-10-05 12:00", tz), registry)
    ratings = [
        make_rating(
            seq=i + 1, counter="vb-q1", score=1 + i % 4, pressed_at=parse_local(f"2026-10-05 {8 + i % 9:02d}:15", tz)
        )
        for i in range(12)
    ] + [make_rating(seq=20, counter="vb-q1", flag="burst", pressed_at=parse_local("2026-10-06 09:00", tz))]
    store_ratings(store, ratings, tz=tz, kiosk="k-vb-q1")
    store_ratings(store, [make_rating(seq=1, counter="sp-q1", install="b1b2c3d4")], tz=tz, kiosk="k-sp-q1")
    vanban = client_for("vanban")
    answer = vanban.get("/units/10.085/ratings.csv?period=month&at=2026-10-01")
    assert answer.status_code == 200, answer.text
    rows = read_csv(answer.content)
    assert rows[0][:4] == ["Thời điểm (giờ địa phương)", "Mã lượt", "Mã quầy", "Quầy"]
    data = read_csv(vanban.get("/units/10.085/ratings.csv?period=month&at=2026-10-01&csv=data").content, "data")
    # the same rows; the time as ISO 8601 with its offset, the flag and clock as codes for a tool
    assert [r[1:8] for r in data] == [r[1:8] for r in rows]
    assert {r[8] for r in data[1:]} == {"", "burst"} and {r[9] for r in data[1:]} == {"synced"}
    assert {r[8] for r in rows[1:]} == {"", "Bấm dồn dập"} and "synced" not in {r[9] for r in rows[1:]}
    assert data[1][0] == "2026-10-05T08:15:00+07:00" and rows[1][0] == "05/10/2026 08:15:00"
    body = rows[1:]
    assert len(body) == 13 and {r[1] for r in body} == {r.id for r in ratings}  # flagged ones too
    on_duty = [r for r in body if r[0].startswith("05/10/2026 08:15")][0]
    assert on_duty[4:6] == ["an", "Nguyễn Văn An"]  # the officer on duty at that moment, id and name
    assert on_duty[2:4] == ["vb-q1", "Quầy 1 — Đất đai (Văn Bàn)"]
    assert [r for r in body if r[8] == "Bấm dồn dập"][0][4:6] == ["", "(không có cán bộ trực)"]  # nobody, next day
    assert [r[0] for r in body] == sorted((r[0] for r in body), key=lambda t: (t[6:10], t[3:5], t[:2], t[11:]))
    book = load_workbook(io.BytesIO(vanban.get("/counters/vb-q1/ratings.xlsx?period=month&at=2026-10-01").content))
    sheet = book.active
    assert sheet.max_row == 2 + 1 + 13  # heading, blank, titles, rows
    assert sheet.cell(4, 1).is_date  # real dates, not text
    # scoped: Sa Pa's inspector cannot export Văn Bàn's presses; audited
    assert client_for("sapa-inspector").get("/units/10.085/ratings.csv").status_code == 404
    actions = [row[2] for row in Accounts(store).audit_log()]
    assert "export_ratings_csv" in actions and "export_ratings_xlsx" in actions


def test_a_period_in_the_year_1_or_9999_is_a_clear_422_on_pages_exports_and_the_api(client_for):
    admin = client_for("admin")
    for path in (
        "/units/10/ratings.csv?from=0001-01-01&to=0001-01-02",
        "/units/10/table.xlsx?period=week&at=0001-01-01",
        "/api/v1/units/10/summary?to=0001-01-05",
        "/api/v1/units/10/summary?from=9999-12-30&to=9999-12-31",
    ):
        answer = admin.get(path)
        assert answer.status_code == 422 and "1970" in answer.text, (path, answer.status_code)


# --- documents that can be signed -------------------------------------------------------------


def test_the_three_level_form_says_how_neutral_was_counted_and_agrees_with_the_page(admin, october):
    """Văn Bàn in October: 14 ratings, 5 + 4 satisfied on the dashboard (64,3 %), 2 neutral counted
    as «Hài lòng» on the form (5 + 6 of 14 = 78,6 %). The form, its PDF and the unit page say both."""
    mapping = "mức «Bình thường» của bảng 4 nút (2 lượt) được tính là «Hài lòng»"
    rates = "= 78,6 %. Trên trang theo dõi (4 mức, «Bình thường» không tính là hài lòng): 64,3 %."
    book = load_workbook(io.BytesIO(admin.get(f"/units/10.085/three-level.xlsx?{MONTH}").content))
    sheet = book.active
    assert sheet.title == "Mẫu 3 mức"
    cells = [str(v) for row in sheet.iter_rows(values_only=True) for v in row if v is not None]
    assert any(mapping in c for c in cells) and any(rates in c for c in cells)
    total = next(r for r in sheet.iter_rows(values_only=True) if r[1] == "Tổng cộng")
    assert (total[3], total[4], total[6], total[8]) == (14, 5, 6, 3)
    form = pdf_text(admin.get(f"/units/10.085/three-level.pdf?{MONTH}").content)
    flat = " ".join(form.split())
    assert mapping in flat and rates in flat
    page = admin.get(f"/units/10.085?{MONTH}").text
    assert mapping in page and rates in page
    assert "Tỷ lệ hài lòng = (Rất hài lòng + Hài lòng) / tổng số lượt đánh giá" in page  # the definitions


def test_the_form_maps_neutral_to_dissatisfied_in_words_too():
    from collector import documents
    from collector.reports import figures_of

    summary = figures_of({4: 5, 3: 4, 2: 2, 1: 3})
    notes = documents.form_notes("khong_hai_long", summary, {4: 5, 3: 4, 2: 2, 1: 3}, "vi")
    assert "(2 lượt) được tính là «Không hài lòng»" in notes[0]
    assert "neutral_as" not in notes[0]  # words, not the config key
    assert "= 64,3 %." in notes[1]  # (5 + 4) / 14 on the form as on the dashboard
    assert (
        "«neutral» (2 ratings) is counted as «dissatisfied»"
        in documents.form_notes("khong_hai_long", summary, {4: 5, 3: 4, 2: 2, 1: 3}, "en")[0]
    )


def test_sheets_print_on_a4_as_wide_as_the_page_with_titles_repeated(admin, october):
    for url in (f"/units/10.085/three-level.xlsx?{MONTH}", f"/units/10.085/table.xlsx?{MONTH}"):
        sheet = load_workbook(io.BytesIO(admin.get(url).content)).active
        assert int(sheet.page_setup.paperSize) == 9  # A4
        assert sheet.page_setup.orientation == "landscape"
        assert sheet.sheet_properties.pageSetUpPr.fitToPage and int(sheet.page_setup.fitToWidth) == 1
        assert int(sheet.page_setup.fitToHeight) == 0
        titles = sheet.print_title_rows
        row = int(str(titles).split(":")[0].lstrip("$"))
        assert sheet.cell(row=row, column=1).value in ("STT", "Tên"), titles  # the column titles


def test_days_are_real_dates_in_xlsx_and_dd_mm_yyyy_in_csv(admin, october):
    sheet = load_workbook(io.BytesIO(admin.get(f"/counters/kyh-q1/days.xlsx?{MONTH}").content)).active
    cells = [row[0] for row in sheet.iter_rows() if row[0].is_date]
    assert len(cells) == 31
    assert cells[4].value.date() == date(2026, 10, 5) and cells[4].number_format == "dd/mm/yyyy"
    year = load_workbook(io.BytesIO(admin.get("/counters/kyh-q1/days.xlsx?period=year&at=2026-10-15").content)).active
    months = [row[0] for row in year.iter_rows() if row[0].is_date]
    assert len(months) == 12 and months[9].value.date() == date(2026, 10, 1) and months[9].number_format == "mm/yyyy"
    rows = read_csv(admin.get("/counters/kyh-q1/days.csv?period=year&at=2026-10-15").content)  # fmt: skip
    assert rows[10][0] == "10/2026" and rows[10][1] == "10"


LONG = "Ủy ban nhân dân xã Khánh Yên Thượng huyện Văn Bàn tỉnh Lào Cai bộ phận tiếp nhận và trả kết quả"


def test_long_names_wrap_in_the_pdf_and_titles_repeat_on_every_page():
    rows = [exports.ThreeLevelRow(LONG if i % 5 == 0 else f"Xã {i}", "Nguyễn Văn An", (1, 2, 3)) for i in range(60)]
    pdf = PdfReader(io.BytesIO(exports.three_level_pdf(exports.three_level_table(rows, ["TIÊU ĐỀ"], ["ghi chú"]))))
    assert len(pdf.pages) >= 3
    pages = [page.extract_text() for page in pdf.pages]
    assert all("Tổng số" in text for text in pages if "Nguyễn Văn An" in text)  # titles atop every page of rows
    assert sum("Nguyễn Văn An" in text for text in pages) >= 3
    text = " ".join(pdf_text(exports.three_level_pdf(exports.three_level_table(rows, ["T"]))).split())
    assert "…" not in text
    assert all(word in text for word in LONG.split())


def test_sheet_names_keep_vietnamese_and_drop_what_excel_refuses():
    assert exports.sheet_title("Mẫu 3 mức") == "Mẫu 3 mức"
    assert exports.sheet_title("Quầy [1]: Đất/đai?*") == "Quầy  1   Đất đai"
    assert len(exports.sheet_title("x" * 40)) == 31
    assert exports.sheet_title("[]") == "Sheet1"


def test_a_long_name_in_the_heading_wraps_in_every_pdf():
    """From the review: "Đơn vị: <190 characters>" ran off the page in the form and the reports."""
    heading = ["TIÊU ĐỀ", f"Đơn vị: {LONG} {LONG}"]
    rows = [exports.ThreeLevelRow("Xã 1", "An", (1, 2, 3))]
    form = " ".join(pdf_text(exports.three_level_pdf(exports.three_level_table(rows, heading))).split())
    table = exports.Table("Đơn vị", [exports.Column("Tên")], [["x"]])
    report = exports.report_pdf(heading=heading, figures=[("Dữ liệu", LONG)], chart_title="t", chart=[], table=table)
    for text in (form, " ".join(pdf_text(report).split())):
        assert f"{LONG} {LONG}" in text


def test_a_long_name_wraps_in_its_xlsx_cell_and_short_columns_stay_plain():
    table = exports.Table("Đơn vị", [exports.Column("Tên"), exports.Column("Mã")], [[LONG, "vb-q1"], ["Xã 1", "x"]])
    sheet = load_workbook(io.BytesIO(exports.to_xlsx(table))).active
    assert sheet.column_dimensions["A"].width == 45 and sheet["A2"].alignment.wrap_text
    assert not sheet["B2"].alignment.wrap_text  # nothing to wrap: no style on every cell of a long export


def test_two_officers_of_one_name_are_told_apart_on_the_form(admin, store, settings, october):
    """From the review: two officers both «Nguyễn Văn An» at one unit made two rows no one could
    tell apart on a signed form; each now carries its id (only where names repeat)."""
    registry = store.load_registry()
    book = Officers(store, settings.tz)
    book.add_officer("an-2", "nguyễn  văn an", "10.085.02953", registry)  # the same name, typed otherwise
    book.add_duty(
        "an-2", "kyh-q1", parse_local("2026-10-06 07:00", settings.tz), parse_local("2026-10-06 17:00", settings.tz),
        registry,
    )  # fmt: skip
    values = list(load_workbook(io.BytesIO(admin.get(f"/units/10.085/three-level.xlsx?{MONTH}").content)).active
                  .iter_rows(values_only=True))  # fmt: skip
    officers = {r[2] for r in values if r and isinstance(r[0], int) and r[1] == "Xã Khánh Yên Hạ"}
    assert officers == {"Nguyễn Văn An (an)", "nguyễn văn an (an-2)"}
    assert "Nguyễn Văn An (Huyện Văn Bàn)" not in {r[2] for r in values if r}  # others keep their plain names
