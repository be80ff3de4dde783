"""PDF bytes -> text lines per page -> readable paragraphs and table rows.

One job: get the text layer out of a PDF, page by page, as a person would read it. Section
logic (Items, page sections, metadata) lives in `pdf.py`.

Why PDFium (pypdfium2) and not pypdf or pdfplumber: measured on the three FinanceBench filings
(303 pages, 2-core CPU) PDFium extracts all text in ~1.5 s, pypdf's plain mode in ~22 s (layout
mode ~44 s) and pdfplumber at ~5 pages/s (~60 s); the line text is the same in all three ("Total
current assets 5,308 5,853"), so PDFium keeps parsing well below embedding time. Its text keeps
one printed line per line, which is what turns tables into rows: a line that ends in numeric
cells becomes "label | cell | cell", so figures stay next to their labels and chunking never
cuts a row in half (it keeps lines holding " | " whole).
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from pathlib import Path

from rag.errors import SourceError
from rag.limits import MAX_PDF_PAGES
from rag.sources import skipped
from rag.sources.html_text import PAGE_NUMBER_RE

_LOCK = threading.Lock()  # PDFium is not thread-safe; one document at a time per process
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_FURNITURE_MAX_CHARS = 80  # running headers/footers are short lines ...
_FURNITURE_SHARE = 0.2  # ... at the top or bottom of at least this share of pages (and >= 3 pages)

# A numeric table cell as printed: 1,234 | (862) | 12.5% | $17,003 | -0.4 ; or a dash for "nil".
_NUM = r"[-\u2212]?\$?\d(?:[\d,]*\d)?(?:\.\d+)?%?"  # no trailing comma: "June 30," is not a cell
_CELL = re.compile(rf"^(?:{_NUM}|\({_NUM}\)%?|[-\u2013\u2014]|n/?a|nm)$", re.I)
_ROW_LABEL_MAX_WORDS = 6  # a line with ONE trailing number is a row only when its label is short
_HEADING_MAX_WORDS = 10


def open_pdf(raw: bytes, path: Path):
    """A pypdfium2 document, or SourceError that says whether the file is encrypted or damaged."""
    import pypdfium2 as pdfium

    if b"%PDF" not in raw[:1024]:
        raise SourceError(f"{path}: not a PDF (no %PDF header); expected a filing saved as PDF")
    try:
        return pdfium.PdfDocument(raw)
    except pdfium.PdfiumError as exc:
        if "password" in str(exc).lower():
            raise SourceError(
                f"{path}: PDF is encrypted (password-protected); save a decrypted copy "
                "(e.g. `qpdf --decrypt in.pdf out.pdf`) and ingest that"
            ) from exc
        raise SourceError(
            f"{path}: cannot open PDF ({exc}); the file is corrupt or truncated, download it again"
        ) from exc


def _clean(text: str) -> list[str]:
    # PDFium reports hyphens of compound words it cannot map ("in-home") as U+FFFE.
    text = _CONTROL.sub(" ", text.replace("\ufffe", "-").replace("\u00a0", " "))
    return [" ".join(line.split()) for line in re.split(r"\r\n|\r|\n", text) if line.strip()]


def page_lines(raw: bytes, path: Path) -> list[list[str]]:
    """Printed lines of every page (index = 0-based page number), page furniture removed.

    A page whose text cannot be read is kept empty and reported through `skipped(...)`, so page
    numbers of the other pages stay right. Raises SourceError for a file PDFium cannot open.
    """
    with _LOCK:
        pdf = open_pdf(raw, path)
        pages: list[list[str]] = []
        try:
            count = len(pdf)
            if count > MAX_PDF_PAGES:  # read the first pages, say what was left out
                skipped(
                    f"{path.name}: {count} pages, read the first {MAX_PDF_PAGES} "
                    "(rag/limits.py MAX_PDF_PAGES); split the file to index the rest"
                )
            for i in range(min(count, MAX_PDF_PAGES)):
                try:
                    page = pdf[i]
                    textpage = page.get_textpage()
                    try:
                        pages.append(_clean(textpage.get_text_range()))
                    finally:
                        textpage.close()
                        page.close()
                except Exception as exc:  # noqa: BLE001 - PDFium raises plain errors per damaged page
                    skipped(f"page {i}: text could not be read ({exc})")
                    pages.append([])
        finally:
            pdf.close()
    return drop_furniture(pages)


def drop_furniture(pages: list[list[str]]) -> list[list[str]]:
    """Remove page numbers and running headers/footers ("Table of Contents" on every page).

    They carry no meaning and would make every page's first passage look alike to the embedder.
    """
    edge: Counter[str] = Counter()
    for lines in pages:
        edge.update({line for line in lines[:2] + lines[-2:] if len(line) <= _FURNITURE_MAX_CHARS})
    threshold = max(3, _FURNITURE_SHARE * len(pages))
    running = {line for line, n in edge.items() if n >= threshold}
    out = []
    for lines in pages:
        keep = [line for line in lines if not PAGE_NUMBER_RE.match(line)]
        out.append(
            [line for k, line in enumerate(keep) if not (line in running and (k < 2 or k >= len(keep) - 2))]
        )
    return out


def table_row(line: str) -> str | None:
    """ "Total current assets 5,308 5,853" -> "Total current assets | 5,308 | 5,853"; None for prose."""
    tokens = line.split()
    cells: list[str] = []
    i = len(tokens) - 1
    while i >= 0:
        tok = tokens[i]
        if tok == "%" and i > 0 and _CELL.match(tokens[i - 1]):
            tok, i = tokens[i - 1] + "%", i - 1
        elif not _CELL.match(tok):
            break
        if i > 0 and tokens[i - 1] == "$":  # "$ 689" printed in two columns
            tok, i = "$" + tok, i - 1
        cells.append(tok)
        i -= 1
    label = " ".join(tokens[: i + 1])
    if not cells or (len(cells) == 1 and len(label.split()) > _ROW_LABEL_MAX_WORDS):
        return None
    return " | ".join(([label] if label else []) + cells[::-1])


def _is_heading(line: str, prev: str | None) -> bool:
    """A short line after a finished sentence, not itself ending a sentence: a title."""
    ends_block = (
        prev is None or prev.endswith((".", ":", "!", "?")) or len(prev.split()) <= _HEADING_MAX_WORDS
    )
    return ends_block and len(line.split()) <= _HEADING_MAX_WORDS and not line.endswith((".", ",", ";"))


def lines_to_text(lines: list[str]) -> str:
    """Paragraphs separated by blank lines; each table is one paragraph of rows, one per line."""
    rows = [table_row(line) for line in lines]
    blocks: list[str] = []
    prose: list[str] = []
    table: list[str] = []

    def flush() -> None:
        if prose:
            blocks.append(" ".join(prose))
            prose.clear()
        if table:
            blocks.append("\n".join(table))
            table.clear()

    for k, line in enumerate(lines):
        nxt_is_row = k + 1 < len(rows) and rows[k + 1] is not None
        if rows[k] is not None:
            if prose:
                flush()
            table.append(rows[k])
        elif table and nxt_is_row and len(line.split()) <= 8 and not line.endswith("."):
            table.append(line)  # a row label inside a table ("Current assets:")
        else:
            if table or (prose and _is_heading(line, prose[-1])):
                flush()
            prose.append(line)
            if _is_heading(line, lines[k - 1] if k else None) and not nxt_is_row:
                flush()  # a heading stands alone; the text after it starts a new paragraph
    flush()
    return "\n\n".join(blocks)
