"""Charts drawn for a wide screen and for a phone: the same figures in both, text that stays
readable on a phone, and patterns that paint in the drawing shown."""

import re

from collector import charts
from collector.i18n import SCORE_LABELS, WEEKDAYS

PHONE_CSS_WIDTH = 358  # a 390 px screen less the page's padding


def drawings(html: str) -> tuple[str, str]:
    wide = html[html.index('<div class="wide">') : html.index('<div class="narrow">')]
    narrow = html[html.index('<div class="narrow">') :]
    return wide, narrow


def view_width(svg: str) -> float:
    return float(re.search(r'viewBox="0 0 ([0-9.]+) ', svg).group(1))


def smallest_font(svg: str) -> float:
    return min(float(x) for x in re.findall(r'font-size="([0-9.]+)"', svg))


def test_the_heat_map_on_a_phone_holds_the_same_cells_upright_and_readable():
    grid = [[(0, 0)] * 24 for _ in range(7)]
    grid[0][9] = (4, 1)
    grid[6][21] = (3, 3)  # a Sunday evening outside office hours
    wide, narrow = drawings(charts.heat_chart(grid, weekdays=WEEKDAYS["vi"], title="t"))
    cells = re.compile(r'data-n="(\d+)" data-unhappy="(\d+)"')
    assert sorted(cells.findall(wide)) == sorted(cells.findall(narrow)) == [("3", "3"), ("4", "1")]
    assert ">21h</text>" in narrow and ">CN</text>" in narrow
    assert PHONE_CSS_WIDTH / view_width(narrow) * smallest_font(narrow) >= 8.5


def test_rate_and_score_charts_have_a_narrow_drawing_with_readable_text_and_their_own_patterns():
    points = [(f"{d:02d}/10", 0.5 + d / 100, 3 if d % 2 else 12) for d in range(1, 32)]
    for html in (
        charts.rate_chart(points, title="Tỷ lệ"),
        charts.score_chart({"4": 5, "3": 4, "2": 2, "1": 3}, SCORE_LABELS["vi"]),
    ):
        wide, narrow = drawings(html)
        assert PHONE_CSS_WIDTH / view_width(narrow) * smallest_font(narrow) >= 8.5
        assert 'id="p-hatch"' in wide and 'id="n-hatch"' in narrow
        assert "url(#n-hatch)" in narrow and "url(#p-" not in narrow
    labels = re.findall(r'text-anchor="middle">(\d\d/10)</text>', drawings(charts.rate_chart(points, title="t"))[1])
    assert 4 <= len(labels) <= 12  # day labels spaced so they do not run into each other


def test_no_chart_without_figures():
    assert charts.rate_chart([], title="t") == ""
    assert charts.score_chart({"4": 0, "3": 0, "2": 0, "1": 0}, SCORE_LABELS["vi"]) == ""
