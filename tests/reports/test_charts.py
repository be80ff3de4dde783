"""Charts: well-formed SVG, one bar per value, gaps for missing values, escaping, trust check."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from reports.charts import (
    MARGINS_TITLE,
    REVENUE_TITLE,
    bar_chart_svg,
    financial_charts,
    format_value,
    nice_ticks,
    verified_charts,
)
from reports.model import Chart, FactRow, FactsTable
from tests.reports.test_render import facts, make_report

NS = "{http://www.w3.org/2000/svg}"
APPLE = {
    "Revenue": {"2022": 394_328e6, "2023": 383_285e6, "2024": 391_035e6},
    "Net income": {"2022": 99_803e6, "2023": 96_995e6, "2024": 93_736e6},
}


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)  # raises on malformed XML


def bars(root: ET.Element) -> list[ET.Element]:
    return [el for el in root.iter(f"{NS}rect") if el.get("class") == "bar"]


def texts(root: ET.Element, cls: str) -> list[str]:
    return [el.text or "" for el in root.iter(f"{NS}text") if el.get("class") == cls]


def test_grouped_bars_axes_and_legend():
    root = parse(bar_chart_svg(REVENUE_TITLE, APPLE, "USD"))
    assert root.find(f"{NS}title").text == REVENUE_TITLE
    assert len(bars(root)) == 6  # 3 years x 2 series
    assert texts(root, "year") == ["2022", "2023", "2024"]
    assert texts(root, "tick") == ["0", "$100.0B", "$200.0B", "$300.0B", "$400.0B"]
    assert "$391.0B" in texts(root, "value")
    legend = [el.get("fill") for el in root.iter(f"{NS}rect") if el.get("class") == "legend"]
    assert len(legend) == 2 and legend[0] != legend[1]
    assert [b.get("fill") for b in bars(root)] == legend * 3  # each year: revenue, net income
    tooltip = bars(root)[-1].find(f"{NS}title").text
    assert tooltip == "Net income 2024: $93.7B"


def test_taller_bar_for_larger_value():
    root = parse(bar_chart_svg("t", APPLE, "USD"))
    heights = [float(b.get("height")) for b in bars(root)]
    assert heights[0] > heights[1]  # revenue 2022 > net income 2022
    assert heights[0] > heights[2]  # 394,328 > 383,285


def test_missing_values_are_gaps_labelled_na():
    series = {"Revenue": {"2022": 1e9, "2023": None, "2024": float("nan")}}
    root = parse(bar_chart_svg("t", series, "USD"))
    assert len(bars(root)) == 1 and texts(root, "na") == ["n/a", "n/a"]


def test_negative_values_hang_below_zero():
    root = parse(bar_chart_svg("t", {"Net income": {"2023": 5e9, "2024": -2e9}}, "USD"))
    ticks = texts(root, "tick")
    assert ticks[0].startswith("-$") and "0" in ticks
    pos, neg = bars(root)
    zero_y = float(pos.get("y")) + float(pos.get("height"))
    assert float(neg.get("y")) == pytest.approx(zero_y)  # starts at the zero line, goes down


def test_all_text_is_escaped():
    svg = bar_chart_svg('<script>alert(1)</script> & "q"', {"<b>x</b>": {"2024": 1.0}}, "%")
    root = parse(svg)
    assert "<script" not in svg and "<b>" not in svg
    assert root.find(f"{NS}title").text == '<script>alert(1)</script> & "q"'


def test_empty_series_still_well_formed():
    root = parse(bar_chart_svg("t", {}, "USD"))
    assert bars(root) == []


@pytest.mark.parametrize(
    ("value", "unit", "expected"),
    [
        (391_035e6, "USD", "$391.0B"),
        (-2.5e9, "USD", "-$2.5B"),
        (3.2e12, "USD", "$3.2T"),
        (450e6, "USD", "$450.0M"),
        (6.08, "USD/shares", "$6.08"),
        (46.21, "%", "46.2%"),
    ],
)
def test_format_value(value: float, unit: str, expected: str):
    assert format_value(value, unit) == expected


def test_nice_ticks_cover_range():
    assert nice_ticks(0, 46.2) == [0, 10, 20, 30, 40, 50]
    ticks = nice_ticks(-93.7, 394.3)
    assert ticks[0] <= -93.7 and ticks[-1] >= 394.3 and 0 in ticks


def test_financial_charts_for_apple():
    charts = financial_charts(facts(), ticker="AAPL")
    assert [(c.file, c.title) for c in charts] == [
        ("AAPL-revenue-net-income.svg", REVENUE_TITLE),
        ("AAPL-margins.svg", MARGINS_TITLE),
    ]
    assert len(bars(parse(charts[0].svg))) == 6
    assert len(bars(parse(charts[1].svg))) == 3  # one margin row x 3 years


def test_financial_charts_empty_cases():
    assert financial_charts(None) == []
    empty = FactsTable(years=["2024"], rows=[
        FactRow(line="revenue", label="Revenue", unit="USD", values={"2024": None}, concept="x")
    ], source="s")
    assert financial_charts(empty) == []
    no_margins = FactsTable(years=["2024"], rows=[
        FactRow(line="revenue", label="Revenue", unit="USD", values={"2024": 1e9}, concept="x")
    ], source="s")
    assert [c.title for c in financial_charts(no_margins)] == [REVENUE_TITLE]


def test_verified_charts_rejects_tampered_markup():
    report = make_report()
    kept, dropped = verified_charts(report)
    assert len(kept) == 2 and dropped == 0
    evil = Chart(file=kept[0].file, title=kept[0].title, svg=kept[0].svg.replace("</svg>", "<script/></svg>"))
    kept, dropped = verified_charts(make_report(charts=[evil, report.charts[1]]))
    assert [c.file for c in kept] == ["AAPL-margins.svg"] and dropped == 1


def test_an_insurers_percent_chart_is_titled_margins_and_ratios():
    """UnitedHealth's FY2024 10-K (real inline XBRL): its % rows include the loss ratio, which is no
    margin, so the chart title says "ratios"; Apple's chart above keeps "Margins (%)"."""
    from pathlib import Path

    from rag.facts import facts_from_inline_xbrl
    from reports.charts import RATIOS_TITLE
    from reports.financials import report_facts

    fixture = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "companyfacts" / "unh-10-k-2025-02-27.html.gz"
    table = report_facts(facts_from_inline_xbrl(fixture))
    charts = financial_charts(table, ticker="UNH")
    assert [(c.file, c.title) for c in charts] == [
        ("UNH-revenue-net-income.svg", REVENUE_TITLE),
        ("UNH-margins.svg", RATIOS_TITLE),
    ]
    assert RATIOS_TITLE == "Margins and ratios (%)"
    labels = [el.text for el in parse(charts[1].svg).iter(f"{NS}text")]
    assert "Loss ratio" in labels and "Operating margin" in labels
    # without the ratio row the same table is charted as plain margins
    plain = table.model_copy(update={"rows": [r for r in table.rows if r.line != "loss_ratio"]})
    assert [c.title for c in financial_charts(plain, ticker="UNH")][1] == MARGINS_TITLE
