"""10-K Item 1A "Risk Factors" -> the filer's own risk headings, one row per risk.

Why: the report's "Key risks" section is composed from these headings by code, so every risk it
states is one the filer wrote, word for word. In Item 1A each risk opens with an emphasized (bold
and/or italic) lead sentence, grouped under short category sub-headings ("Risks Related to Our
Business"). Plain text has lost that emphasis, so this module walks the DOM again with the same
flattening as `html_text.html_blocks`, remembering for each block how much of its start was
emphasized, and cuts Item 1A with the same heading choice as `filings.split_items`: the risk
spans agree with the passages retrieval cites.

10-Qs are skipped on purpose: their Part II Item 1A mostly points back to the 10-K, and where
it updates a risk the update is a diff against the 10-K, not the filer's table of risks.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bs4 import BeautifulSoup, Comment, NavigableString, Tag

from rag.atomic import atomic_path
from rag.errors import SourceError
from rag.sources import html_text
from rag.sources.filings import _choose, _find_headings, _part_heading, filing_meta
from rag.sources.html_text import PAGE_NUMBER_RE, Block, clean_text, decompress, load_html, read_raw

if TYPE_CHECKING:
    import pandas as pd

RISKS_FILE = "risk_factors.parquet"  # in the index directory, next to facts.parquet
VERSION = 1  # part of the per-file cache key: bump when extraction changes, caches refill
MAX_BODY = 1500  # chars of body text kept per risk: enough to quote, small enough for a prompt
_MAX_HEADING = 600  # an emphasized "lead" longer than this is an emphasized paragraph, not a heading
_MAX_CATEGORY = 150
_MIN_HEADING_WORDS = 5  # "Competition." lead-ins are labels, not the filer's summary of a risk
_SENTENCE_END = re.compile(r"[.!?][\"'\u201d\u2019)]*$")
Style = tuple[bool, bool]  # (bold, italic)
_BOLD_TAGS, _ITALIC_TAGS = frozenset({"b", "strong"}), frozenset({"i", "em"})


@dataclass(frozen=True)
class RiskFactor:
    """One risk factor as the filer headed it, with where it came from."""

    ticker: str
    doc_id: str  # as the filing's passages name it: "filings:<file name>"
    form: str
    filed: str  # filing date (ISO) or ""
    accession: str  # "" when the primary document does not say (the usual case)
    url: str  # same as the filing's passages
    category: str  # latest category sub-heading above the risk; "" when the filer has none
    heading: str  # the emphasized lead sentence, exact text, whitespace-normalised
    body: str  # following text up to the next heading, capped at MAX_BODY chars
    ordinal: int  # 0-based position among the risks of Item 1A


def _style_emphasis(tag: Tag, bold: bool, italic: bool) -> Style:
    """(bold, italic) in force inside `tag`: its own tag name and inline style over the inherited."""
    if tag.name in _BOLD_TAGS:
        bold = True
    if tag.name in _ITALIC_TAGS:
        italic = True
    style = (tag.get("style") or "").replace(" ", "").lower()
    if m := re.search(r"font-weight:([a-z0-9]+)", style):
        value = m.group(1)
        bold = value in ("bold", "bolder") or (value.isdigit() and int(value) >= 600)
    if m := re.search(r"font-style:([a-z]+)", style):
        italic = m.group(1) in ("italic", "oblique")
    return bold, italic


class _EmphasisFlattener(html_text._Flattener):
    """`html_text`'s walk, block for block, also recording each paragraph's emphasized lead.

    `leads[i]` is the emphasized text block i starts with ("" for none and for table rows) and
    `styles[i]` the (bold, italic) it is printed in: filers that print category and risk
    headings alike in title case (AMZN) tell them apart by style alone.
    """

    def __init__(self) -> None:
        super().__init__()
        self.marks: list[Style] = []  # parallel to `buf`: the style of that piece of text
        self.leads: list[str] = []
        self.styles: list[Style] = []

    def flush(self) -> None:
        lead: list[str] = []
        style: Style = (False, False)
        for piece, mark in zip(self.buf, self.marks, strict=True):
            if piece.strip():
                if not any(mark):
                    break
                style = style if any(style) else mark
            lead.append(piece)
        self.marks = []
        before = len(self.blocks)
        super().flush()
        if len(self.blocks) > before:
            self.leads.append(clean_text("".join(lead)))
            self.styles.append(style)

    def table(self, table: Tag) -> None:
        super().table(table)
        self.leads += [""] * (len(self.blocks) - len(self.leads))
        self.styles += [(False, False)] * (len(self.blocks) - len(self.styles))

    def walk(self, node: Tag, style: Style = (False, False)) -> None:  # type: ignore[override]
        for child in node.children:
            if isinstance(child, Comment):
                continue
            if isinstance(child, NavigableString):
                self.buf.append(str(child))
                self.marks.append(style)
                continue
            if (
                not isinstance(child, Tag)
                or child.name in html_text._SKIP_TAGS
                or html_text._is_hidden(child)
            ):
                continue
            inner = _style_emphasis(child, *style)
            if child.name == "table":
                self.flush()
                self.table(child)
            elif child.name == "br":
                self.flush()
            elif child.name in html_text._BLOCK_TAGS:
                self.flush()
                self.walk(child, inner)
                self.flush()
            else:
                self.walk(child, inner)


@dataclass(frozen=True)
class _Para:
    """One paragraph of Item 1A with its emphasized lead ("" when it has none)."""

    text: str
    lead: str
    style: Style


def emphasized_blocks(soup: BeautifulSoup) -> tuple[list[Block], list[_Para]]:
    """The blocks `html_blocks` returns (same texts, same furniture dropped), each with its lead."""
    flat = _EmphasisFlattener()
    flat.walk(soup)
    flat.flush()
    kept = {id(b) for b in html_text._drop_page_furniture(flat.blocks)}
    rows = zip(flat.blocks, flat.leads, flat.styles, strict=True)
    pairs = [(b, _Para(b.text, lead, style)) for b, lead, style in rows if id(b) in kept]
    return [b for b, _ in pairs], [p for _, p in pairs]


def item_1a_span(blocks: list[Block]) -> tuple[int, int] | None:
    """Block range [start, end) of the 10-K's Item 1A body, as `split_items` cuts it; None if absent."""
    chosen = _choose(_find_headings(blocks), blocks, quarterly=False)
    for k, h in enumerate(chosen):
        if (h.number, h.letter) != (1, "A"):
            continue
        start = h.index + 1
        end = chosen[k + 1].index if k + 1 < len(chosen) else len(blocks)
        # title printed in the block after "Item 1A." (split_items takes it along the same way)
        title = blocks[start].text if start < end else ""
        if not h.rest and title and len(title) < 120 and not title.endswith("."):
            start += 1
        return start, end
    return None


def _merged(paras: list[_Para]) -> list[_Para]:
    """Drop page numbers and running "PART I" lines; rejoin an emphasized paragraph a page break
    cut in two (the second half starts lower-case in the same style)."""
    out: list[_Para] = []
    for p in paras:
        if PAGE_NUMBER_RE.match(p.text) or _part_heading(p.text.replace(" | ", " ")):
            continue
        prev = out[-1] if out else None
        if (
            prev
            and prev.lead == prev.text
            and p.lead == p.text
            and p.style == prev.style
            and p.text[:1].islower()
            and not _SENTENCE_END.search(prev.text)
        ):
            out[-1] = _Para(f"{prev.text} {p.text}", f"{prev.text} {p.text}", p.style)
        else:
            out.append(p)
    return out


def _is_sentence(text: str) -> bool:
    return bool(_SENTENCE_END.search(text)) and len(text.split()) >= _MIN_HEADING_WORDS


def _candidate(p: _Para) -> bool:
    """Emphasized lead that could be a heading: the whole paragraph, or a full leading sentence
    followed by body text; starting like a heading, not mid-sentence or with a bullet."""
    if not p.lead or len(p.lead) > _MAX_HEADING or not re.match(r"[A-Z0-9\"'\u201c(]", p.lead):
        return False
    if p.lead == p.text:
        return True
    rest = p.text[len(p.lead) :].lstrip()
    return p.text.startswith(p.lead) and _is_sentence(p.lead) and rest[:1].isupper()


def _classify(paras: list[_Para]) -> list[str]:
    """ "risk", "category" or "" per paragraph.

    A heading is a risk when body text follows it, a category when another heading does.
    Headings with no body and a final period (the italic introduction TSLA and NVDA print)
    are neither. Title-case headings followed by body count as categories when printed in the
    style the categories use, so a category with an introductory paragraph is not a risk.
    """
    cand = [_candidate(p) for p in paras]
    kinds = [""] * len(paras)
    for i, p in enumerate(paras):
        if not cand[i]:
            continue
        if p.lead != p.text:
            kinds[i] = "risk"
            continue
        body_next = i + 1 < len(paras) and not cand[i + 1]
        if body_next:
            kinds[i] = "risk"
        elif not _SENTENCE_END.search(p.text) and len(p.text) <= _MAX_CATEGORY:
            kinds[i] = "category"
    # Title-like headings followed by body: risks only where that is the filer's convention
    # (AMZN); where risks are headed by sentences they are categories (META's "Summary Risk
    # Factors" prints each category over its bullets in the risk headings' style).
    risks = [i for i, k in enumerate(kinds) if k == "risk"]
    titles = [i for i in risks if paras[i].lead == paras[i].text and not _is_sentence(paras[i].text)]
    category_styles = {p.style for p, k in zip(paras, kinds, strict=True) if k == "category"}
    sentences_rule = len(titles) * 2 < len(risks)
    for i in titles:
        p = paras[i]
        if (sentences_rule or p.style in category_styles) and len(p.text) <= _MAX_CATEGORY:
            kinds[i] = "category"
        elif sentences_rule or len(p.text.split()) < 3:
            kinds[i] = ""
    return kinds


def _cap(text: str, limit: int = MAX_BODY) -> str:
    """At most `limit` chars, cut after the last full sentence (a word boundary if none is near)."""
    if len(text) <= limit:
        return text
    cut = text[:limit]
    ends = [m.end() for m in re.finditer(r"[.!?][\"'\u201d\u2019)]*(?=\s)", cut)]
    if ends and ends[-1] >= limit // 2:
        return cut[: ends[-1]]
    return cut[: cut.rfind(" ")] if " " in cut else cut


def extract_risks(blocks: list[Block], paras: list[_Para]) -> list[tuple[str, str, str]]:
    """(category, heading, body) for each risk heading of Item 1A, in document order."""
    span = item_1a_span(blocks)
    if span is None:
        return []
    item = _merged(paras[span[0] : span[1]])
    out: list[tuple[str, str, list[str]]] = []
    category = ""
    for p, kind in zip(item, _classify(item), strict=True):
        if kind == "category":
            category = p.text
            out.append(("", "", []))  # a category ends the body of the risk before it
        elif kind == "risk":
            rest = p.text[len(p.lead) :].strip()
            out.append((category, p.lead, [rest] if rest else []))
        elif out:
            out[-1][2].append(p.text)
    return [(c, h, _cap("\n\n".join(b))) for c, h, b in out if h]


def risk_factors_from_filing(path: Path) -> list[RiskFactor]:
    """Risk factors of one 10-K primary document; [] for other forms and 10-Ks without headings.

    Unreadable input raises SourceError naming the file, like `parse_filing`.
    """
    path = Path(path)
    raw = decompress(read_raw(path), path)
    soup = load_html(raw, path)
    meta = filing_meta(path, raw, soup)
    if not meta.form.startswith("10-K"):
        return []
    try:
        blocks, paras = emphasized_blocks(soup)
    except RecursionError as e:
        raise SourceError(f"{path}: HTML nested too deeply to read") from e
    url = path.name
    if meta.cik and meta.accession:  # the same link parse_filing gives the filing's passages
        folder = f"{int(meta.cik)}/{meta.accession.replace('-', '')}"
        url = f"https://www.sec.gov/Archives/edgar/data/{folder}/{meta.accession}-index.htm"
    return [
        RiskFactor(
            ticker=meta.ticker,
            doc_id=f"filings:{path.name}",
            form=meta.form,
            filed=meta.date,
            accession=meta.accession,
            url=url,
            category=category,
            heading=heading,
            body=body,
            ordinal=k,
        )
        for k, (category, heading, body) in enumerate(extract_risks(blocks, paras))
    ]


# --- linking to passages ------------------------------------------------------------------------

_ITEM_1A_TITLE = re.compile(r"^item\s*1a\b", re.I)
_PREFIX = 80  # chars of the heading that must appear verbatim in its passage
_MIN_OVERLAP = 0.5  # share of the heading's words a fallback passage must contain


def _norm(text: str) -> str:
    return " ".join(text.split())


def _words(text: str) -> set[str]:
    return set(re.findall(r"\w+", text.lower()))


def passage_for(risk: RiskFactor, passages: pd.DataFrame) -> str | None:
    """passage_id of the filing passage where `risk`'s heading starts, so a report can cite it.

    Exact first: the passage (same document, Item 1A) holding the heading's first 80 characters,
    whitespace-normalised. Chunks overlap by a sentence, so a heading can end one passage and
    open the next: the one that also holds the start of the body wins, as does the risk over
    a summary bullet repeating its heading (NVDA). Otherwise the passage sharing most of the
    heading's words, if it shares at least half; None when nothing qualifies.
    """
    doc = passages[passages["doc_id"] == risk.doc_id]
    item = doc[doc["section"].astype(str).str.match(_ITEM_1A_TITLE)]
    pool = item if len(item) else doc
    prefix, body = _norm(risk.heading)[:_PREFIX], _norm(risk.body)[:40]
    best: tuple[bool, int, str] | None = None
    for pid, text, ordinal in zip(pool["passage_id"], pool["text"], pool["ordinal"], strict=True):
        flat = _norm(str(text))
        pos = flat.find(prefix)
        if pos < 0:
            continue
        key = (bool(body) and body in flat[pos:], -int(ordinal), str(pid))
        best = key if best is None or key[:2] > best[:2] else best
    if best is not None:
        return best[2]
    want = _words(risk.heading)
    rows = zip(pool["passage_id"], pool["text"], pool["ordinal"], strict=True)
    scored = [(len(want & _words(str(t))) / max(len(want), 1), -int(o), str(pid)) for pid, t, o in rows]
    top = max(scored, default=None)
    return top[2] if top and top[0] >= _MIN_OVERLAP else None


# --- parquet -------------------------------------------------------------------------------------

_COLUMNS = list(RiskFactor.__dataclass_fields__)


def read_risk_factors(index_dir: Path, ticker: str | None = None) -> list[RiskFactor]:
    """The index's risk factors table (`ticker`: that company's rows only, filtered in the read);
    [] for an index ingested before the table existed."""
    path = Path(index_dir) / RISKS_FILE
    return read_risk_parquet(path, ticker) if path.exists() else []


def write_risk_factors(risks: list[RiskFactor], path: Path) -> Path:
    """Parquet, written atomically (rag/atomic.py), so readers never see half a file."""
    import pandas as pd  # late: keeps `import rag.risk_factors` cheap for parse-only callers

    df = pd.DataFrame([asdict(r) for r in risks], columns=_COLUMNS)
    df = df.astype({c: "str" for c in _COLUMNS} | {"ordinal": "int64"})
    path = Path(path)
    with atomic_path(path) as tmp:
        df.to_parquet(tmp, engine="pyarrow", index=False)
    return path


def read_risk_parquet(path: Path, ticker: str | None = None) -> list[RiskFactor]:
    """Rows written by `write_risk_factors` (`ticker`: only that company's)."""
    import pandas as pd

    try:
        df = pd.read_parquet(path, engine="pyarrow", filters=[("ticker", "==", ticker)] if ticker else None)
    except (OSError, ValueError) as e:
        raise SourceError(f"{path}: cannot read risk factors parquet ({type(e).__name__}: {e})") from e
    missing = set(_COLUMNS) - set(df.columns)
    if missing:
        raise SourceError(f"{path}: not a risk factors table (missing columns {sorted(missing)})")
    return [RiskFactor(**{**r, "ordinal": int(r["ordinal"])}) for r in df[_COLUMNS].to_dict("records")]
