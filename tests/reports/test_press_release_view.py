"""The latest earnings release in the report: its own labelled table, its own sentence, checked
figures, and the XBRL figures winning as soon as XBRL covers the release's period.

The release is real: Buckle's 8-K EX-99.1 of 2024-11-22 (tests/fixtures/sec8k, read by
`rag.press_facts`; its figures are checked cell by cell in tests/rag/test_press_facts.py). The repo
holds no Buckle XBRL, so the XBRL side is constructed on Buckle's fiscal calendar (53-week year to
Feb 3, 2024; 13-week quarters). Its values are illustrative, close to what Buckle reported but not
read from any file: only their PERIODS matter (they date the XBRL tables), and no assertion depends
on them. The same-quarter case gives XBRL the release's own Q3 figures, as the 10-Q would report.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from rag.facts import read_facts, write_facts
from rag.press_facts import facts_from_press_release
from rag.types import Fact
from reports.charts import financial_charts
from reports.financials import annual_sentences, fact_refs, quarter_sentences, report_facts
from reports.model import Paragraph, Report, SectionReport
from reports.numbers import check_sentence
from reports.release import release_sentences
from reports.render import edgar_url, render_html, render_markdown
from tests.rag.test_press_facts import bke_submission

ROOT = Path(__file__).resolve().parents[2]
BKE = ROOT / "tests" / "fixtures" / "sec8k" / "bke-8-k.BuckleInc.8-K.EX99.1.html.gz"
HEADING = "Latest earnings release (unaudited, 8-K EX-99.1 filed 2024-11-22)"
SENTENCE = (
    "According to the company's earnings release (unaudited), filed November 22, 2024 and not yet in "
    "XBRL filings, for Q3 FY2025 (the quarter ended November 2, 2024) revenue was $293,618,000, against "
    "$303,457,000 in Q3 FY2024, and net income was $44,172,000, against $51,762,000 in Q3 FY2024."
)
CONCEPTS = {"revenue": "us-gaap:Revenues", "net_income": "us-gaap:NetIncomeLoss"}
Q3_25 = ("2024-08-04", "2024-11-02")


def _xbrl(line: str, fy: int, period: tuple[str, str], value: float, filed: str, form: str) -> Fact:
    kind = "annual" if form == "10-K" else "quarter"
    return Fact(
        "BKE", line, CONCEPTS[line], value, "USD", fy, *period, form, filed, f"bke-{form}-{filed}",
        "inline-xbrl", {"period": kind},
    )  # fmt: skip


XBRL_OLDER = [
    _xbrl("revenue", 2023, ("2022-01-30", "2023-01-28"), 1_345_200_000, "2023-03-31", "10-K"),
    _xbrl("net_income", 2023, ("2022-01-30", "2023-01-28"), 254_800_000, "2023-03-31", "10-K"),
    _xbrl("revenue", 2024, ("2023-01-29", "2024-02-03"), 1_261_100_000, "2024-03-29", "10-K"),
    _xbrl("net_income", 2024, ("2023-01-29", "2024-02-03"), 219_900_000, "2024-03-29", "10-K"),
    _xbrl("revenue", 2024, ("2023-04-30", "2023-07-29"), 301_500_000, "2024-09-06", "10-Q"),
    _xbrl("revenue", 2025, ("2024-05-05", "2024-08-03"), 282_400_000, "2024-09-06", "10-Q"),
]
# Buckle's Q3 10-Q (filed after the release) reports the release's own Q3 figures.
XBRL_SAME_QUARTER = [
    _xbrl("revenue", 2025, Q3_25, 293_618_000, "2024-12-06", "10-Q"),
    _xbrl("net_income", 2025, Q3_25, 44_172_000, "2024-12-06", "10-Q"),
    _xbrl("revenue", 2024, ("2023-07-30", "2023-10-28"), 303_457_000, "2024-12-06", "10-Q"),
]


@pytest.fixture(scope="module")
def bke() -> list[Fact]:
    return facts_from_press_release(BKE)


@pytest.fixture(scope="module")
def table(bke):
    return report_facts(XBRL_OLDER + bke)


def test_a_release_later_than_xbrl_is_its_own_table_with_the_exact_printed_figures(table):
    rel = table.release
    assert (rel.form, rel.filed, rel.accession, rel.unaudited) == (
        "8-K EX-99.1", "2024-11-22", BKE.name, True,
    )  # fmt: skip
    assert rel.years == ["Q3 FY2024", "Q3 FY2025", "9M FY2024", "9M FY2025"]
    assert rel.labels["Q3 FY2025"] == "Q3 FY2025 (to 2024-11-02)"
    assert rel.labels["9M FY2024"] == "9M FY2024 (to 2023-10-28)"
    got = {r.line: r.values for r in rel.rows}
    assert got["revenue"] == {
        "Q3 FY2024": 303_457_000, "Q3 FY2025": 293_618_000, "9M FY2024": 878_719_000, "9M FY2025": 838_490_000,
    }  # fmt: skip
    assert got["net_income"]["Q3 FY2025"] == 44_172_000
    assert got["eps_diluted"] == {"Q3 FY2024": 1.04, "Q3 FY2025": 0.88, "9M FY2024": 2.81, "9M FY2025": 2.35}
    assert {r.concept for r in rel.rows} == {
        "press-release:SALES, Net of returns and allowances", "press-release:Gross profit",
        "press-release:INCOME FROM OPERATIONS", "press-release:NET INCOME",
        "press-release:EARNINGS PER SHARE: Diluted",
    }  # fmt: skip
    assert "unaudited" in rel.source and BKE.name in rel.source
    # never merged: the audited tables hold only the XBRL periods and values
    assert table.years == ["2023", "2024"] and table.quarterly.years == ["Q2 FY2024", "Q2 FY2025"]
    audited = {v for t in (table, table.quarterly) for r in t.rows for v in r.values.values()}
    assert not audited & {v for r in rel.rows for v in r.values.values()}
    assert not table.source.count("press") and not table.quarterly.source.count("press")


def test_xbrl_for_the_same_quarter_wins_and_the_release_table_is_not_shown(bke):
    table = report_facts(XBRL_OLDER + XBRL_SAME_QUARTER + bke)
    assert table.release is None
    assert table.quarterly.years == ["Q3 FY2024", "Q3 FY2025"]
    assert table.quarterly.source.startswith("10-Q XBRL facts")
    assert [s for p in annual_sentences(table, "Buckle") for s in p if "earnings release" in s] == []
    # a later XBRL period (the 10-K) covers it too
    year = _xbrl("revenue", 2025, ("2024-02-04", "2025-02-01"), 1_218_000_000, "2025-03-28", "10-K")
    assert report_facts(XBRL_OLDER + [year] + bke).release is None


def test_a_release_alone_makes_no_report_table(bke):
    """No XBRL year: the report says it has no XBRL facts; the release does not stand in for them."""
    assert report_facts(bke) is None


def test_point_in_time_the_release_shows_only_once_filed(bke, tmp_path):
    """The filter flows/reports.py applies before report_facts: `not f.filed or f.filed <= as_of`.
    Every release fact carries its filing date, and it survives the facts.parquet round trip."""
    path = write_facts(XBRL_OLDER + bke, tmp_path / "facts.parquet")
    stored = read_facts(path)
    assert {(f.filed, f.extra["unaudited"]) for f in stored if f.source == "press-release"} == {("2024-11-22", True)}

    def as_of(day: str):
        return report_facts([f for f in stored if not f.filed or f.filed <= day])

    assert as_of("2024-11-21").release is None
    assert as_of("2024-11-22").release == report_facts(XBRL_OLDER + bke).release
    # a release fact with no filing date cannot be placed in time: it is never shown
    undated = [dataclasses.replace(f, filed="") for f in bke]
    assert report_facts(XBRL_OLDER + undated).release is None


def test_the_release_sentence_is_verified_and_a_changed_figure_is_flagged(table):
    paras = annual_sentences(table, "Buckle") + quarter_sentences(table.quarterly)
    assert [SENTENCE] in paras
    assert annual_sentences(table, "Buckle", release=False) + [[SENTENCE]] == annual_sentences(table, "Buckle")
    refs = fact_refs(table)
    assert {(r.line, r.period) for r in refs if r.value in (293_618_000, 838_490_000)} == {
        ("revenue", "Q3 FY2025"), ("revenue", "9M FY2025"),
    }  # fmt: skip
    for sentence in (s for p in paras for s in p):
        check = check_sentence(sentence, refs)
        assert check.verified and not check.unverified and not check.mismatched, sentence
    assert len(check_sentence(SENTENCE, refs).verified) == 4
    changed = check_sentence(SENTENCE.replace("$293,618,000", "$293,681,000"), refs)
    assert [m.text for m in changed.unverified] == ["$293,681,000"] and len(changed.verified) == 3
    # the right figure under the wrong period: Q3 FY2025's revenue said to be Q3 FY2024's
    moved = check_sentence("Revenue was $293,618,000 in Q3 FY2024.", refs)
    assert [m.text for m, _ in moved.mismatched] == ["$293,618,000"]
    assert "Revenue Q3 FY2025" in moved.mismatched[0][1]
    # nor does a release figure verify as the fiscal year's
    assert check_sentence("Revenue was $838,490,000 in FY2025.", refs).mismatched


def test_without_release_refs_the_sentence_would_not_verify(table):
    """The release's figures verify only through the release's own refs (not some XBRL value)."""
    xbrl_only = fact_refs(table.model_copy(update={"release": None}))
    check = check_sentence(SENTENCE, xbrl_only)
    assert not check.verified and len(check.unverified) == 4


def _report(table, cik: str = "0000885245") -> Report:
    paras = [
        Paragraph(text=" ".join(p) + " [1]", citations=[1], origin="code", cited=True)
        for p in annual_sentences(table, "The Buckle, Inc.") + quarter_sentences(table.quarterly)
    ]
    section = SectionReport(
        key="financials", title="Financial performance", status="published", paragraphs=paras,
        verdict=None, sources=[1],
    )  # fmt: skip
    return Report(
        ticker="BKE", company="The Buckle, Inc.", cik=cik, as_of="2024-11-25", run_id="run-test",
        generated_at="2024-11-25T03:00:00Z", model="test", status="published", sections=[section],
        facts=table, charts=financial_charts(table, ticker="BKE"), sources=[], warnings=[],
    )  # fmt: skip


def test_markdown_and_html_label_the_release_table_and_show_its_exact_figures(table):
    md, html = render_markdown(_report(table)), render_html(_report(table))
    for text in (md, html):
        assert HEADING in text
        assert "earnings release" in text and "unaudited" in text
        assert "never merged into the tables above" in text
        assert SENTENCE.replace("'", "&#39;") in text or SENTENCE in text
    # the release table comes after the XBRL tables, inside the financial section
    assert md.index("### Latest quarter") < md.index(HEADING) < md.index("## Sources")
    release_md = md[md.index(HEADING) : md.index("## Sources")]
    assert "| Line | Q3 FY2024 (to 2023-10-28) | Q3 FY2025 (to 2024-11-02) |" in release_md
    assert "Row as printed in the release" in release_md and "XBRL concept" not in release_md
    assert "$294M ($293,618,000)" in release_md and "$0.88" in release_md and "$838M ($838,490,000)" in release_md
    assert "$294M" not in md[: md.index(HEADING)]  # not in the audited tables
    release_html = html[html.index(HEADING) : html.index('id="sources"')]
    assert 'class="facts release"' in release_html
    assert '<data value="293618000" title="$293,618,000">$294M</data>' in release_html
    assert "press-release:SALES, Net of returns and allowances" in release_html
    assert "from the company's earnings release (8-K)" in html  # footer says where the figures came from
    assert BKE.name in release_md  # the exhibit file it was read from
    assert "sec.gov/Archives" not in release_md  # a file name is no accession: no made-up link


def test_a_release_read_from_the_full_submission_links_its_edgar_filing(tmp_path):
    """The same exhibit inside EDGAR's submission carries the accession number: the report links it."""
    path = bke_submission(tmp_path)
    table = report_facts(XBRL_OLDER + facts_from_press_release(path))
    rel = table.release
    assert (rel.accession, rel.form) == ("0000885245-24-000071", "8-K EX-99.1")  # from the part's TYPE
    url = "https://www.sec.gov/Archives/edgar/data/885245/000088524524000071/"
    assert edgar_url(rel.accession, "0000885245") == url
    md, html = render_markdown(_report(table)), render_html(_report(table))
    assert f"(<{url}>)" in md and f'<a href="{url}" rel="noopener noreferrer">filing on EDGAR</a>' in html
    assert "Latest earnings release (unaudited, 8-K EX-99.1 filed 2024-11-22)" in md
    assert edgar_url(rel.accession, "") is None and edgar_url(BKE.name, "0000885245") is None


def test_release_sentences_need_a_quarter_or_year_column(table):
    ytd_only = table.release.model_copy(
        update={"years": ["9M FY2024", "9M FY2025"], "labels": {k: v for k, v in table.release.labels.items() if "9M" in k}}
    )
    assert release_sentences(ytd_only) == []
    assert release_sentences(None) == []
    (para,) = release_sentences(table.release)
    assert para == [SENTENCE]


def test_in_the_report_context_the_release_paragraph_comes_last_and_cites_the_8k(tmp_path, table):
    """The release sentence is numbered against its own source (the 8-K), not the XBRL facts, and
    follows the annual and quarter paragraphs: it is the newest period."""
    from rag.retrieve import Retriever
    from reports.context import build_context
    from reports.facts_view import facts_prompt_text
    from reports.spec import SECTIONS
    from tests.fakes import HashEmbedder
    from tests.rag.test_store_retrieve import _doc, _store

    emb = HashEmbedder()
    _store(tmp_path, emb, [_doc("BKE", "Buckle operates specialty retail stores selling denim.", n=1)])
    ctx = build_context(
        "BKE", "The Buckle, Inc.", "0000885245", "2024-12-01", Retriever(tmp_path, emb),
        list(SECTIONS.values()), table, facts_prompt_text(table), "run1",
    )  # fmt: skip
    lead = next(p for p in ctx.sections if p.key == "financials").lead
    by_n = {s.n: s for s in ctx.sources}
    assert lead[-1].text.startswith("According to the company's earnings release (unaudited)")
    (cited,) = lead[-1].citations
    assert (by_n[cited].form, by_n[cited].date) == ("8-K", "2024-11-22")
    assert by_n[cited].title == "The Buckle, Inc. earnings release (8-K EX-99.1, unaudited) filed 2024-11-22"
    assert all(by_n[n].form == "XBRL" for p in lead[:-1] for n in p.citations)
    assert not lead[-1].numbers_unverified and not lead[-1].numbers_mismatched
