"""Earnings press releases (8-K EX-99.1) -> press-release Facts, on the real Buckle release and the
real non-earnings 8-Ks of the shared data (which must give none)."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from rag.errors import SourceError
from rag.press_facts import facts_from_press_release
from rag.sources import collect_skips

ROOT = Path(__file__).resolve().parents[2]
FIX = ROOT / "tests" / "fixtures" / "sec8k"
SHARED_8K = Path("/work/shared/data/sec/8-K")
BKE = FIX / "bke-8-k.BuckleInc.8-K.EX99.1.html.gz"

Q3_24, Q3_23 = ("2024-08-04", "2024-11-02"), ("2023-07-30", "2023-10-28")  # thirteen weeks = 91 days
YTD_24, YTD_23 = ("2024-02-04", "2024-11-02"), ("2023-01-29", "2023-10-28")  # thirty-nine weeks
# Checked cell by cell against the printed CONSOLIDATED STATEMENTS OF INCOME (amounts in thousands
# except per share): the release's "$293.6 million" net sales and "$0.88" diluted EPS are Q3 FY2024.
BKE_TABLE = {
    ("revenue", Q3_24): 293_618_000, ("revenue", Q3_23): 303_457_000,
    ("revenue", YTD_24): 838_490_000, ("revenue", YTD_23): 878_719_000,
    ("gross_profit", Q3_24): 140_071_000, ("gross_profit", Q3_23): 147_215_000,
    ("gross_profit", YTD_24): 393_302_000, ("gross_profit", YTD_23): 418_884_000,
    ("operating_income", Q3_24): 54_483_000, ("operating_income", Q3_23): 64_065_000,
    ("operating_income", YTD_24): 145_139_000, ("operating_income", YTD_23): 174_556_000,
    ("net_income", Q3_24): 44_172_000, ("net_income", Q3_23): 51_762_000,
    ("net_income", YTD_24): 118_270_000, ("net_income", YTD_23): 140_338_000,
    ("eps_diluted", Q3_24): 0.88, ("eps_diluted", Q3_23): 1.04,
    ("eps_diluted", YTD_24): 2.35, ("eps_diluted", YTD_23): 2.81,
}  # fmt: skip
LABELS = {
    "revenue": "SALES, Net of returns and allowances",
    "gross_profit": "Gross profit",
    "operating_income": "INCOME FROM OPERATIONS",
    "net_income": "NET INCOME",
    "eps_diluted": "EARNINGS PER SHARE: Diluted",  # the row "Diluted" under its group heading
}


def _facts(path: Path):
    with collect_skips() as skips:
        facts = facts_from_press_release(path)
    return facts, skips


def _mutated(tmp_path: Path, old: bytes, new: bytes, count: int = -1) -> Path:
    raw = gzip.decompress(BKE.read_bytes())
    assert old in raw
    path = tmp_path / "bke-8-k.BuckleInc.8-K.EX99.1.html"
    path.write_bytes(raw.replace(old, new, count))
    return path


def test_bke_release_every_income_statement_value():
    facts, skips = _facts(BKE)
    assert skips == []
    got = {(f.line, (f.period_start, f.period_end)): f.value for f in facts}
    assert got == BKE_TABLE
    for f in facts:
        assert (f.ticker, f.form, f.filed, f.source) == ("BKE", "8-K", "2024-11-22", "press-release")
        assert f.accession == BKE.name  # a standalone exhibit carries no accession number
        assert f.concept == f"press-release:{LABELS[f.line]}"
        assert f.unit == ("USD/shares" if f.line == "eps_diluted" else "USD")
        kind = "quarter" if (f.period_start, f.period_end) in (Q3_24, Q3_23) else "ytd"
        assert f.extra == {"period": kind, "unaudited": True, "table": "CONSOLIDATED STATEMENTS OF INCOME"}
        # Fiscal year ends the day before the 39-week start (Feb 3): rag.facts convention names
        # the year by its end, so the quarter to Nov 2, 2024 is FY2025 (Buckle says "fiscal 2024").
        assert f.fiscal_year == (2025 if f.period_end == "2024-11-02" else 2024)


def test_shared_copy_reads_the_same_as_the_fixture():
    shared, _ = _facts(SHARED_8K / "bke-8-k.BuckleInc.8-K.EX99.1.html")
    fixture, _ = _facts(BKE)
    assert [(f.line, f.period_end, f.value) for f in shared] == [(f.line, f.period_end, f.value) for f in fixture]


def bke_submission(folder: Path) -> Path:
    """The real exhibit file is EDGAR's own <DOCUMENT> block (TYPE EX-99.1, SEQUENCE 2); put after a
    header and a primary document it is a full submission (`<folder>/bke-8-k.<accession>.txt.gz`)."""
    exhibit = gzip.decompress(BKE.read_bytes())
    assert exhibit.startswith(b"<DOCUMENT>\n<TYPE>EX-99.1\n<SEQUENCE>2\n")
    raw = (
        b"<SEC-DOCUMENT>0000885245-24-000071.txt : 20241122\n<SEC-HEADER>\n"
        b"ACCESSION NUMBER:\t\t0000885245-24-000071\nCONFORMED SUBMISSION TYPE:\t8-K\n"
        b"CONFORMED PERIOD OF REPORT:\t20241122\nFILED AS OF DATE:\t\t20241122\n"
        b"\t\tCOMPANY CONFORMED NAME:\t\t\tBUCKLE INC\n</SEC-HEADER>\n"
        b"<DOCUMENT>\n<TYPE>8-K\n<SEQUENCE>1\n<FILENAME>bke.htm\n<TEXT>\n"
        b"<html><body><p>Item 2.02</p></body></html>\n</TEXT>\n</DOCUMENT>\n"
        + exhibit.rstrip()
        + (b"" if exhibit.rstrip().endswith(b"</DOCUMENT>") else b"\n</DOCUMENT>")
        + b"\n</SEC-DOCUMENT>\n"
    )
    path = folder / "bke-8-k.0000885245-24-000071.txt.gz"
    path.write_bytes(gzip.compress(raw))
    return path


def test_release_inside_a_full_submission(tmp_path):
    """Path (b): the release inside a full submission. Filed date and accession come from the header."""
    path = bke_submission(tmp_path)
    facts, skips = _facts(path)
    assert skips == []
    assert {(f.line, (f.period_start, f.period_end)): f.value for f in facts} == BKE_TABLE
    assert {(f.ticker, f.accession, f.filed) for f in facts} == {("BKE", "0000885245-24-000071", "2024-11-22")}
    assert {f.extra["exhibit"] for f in facts} == {"EX-99.1"}  # the part's TYPE names the exhibit


@pytest.mark.parametrize(
    ("name", "note"),
    [
        ("nvda-8-k.0001045810-26-000024.txt.gz", "no EX-99 exhibit"),
        ("meta-8-k.0001628280-25-058337.txt.gz", "no EX-99 exhibit"),
        ("jpm-8-k.0000019617-26-000241.txt.gz", "no income-statement table"),  # EX-99.1 is two JPEG pages
        ("nvda-8-k.nvda-20260302.htm", "no income-statement table"),  # 5.02 pay table ($4,000,000) is no statement
        ("meta-8-k.meta-20251219.htm", "no income-statement table"),
        ("jpm-8-k.jpm-20260624.htm", "no income-statement table"),
        ("orcl-8-k.Oracle.8-K.html", "no income-statement table"),  # 5.07 vote counts
        ("bke-8-k.BuckleInc.8-K.html", "no income-statement table"),  # Item 2.02 text; figures are in EX-99.1
    ],
)
def test_8ks_that_are_not_earnings_releases_give_no_facts(name, note):
    facts, skips = _facts(SHARED_8K / name)
    assert facts == []
    assert len(skips) == 1 and note in skips[0]


def test_a_table_without_a_printed_scale_is_not_read(tmp_path):
    path = _mutated(tmp_path, b"(Amounts in Thousands Except Per Share Amounts)", b"(Unaudited figures)", 1)
    facts, skips = _facts(path)
    assert facts == [] and "prints no scale" in skips[0]


def test_month_based_quarter_on_a_52_53_week_date_is_dropped_not_guessed(tmp_path):
    """ "Three Months Ended November 2" on a week calendar may be 13 or 14 weeks: no start, no fact."""
    path = _mutated(tmp_path, b"Thirteen Weeks Ended", b"Three Months Ended")
    facts, _ = _facts(path)
    assert facts and {(f.period_start, f.period_end) for f in facts} == {YTD_24, YTD_23}


def test_parentheses_are_negative_and_a_dash_is_zero(tmp_path):
    path = _mutated(tmp_path, b">44,172&#160;<", b">(44,172)<")
    path.write_bytes(path.read_bytes().replace(b">51,762&#160;<", b">&#8212;<"))
    got = {(f.line, f.period_end): f.value for f in _facts(path)[0] if f.period_start in (Q3_24[0], Q3_23[0])}
    assert got[("net_income", "2024-11-02")] == -44_172_000
    assert got[("net_income", "2023-10-28")] == 0
    assert got[("revenue", "2024-11-02")] == 293_618_000


def test_a_line_printed_twice_with_different_values_is_dropped(tmp_path):
    path = _mutated(tmp_path, b">Gross profit<", b">Total revenues<")  # a second "revenue" row, other values
    facts, skips = _facts(path)
    assert not [f for f in facts if f.line == "revenue"] and [f for f in facts if f.line == "net_income"]
    assert any("printed with two different values" in s for s in skips)


def test_not_a_press_release(tmp_path):
    with pytest.raises(SourceError, match="10-K is not a press release"):
        facts_from_press_release(ROOT / "data" / "sec" / "filings" / "aapl-10-k-2024-11-01.html.gz")
    bad = tmp_path / "x-8-k.0000000001-24-000001.txt"
    bad.write_text("just text, no SGML")
    with pytest.raises(SourceError, match="not an EDGAR full submission"):
        facts_from_press_release(bad)
