"""Files inspectors hand in: CSV and XLSX of any table, the official three-level form (XLSX, PDF)
and a PDF report per unit or counter. Built from the same tables the pages show."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from fpdf import FPDF, FontFace
from fpdf.enums import WrapMode
from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Alignment, Font
from openpyxl.worksheet.worksheet import Worksheet

from collector import formats
from collector.errors import CollectorError

FONT_DIRS = (
    Path("/usr/share/fonts/truetype/dejavu"),
    Path("/usr/share/fonts/dejavu"),
    Path("/usr/local/share/fonts/dejavu"),
)


class ExportError(CollectorError, RuntimeError):
    """An export could not be produced (e.g. the PDF font is not installed)."""


@dataclass(frozen=True)
class Column:
    title: str
    kind: str = "text"  # text | int | rate (0..1) | decimal (1 digit) | datetime (naive local) | date | month


@dataclass
class Table:
    title: str
    columns: list[Column]
    rows: list[list[Any]]
    heading: list[str] = field(default_factory=list)  # lines above the table: unit, period, date
    notes: list[str] = field(default_factory=list)  # lines below it: how the figures were counted


# --- CSV and XLSX ------------------------------------------------------------------------


# A spreadsheet reads a cell that starts with one of these as a formula: data (a unit's name, a
# kiosk's fw) must never become one (=HYPERLINK(…), =cmd|…).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def is_formula_like(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(FORMULA_STARTS)


def csv_text(value: Any) -> Any:
    """A CSV cell that no spreadsheet runs: formula-like text gets a leading apostrophe."""
    return "'" + value if is_formula_like(value) else value


def put_cell(sheet: Any, row: int, column: int, value: Any) -> Any:
    """An XLSX cell; text is always stored as text, so none of it becomes a formula, and control
    characters XLSX cannot hold (a kiosk may send them) are shown as U+FFFD instead of failing."""
    if isinstance(value, str):
        value = ILLEGAL_CHARACTERS_RE.sub("\ufffd", value)
    cell = sheet.cell(row=row, column=column, value=value)
    if isinstance(value, str):
        cell.data_type = "s"
    return cell


@dataclass(frozen=True)
class CsvDialect:
    """How a CSV writes its cells. ``excel``: what Excel opens right on a Vietnamese Windows
    (list separator «;», decimal comma, dd/mm/yyyy, a byte-order mark so the letters are read as
    UTF-8). ``data``: for scripts and BI tools (RFC 4180 commas, decimal points, ISO 8601 times
    with their UTC offset where known, no byte-order mark)."""

    name: str
    delimiter: str
    decimal: str
    day_format: str
    month_format: str
    time_format: str
    bom: str

    def number(self, value: float, digits: int = 1) -> str:
        return f"{value:.{digits}f}".replace(".", self.decimal)

    def moment(self, value: date, kind: str) -> str:
        if kind == "month":
            return value.strftime(self.month_format)
        if kind == "datetime" and isinstance(value, datetime):
            if self.name == "data":
                return value.isoformat()  # with its offset when the time is aware of its zone
            return value.strftime(self.time_format)
        return value.strftime(self.day_format)


EXCEL_VI = CsvDialect("excel", ";", ",", "%d/%m/%Y", "%m/%Y", "%d/%m/%Y %H:%M:%S", "\ufeff")
DATA = CsvDialect("data", ",", ".", "%Y-%m-%d", "%Y-%m", "%Y-%m-%dT%H:%M:%S", "")
CSV_DIALECTS = {d.name: d for d in (EXCEL_VI, DATA)}


def to_csv(table: Table, dialect: CsvDialect = EXCEL_VI) -> bytes:
    """The table's rows under its column titles; rates as percentages (0–100, the title says %)."""
    titles = [c.title + (" (%)" if c.kind == "rate" else "") for c in table.columns]
    return csv_header(titles, dialect) + csv_rows(table.rows, table.columns, dialect)


def csv_header(titles: Sequence[str], dialect: CsvDialect = EXCEL_VI) -> bytes:
    """The first bytes of a CSV (streamed or not): the byte-order mark if the dialect has one,
    and the column titles."""
    return (dialect.bom + csv_lines([list(titles)], dialect)).encode("utf-8")


def csv_rows(rows: Sequence[Sequence[Any]], columns: Sequence[Column], dialect: CsvDialect = EXCEL_VI) -> bytes:
    return csv_lines(
        [[_plain(v, c, dialect) for v, c in zip(row, columns, strict=True)] for row in rows], dialect
    ).encode("utf-8")


def csv_lines(rows: Sequence[Sequence[Any]], dialect: CsvDialect = EXCEL_VI) -> str:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=dialect.delimiter)
    for row in rows:
        writer.writerow([csv_text("" if value is None else value) for value in row])
    return out.getvalue()


def _plain(value: Any, column: Column, dialect: CsvDialect = EXCEL_VI) -> Any:
    if value is None:
        return ""
    if column.kind == "rate":
        return dialect.number(value * 100)
    if column.kind == "decimal":
        return dialect.number(value)
    if column.kind in ("date", "month", "datetime") and isinstance(value, date):
        return dialect.moment(value, column.kind)
    return value


# Characters a sheet's name may not hold (Excel refuses the file otherwise); 31 characters at most.
SHEET_FORBIDDEN = str.maketrans({c: " " for c in "[]:*?/\\"})


def sheet_title(title: str) -> str:
    """A sheet name Excel accepts, in the table's own words (Vietnamese letters are allowed)."""
    return ILLEGAL_CHARACTERS_RE.sub("", title.translate(SHEET_FORBIDDEN)).strip().strip("'")[:31] or "Sheet1"


def to_xlsx(table: Table) -> bytes:
    book = Workbook()
    sheet = book.active
    sheet.title = sheet_title(table.title)
    row_no = 1
    for line in table.heading:
        put_cell(sheet, row_no, 1, line).font = Font(bold=row_no == 1)
        row_no += 1
    if table.heading:
        row_no += 1
    _write_table(sheet, row_no, table.columns, table.rows)
    _write_notes(sheet, row_no + len(table.rows) + 2, table.notes)
    _print_setup(sheet, row_no)
    return _save(book)


NUMBER_FORMATS = {
    "rate": "0.0%",  # a real percentage: Excel shows 96,9% in Vietnamese
    "decimal": "0.0",  # the index, with one decimal as on the pages
    "datetime": "dd/mm/yyyy hh:mm:ss",
    "date": "dd/mm/yyyy",
    "month": "mm/yyyy",
}


def _write_table(sheet: Any, first_row: int, columns: Sequence[Column], rows: Sequence[Sequence[Any]]) -> None:
    wrap = Alignment(wrap_text=True, vertical="top")
    wrapped = set()  # text columns with a value wider than the column: those cells wrap, not get cut
    for j, column in enumerate(columns, start=1):
        cell = put_cell(sheet, first_row, j, column.title)
        cell.font = Font(bold=True)
        cell.alignment = wrap
        width = max(12, min(40, len(column.title) + 4))
        if column.kind == "text":
            longest = max((len(str(r[j - 1])) for r in rows if r[j - 1] is not None), default=0)
            width = max(width, min(45, longest + 2))
            if longest + 2 > width:
                wrapped.add(j)
        sheet.column_dimensions[cell.column_letter].width = width
    for i, row in enumerate(rows, start=first_row + 1):
        for j, (value, column) in enumerate(zip(row, columns, strict=True), start=1):
            cell = put_cell(sheet, i, j, value)
            if value is not None and column.kind in NUMBER_FORMATS:
                cell.number_format = NUMBER_FORMATS[column.kind]
            if j in wrapped:
                cell.alignment = wrap


def _write_notes(sheet: Any, first_row: int, notes: Sequence[str]) -> int:
    """The notes below a table, one a row (in the first cell, not cut); the row after them."""
    for i, line in enumerate(notes):
        put_cell(sheet, first_row + i, 1, line).font = Font(italic=True, size=10)
    return first_row + len(notes)


def _print_setup(sheet: Worksheet, heading_row: int) -> None:
    """A4 landscape, as wide as the page, the column titles repeated at the top of every page."""
    sheet.page_setup.paperSize = sheet.PAPERSIZE_A4
    sheet.page_setup.orientation = sheet.ORIENTATION_LANDSCAPE
    sheet.page_setup.fitToWidth = 1
    sheet.page_setup.fitToHeight = 0  # as many pages down as it takes
    sheet.sheet_properties.pageSetUpPr.fitToPage = True
    sheet.print_title_rows = f"{heading_row}:{heading_row}"
    sheet.print_options.horizontalCentered = True
    sheet.page_margins.left = sheet.page_margins.right = 0.5
    sheet.oddFooter.center.text = "Trang &P / &N"


def _save(book: Workbook) -> bytes:
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


# --- the official three-level form ---------------------------------------------------------

THREE_LEVELS = ("Rất hài lòng", "Hài lòng", "Không hài lòng")
FORM_TITLE = "BÁO CÁO KẾT QUẢ ĐÁNH GIÁ MỨC ĐỘ HÀI LÒNG CỦA TỔ CHỨC, CÁ NHÂN"


@dataclass(frozen=True)
class ThreeLevelRow:
    unit: str
    officer: str
    counts: tuple[int, int, int]  # rất hài lòng, hài lòng, không hài lòng
    scores: tuple[int, int, int, int] = (0, 0, 0, 0)  # the four-level ratings behind them, score 1 … 4

    @property
    def total(self) -> int:
        return sum(self.counts)


def three_levels(by_score: dict[int, int], neutral_as: str) -> tuple[int, int, int]:
    """Score 4 → Rất hài lòng, 3 → Hài lòng, 1 → Không hài lòng, 2 → the deployment's choice."""
    neutral = by_score.get(2, 0)
    satisfied = by_score.get(3, 0) + (neutral if neutral_as == "hai_long" else 0)
    dissatisfied = by_score.get(1, 0) + (neutral if neutral_as == "khong_hai_long" else 0)
    return by_score.get(4, 0), satisfied, dissatisfied


def three_level_table(rows: Sequence[ThreeLevelRow], heading: list[str], notes: Sequence[str] = ()) -> Table:
    columns = [Column("STT", "int"), Column("Đơn vị"), Column("Cán bộ"), Column("Tổng số lượt", "int")]
    for level in THREE_LEVELS:
        columns += [Column(f"{level} (lượt)", "int"), Column(f"{level} (tỷ lệ)", "rate")]
    body = []
    for n, row in enumerate(rows, start=1):
        cells: list[Any] = [n, row.unit, row.officer, row.total]
        for count in row.counts:
            cells += [count, count / row.total if row.total else None]
        body.append(cells)
    totals = [sum(r.counts[i] for r in rows) for i in range(3)]
    grand = sum(totals)
    last: list[Any] = [None, "Tổng cộng", "", grand]
    for count in totals:
        last += [count, count / grand if grand else None]
    body.append(last)
    return Table("Mẫu 3 mức", columns, body, heading, list(notes))


def form_heading(unit_name: str, period_label: str, start: date, end: date, made: date) -> list[str]:
    return [
        FORM_TITLE,
        f"Đơn vị: {unit_name}",
        f"Kỳ báo cáo: {period_label}"
        + ("" if formats.day(start) in period_label else f" (từ {formats.day(start)} đến {formats.day(end)})"),
        f"Ngày lập: {formats.day(made)}" + ongoing_note(end, made),
    ]


def ongoing_note(end: date, made: date) -> str:
    """Said next to the date a document was made while its period is still running: its figures
    are those up to that day, not the whole period's."""
    return f" — kỳ báo cáo chưa kết thúc, số liệu tính đến ngày lập ({formats.day(made)})" if made <= end else ""


def three_level_xlsx(table: Table) -> bytes:
    book = Workbook()
    sheet = book.active
    sheet.title = sheet_title(table.title)
    for i, line in enumerate(table.heading, start=1):
        cell = put_cell(sheet, i, 1, line)
        cell.font = Font(bold=i == 1, size=13 if i == 1 else 11)
    first = len(table.heading) + 2
    _write_table(sheet, first, table.columns, table.rows)
    sign = _write_notes(sheet, first + len(table.rows) + 2, table.notes) + 1
    sheet.cell(row=sign, column=2, value="NGƯỜI LẬP BIỂU").font = Font(bold=True)
    sheet.cell(row=sign, column=8, value="THỦ TRƯỞNG ĐƠN VỊ").font = Font(bold=True)
    sheet.cell(row=sign + 1, column=2, value="(Ký, ghi rõ họ tên)")
    sheet.cell(row=sign + 1, column=8, value="(Ký tên, đóng dấu)")
    _print_setup(sheet, first)
    return _save(book)


# --- PDF --------------------------------------------------------------------------------


def _font_files() -> tuple[Path, Path]:
    for folder in FONT_DIRS:
        regular, bold = folder / "DejaVuSans.ttf", folder / "DejaVuSans-Bold.ttf"
        if regular.exists() and bold.exists():
            return regular, bold
    raise ExportError("PDF export needs the DejaVu fonts (Vietnamese letters): apt install fonts-dejavu-core")


class _Pdf(FPDF):
    def __init__(self, orientation: str = "L") -> None:
        super().__init__(orientation=orientation, unit="mm", format="A4")
        regular, bold = _font_files()
        self.add_font("DejaVu", "", str(regular))
        self.add_font("DejaVu", "B", str(bold))
        self.set_auto_page_break(auto=True, margin=15)
        self.add_page()
        self.set_font("DejaVu", size=10)

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font("DejaVu", size=8)
        self.cell(0, 8, f"Trang {self.page_no()}", align="C")

    def heading(self, lines: Sequence[str]) -> None:
        for i, line in enumerate(lines):
            self.set_font("DejaVu", "B" if i == 0 else "", 13 if i == 0 else 10)
            # multi_cell: a long unit or counter name wraps onto the next line instead of running off the page
            self.multi_cell(0, 8 if i == 0 else 6, line, new_x="LMARGIN", new_y="NEXT", align="C" if i == 0 else "L")
        self.ln(3)

    def grid(self, columns: Sequence[Column], rows: Sequence[Sequence[Any]], widths: Sequence[float]) -> None:
        """A table whose long names wrap (never cut) and whose column titles repeat at the top of
        every page it runs onto; a "Tổng cộng" row in bold."""
        bold = FontFace(emphasis="BOLD")
        align = tuple("LEFT" if c.kind == "text" else "RIGHT" for c in columns)
        self.set_font("DejaVu", "", 8)
        self.set_fill_color(255)
        with self.table(
            col_widths=tuple(widths),
            width=min(sum(widths), self.epw),
            align="LEFT",
            text_align=align,
            line_height=4.2,
            padding=(0.8, 1.0),
            headings_style=FontFace(emphasis="BOLD", fill_color=(235, 235, 235)),
            repeat_headings=1,
            wrapmode=WrapMode.WORD,
        ) as grid:
            titles = grid.row()
            for column in columns:
                titles.cell(column.title, align="CENTER")
            for row in rows:
                total = bool(row) and len(row) > 1 and row[1] in ("Tổng cộng", "Total")
                line = grid.row()
                for value, column in zip(row, columns, strict=True):
                    line.cell(_pdf_text(value, column), style=bold if total else None)

    def notes(self, lines: Sequence[str]) -> None:
        if not lines:
            return
        self.ln(3)
        self.set_font("DejaVu", "", 8.5)
        for line in lines:
            self.multi_cell(0, 4.5, line, new_x="LMARGIN", new_y="NEXT")

    def signatures(self, left: str, right: str) -> None:
        self.ln(8)
        half = (self.w - self.l_margin - self.r_margin) / 2
        self.set_font("DejaVu", "B", 10)
        self.cell(half, 6, left, align="C")
        self.cell(half, 6, right, align="C", new_x="LMARGIN", new_y="NEXT")
        self.set_font("DejaVu", "", 9)
        self.cell(half, 6, "(Ký, ghi rõ họ tên)", align="C")
        self.cell(half, 6, "(Ký tên, đóng dấu)", align="C", new_x="LMARGIN", new_y="NEXT")

    def bars(self, title: str, points: Sequence[tuple[str, float | None, int]]) -> None:
        """Satisfaction rate per period: bars on a 0–100 % axis with its gridlines, each bar with
        its value when there is room (every other one otherwise), readable in black and white."""
        if not points:
            return
        self.set_font("DejaVu", "B", 10)
        self.cell(0, 7, title + " (%)", new_x="LMARGIN", new_y="NEXT")
        axis_w = 9.0
        height, top = 40.0, self.get_y() + 3
        left = self.l_margin + axis_w
        width = self.w - self.r_margin - left
        step = width / len(points)
        self.set_font("DejaVu", "", 6)
        for tick in (0, 25, 50, 75, 100):
            y = top + height - height * tick / 100
            self.set_draw_color(215 if tick else 120)
            self.line(left, y, left + width, y)
            label = f"{tick} %"
            self.text(left - 1.5 - self.get_string_width(label), y + 1, label)
        self.set_draw_color(120)
        self.line(left, top, left, top + height)
        label_w = max(self.get_string_width("100") + 1, max(self.get_string_width(p[0]) for p in points) + 1)
        every = max(1, int(label_w // step) + 1)
        for i, (label, rate, _n) in enumerate(points):
            x = left + i * step + step * 0.15
            bar = step * 0.7
            if rate is not None:
                h = height * rate
                self.set_fill_color(70)
                self.rect(x, top + height - h, bar, h, style="F")
                if i % every == 0:
                    value = f"{rate * 100:.0f}"
                    self.text(x + (bar - self.get_string_width(value)) / 2, top + height - h - 1, value)
            if i % every == 0:
                self.text(x + (bar - self.get_string_width(label)) / 2, top + height + 4, label)
        self.set_draw_color(0)
        self.set_fill_color(255)
        self.set_y(top + height + 7)


def _pdf_text(value: Any, column: Column) -> str:
    if value is None:
        return "—" if column.kind != "text" else ""
    if column.kind == "rate":
        return formats.percent(value)
    if column.kind == "int":
        return formats.number(value)
    if column.kind == "decimal":
        return formats.decimal(value, digits=1)
    if column.kind in ("date", "month", "datetime") and isinstance(value, date):
        return EXCEL_VI.moment(value, column.kind)
    return str(value)


def three_level_pdf(table: Table) -> bytes:
    pdf = _Pdf("L")
    pdf.heading(table.heading)
    widths = [10, 48, 42, 18] + [24, 22] * 3
    pdf.grid(table.columns, table.rows, widths)
    pdf.notes(table.notes)
    pdf.signatures("NGƯỜI LẬP BIỂU", "THỦ TRƯỞNG ĐƠN VỊ")
    return bytes(pdf.output())


def report_pdf(
    *,
    heading: list[str],
    figures: list[tuple[str, str]],
    chart_title: str,
    chart: Sequence[tuple[str, float | None, int]],
    table: Table,
    notes: Sequence[str] = (),
) -> bytes:
    """A unit's or counter's report for a period: key figures, a chart, the detail table, and
    ``notes`` under it (how the figures are counted)."""
    pdf = _Pdf("L")
    pdf.heading(heading)
    pdf.set_font("DejaVu", "", 10)
    for label, value in figures:
        pdf.cell(70, 6, label)
        pdf.set_font("DejaVu", "B", 10)
        pdf.multi_cell(0, 6, value, new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("DejaVu", "", 10)
    pdf.ln(2)
    pdf.bars(chart_title, chart)
    usable = pdf.w - pdf.l_margin - pdf.r_margin
    first = min(80.0, usable * 0.3)
    rest = (usable - first) / max(1, len(table.columns) - 1)
    if pdf.get_y() > pdf.h - 50:  # a table's title is never left alone at the foot of a page
        pdf.add_page()
    pdf.set_font("DejaVu", "B", 10)
    pdf.cell(0, 7, table.title, new_x="LMARGIN", new_y="NEXT")
    pdf.grid(table.columns, table.rows, [first] + [rest] * (len(table.columns) - 1))
    pdf.notes([*table.notes, *notes])
    return bytes(pdf.output())
