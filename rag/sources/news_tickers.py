"""Which companies a news article is about: per-ticker file names, ticker fields, cashtags, names.

Per-ticker files (`news/AAPL.csv`, `news/brk-b.json`) are about the ticker in their name, as long
as the name is an SEC ticker (when `sec/company_tickers.json[.gz]` is in the data dir; without it,
any ticker-shaped name counts). Any other name (`news/feed-2025-05.json`) is a multi-company feed,
and each article is tagged from
1. its own ticker field (`ticker`, `tickers`, `symbols`, ...) when it has one, else
2. what the title and body say: cashtags (`$AAPL`) and exchange-qualified symbols
   (`NASDAQ: AAPL`) for any SEC ticker, and, only for tickers *covered* by the data dir (they
   have filings, companyfacts or a per-ticker news file there), the company name as a whole
   capitalised word ("Apple", "Tesla", "Meta Platforms": catalog name without Inc./Corp./Co. and
   similar; its first word alone when that is distinctive) or the ticker in parentheses ("(TSLA)").
Restricting names to covered tickers keeps "Apple" from tagging Apple Hospitality REIT and the
9,600-name catalog from matching common words ("Visa", "Target", "Gap" are tagged only when covered).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from rag.catalog import Company, load_companies
from rag.errors import ConfigError, SourceError

NEWS_SUFFIXES = (".gz", ".csv", ".json", ".jsonl", ".ndjson", ".xml", ".rss", ".atom")
_TICKER_NAME = re.compile(r"[A-Za-z]{1,5}(?:[.-][A-Za-z]{1,2})?")
_LEGAL = {
    "inc", "incorporated", "corp", "corporation", "co", "company", "ltd", "limited", "plc", "llc",
    "lp", "sa", "ag", "nv", "se", "the", "com", "de", "holdings", "holding", "group", "&",
}  # fmt: skip
# First words too generic to stand for the company on their own ("General Motors" != "General").
_GENERIC = {
    "american", "general", "united", "first", "national", "international", "global", "new", "bank",
    "energy", "capital", "southern", "northern", "western", "eastern", "royal", "advanced", "applied",
    "digital", "financial", "health", "home", "public", "service", "technology", "data", "federal",
    "world", "pacific", "atlantic", "texas", "citizens", "republic", "universal", "best",
}  # fmt: skip
_CASHTAG = re.compile(r"(?<![\w$])\$([A-Z]{1,5}(?:\.[A-Z])?)(?![\w])")
_EXCHANGE = re.compile(
    r"\b(?:NASDAQ|NYSE|NYSE American|NYSE Arca|AMEX|Nasdaq)\s*:\s*([A-Z]{1,5}(?:\.[A-Z])?)\b"
)


def name_stem(path: Path) -> str:
    """`AAPL.csv.gz` -> `AAPL`, `feed-2025-05.json` -> `feed-2025-05`."""
    name = path.name
    while True:
        suffix = next((s for s in NEWS_SUFFIXES if name.lower().endswith(s)), "")
        if not suffix:
            return name
        name = name[: -len(suffix)]


def _variants(ticker: str) -> tuple[str, ...]:
    """BRK.B and BRK-B spell the same class share; SEC's list uses the dash."""
    t = ticker.upper()
    return (t, t.replace(".", "-"), t.replace("-", "."))


def canonical_ticker(ticker: str, known: dict[str, Company] | None) -> str:
    if known is None:
        return ticker.upper()
    return next((v for v in _variants(ticker) if v in known), "")


def load_catalog(data_dir: Path, path: Path) -> dict[str, Company] | None:
    """The data dir's company_tickers list, or None when it has none (tagging then uses shapes)."""
    for name in ("company_tickers.json.gz", "company_tickers.json"):
        catalog = data_dir / "sec" / name
        if catalog.is_file():
            try:
                return load_companies(catalog)
            except ConfigError as exc:
                raise SourceError(f"{path}: cannot tag tickers ({exc})") from exc
    return None


def file_ticker(path: Path, known: dict[str, Company] | None) -> str:
    """The ticker a per-ticker file is about, or "" for a multi-company feed."""
    stem = name_stem(path)
    return canonical_ticker(stem, known) if _TICKER_NAME.fullmatch(stem) else ""


def covered_tickers(data_dir: Path, known: dict[str, Company] | None) -> set[str]:
    """Tickers with other data in the data dir: filings, companyfacts, per-ticker news files."""
    heads: set[str] = set()
    for p in (data_dir / "sec" / "filings").glob("*"):
        heads.add(re.split(r"[-_]", p.name, maxsplit=1)[0])
    for p in (data_dir / "sec" / "companyfacts").glob("companyfacts_*"):
        heads.add(p.name.split(".")[0].rsplit("_", 1)[-1])
    for p in (data_dir / "news").glob("*"):
        heads.add(name_stem(p))
    out = {canonical_ticker(h, known) for h in heads if _TICKER_NAME.fullmatch(h)}
    return out - {""}


def company_name_patterns(company: Company) -> list[str]:
    """Regex alternatives for a company's name in running text ("Apple", "Meta Platforms", "Meta")."""
    words = re.findall(r"[A-Za-z0-9&']+", company.name.replace(".com", " com"))
    while words and words[-1].lower() in _LEGAL:
        words.pop()
    if not words or len(" ".join(words)) < 3:
        return []
    names = [" ".join(words)]
    if len(words) > 1 and len(words[0]) >= 4 and words[0].lower() not in _GENERIC:
        names.append(words[0])
    return [r"\s+".join(re.escape(w) for w in n.split()) for n in names]


@dataclass
class Tagger:
    """Finds the tickers an article's text is about (see the module docstring for the rules)."""

    known: dict[str, Company] | None
    covered: set[str]
    names: list[tuple[str, re.Pattern[str]]]  # (ticker, name-or-"(TICKER)" pattern), covered only

    @classmethod
    def for_data_dir(cls, data_dir: Path, known: dict[str, Company] | None) -> Tagger:
        names = []
        covered = covered_tickers(data_dir, known)
        for ticker in sorted(covered):
            alts = [rf"\({re.escape(ticker)}\)"]
            if known is not None:
                alts += company_name_patterns(known[ticker])
            names.append((ticker, re.compile(rf"(?<![\w-])(?:{'|'.join(alts)})(?![\w-])", re.I)))
        return cls(known, covered, names)

    def tag(self, text: str) -> tuple[str, ...]:
        found: list[str] = []
        for m in sorted([*_CASHTAG.finditer(text), *_EXCHANGE.finditer(text)], key=lambda m: m.start()):
            # without a catalog a cashtag is trusted only for covered tickers ("$USD" is no ticker)
            t = canonical_ticker(m.group(1), self.known)
            if t and (self.known is not None or t in self.covered) and t not in found:
                found.append(t)
        for ticker, pattern in self.names:
            if ticker in found:
                continue
            # a name counts only capitalised ("Apple said", not "apple pie")
            if any(m.group(0)[0].isupper() or m.group(0)[0] == "(" for m in pattern.finditer(text)):
                found.append(ticker)
        return tuple(found)
