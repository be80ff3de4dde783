"""Grouped bar charts as self-contained SVG, drawn from numbers only.

Why hand-written SVG: reports must open offline with no JS and no external assets, and the
HTML report inlines these charts as trusted markup. Building the markup here from floats and
our own labels (every string XML-escaped) is what makes inlining safe; `verified_charts`
lets renderers and the publisher check that a report's charts really are this module's output
for the report's facts before they trust them.
"""

from __future__ import annotations

import math
import re
from html import escape

from reports.model import Chart, FactsTable, Report

WIDTH, HEIGHT = 640, 360
LEFT, RIGHT, TOP, BOTTOM = 76, 16, 64, 40  # plot margins (px): y tick labels, title + legend, years
# Okabe-Ito palette: distinguishable with the common colour-vision deficiencies.
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"]
REVENUE_TITLE = "Revenue and net income by fiscal year"
MARGINS_TITLE = "Margins (%)"
# Banks' and insurers' % rows include ratios that are no margin (efficiency ratio: noninterest
# expense / revenue; loss ratio: benefits / premiums), so their chart says so; industrials keep
# MARGINS_TITLE and the same file name.
RATIOS_TITLE = "Margins and ratios (%)"
RATIO_LINES = frozenset({"efficiency_ratio", "loss_ratio"})


def _x(text: str) -> str:
    """XML-escape text for element content and double-quoted attributes; drop XML-illegal chars."""
    text = "".join(ch for ch in str(text) if ch in "\t\n" or ord(ch) >= 0x20)
    return escape(text, quote=True)


def _f(v: float) -> str:
    """Coordinate with 2 decimals, no trailing zeros: keeps markup small and deterministic."""
    return f"{v:.2f}".rstrip("0").rstrip(".")


def format_value(value: float, unit: str, decimals: int = 1) -> str:
    """Human label for one number: USD -> "$391.0B", USD/shares -> "$6.11", % -> "46.2%"."""
    sign = "-" if value < 0 else ""
    mag = abs(value)
    if unit == "USD":
        for scale, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
            if mag >= scale:
                return f"{sign}${mag / scale:,.{decimals}f}{suffix}"
        return f"{sign}${mag:,.0f}"
    if unit == "USD/shares":
        return f"{sign}${mag:,.2f}"
    if unit == "%":
        return f"{sign}{mag:.{decimals}f}%"
    return f"{sign}{mag:,.{decimals}f} {unit}".rstrip()


def _axis_label(value: float, unit: str) -> str:
    return "0" if value == 0 and unit != "%" else format_value(value, unit)


def nice_ticks(lo: float, hi: float, target: int = 5) -> list[float]:
    """Round tick values (1, 2, 2.5, 5 x 10^k steps) covering [lo, hi]; always includes 0 in range."""
    if hi <= lo:
        hi = lo + (abs(lo) or 1.0)
    raw = (hi - lo) / target
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if raw <= m * mag)
    start, end = math.floor(lo / step + 1e-9), math.ceil(hi / step - 1e-9)
    return [float(f"{i * step:.12g}") for i in range(start, end + 1)]  # 0.6, not 0.6000000000000001


def _years(series: dict[str, dict[str, float | None]]) -> list[str]:
    """Union of x labels: numeric years sorted ascending, anything else in first-seen order."""
    seen: dict[str, None] = {}
    for values in series.values():
        for year in values:
            seen.setdefault(year, None)
    years = list(seen)
    return sorted(years, key=int) if all(y.isdigit() for y in years) else years


def _clean(v: float | None) -> float | None:
    return v if v is not None and math.isfinite(v) else None  # NaN/inf are gaps, not bars


def bar_chart_svg(title: str, series: dict[str, dict[str, float | None]], unit: str) -> str:
    """A grouped bar chart: x = years, one bar per series per year, one colour per series.

    `series` maps a legend label to {year: value}; values are fully scaled in `unit` ("USD",
    "USD/shares", "%"). None (or NaN) is drawn as a gap labelled "n/a"; negative values hang
    below the zero line. Each bar carries a `<title>` tooltip with its exact label and value.
    """
    years = _years(series)
    names = list(series)
    values = [_clean(v) for s in series.values() for v in s.values()]
    present = [v for v in values if v is not None]
    ticks = nice_ticks(min([0.0, *present]), max([0.0, *present]))
    lo, hi = ticks[0], ticks[-1]
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def y_of(v: float) -> float:
        return TOP + (hi - v) / (hi - lo) * plot_h

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" '
        f'height="{HEIGHT}" role="img" aria-label="{_x(title)}" class="chart" '
        f'font-family="system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif">',
        f"<title>{_x(title)}</title>",
        f"<desc>{_x(_describe(series, years, unit))}</desc>",
        f'<rect x="0" y="0" width="{WIDTH}" height="{HEIGHT}" fill="#ffffff"/>',
        f'<text x="{LEFT}" y="22" font-size="15" font-weight="600" fill="#1f2933">{_x(title)}</text>',
    ]
    # Legend: one swatch per series on the line under the title.
    lx = LEFT
    for i, name in enumerate(names):
        colour = PALETTE[i % len(PALETTE)]
        out.append(f'<rect class="legend" x="{lx}" y="34" width="12" height="12" fill="{colour}"/>')
        out.append(f'<text x="{lx + 17}" y="44" font-size="12" fill="#1f2933">{_x(name)}</text>')
        lx += 17 + 7 * len(name) + 24  # ~7px per character at 12px: approximate, no font metrics
    # Y axis: grid line and label per tick; the zero line drawn darker.
    for t in ticks:
        y = _f(y_of(t))
        stroke = "#52606d" if t == 0 else "#e4e7eb"
        out.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y}" y2="{y}" stroke="{stroke}"/>')
        out.append(
            f'<text class="tick" x="{LEFT - 6}" y="{y}" dy="4" font-size="11" text-anchor="end" '
            f'fill="#52606d">{_x(_axis_label(t, unit))}</text>'
        )
    # Bars: groups of len(names) bars per year; 80% of the group width is bars, 20% gap.
    y0 = y_of(0.0)
    group_w = plot_w / max(len(years), 1)
    bar_w = group_w * 0.8 / max(len(names), 1)
    show_values = bar_w >= 34  # value labels only when they fit above their bar
    for gi, year in enumerate(years):
        gx = LEFT + gi * group_w
        out.append(
            f'<text class="year" x="{_f(gx + group_w / 2)}" y="{HEIGHT - BOTTOM + 18}" font-size="12" '
            f'text-anchor="middle" fill="#1f2933">{_x(year)}</text>'
        )
        for si, name in enumerate(names):
            bx = gx + group_w * 0.1 + si * bar_w
            cx = _f(bx + bar_w / 2)
            value = _clean(series[name].get(year))
            if value is None:
                out.append(
                    f'<g class="gap"><title>{_x(f"{name} {year}: not available")}</title>'
                    f'<text class="na" x="{cx}" y="{_f(y0 - 4)}" font-size="10" text-anchor="middle" '
                    f'fill="#7b8794">n/a</text></g>'
                )
                continue
            top, bottom = sorted((y_of(value), y0))
            label = format_value(value, unit)
            out.append(
                f'<rect class="bar" x="{_f(bx + 1)}" y="{_f(top)}" width="{_f(max(bar_w - 2, 1))}" '
                f'height="{_f(bottom - top)}" fill="{PALETTE[si % len(PALETTE)]}">'
                f"<title>{_x(f'{name} {year}: {label}')}</title></rect>"
            )
            if show_values:
                ty = top - 4 if value >= 0 else bottom + 12
                out.append(
                    f'<text class="value" x="{cx}" y="{_f(ty)}" font-size="10" text-anchor="middle" '
                    f'fill="#1f2933">{_x(label)}</text>'
                )
    out.append("</svg>")
    return "\n".join(out)


def _describe(series: dict[str, dict[str, float | None]], years: list[str], unit: str) -> str:
    """Text alternative for screen readers: every value, in reading order."""
    parts = []
    for name, values in series.items():
        cells = []
        for year in years:
            v = _clean(values.get(year))
            cells.append(f"{year} {'n/a' if v is None else format_value(v, unit)}")
        parts.append(f"{name}: {', '.join(cells)}")
    return "; ".join(parts)


def _file_prefix(ticker: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", ticker)
    return f"{safe}-" if safe else ""


def financial_charts(facts: FactsTable | None, ticker: str = "") -> list[Chart]:
    """Charts for a facts table: revenue + net income (USD), and margins (%) when present
    ("Margins and ratios (%)" for a bank's or insurer's table). Only the audited annual rows:
    the quarterly and earnings-release tables are never charted.

    Pass the report's `ticker`: chart files are named `<TICKER>-<chart>.svg`, so reports that
    share an output folder never overwrite each other's charts (the publisher insists on it).
    Rows with no value at all are skipped; returns [] when nothing is left to chart.
    """
    if facts is None:
        return []

    def has_values(values: dict[str, float | None]) -> bool:
        return any(_clean(values.get(y)) is not None for y in facts.years)

    def table(rows: list) -> dict[str, dict[str, float | None]]:
        return {row.label: {y: row.values.get(y) for y in facts.years} for row in rows}

    prefix = _file_prefix(ticker)
    by_line = {row.line: row for row in facts.rows}
    money = [by_line[k] for k in ("revenue", "net_income") if k in by_line and has_values(by_line[k].values)]
    margins = [row for row in facts.rows if row.unit == "%" and has_values(row.values)]
    charts = []
    if money:
        svg = bar_chart_svg(REVENUE_TITLE, table(money), "USD")
        charts.append(Chart(file=f"{prefix}revenue-net-income.svg", title=REVENUE_TITLE, svg=svg))
    if margins:
        title = RATIOS_TITLE if any(row.line in RATIO_LINES for row in margins) else MARGINS_TITLE
        svg = bar_chart_svg(title, table(margins), "%")
        charts.append(Chart(file=f"{prefix}margins.svg", title=title, svg=svg))
    return charts


def verified_charts(report: Report) -> tuple[list[Chart], int]:
    """The report's charts that are exactly what `financial_charts` builds from its facts.

    Renderers inline chart SVG unescaped and the publisher writes it to disk, so neither trusts
    `report.charts` as given (a report may have been reloaded from JSON or built by other code):
    a chart is kept only if rebuilding it from `report.facts` gives the same file, title and
    markup. Returns (kept charts, number dropped) so the report can say a chart was omitted.
    """
    expected = {c.file: c for c in financial_charts(report.facts, ticker=report.ticker)}
    kept = [c for c in report.charts if expected.get(c.file) == c]
    return kept, len(report.charts) - len(kept)
