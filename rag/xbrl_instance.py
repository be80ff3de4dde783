"""XBRL instance documents (`aapl-20230930_htm.xml`, plain or gzipped) -> the same `Fact`s as inline XBRL.

EDGAR serves, next to every inline XBRL 10-K/10-Q, the XBRL instance extracted from it; users who
download "the XBRL" get that file. It holds the same facts as the inline document's
`ix:nonFraction` tags, so it must give the same rows: same standard lines (read from
`rag.facts` at call time, so lines added there apply here too), same consolidated-only contexts,
same period kinds and fiscal years. What differs is the encoding: values are plain decimals
already in full units (no `scale`, no `format`, no `sign`: the sign is in the value), and the
filing date is not in the file at all.

Namespace prefixes are resolved by URI (a filer may spell us-gaap any way it likes); lxml parses
a 20 MB instance in a fraction of a second, and with entity expansion and network access off.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from pathlib import Path

from lxml import etree

from rag import facts as facts_mod
from rag.errors import SourceError
from rag.facts import _fiscal_year, _parse_fye, _period_kind
from rag.sources import skipped
from rag.sources.html_text import decompress, read_raw
from rag.types import Fact

SOURCE = "xbrl-instance"
XBRLI = "http://www.xbrl.org/2003/instance"
_NIL = "{http://www.w3.org/2001/XMLSchema-instance}nil"
# Namespace URI fragment -> the prefix `rag.facts.LINES` spells (the year in the URI varies).
_CANONICAL = (("fasb.org/us-gaap/", "us-gaap"), ("xbrl.sec.gov/dei/", "dei"), ("fasb.org/srt/", "srt"))
# EDGAR's instance names: "<ticker>-<period end yyyymmdd>_htm.xml"; an accession or an ISO filing date
# in the name (a user's own naming) is used when present.
_NAME_TICKER_RE = re.compile(r"^(?P<ticker>[a-z]{1,6}(?:\.[a-z])?)-\d{8}(?!\d)", re.I)
_NAME_ACCESSION_RE = re.compile(r"(?<!\d)(\d{10})-?(\d{2})-?(\d{6})(?!\d)")
_NAME_DATE_RE = re.compile(r"(?<!\d)(\d{4}-\d{2}-\d{2})(?!\d)")
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, remove_comments=True, remove_pis=True)


def _q(name: str) -> str:
    return f"{{{XBRLI}}}{name}"


@dataclass(frozen=True)
class InstanceMeta:
    """Who, what and when of one instance, from its dei cover facts and its file name."""

    ticker: str
    form: str  # dei:DocumentType, e.g. "10-K", "10-Q", "10-K/A"
    period_end: str  # dei:DocumentPeriodEndDate (ISO) or ""
    fye: tuple[int, int] | None  # fiscal year end (month, day)
    filed: str  # only when the file name has an ISO date; instances do not carry one
    accession: str  # from the file name, else the file name itself


def _root(path: Path) -> etree._Element:
    raw = decompress(read_raw(path), path)
    if not raw.strip():
        raise SourceError(f"{path}: empty file (expected an XBRL instance document)")
    try:
        root = etree.fromstring(raw, _PARSER)
    except etree.XMLSyntaxError as e:
        first = (str(e).splitlines() or [type(e).__name__])[0]
        raise SourceError(f"{path}: not well-formed XML ({first}); re-download the instance") from e
    if root.tag != _q("xbrl"):
        raise SourceError(
            f"{path}: not an XBRL instance (root element <{etree.QName(root).localname}>, expected"
            " xbrli:xbrl); an inline XBRL .htm belongs in sec/filings/ as <ticker>-10-k-<date>.htm"
        )
    return root


@lru_cache(maxsize=256)
def _prefix(uri: str, spelled: str) -> str:
    """The prefix `rag.facts.LINES` uses for a namespace: "us-gaap"/"dei"/"srt" where the URI says so,
    else the document's own spelling; "us-gaap" bound to another URI is no US GAAP and keeps its URI."""
    canon = next((canon for frag, canon in _CANONICAL if frag in uri), None)
    return canon or (f"{{{uri}}}" if spelled in {c for _, c in _CANONICAL} else spelled)


def _concept(el: etree._Element) -> str:
    qn = etree.QName(el)
    return f"{_prefix(qn.namespace or '', el.prefix or '')}:{qn.localname}"


def _contexts(root: etree._Element) -> dict[str, tuple[str, str]]:
    """Context id -> (start, end) of consolidated contexts; instants as ("", date).

    Contexts with a segment or scenario (dimension members: a product line, a class of stock, a
    region) are explicitly dropped: the facts table holds consolidated totals only, exactly as
    the inline XBRL reader does. Dropping them is by design, so it is not reported as a skip.
    """
    out: dict[str, tuple[str, str]] = {}
    for ctx in root.iterchildren(_q("context")):
        if ctx.find(f".//{_q('segment')}") is not None or ctx.find(f".//{_q('scenario')}") is not None:
            continue
        period = ctx.find(_q("period"))
        if period is None:
            continue
        start, end, instant = (period.findtext(_q(t)) for t in ("startDate", "endDate", "instant"))
        if start is not None and end is not None:
            out[ctx.get("id", "")] = (start.strip(), end.strip())
        elif instant is not None:
            out[ctx.get("id", "")] = ("", instant.strip())
    return out


def _units(root: etree._Element) -> dict[str, str]:
    """Unit id -> "USD", "shares", "USD/shares" (measure local names, divide as a/b)."""

    def measure(el: etree._Element | None) -> str:
        text = el.findtext(_q("measure")) if el is not None else None
        return (text or "").strip().split(":")[-1]

    out: dict[str, str] = {}
    for unit in root.iterchildren(_q("unit")):
        div = unit.find(_q("divide"))
        if div is not None:
            num, den = measure(div.find(_q("unitNumerator"))), measure(div.find(_q("unitDenominator")))
            out[unit.get("id", "")] = f"{num}/{den}"
        else:
            out[unit.get("id", "")] = measure(unit)
    return out


def _dei(root: etree._Element) -> dict[str, list[tuple[str, str]]]:
    """dei cover facts: local name -> [(text, contextRef)] in document order."""
    out: dict[str, list[tuple[str, str]]] = {}
    for el in root.iterchildren(etree.Element):
        concept = _concept(el)
        if concept.startswith("dei:"):
            out.setdefault(concept[4:], []).append(((el.text or "").strip(), el.get("contextRef", "")))
    return out


def _ticker(path: Path, symbols: list[tuple[str, str]], contexts: dict[str, tuple[str, str]]) -> str:
    """dei:TradingSymbol; of several (share classes, notes), the one the file name names, else the
    one in a consolidated context, else the first; the file name when there is no symbol."""
    m = _NAME_TICKER_RE.match(path.name)
    named = m.group("ticker").upper() if m else ""
    found = [s.upper() for s, _ in symbols if s]
    if named and (named in found or not found):
        return named
    consolidated = [s.upper() for s, ctx in symbols if s and ctx in contexts]
    return (consolidated or found or [""])[0]


def instance_meta(path: Path, root: etree._Element, ticker: str | None = None) -> InstanceMeta:
    """Form, fiscal year end and ticker from the dei cover facts; filed date and accession from the name."""
    dei = _dei(root)

    def first(name: str) -> str:
        return next((text for text, _ in dei.get(name, []) if text), "")

    form = first("DocumentType").upper()
    if not form:
        raise SourceError(f"{path}: XBRL instance without dei:DocumentType (cannot tell a 10-K from a 10-Q)")
    period_end = first("DocumentPeriodEndDate")
    fye = _parse_fye(first("CurrentFiscalYearEndDate"))
    if fye is None and form.startswith("10-K") and re.fullmatch(r"\d{4}-\d{2}-\d{2}", period_end):
        fye = _parse_fye(period_end[5:])  # a 10-K's period end is its fiscal year end ("09-30")
    symbol = (ticker or _ticker(path, dei.get("TradingSymbol", []), _contexts(root))).upper()
    if not symbol:
        raise SourceError(
            f"{path}: no dei:TradingSymbol and no ticker in the file name"
            " (name it like aapl-20230930_htm.xml)"
        )
    acc = _NAME_ACCESSION_RE.search(path.name)
    filed = _NAME_DATE_RE.search(path.name)
    return InstanceMeta(
        ticker=symbol,
        form=form,
        period_end=period_end,
        fye=fye,
        filed=filed.group(1) if filed else "",
        accession="-".join(acc.groups()) if acc else path.name,
    )


def _value(el: etree._Element) -> Decimal | None:
    """The fact's value as a finite decimal; None when the text is not a number."""
    try:
        value = Decimal((el.text or "").strip())
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def facts_from_instance(path: Path, ticker: str | None = None) -> list[Fact]:
    """Standard-line facts of one XBRL instance of a 10-K/10-Q, as `facts_from_inline_xbrl` gives them.

    Contexts with segment/scenario dimension members are explicitly dropped (consolidated totals
    only); `xsi:nil` facts are skipped; a fact repeated in the same context and unit is kept once.
    Facts of a standard line whose value or period cannot be read are dropped and reported through
    `rag.sources.skipped`. Source is "xbrl-instance"; `extra` holds period kind, context and decimals.
    """
    path = Path(path)
    root = _root(path)
    meta = instance_meta(path, root, ticker)
    if not meta.form.startswith(("10-K", "10-Q")):
        raise SourceError(
            f"{path}: XBRL instance of a {meta.form}; only 10-K and 10-Q instances give the annual and"
            " quarterly statement lines"
        )
    concept_line = facts_mod._CONCEPT_LINE  # at call time: lines added to rag.facts apply here too
    contexts, units = _contexts(root), _units(root)
    seen: set[tuple[str, str, str]] = set()
    bad: list[str] = []
    facts: list[Fact] = []
    for el in root.iterchildren(etree.Element):
        concept = _concept(el)
        line = concept_line.get(concept)
        ctx, unit_id = el.get("contextRef", ""), el.get("unitRef", "")
        if line is None or ctx not in contexts or el.get(_NIL) in ("true", "1"):
            continue
        start, end = contexts[ctx]
        try:
            kind = _period_kind(meta.form, start, end)
        except ValueError:
            bad.append(f"{concept} in context {ctx}: period {start or '-'}..{end!r}")
            continue
        if kind is None or (concept, ctx, unit_id) in seen:
            continue
        value = _value(el)
        if value is None:
            bad.append(f"{concept} in context {ctx}: value {(el.text or '').strip()[:40]!r}")
            continue
        seen.add((concept, ctx, unit_id))
        facts.append(
            Fact(
                ticker=meta.ticker,
                line=line,
                concept=concept,
                value=float(value),
                unit=units.get(unit_id, unit_id),
                fiscal_year=_fiscal_year(end, kind, meta.fye),
                period_start=start,
                period_end=end,
                form=meta.form,
                filed=meta.filed,
                accession=meta.accession,
                source=SOURCE,
                extra={"period": kind, "context": ctx, "decimals": el.get("decimals", "")},
            )
        )
    if bad:
        skipped(f"{len(bad)} standard-line facts unreadable and dropped (first: {bad[0]})")
    if not facts:
        raise SourceError(
            f"{path}: XBRL instance ({meta.form}) has no consolidated facts of the standard lines"
            f" ({', '.join(sorted(set(concept_line.values())))})"
        )
    return sorted(facts, key=lambda f: (f.line, f.period_end, f.concept))


# --- discovery and de-duplication, for rag.ingest.build_facts --------------------------------------

# EDGAR names instances "<ticker>-<yyyymmdd>_htm.xml"; in sec/filings/ only that suffix is taken, so
# other XML a user keeps there is not mistaken for an instance. In sec/xbrl/ every .xml is one, except
# the linkbases EDGAR ships beside it (calculation, definition, label, presentation), which hold no facts.
INSTANCE_PATTERNS = (
    "sec/xbrl/*.xml",
    "sec/xbrl/*.xml.gz",
    "sec/filings/*_htm.xml",
    "sec/filings/*_htm.xml.gz",
)
_LINKBASE_RE = re.compile(r"_(cal|def|lab|pre)\.xml(\.gz)?$", re.I)
FilingKey = tuple[str, str, str]
FactKey = tuple[str, str, str, str, float]


def instance_files(data_dir: Path) -> list[Path]:
    """Instance documents under the data dir, sorted and de-duplicated (reproducible ingest order)."""
    found = {p for pattern in INSTANCE_PATTERNS for p in Path(data_dir).glob(pattern) if p.is_file()}
    return sorted(p for p in found if not _LINKBASE_RE.search(p.name))


def _filing_key(rows: list[Fact]) -> FilingKey:
    """(ticker, form, latest period end): what an inline document and the instance extracted from it
    share, while the filed date and accession (file names) differ."""
    return (rows[0].ticker, rows[0].form, max(f.period_end for f in rows)) if rows else ("", "", "")


def _fact_key(f: Fact) -> FactKey:
    return (f.concept, f.unit, f.period_start, f.period_end, f.value)


def note_rows(seen: dict[FilingKey, set[FactKey]], rows: list[Fact]) -> list[Fact]:
    """Remember one file's rows as its filing's; returns them unchanged."""
    seen.setdefault(_filing_key(rows), set()).update(_fact_key(f) for f in rows)
    return rows


def new_rows(seen: dict[FilingKey, set[FactKey]], rows: list[Fact]) -> list[Fact]:
    """One file's rows minus those another copy of the SAME filing (its inline document, the same
    instance saved twice) already gave: same concept, unit, period and value are kept once. Other
    filings' re-reported comparatives stay, as they do between inline documents."""
    have = seen.get(_filing_key(rows), set())
    out = [f for f in rows if _fact_key(f) not in have]
    note_rows(seen, rows)
    return out
