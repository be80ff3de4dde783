"""XBRL instance documents on three real EDGAR instances (tests/fixtures/xbrl, copied from the shared
sample data): values read by hand from the raw XML (e.g. Apple FY2023
`<us-gaap:RevenueFromContractWithCustomerExcludingAssessedTax contextRef="c-1" ...>383285000000`),
the same rows as the inline XBRL readers give for the periods both cover, bad input, and ingest."""

from __future__ import annotations

import gzip
import re
from functools import cache
from pathlib import Path

import pytest

from rag import facts as facts_mod
from rag.errors import SourceError
from rag.facts import facts_from_companyfacts, facts_from_inline_xbrl, read_facts
from rag.ingest import FACTS_FILE, IngestSummary, build_facts
from rag.sources import collect_skips
from rag.types import Fact
from rag.xbrl_instance import facts_from_instance, instance_files

ROOT = Path(__file__).resolve().parents[2]
XBRL = ROOT / "tests" / "fixtures" / "xbrl"
DATA = ROOT / "data" / "sec"
AAPL, TSLA, AMZN = "aapl-20230930_htm.xml.gz", "tsla-20240630_htm.xml.gz", "amzn-20221231_htm.xml.gz"
CF_AAPL = DATA / "companyfacts" / "companyfacts_CIK0000320193_AAPL.json.gz"
# lines every one of these filers reports (rag.facts.LINES may hold more: banks', insurers')
CORE = {"revenue", "gross_profit", "operating_income", "net_income", "eps_diluted", "operating_cash_flow", "capex"}


@pytest.fixture(scope="module")
def inst() -> dict[str, list[Fact]]:
    return {name: facts_from_instance(XBRL / name) for name in (AAPL, TSLA, AMZN)}


@cache
def inline(filing: str) -> tuple[Fact, ...]:
    """A shipped inline XBRL filing's facts, parsed once for the module."""
    return tuple(facts_from_inline_xbrl(DATA / "filings" / filing))


def raw(name: str) -> str:
    return gzip.decompress((XBRL / name).read_bytes()).decode()


def pick(facts: list[Fact], line: str, end: str, concept: str | None = None) -> Fact:
    found = [f for f in facts if f.line == line and f.period_end == end and concept in (None, f.concept)]
    assert len(found) == 1, found
    return found[0]


def same_row(f: Fact) -> tuple:
    """What an instance and an inline document of the filing must agree on (not file names/dates)."""
    return (f.ticker, f.line, f.concept, f.value, f.unit, f.fiscal_year, f.period_start, f.period_end,
            f.form, f.extra["period"], f.extra["decimals"])  # fmt: skip


@pytest.mark.parametrize(
    "name, line, end, concept, value",
    [
        (AAPL, "revenue", "2023-09-30", "RevenueFromContractWithCustomerExcludingAssessedTax", 383_285_000_000),
        (AAPL, "revenue", "2021-09-25", "RevenueFromContractWithCustomerExcludingAssessedTax", 365_817_000_000),
        (AAPL, "net_income", "2023-09-30", "NetIncomeLoss", 96_995_000_000),
        (AAPL, "eps_diluted", "2023-09-30", "EarningsPerShareDiluted", 6.13),
        (AAPL, "gross_profit", "2023-09-30", "GrossProfit", 169_148_000_000),
        (AAPL, "operating_cash_flow", "2023-09-30", "NetCashProvidedByUsedInOperatingActivities", 110_543_000_000),
        (AAPL, "capex", "2023-09-30", "PaymentsToAcquirePropertyPlantAndEquipment", 10_959_000_000),
        (TSLA, "revenue", "2024-06-30", "Revenues", 25_500_000_000),
        (TSLA, "net_income", "2024-06-30", "NetIncomeLoss", 1_478_000_000),
        (TSLA, "operating_income", "2024-06-30", "OperatingIncomeLoss", 1_605_000_000),
        (TSLA, "eps_diluted", "2024-06-30", "EarningsPerShareDiluted", 0.42),
        (AMZN, "net_income", "2022-12-31", "NetIncomeLoss", -2_722_000_000),
        (AMZN, "revenue", "2022-12-31", "RevenueFromContractWithCustomerExcludingAssessedTax", 513_983_000_000),
        (AMZN, "eps_diluted", "2022-12-31", "EarningsPerShareDiluted", -0.27),
        (AMZN, "capex", "2022-12-31", "PaymentsToAcquireProductiveAssets", 63_645_000_000),
    ],
)
def test_values_read_from_the_raw_xml(inst, name, line, end, concept, value):
    f = pick(inst[name], line, end, f"us-gaap:{concept}")
    assert f.value == value
    assert f.unit == ("USD/shares" if line == "eps_diluted" else "USD")


def test_apple_fy2023_metadata(inst):
    rev = pick(inst[AAPL], "revenue", "2023-09-30")
    assert (rev.ticker, rev.form, rev.fiscal_year, rev.period_start, rev.source) == (
        "AAPL", "10-K", 2023, "2022-09-25", "xbrl-instance",
    )  # fmt: skip
    assert (rev.filed, rev.accession) == ("", AAPL)  # an instance carries no filing date
    assert rev.extra == {"period": "annual", "context": "c-1", "decimals": "-6"}
    # one consolidated fact per line and fiscal year, for the three years of the statements
    lines = {f.line for f in inst[AAPL]}
    assert CORE <= lines <= set(facts_mod.LINES)
    assert sorted((f.line, f.fiscal_year) for f in inst[AAPL]) == sorted((ln, y) for ln in lines for y in (2021, 2022, 2023))


def test_standard_lines_are_read_from_rag_facts_at_call_time(monkeypatch):
    monkeypatch.setitem(facts_mod._CONCEPT_LINE, "us-gaap:CostOfGoodsAndServicesSold", "cost_of_revenue")
    facts = facts_from_instance(XBRL / AAPL)
    assert pick(facts, "cost_of_revenue", "2023-09-30").value == 214_137_000_000


def test_segment_contexts_are_dropped(inst):
    # iPhone net sales FY2023 are tagged with the same concept, in a ProductOrServiceAxis context
    assert re.search(r'contextRef="c-47"[^>]*>200583000000<', raw(AAPL))
    assert 200_583_000_000 not in {f.value for f in inst[AAPL]}
    consolidated = {"c-1", "c-20", "c-21"}  # the three fiscal-year contexts without a segment
    assert {f.extra["context"] for f in inst[AAPL]} == consolidated


def test_tesla_10q_keeps_three_month_quarters(inst):
    facts = inst[TSLA]
    assert {f.extra["period"] for f in facts} == {"quarter"} and {f.form for f in facts} == {"10-Q"}
    assert {(f.period_start, f.period_end) for f in facts} == {("2023-04-01", "2023-06-30"), ("2024-04-01", "2024-06-30")}
    # the six-month year-to-date revenue (46,801 in context c-1) is no quarter
    assert 46_801_000_000 not in {f.value for f in facts}
    assert {f.fiscal_year for f in facts if f.period_end == "2024-06-30"} == {2024}


@pytest.mark.parametrize(
    "name, filing, years, lines",
    [
        (AAPL, "aapl-10-k-2024-11-01.html.gz", {2022, 2023}, CORE),
        (AMZN, "amzn-10-k-2025-02-07.html.gz", {2022}, CORE - {"gross_profit"}),  # Amazon tags no GrossProfit
    ],
)
def test_same_rows_as_inline_xbrl_for_the_years_both_report(inst, name, filing, years, lines):
    """No inline document of these same filings ships; the next 10-K re-reports some of their years.
    Wherever both tag a concept for a period, the rows are identical but for file name and date."""

    def by_key(facts: list[Fact]) -> dict[tuple[str, str, str], tuple]:
        return {(f.concept, f.period_start, f.period_end): same_row(f) for f in facts}

    ours, theirs = by_key(inst[name]), by_key(list(inline(filing)))
    common = ours.keys() & theirs.keys()
    assert {k: ours[k] for k in common} == {k: theirs[k] for k in common}
    assert {ours[k][5] for k in common} == years
    assert {(ours[k][1], ours[k][5]) for k in common} >= {(line, y) for line in lines for y in years}


def test_tesla_q2_2024_against_the_2025_10q(inst):
    """Tesla's Q2 2025 10-Q re-reports Q2 2024: revenue, gross profit and operating income as filed,
    net income and EPS restated (1,478 -> 1,400 million; 0.42 -> 0.40) -- a real restatement."""
    later = list(inline("tsla-10-q-2025-07-24.html.gz"))
    q2 = ("2024-04-01", "2024-06-30")
    ours = {same_row(f) for f in inst[TSLA] if (f.period_start, f.period_end) == q2}
    theirs = {same_row(f) for f in later if (f.period_start, f.period_end) == q2}
    assert {r[1] for r in ours & theirs} == {"revenue", "gross_profit", "operating_income"}
    assert {r[1] for r in ours ^ theirs} == {"net_income", "eps_diluted"}
    assert pick(later, "net_income", "2024-06-30", "us-gaap:NetIncomeLoss").value == 1_400_000_000


def test_apple_matches_companyfacts(inst):
    cf = {(f.concept, f.value, f.unit, f.period_start, f.period_end, f.fiscal_year): f
          for f in facts_from_companyfacts(CF_AAPL)}  # fmt: skip
    for f in inst[AAPL]:
        assert (f.concept, f.value, f.unit, f.period_start, f.period_end, f.fiscal_year) in cf, f
    rev = cf[("us-gaap:RevenueFromContractWithCustomerExcludingAssessedTax", 383_285_000_000, "USD",
              "2022-09-25", "2023-09-30", 2023)]  # fmt: skip
    assert (rev.form, rev.accession) == ("10-K", "0000320193-23-000106")


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_bytes(gzip.compress(text.encode()) if name.endswith(".gz") else text.encode())
    return path


def test_prefixes_are_resolved_by_namespace_uri(tmp_path, inst):
    text = raw(AAPL)
    renamed = write(tmp_path, "aapl-20230930_htm.xml", re.sub(r"\bus-gaap:", "gaap:", text).replace("xmlns:us-gaap=", "xmlns:gaap="))
    assert [same_row(f) for f in facts_from_instance(renamed)] == [same_row(f) for f in inst[AAPL]]
    # "us-gaap:" spelled right but bound to another namespace is not US GAAP
    other = write(tmp_path, "aapl-20230931_htm.xml", text.replace('xmlns:us-gaap="http://fasb.org/us-gaap/2023"', 'xmlns:us-gaap="http://example.com/not-gaap"'))
    with pytest.raises(SourceError, match="no consolidated facts of the standard lines"):
        facts_from_instance(other)


def test_ticker_and_accession_from_the_name(tmp_path):
    text = raw(TSLA)
    no_symbol = re.sub(r"<dei:TradingSymbol[^>]*>TSLA</dei:TradingSymbol>", "", text)
    assert "dei:TradingSymbol" not in no_symbol
    facts = facts_from_instance(write(tmp_path, "tsla-20240630_htm.xml", no_symbol))
    assert {f.ticker for f in facts} == {"TSLA"}
    with pytest.raises(SourceError, match="no dei:TradingSymbol and no ticker in the file name"):
        facts_from_instance(write(tmp_path, "d731871d10q_htm.xml", no_symbol))
    assert {g.ticker for g in facts_from_instance(XBRL / TSLA, ticker="tsla2")} == {"TSLA2"}
    # Apple's FY2023 10-K is accession 0000320193-23-000106, filed 2023-11-03 (companyfacts says so)
    named = tmp_path / "0000320193-23-000106.2023-11-03_htm.xml.gz"
    named.write_bytes((XBRL / AAPL).read_bytes())
    f = facts_from_instance(named)[0]
    assert (f.ticker, f.accession, f.filed) == ("AAPL", "0000320193-23-000106", "2023-11-03")


C1_REVENUE = r'(<us-gaap:RevenueFromContractWithCustomerExcludingAssessedTax contextRef="c-1"[^>]*)>383285000000<'


@pytest.mark.parametrize(
    "replacement, skips",
    [(r'\1 xsi:nil="true"><', 0), (r"\1>383,285<", 1)],  # nil: no value, by design; "383,285": unreadable
)
def test_nil_and_unreadable_values_are_dropped(tmp_path, replacement, skips):
    text, n = re.subn(C1_REVENUE, replacement, raw(AAPL))
    assert n == 3  # the statement, the segment note and the revenue note tag it
    with collect_skips() as notes:
        facts = facts_from_instance(write(tmp_path, "aapl-20230930_htm.xml", text))
    assert len(facts) == len(facts_from_instance(XBRL / AAPL)) - 1
    assert 383_285_000_000 not in {f.value for f in facts}
    assert len(notes) == skips and all("383,285" in note for note in notes)


def _truncated_gz(tmp_path: Path) -> Path:
    data = (XBRL / AAPL).read_bytes()
    return write_bytes(tmp_path / "aapl-20230930_htm.xml.gz", data[: len(data) // 2])


def write_bytes(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    "make, reason",
    [
        (lambda p: write_bytes(p / "x_htm.xml", b""), "empty file"),
        (lambda p: write_bytes(p / "x_htm.xml", b"Revenues,383285\n"), "not well-formed XML"),
        (_truncated_gz, "corrupt or truncated gzip"),
        (lambda p: write_bytes(p / "aapl_htm.xml.gz", b"<xbrl/>"), "named .gz but is not gzip"),
        (lambda p: write(p, "aapl-20230930_htm.xml", raw(AAPL)[:400_000]), "not well-formed XML"),
        (lambda p: write_bytes(p / "aapl-10-k.xml", gzip.decompress((DATA / "filings" / "aapl-10-k-2024-11-01.html.gz").read_bytes())), "root element <html>"),
        (lambda p: write(p, "aapl-20230930_cal.xml", '<link:linkbase xmlns:link="http://www.xbrl.org/2003/linkbase"/>'), "root element <linkbase>"),
        (lambda p: write(p, "aapl-20230930_htm.xml", raw(AAPL).replace(">10-K</dei:DocumentType>", ">8-K</dei:DocumentType>")), "instance of a 8-K"),
        (lambda p: write(p, "aapl-20230930_htm.xml", re.sub(r"<dei:DocumentType[^>]*>10-K</dei:DocumentType>", "", raw(AAPL))), "without dei:DocumentType"),
        (lambda p: write(p, "aapl-20230930_htm.xml", re.sub(r"<us-gaap:(\w+)\s[^>]*>[^<]*</us-gaap:\1>", "", raw(AAPL))), "no consolidated facts"),
    ],
)
def test_bad_input_raises_source_error(tmp_path, make, reason):
    path = make(tmp_path)
    with pytest.raises(SourceError, match=re.escape(reason)) as err:
        facts_from_instance(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


# --- ingest ----------------------------------------------------------------------------------------


def data_dir(tmp_path: Path, files: dict[str, bytes]) -> Path:
    root = tmp_path / "data"
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return root


def test_build_facts_reads_instances_from_both_folders(tmp_path):
    broken = (XBRL / AMZN).read_bytes()
    root = data_dir(tmp_path, {
        f"sec/xbrl/{AAPL}": (XBRL / AAPL).read_bytes(),
        f"sec/filings/{TSLA}": (XBRL / TSLA).read_bytes(),
        f"sec/xbrl/{AMZN}": broken[: len(broken) // 3],
        "sec/xbrl/aapl-20230930_lab.xml": b"<link:linkbase xmlns:link='http://www.xbrl.org/2003/linkbase'/>",
    })  # fmt: skip
    assert [p.name for p in instance_files(root)] == [TSLA, AAPL, AMZN]  # the label linkbase is no instance
    summary, index = IngestSummary(), tmp_path / "index"
    index.mkdir()
    facts = build_facts(root, index, summary, lambda msg: None)
    stored = read_facts(index / FACTS_FILE)
    assert sorted(map(same_row, stored)) == sorted(map(same_row, facts))
    assert {(f.ticker, f.source) for f in stored} == {("AAPL", "xbrl-instance"), ("TSLA", "xbrl-instance")}
    assert pick(stored, "revenue", "2023-09-30").value == 383_285_000_000
    assert pick(stored, "revenue", "2024-06-30", "us-gaap:Revenues").value == 25_500_000_000
    assert [(f.file, f.ticker, f.source) for f in summary.failures] == [(f"sec/xbrl/{AMZN}", "AMZN", "xbrl-instance")]
    assert "corrupt or truncated gzip" in summary.failures[0].error
    # second run: served from the per-digest cache, same table, the broken file still reported
    again = IngestSummary()
    assert sorted(map(same_row, build_facts(root, index, again, lambda msg: None))) == sorted(map(same_row, facts))
    assert [f.file for f in again.failures] == [f"sec/xbrl/{AMZN}"]


def test_build_facts_counts_a_filing_once_and_prefers_companyfacts(tmp_path):
    aapl, amzn = (XBRL / AAPL).read_bytes(), (XBRL / AMZN).read_bytes()
    root = data_dir(tmp_path, {
        f"sec/xbrl/{AAPL}": aapl,
        f"sec/filings/{AAPL}": aapl,  # the same instance saved twice: one filing
        f"sec/xbrl/{AMZN}": amzn,
        "sec/filings/amzn-10-k-2025-02-07.html.gz": (DATA / "filings" / "amzn-10-k-2025-02-07.html.gz").read_bytes(),
    })  # fmt: skip
    index = tmp_path / "index"
    index.mkdir()
    facts = build_facts(root, index, IngestSummary(), lambda msg: None)
    assert len([f for f in facts if f.ticker == "AAPL"]) == len(facts_from_instance(XBRL / AAPL))
    # AMZN: the FY2024 10-K and the FY2022 instance are two filings; both keep their FY2022 rows
    fy22 = [f for f in facts if f.ticker == "AMZN" and f.line == "net_income" and f.period_end == "2022-12-31"]
    assert sorted(f.source for f in fy22) == ["inline-xbrl", "xbrl-instance"] and {f.value for f in fy22} == {-2_722_000_000}
    # with Apple's companyfacts present the instance is not used for AAPL
    (root / "sec" / "companyfacts").mkdir()
    (root / "sec" / "companyfacts" / CF_AAPL.name).write_bytes(CF_AAPL.read_bytes())
    facts = build_facts(root, index, IngestSummary(), lambda msg: None)
    assert {f.source for f in facts if f.ticker == "AAPL"} == {"companyfacts"}


def test_build_facts_reports_partly_read_instances_every_run(tmp_path):
    text = raw(TSLA).replace('unitRef="usd">25500000000<', 'unitRef="usd">25.5 bn<')
    root = data_dir(tmp_path, {f"sec/xbrl/{TSLA}": gzip.compress(text.encode())})
    index = tmp_path / "index"
    index.mkdir()
    for _ in range(2):  # not cached while partly unreadable, so the note survives the next run
        summary = IngestSummary()
        facts = build_facts(root, index, summary, lambda msg: None)
        assert [(s.file, s.source) for s in summary.skips] == [(f"sec/xbrl/{TSLA}", "xbrl-instance")]
        assert "25.5 bn" in summary.skips[0].reason and 25_500_000_000 not in {f.value for f in facts}
