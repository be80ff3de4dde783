"""Full EDGAR submissions (`<accession>.txt`, SGML, optionally gzipped) -> one Document per kept document.

A submission is what EDGAR stores per filing: an SGML header (accession number, form, filing date,
filer name and CIK) followed by every document of the filing in `<DOCUMENT>` blocks (TYPE,
SEQUENCE, FILENAME, DESCRIPTION, TEXT). Kept: the primary document (8-K, 10-K, 10-Q and their /A)
and EX-99.x exhibits (press releases, investor letters). Skipped without comment: graphics,
XBRL schemas and renderings, zip/PDF (uuencoded) parts and other exhibits (contracts, consents).

Document convention (shared with the HTML path through `filings.sections_for`):
- doc_id `filings:<accession>/<filename>`; form = the submission's form ("8-K") for the primary
  document AND its exhibits, so a form filter keeps a filing together;
- primary 8-K: one Section per Item (`key="2.02"`, title as printed); 10-K/10-Q: the same Items
  as `filings.py` gives the HTML file;
- exhibit: title "<company> 8-K EX-99.1 filed <date>", one Section `key="EX-99.1"`,
  title "Exhibit 99.1: <DESCRIPTION>";
- date: an 8-K's documents carry the event date (CONFORMED PERIOD OF REPORT), 10-K/10-Q the
  filing date; the title always says "filed <FILED AS OF DATE>".
A kept document that cannot be used (no TEXT, images only, cut off by a truncated file) is dropped
and reported through `skipped(...)`; the rest of the submission is still indexed. Only a file with
no usable document at all raises SourceError.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from rag.catalog import load_companies
from rag.errors import ConfigError, SourceError
from rag.sources import SourceSpec, register, skipped
from rag.sources.filings import sections_for
from rag.sources.html_text import Block, clean_text, decompress, html_blocks, load_html, read_raw
from rag.types import Document, Section, digest

_PRIMARY_RE = re.compile(r"^(8-K|10-K|10-Q)(/A)?$")
_EXHIBIT_RE = re.compile(r"^EX-(99(?:\.\d{1,2})?)\b")
_DOC_RE = re.compile(rb"<DOCUMENT>")
_END_DOC_RE = re.compile(rb"</DOCUMENT>")
_HTML_RE = re.compile(rb"<(html|body|div|p|font)\b", re.I)  # not <TABLE>: old text filings use it
_UUENCODED_RE = re.compile(rb"^\s*begin \d{3} ")
# A ticker the user put in the file name: "nvda-8-k.0001045810-26-000024.txt.gz".
_NAME_TICKER_RE = re.compile(r"^([a-z]{1,5}(?:[.-][a-z])?)-(?:8-k|10-k|10-q)\b", re.I)
_ACCESSION_NAME_RE = re.compile(r"(\d{10}-\d{2}-\d{6})")


@dataclass(frozen=True)
class Header:
    accession: str  # "0001045810-26-000024"
    form: str  # CONFORMED SUBMISSION TYPE: "8-K"
    filed: str  # FILED AS OF DATE, ISO: "2026-03-06"
    company: str  # first filer's COMPANY CONFORMED NAME
    cik: str  # first filer's CENTRAL INDEX KEY, digits
    period: str = ""  # CONFORMED PERIOD OF REPORT, ISO: an 8-K's event date, a 10-K's fiscal year end


@dataclass(frozen=True)
class Part:
    """One `<DOCUMENT>` of a submission, as bytes (each document declares its own encoding)."""

    type: str
    sequence: str
    filename: str
    description: str
    text: bytes | None  # None when the document has no <TEXT>
    complete: bool  # False when its </DOCUMENT> is missing (truncated file)


def _field(header: str, name: str) -> str:
    m = re.search(rf"^[ \t]*{name}:[ \t]*(.*?)[ \t]*$", header, re.M)
    return m.group(1) if m else ""


def _iso(yyyymmdd: str) -> str:
    try:
        return datetime.strptime(yyyymmdd[:8], "%Y%m%d").date().isoformat()
    except ValueError:
        return ""


def read_header(raw: bytes, path: Path) -> Header:
    """The SGML header (before the first document); the accession falls back to the file name."""
    end = raw.find(b"<DOCUMENT>")
    text = raw[: end if end >= 0 else 20000].decode("latin-1")
    acc = _field(text, "ACCESSION NUMBER")
    if not re.fullmatch(r"\d{10}-\d{2}-\d{6}", acc):
        m = _ACCESSION_NAME_RE.search(path.name)
        acc = m.group(1) if m else ""
    return Header(
        accession=acc,
        form=_field(text, "CONFORMED SUBMISSION TYPE").upper(),
        filed=_iso(_field(text, "FILED AS OF DATE")),
        company=_field(text, "COMPANY CONFORMED NAME"),
        cik=re.sub(r"\D", "", _field(text, "CENTRAL INDEX KEY")),
        period=_iso(_field(text, "CONFORMED PERIOD OF REPORT")),
    )


def _tag(block: bytes, name: bytes) -> str:
    m = re.search(rb"<" + name + rb">([^\r\n<]*)", block)
    return m.group(1).decode("latin-1").strip() if m else ""


def split_documents(raw: bytes) -> list[Part]:
    """The `<DOCUMENT>` blocks in order; one without `</DOCUMENT>` runs to the next or to the end."""
    starts = [m.end() for m in _DOC_RE.finditer(raw)]
    parts: list[Part] = []
    for k, start in enumerate(starts):
        limit = starts[k + 1] - len(b"<DOCUMENT>") if k + 1 < len(starts) else len(raw)
        close = _END_DOC_RE.search(raw, start, limit)
        block = raw[start : close.start() if close else limit]
        text_at = block.find(b"<TEXT>")
        meta = block[: text_at if text_at >= 0 else 2000]
        text = None
        if text_at >= 0:
            body = block[text_at + len(b"<TEXT>") :]
            end = body.rfind(b"</TEXT>")
            text = body[:end] if end >= 0 else body
        parts.append(
            Part(
                type=_tag(meta, b"TYPE").upper(),
                sequence=_tag(meta, b"SEQUENCE"),
                filename=_tag(meta, b"FILENAME"),
                description=_tag(meta, b"DESCRIPTION"),
                text=text,
                complete=close is not None,
            )
        )
    return parts


def _unwrap(text: bytes) -> bytes:
    """Drop the `<XBRL>` wrapper EDGAR puts around inline-XBRL documents."""
    text = text.strip()
    for tag in (b"XBRL", b"xbrl"):
        if text.startswith(b"<" + tag + b">"):
            text = text[len(tag) + 2 :]
            end = text.rfind(b"</" + tag + b">")
            text = text[:end] if end >= 0 else text
    return text.strip()


def _plain_blocks(text: bytes) -> list[Block]:
    """Pre-2001 filings are plain text: paragraphs are separated by blank lines."""
    try:
        decoded = text.decode("utf-8")
    except UnicodeDecodeError:
        decoded = text.decode("cp1252", errors="replace")
    decoded = re.sub(r"</?(PAGE|TABLE|CAPTION|S|C|FN)>", "", decoded, flags=re.I)
    return [Block(clean_text(p)) for p in re.split(r"\n\s*\n", decoded) if clean_text(p)]


def part_blocks(text: bytes, where: Path) -> list[Block]:
    """Visible text of one document: HTML flattened by html_text, anything else read as text.

    Raises SourceError (naming `where`) for markup the HTML parser cannot read.
    """
    if _HTML_RE.search(text[:5000]):
        try:
            return html_blocks(load_html(text, where))
        except RecursionError as e:
            raise SourceError(f"{where}: HTML nested too deeply to read") from e
    return _plain_blocks(text)


def _catalog_ticker(path: Path, cik: str) -> str:
    """Ticker for a CIK from the data dir's company_tickers.json, when one is within reach."""
    if not cik:
        return ""
    for folder in list(path.parents)[:3]:
        for rel in ("company_tickers.json.gz", "company_tickers.json", "edgar_api/company_tickers.json"):
            if (folder / rel).is_file():
                try:
                    companies = load_companies(folder / rel)
                except ConfigError:
                    return ""
                # company_tickers.json lists a company's main share class first.
                return next((c.ticker for c in companies.values() if int(c.cik) == int(cik)), "")
    return ""


def submission_ticker(path: Path, header: Header) -> str:
    """The file name's ticker ("nvda-8-k.<accession>.txt") first, else the filer's CIK in the catalog."""
    m = _NAME_TICKER_RE.match(path.name)
    return m.group(1).upper() if m else _catalog_ticker(path, header.cik)


def _kept(part: Part) -> tuple[bool, str]:
    """(keep?, exhibit number or "")."""
    if _PRIMARY_RE.match(part.type):
        return True, ""
    m = _EXHIBIT_RE.match(part.type)
    return (True, m.group(1)) if m else (False, "")


def _sections(part: Part, exhibit: str, where: Path) -> tuple[list[Section], str]:
    """Sections of a kept document, or ([], why it cannot be used)."""
    if part.text is None or not part.text.strip():
        return [], "has no text"
    text = _unwrap(part.text)
    if _UUENCODED_RE.match(text):
        return [], "is a uuencoded binary (PDF or image), not text"
    try:
        blocks = part_blocks(text, where)
    except SourceError as e:
        return [], f"is unreadable ({str(e).removeprefix(f'{where}: ')})"
    sections = sections_for(blocks, part.type, exhibit, part.description) if blocks else []
    if not sections:
        return (
            [],
            "has no text (images only?)" if exhibit or not blocks else f"has no {part.type} Item headings",
        )
    return sections, ""


def document_date(header: Header, form: str) -> str:
    """An 8-K is dated by its event (period of report), as its primary HTML is; the title keeps
    "filed <date>". A 10-K/10-Q keeps its filing date: its period of report is the fiscal
    period end, months before anyone could read it, and point-in-time retrieval filters on
    `Document.date`. A period after the filing date is no event date and is ignored."""
    period = header.period
    if form.startswith("8-K") and period and (not header.filed or period <= header.filed):
        return period
    return header.filed


def parse_submission_bytes(raw: bytes, path: Path) -> list[Document]:
    """Documents of one (decompressed) submission; `path` names it in messages and doc ids."""
    if b"<DOCUMENT>" not in raw[:2_000_000] and b"<SEC-HEADER>" not in raw[:5000]:
        raise SourceError(f"{path}: not an EDGAR full submission (no <SEC-HEADER> or <DOCUMENT>)")
    header = read_header(raw, path)
    parts = split_documents(raw)
    if not parts:
        raise SourceError(f"{path}: submission has a header but no <DOCUMENT> (truncated?)")
    form = header.form if _PRIMARY_RE.match(header.form) else ""
    form = form or next((p.type for p in parts if _PRIMARY_RE.match(p.type)), header.form or "8-K")
    ticker = submission_ticker(path, header)
    company = header.company or ticker or (header.cik and f"CIK {int(header.cik)}") or path.name
    folder = (
        f"{int(header.cik)}/{header.accession.replace('-', '')}" if header.cik and header.accession else ""
    )
    date = document_date(header, form)
    docs: list[Document] = []
    dropped: list[str] = []
    for n, part in enumerate(parts, start=1):
        name = part.filename or f"document-{part.sequence or n}"
        what = f"document {n} ({part.type or 'no TYPE'} {name})"
        keep, exhibit = _kept(part)
        if not part.complete:
            cut = "it and any later documents are" if n == len(parts) else "it is"
            dropped.append(f"{what} has no </DOCUMENT> (truncated file?); {cut} missing")
            continue
        if not keep:
            continue
        sections, why = _sections(part, exhibit, Path(f"{path}#{name}"))
        if not sections:
            dropped.append(f"{what} {why}; dropped")
            continue
        label = f"{form} EX-{exhibit}" if exhibit else part.type
        docs.append(
            Document(
                doc_id=f"filings:{header.accession or path.name}/{name}",
                corpus="filings",
                ticker=ticker,
                source="sec",
                form=form,
                date=date,
                filed=header.filed if header.filed != date else "",
                title=f"{company} {label} filed {header.filed}" if header.filed else f"{company} {label}",
                url=f"https://www.sec.gov/Archives/edgar/data/{folder}/{name}" if folder else path.name,
                sections=sections,
                content_digest=digest(part.text or b""),
                path=str(path),
            )
        )
    if not docs:
        why = "; ".join(dropped) or f"its documents are {', '.join(p.type or '?' for p in parts[:8])}"
        raise SourceError(f"{path}: no usable 8-K/10-K/10-Q or EX-99 document in the submission ({why})")
    for reason in dropped:
        skipped(reason)
    return docs


def _gunzip(raw: bytes, path: Path) -> bytes:
    """Gunzip, keeping what a cut-off or damaged stream still yields (the SGML split copes with
    a truncated end); only a stream with nothing readable is an error."""
    if raw[:2] != b"\x1f\x8b":
        return decompress(raw, path)  # plain text, or named .gz but not gzip (SourceError)
    inflate = zlib.decompressobj(wbits=31)
    out: list[bytes] = []
    try:
        for i in range(0, len(raw), 1 << 16):
            out.append(inflate.decompress(raw[i : i + (1 << 16)]))
            if inflate.eof:
                break
    except zlib.error as e:
        if not out or not any(out):
            raise SourceError(f"{path}: corrupt gzip ({e})") from e
        skipped(f"gzip data corrupt after {sum(map(len, out))} bytes ({e}); read up to there")
        return b"".join(out)
    if not inflate.eof and not any(out):
        raise SourceError(f"{path}: corrupt or truncated gzip (no data before the cut)")
    if not inflate.eof:
        skipped(f"gzip data ends early (truncated download?); read the first {sum(map(len, out))} bytes")
    return b"".join(out)


def parse_submission(path: Path) -> list[Document]:
    """Registry entry: one submission file (`.txt` or `.txt.gz`) -> its kept documents."""
    path = Path(path)
    raw = _gunzip(read_raw(path), path)
    try:
        return parse_submission_bytes(raw, path)
    except RecursionError as e:  # pathological nesting inside one document's HTML
        raise SourceError(f"{path}: HTML nested too deeply to read") from e


register(
    SourceSpec(
        name="submissions",
        corpus="filings",
        patterns=("sec/submissions/*.txt", "sec/submissions/*.txt.gz"),
        parse=parse_submission,
    )
)
