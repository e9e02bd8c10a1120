"""Charts as inline SVG (pure): readable without colour — every mark carries its number, and
series are told apart by pattern, not hue. Nothing is fetched from the internet."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Any

from collector import formats


def _patterns(ids: str) -> str:
    """The fills of scores 3, 2 and 1, with ids unique to one chart (a page holds the wide and the
    narrow drawing of a chart, and a pattern in the hidden one would not paint the shown one)."""
    return f"""<defs>
<pattern id="{ids}hatch" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)">
<rect width="6" height="6" fill="#fff"/><line x1="0" y1="0" x2="0" y2="6" stroke="#333" stroke-width="2"/></pattern>
<pattern id="{ids}dots" width="6" height="6" patternUnits="userSpaceOnUse">
<rect width="6" height="6" fill="#fff"/><circle cx="3" cy="3" r="1.4" fill="#333"/></pattern>
<pattern id="{ids}cross" width="6" height="6" patternUnits="userSpaceOnUse">
<rect width="6" height="6" fill="#fff"/><path d="M0 0L6 6M6 0L0 6" stroke="#333" stroke-width="1"/></pattern>
</defs>"""


def responsive(wide: str, narrow: str) -> str:
    """A chart drawn twice: for screens and paper, and for a phone held upright (≤ 640 px), where
    the wide drawing scaled down would leave its text too small to read. CSS shows one."""
    if not wide:
        return ""
    return f'<div class="chart-box"><div class="wide">{wide}</div><div class="narrow">{narrow}</div></div>'


# Score 4 solid dark, 3 hatched, 2 dotted, 1 crossed: distinguishable in black and white.
def score_fills(ids: str) -> dict[int, str]:
    return {4: "#2b5d34", 3: f"url(#{ids}hatch)", 2: f"url(#{ids}dots)", 1: f"url(#{ids}cross)"}


def rate_bars(
    points: Sequence[tuple[str, float | None, int]],
    *,
    title: str,
    lang: str = "vi",
    width: int = 720,
    height: int = 220,
    ids: str = "p-",
) -> str:
    """Satisfaction rate per period: (label, rate or None, ratings). Thin samples are hatched."""
    if not points:
        return ""
    left, bottom, top = 36, 36, 18
    plot_h = height - bottom - top
    step = (width - left - 8) / len(points)
    bar_w = max(2.0, step * 0.7)
    label_every = -(-len(points) // max(4, min(12, width // 32)))  # at most 12 labels, 32 units apart
    parts = [
        f'<svg class="chart" role="img" viewBox="0 0 {width} {height}" width="100%" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>{_patterns(ids)}'
    ]
    sign = " %" if lang == "vi" else "%"  # 96,9 % as everywhere in Vietnamese
    for pct in (0, 50, 100):
        y = top + plot_h * (1 - pct / 100)
        parts.append(
            f'<line x1="{left}" x2="{width - 4}" y1="{y:.1f}" y2="{y:.1f}" stroke="#bbb" stroke-dasharray="2,3"/>'
            f'<text x="{left - 4}" y="{y + 4:.1f}" font-size="10" text-anchor="end">{pct}{sign}</text>'
        )
    for i, (label, rate, n) in enumerate(points):
        x = left + i * step + (step - bar_w) / 2
        if rate is not None:
            h = plot_h * rate
            fill = f"url(#{ids}hatch)" if n < 5 else "#2b5d34"
            parts.append(
                f'<rect x="{x:.1f}" y="{top + plot_h - h:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                f'fill="{fill}" stroke="#2b5d34"><title>{escape(label)}: '
                f"{formats.percent(rate, lang)} ({n})</title></rect>"
            )
            if i % label_every == 0 and step >= 14:
                parts.append(
                    f'<text x="{x + bar_w / 2:.1f}" y="{top + plot_h - h - 3:.1f}" font-size="9" '
                    f'text-anchor="middle">{round(rate * 100)}</text>'
                )
        else:
            parts.append(
                f'<text x="{x + bar_w / 2:.1f}" y="{top + plot_h - 3:.1f}" font-size="9" '
                f'text-anchor="middle" fill="#777">·</text>'
            )
        if i % label_every == 0:
            parts.append(
                f'<text x="{x + bar_w / 2:.1f}" y="{height - bottom + 14:.1f}" font-size="9" '
                f'text-anchor="middle">{escape(label)}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)


def score_bar(
    by_score: dict[str, int], labels: dict[int, str], *, lang: str = "vi", width: int = 720, ids: str = "p-"
) -> str:
    """One 100 % bar split by score, each part patterned; a legend below gives every count (in two
    columns, or one when the drawing is narrow)."""
    total = sum(by_score.get(str(s), 0) for s in (1, 2, 3, 4))
    if total == 0:
        return ""
    columns = 2 if width >= 560 else 1
    height = 42 + 26 * (4 // columns) + 2
    fills = score_fills(ids)
    parts = [
        f'<svg class="chart" role="img" viewBox="0 0 {width} {height}" width="100%" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(", ".join(labels.values()))}</title>{_patterns(ids)}'
    ]
    x = 0.0
    for score in (4, 3, 2, 1):
        n = by_score.get(str(score), 0)
        if n:
            w = width * n / total
            parts.append(
                f'<rect x="{x:.1f}" y="4" width="{w:.1f}" height="28" fill="{fills[score]}" '
                f'stroke="#222"><title>{escape(labels[score])}: {n}</title></rect>'
            )
            x += w
    for i, score in enumerate((4, 3, 2, 1)):  # the legend
        n = by_score.get(str(score), 0)
        lx, ly = (i % columns) * width / columns + 2, 42 + (i // columns) * 26
        parts.append(
            f'<rect x="{lx:.1f}" y="{ly}" width="16" height="16" fill="{fills[score]}" stroke="#222"/>'
            f'<text x="{lx + 22:.1f}" y="{ly + 13}" font-size="13">{escape(labels[score])}: '
            f"{formats.number(n, lang)} ({formats.percent(n / total, lang)})</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def heatmap(
    grid: Sequence[Sequence[tuple[int, int]]],
    *,
    weekdays: Sequence[str],
    title: str,
    unhappy_label: str = "Không hài lòng",
    lang: str = "vi",
    upright: bool = False,
) -> str:
    """Where a counter is bad: weekday × hour of day, each cell coloured by its share of "Không hài
    lòng" (white 0 % → deep red 50 % and more) and showing that share over its count of ratings
    (``25 %`` above ``1/4``). Office hours (6h–19h) always show; earlier or later hours only when
    they have ratings. Weekdays are rows and hours columns, or the other way round when
    ``upright`` (a phone: seven columns fit its width)."""
    busy = [h for h in range(24) if any(grid[d][h][0] for d in range(len(weekdays)))]
    hours = list(range(min([6, *busy]), max([19, *busy]) + 1))
    cell_w, cell_h, left, top = (44, 30, 36, 20) if upright else (40, 30, 44, 20)
    columns, rows = (len(weekdays), len(hours)) if upright else (len(hours), len(weekdays))
    width = left + cell_w * columns + 4
    height = top + cell_h * rows + 4
    parts = [
        f'<svg class="chart" role="img" viewBox="0 0 {width} {height}" width="100%" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>'
    ]
    column_names = list(weekdays) if upright else [f"{h}h" for h in hours]
    row_names = [f"{h}h" for h in hours] if upright else list(weekdays)
    for j, name in enumerate(column_names):
        parts.append(
            f'<text x="{left + j * cell_w + cell_w / 2}" y="14" font-size="10" text-anchor="middle">'
            f"{escape(name)}</text>"
        )
    for i, name in enumerate(row_names):
        parts.append(
            f'<text x="{left - 6}" y="{top + i * cell_h + 15}" font-size="10" text-anchor="end">{escape(name)}</text>'
        )
    for d, day in enumerate(weekdays):
        for j, hour in enumerate(hours):
            n, unhappy = grid[d][hour]
            x = left + (d if upright else j) * cell_w
            y = top + (j if upright else d) * cell_h
            if not n:
                parts.append(
                    f'<rect x="{x}" y="{y}" width="{cell_w - 2}" height="{cell_h - 2}" fill="#fff" stroke="#ccc"/>'
                )
                continue
            share = unhappy / n
            strength = min(1.0, share * 2)  # 50 % and more: the deepest red
            green_blue = 255 - int(215 * strength)
            ink = "#fff" if strength > 0.6 else "#000"
            parts.append(
                f'<rect x="{x}" y="{y}" width="{cell_w - 2}" height="{cell_h - 2}" '
                f'fill="rgb(255,{green_blue},{green_blue})" stroke="#ccc" data-n="{n}" data-unhappy="{unhappy}">'
                f"<title>{escape(day)} {hour}h: {formats.number(unhappy, lang)} {escape(unhappy_label)} / "
                f"{formats.number(n, lang)} ({formats.percent(share, lang, 0)})</title></rect>"
                f'<text x="{x + cell_w / 2 - 1}" y="{y + 12}" font-size="10" text-anchor="middle" '
                f'fill="{ink}">{formats.percent(share, lang, 0)}</text>'
                f'<text x="{x + cell_w / 2 - 1}" y="{y + 24}" font-size="9" text-anchor="middle" '
                f'fill="{ink}">{formats.number(unhappy, lang)}/{formats.number(n, lang)}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)


def sparkline(values: Sequence[float | None], *, width: int = 90, height: int = 22) -> str:
    """A small trend line of rates (0..1); gaps where a period had no ratings."""
    known = [(i, v) for i, v in enumerate(values) if v is not None]
    if len(known) < 2:
        return ""
    step = width / max(1, len(values) - 1)
    points = " ".join(f"{i * step:.1f},{height - 2 - v * (height - 4):.1f}" for i, v in known)
    last_i, last_v = known[-1]
    return (
        f'<svg class="spark" role="img" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{round(last_v * 100)}%</title>'
        f'<polyline points="{points}" fill="none" stroke="#222" stroke-width="1.5"/>'
        f'<circle cx="{last_i * step:.1f}" cy="{height - 2 - last_v * (height - 4):.1f}" r="2"/></svg>'
    )


# --- a chart as pages show it: drawn for a wide screen and for a phone ----------------------------


def rate_chart(points: Sequence[tuple[str, float | None, int]], *, title: str, lang: str = "vi") -> str:
    return responsive(
        rate_bars(points, title=title, lang=lang),
        rate_bars(points, title=title, lang=lang, width=360, height=200, ids="n-"),
    )


def score_chart(by_score: dict[str, int], labels: dict[int, str], *, lang: str = "vi") -> str:
    return responsive(
        score_bar(by_score, labels, lang=lang), score_bar(by_score, labels, lang=lang, width=360, ids="n-")
    )


def heat_chart(grid: Sequence[Sequence[tuple[int, int]]], **kwargs: Any) -> str:
    return responsive(heatmap(grid, **kwargs), heatmap(grid, upright=True, **kwargs))
