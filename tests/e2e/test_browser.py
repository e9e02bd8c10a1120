"""An inspector in a real browser (Debian's Chromium through Playwright) on a real collector:
log in, drill from the province to the worst counter of a district, open the snapshot behind its
last "Không hài lòng", export the three-level XLSX and check it against the API, acknowledge an
alert. Screenshots are kept in test-artifacts/ for people to look at."""

import csv
import io
import os
import shutil
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from openpyxl import load_workbook
from pypdf import PdfReader

from kiosk.camera import GeneratedCamera
from tests.conftest import wait_for
from tests.e2e.conftest import CollectorProcess, collector_cli

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
PASSWORD = "correct horse battery"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

if CHROMIUM is None and os.environ.get("CI"):
    raise RuntimeError("Debian chromium is not installed: in CI the browser tests must run (scripts/setup installs it)")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian chromium is not installed (scripts/setup installs it)")


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--disable-quic",
            ],
        )
        yield chromium
        chromium.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def site(request, tmp_path, broker, kiosk_threads):
    """A real `collector serve` (every role in one process) on SQLite, and on a real PostgreSQL."""
    store = f'[store]\nurl = "{request.getfixturevalue("pg_url")}"\n' if request.param == "postgresql" else ""
    collector = CollectorProcess(
        tmp_path,
        broker.port,
        extra=(
            "[alerts]\ninterval_s = 1\nmin_ratings = 3\ndissatisfied_share = 0.5\nsilent_min = 100000\n"
            '[office]\nweekdays = [0, 1, 2, 3, 4, 5, 6]\nspans = ["00:00-23:59"]\n' + store
        ),
    )
    collector.start()
    assert wait_for(lambda: _up(collector.url), 30)
    collector_cli(
        collector.config,
        "user",
        "add",
        "thanhtra",
        "--role",
        "inspector",
        "--unit",
        "10",
        "--password-stdin",
        stdin=PASSWORD + "\n",
    )
    collector_cli(
        collector.config, "roster", "add-officer", "cb-kyh-1", "--name", "Lò Thị Hoa", "--unit", "10.085.02953"
    )
    today = datetime.now(ZoneInfo("Asia/Ho_Chi_Minh")).strftime("%Y-%m-%d")
    roster = tmp_path / "roster.csv"
    roster.write_text(f"officer,counter,start,end\ncb-kyh-1,kyh-q1,{today} 00:00,{today} 23:59\n")
    collector_cli(collector.config, "roster", "import", str(roster))
    # Văn Bàn district: Khánh Yên Hạ's counter does badly, the district's own counter well
    # (buttons 1..4 give scores 4..1).
    kyh = kiosk_threads("k-kyh-q1", "kyh-q1", GeneratedCamera(label="kyh-q1"))
    vb = kiosk_threads("k-vb-q1", "vb-q1", GeneratedCamera(label="vb-q1"))
    sapa = kiosk_threads("k-sp-q1", "sp-q1")
    for button in (1, 4, 4, 3, 4, 4):
        kyh.press(button)
    for button in (1, 1, 2, 1, 4):
        vb.press(button)
    for button in (1, 2):
        sapa.press(button)
    auth = ("thanhtra", PASSWORD)
    assert wait_for(lambda: _get(collector.url, "/api/v1/units/10/summary", auth)["total"] == 13, 30)
    assert wait_for(lambda: all(k.kiosk.outbox.backlog().snapshots == 0 for k in (kyh, vb)), 30)
    assert wait_for(lambda: _get(collector.url, "/api/v1/alerts?open_only=true", auth)["alerts"], 30)
    yield collector, auth
    collector.stop()


def _up(url):
    try:
        return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def _get(url, path, auth):
    return httpx.get(f"{url}{path}", auth=auth, timeout=10).json()


def shot(page, name):
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


@pytest.mark.slow
@pytest.mark.parametrize("width", [1366, 390])
def test_inspector_finds_worst_counter_and_its_snapshot_exports_and_acks(browser, site, tmp_path, width):
    """The inspector's walk, on a desk (1366 px) and on a phone (390 px): the province's month, the
    worst counter of a district and its worst hours by dissatisfied share, the press behind its
    last "Không hài lòng" with its details and picture, a comparison with last month, the
    three-level form read back (PDF text and XLSX cells agreeing with the page and stating how
    «Bình thường» was counted), the raw ratings export, and an alert acknowledged."""
    collector, auth = site
    context = browser.new_context(accept_downloads=True, viewport={"width": width, "height": 900})
    tag = f"{width}px"
    page = context.new_page()
    # The pages run under a Content-Security-Policy without 'unsafe-inline': anything it blocks
    # (an inline script, style or handler) shows up as a console error here.
    blocked: list[str] = []
    page.on("console", lambda m: blocked.append(m.text) if m.type == "error" else None)
    started = time.monotonic()

    page.goto(f"{collector.url}/")
    assert "/login" in page.url
    page.fill("input[name=username]", "thanhtra")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("#children")
    assert "Tỉnh Lào Cai" in page.inner_text("h1")
    shot(page, f"{tag}-1-overview")

    page.click("#children a:text('Huyện Văn Bàn')")
    page.wait_for_selector("h1:has-text('Huyện Văn Bàn')")
    page.click("#children th a:has-text('Tỷ lệ hài lòng')")  # sort ascending: worst first
    page.wait_for_url("**sort=rate**")
    first = page.locator("#children tbody tr").first
    assert first.get_attribute("data-id") == "10.085.02953"  # Khánh Yên Hạ: 1 of 6 satisfied
    shot(page, f"{tag}-2-district-sorted")

    first.locator("a").first.click()
    page.wait_for_selector("h1:has-text('Xã Khánh Yên Hạ')")
    page.click("#children a:has-text('Quầy một cửa xã Khánh Yên Hạ')")
    page.wait_for_selector("#recent")
    assert "Quầy một cửa xã Khánh Yên Hạ" in page.inner_text("h1")
    assert "Lò Thị Hoa" in page.inner_text("#officers")
    shot(page, f"{tag}-3-counter")
    last_unhappy = page.locator("#recent tbody tr[data-score='1']").first
    with context.expect_page() as opened:
        last_unhappy.locator("a.snap").click()
    picture = opened.value
    picture.wait_for_load_state()
    assert "/snapshots/" in picture.url
    image = httpx.get(picture.url, cookies={c["name"]: c["value"] for c in context.cookies()}, timeout=10)
    assert image.headers["content-type"] == "image/jpeg" and image.content[:2] == b"\xff\xd8"
    shot(picture, f"{tag}-4-snapshot")
    picture.close()
    found_in_s = time.monotonic() - started
    (ARTIFACTS / f"time-to-snapshot-{tag}.txt").write_text(f"{found_in_s:.1f} s (automated; a person needs longer)\n")

    # Its worst hours by dissatisfied share, in the heat map drawn for this screen.
    cells = page.locator(".chart-box > div:visible svg rect[data-n]")
    shares = [
        (int(cells.nth(i).get_attribute("data-unhappy")) / int(cells.nth(i).get_attribute("data-n")))
        for i in range(cells.count())
    ]
    assert shares and max(shares) == pytest.approx(4 / 6)  # 4 of the counter's 6 presses: Không hài lòng
    assert "67 %" in page.locator(".chart-box > div:visible svg").last.inner_html()

    # The press behind the last "Không hài lòng": its details and its picture.
    page.locator("#recent tbody tr[data-score='1']").first.locator("a.press").click()
    page.wait_for_selector("#press")
    assert page.inner_text("#press td[data-score='1']").startswith("Không hài lòng")
    assert "Lò Thị Hoa" in page.inner_text("#officer")
    assert "Quầy một cửa xã Khánh Yên Hạ" in page.inner_text("#press")
    assert page.locator("#picture").evaluate("img => img.complete && img.naturalWidth > 0")
    shot(page, f"{tag}-4b-press")

    # This month against last month.
    page.go_back()
    page.wait_for_selector("#compare-link")
    page.click("#compare-link")
    page.wait_for_selector("#compare")
    assert page.locator("#compare th[data-period]").count() == 3  # last month and the same month a year ago
    totals = [t.strip() for t in page.locator("#compare tr[data-row='total'] td").all_inner_texts()]
    assert totals[:3] == ["6", "0", "+6"]  # this month, last month, the change
    shot(page, f"{tag}-4c-compare")

    # The raw ratings of the counter, for an auditor.
    page.goto(f"{collector.url}/counters/kyh-q1")
    with page.expect_download() as download:
        page.click("#raw-csv")
    raw = tmp_path / "raw.csv"
    download.value.save_as(raw)
    lines = list(csv.reader(io.StringIO(raw.read_text(encoding="utf-8-sig")), delimiter=";"))
    assert lines[0][:4] == ["Thời điểm (giờ địa phương)", "Mã lượt", "Mã quầy", "Quầy"]
    assert len(lines) == 7 and {r[2] for r in lines[1:]} == {"kyh-q1"}
    assert sorted(int(r[6]) for r in lines[1:]) == [1, 1, 1, 1, 2, 4]

    # The three-level form of the district, checked against the JSON API and the page.
    page.goto(f"{collector.url}/units/10.085")
    notes = [line.strip() for line in page.inner_text("#form-notes").splitlines() if line.strip()]
    assert "được tính là «Hài lòng»" in notes[0] and "Tỷ lệ hài lòng theo mẫu 3 mức" in notes[1]
    with page.expect_download() as download:
        page.click("#three-level-xlsx")
    path = tmp_path / "three-level.xlsx"
    download.value.save_as(path)
    with page.expect_download() as download:
        page.click("#three-level-pdf")
    pdf_path = tmp_path / "three-level.pdf"
    download.value.save_as(pdf_path)
    pdf = " ".join(" ".join(p.extract_text() for p in PdfReader(pdf_path).pages).split())
    sheet = load_workbook(path).active
    rows = list(sheet.iter_rows(values_only=True))
    cells = {str(v) for r in rows for v in r if v is not None}
    for note in notes:
        assert note in cells and note in pdf, note
    shot(page, f"{tag}-4d-district-form")
    assert rows[0][0].startswith("BÁO CÁO KẾT QUẢ ĐÁNH GIÁ")
    total_row = next(r for r in rows if r[1] == "Tổng cộng")
    summary = _get(collector.url, "/api/v1/units/10.085/summary", auth)
    by = summary["by_score"]
    assert total_row[3] == summary["total"] == 11
    assert (total_row[4], total_row[6], total_row[8]) == (by["4"], by["3"] + by["2"], by["1"])
    officer_row = next(r for r in rows if r[2] == "Lò Thị Hoa")
    assert officer_row[1] == "Xã Khánh Yên Hạ" and officer_row[3] == 6
    assert "Lò Thị Hoa" in pdf and "Tổng cộng" in pdf

    # Acknowledge the open alert.
    page.goto(f"{collector.url}/alerts")
    row = page.locator("#alerts tr.open").first
    alert_id = row.get_attribute("data-alert")
    row.locator("input[name=comment]").fill("Đã làm việc với cán bộ quầy")
    row.locator("button[type=submit]").click()
    page.wait_for_selector(f"#alerts tr[data-alert='{alert_id}'].acked")
    shot(page, f"{tag}-5-alert-acknowledged")
    acked = {a["id"]: a for a in _get(collector.url, "/api/v1/alerts", auth)["alerts"]}
    assert acked[int(alert_id)]["ack_comment"] == "Đã làm việc với cán bộ quầy"
    assert acked[int(alert_id)]["acked_by"] == "thanhtra"

    # The API's documentation on an office LAN with no way out: every request that leaves the
    # collector fails, and /docs still shows the operations (its files are the collector's own).
    outside: list[str] = []

    def local_only(route):  # type: ignore[no-untyped-def]
        if route.request.url.startswith(collector.url):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    page.route("**/*", local_only)
    page.goto(f"{collector.url}/docs")
    page.wait_for_selector(".opblock-summary-path", timeout=30_000)
    assert page.locator(".opblock-summary-path:has-text('/api/v1/units/{unit}/summary')").count() >= 1
    shot(page, f"{tag}-6-api-docs-offline")
    assert outside == []
    assert [m for m in blocked if "Content Security Policy" in m or "Refused" in m] == []
    context.close()


PAGES = (
    "/",
    "/units/10.085",
    "/counters/kyh-q1",
    "/alerts",
    "/flagged",
    "/kiosks",
    "/kiosks/k-kyh-q1",
    "/compare?unit=10.085",
    "/admin/users",
    "/admin/roster",
    "/admin/rules",
    "/admin/settings",
    "/admin/registry",
    "/admin/audit",
)

# Everything that pokes out of the page's width at this size, or scrolls sideways inside it.
OVERFLOW = """() => {
  const width = document.documentElement.clientWidth;
  const found = [];
  const page = document.documentElement.scrollWidth;
  if (page > width) found.push("page " + page);
  for (const el of document.querySelectorAll("body *")) {
    const style = getComputedStyle(el);
    if (style.display === "none" || style.position === "absolute") continue;
    if (el.closest("svg") !== null && el.tagName !== "svg") continue;
    const box = el.getBoundingClientRect();
    const name = el.tagName + "#" + el.id + "." + el.className;
    if (box.width && box.right > width + 1) found.push(name + " right " + Math.round(box.right));
    const sideways = ["auto", "scroll"].includes(style.overflowX);
    if (sideways && el.scrollWidth > el.clientWidth + 1) found.push("scrolls " + name);
  }
  return found.slice(0, 8);
}"""

# What a printed page must not show: form controls, page-through links, the menu, the export links.
PRINTED_CONTROLS = """() => {
  const found = [];
  const shown = (el) => el.getClientRects().length > 0 && getComputedStyle(el).visibility !== "hidden";
  const selector = "button, input:not([type=hidden]), select, textarea, nav.pager, header.top, .exports, .links, .skip";
  for (const el of document.querySelectorAll(selector)) {
    const words = (el.textContent || el.name || "").trim().slice(0, 30);
    if (shown(el)) found.push(el.tagName + "#" + el.id + "." + el.className + " " + words);
  }
  return found.slice(0, 8);
}"""
# The pages an inspector prints (reports), where only figures, tables and charts belong on paper.
PRINTED = ("/", "/units/10.085", "/counters/kyh-q1", "/compare?unit=10.085", "/alerts", "/flagged", "/kiosks")

# The smallest text drawn in a chart that is shown, in CSS pixels.
SMALLEST_CHART_TEXT = """() => {
  let smallest = 1000;
  for (const text of document.querySelectorAll("svg.chart text")) {
    const box = text.getBoundingClientRect();
    if (box.height && text.textContent.trim().length > 1) smallest = Math.min(smallest, box.height);
  }
  return smallest;
}"""


@pytest.mark.slow
def test_every_page_fits_a_phone_and_charts_stay_readable(browser, site):
    """At 390 px (a phone held upright) no page scrolls sideways, no table or form pokes out, every
    button is within reach, and chart text is at least 8 px high; at 1366 px the same pages are
    the desktop ones. Screenshots of both in test-artifacts/."""
    collector, auth = site
    collector_cli(collector.config, "user", "add", "quantri", "--role", "admin", "--unit", "10", "--password-stdin",
                  stdin=PASSWORD + "\n")  # fmt: skip
    pages = list(PAGES)
    for width, height in ((390, 844), (1366, 900)):
        context = browser.new_context(viewport={"width": width, "height": height})
        page = context.new_page()
        page.goto(f"{collector.url}/login")
        page.fill("input[name=username]", "quantri")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_selector("#children")
        if "/ratings/" not in pages[-1]:  # a press and its picture, as the counter page links it
            page.goto(f"{collector.url}/counters/kyh-q1")
            pages.append(page.locator("#recent a.press").first.get_attribute("href"))
        problems = {}
        for path in pages:
            response = page.goto(f"{collector.url}{path}")
            assert response is not None and response.status == 200, path
            page.wait_for_load_state("load")
            if width == 390:
                found = page.evaluate(OVERFLOW)
                if found:
                    problems[path] = found
                if page.locator("svg.chart").count():
                    assert page.evaluate(SMALLEST_CHART_TEXT) >= 8, path
            name = path.strip("/").replace("/", "-").replace("?", "-").replace("=", "-") or "overview"
            name = "rating" if path.startswith("/ratings/") else name
            shot(page, f"{width}px-{name}")
            if width == 1366 and (path in PRINTED or path.startswith("/ratings/")):
                page.emulate_media(media="print")
                printed = page.evaluate(PRINTED_CONTROLS)
                if printed:
                    problems[f"{path} (printed)"] = printed
                page.pdf(path=str(ARTIFACTS / f"print-{name}.pdf"), format="A4")
                page.emulate_media(media="screen")
        assert problems == {}, "\n".join(f"{path}: {found}" for path, found in problems.items())
        context.close()


@pytest.mark.slow
def test_pages_have_no_serious_accessibility_violations(browser, site):
    """axe-core (the script of the npm registry's axe-core, as the axe-playwright-python package
    ships it) on every page the walk visits, the login page and a press: no violation rated
    moderate, serious or critical (contrast, names of buttons, links and form fields, landmarks, language)."""
    import axe_playwright_python

    axe = (Path(axe_playwright_python.__file__).parent / "axe.min.js").read_text(encoding="utf-8")
    collector, _ = site
    collector_cli(collector.config, "user", "add", "quantri", "--role", "admin", "--unit", "10", "--password-stdin",
                  stdin=PASSWORD + "\n")  # fmt: skip
    # axe is injected from outside the page: this context lets it past the page's CSP, which
    # the walk above checks on its own.
    context = browser.new_context(viewport={"width": 1366, "height": 900}, bypass_csp=True)
    page = context.new_page()
    found: dict[str, list[str]] = {}

    def audit(path: str) -> None:
        page.evaluate(axe)
        result = page.evaluate(
            "async () => await axe.run(document, {resultTypes: ['violations'], "
            "runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']}})"
        )
        serious = [
            f"{v['id']} ({v['impact']}): {v['nodes'][0]['target']} {v['help']}"
            for v in result["violations"]
            if v["impact"] in ("moderate", "serious", "critical")
        ]
        if serious:
            found[path] = serious

    page.goto(f"{collector.url}/login")
    audit("/login")
    # By keyboard alone: the login form, then the first links of a page, each with a visible focus.
    if page.evaluate("() => document.activeElement.name") != "username":  # the page may put the cursor there
        page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.name") == "username"
    page.keyboard.type("quantri")
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_selector("#children")
    for _ in range(3):
        page.keyboard.press("Tab")
        focus = page.evaluate(
            "() => { const e = document.activeElement, s = getComputedStyle(e);"
            " return [e.tagName, s.outlineStyle, parseFloat(s.outlineWidth)]; }"
        )
        assert focus[0] in ("A", "BUTTON", "INPUT", "SELECT") and focus[1] != "none" and focus[2] >= 2, focus
    page.goto(f"{collector.url}/counters/kyh-q1")
    pages = [*PAGES, page.locator("#recent a.press").first.get_attribute("href")]
    for path in pages:
        page.goto(f"{collector.url}{path}")
        page.wait_for_load_state("load")
        audit(path)
    context.close()
    assert found == {}, "\n".join(f"{path}: {v}" for path, vs in found.items() for v in vs)
