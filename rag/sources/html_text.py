"""SEC HTML (inline XBRL, optionally gzipped) -> visible text blocks in reading order.

One job: turn Workiva/EDGAR markup into paragraphs and table rows a person would read. Hidden
`ix:header` metadata, scripts and running page furniture (footers, page numbers) are dropped;
table rows become "cell | cell | cell" so figures stay next to their labels. Item splitting lives
in `filings.py`, fact extraction in `rag/facts.py`; both start from these blocks.
"""

from __future__ import annotations

import gzip
import io
import re
import warnings
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bs4 import BeautifulSoup, Comment, NavigableString, Tag, XMLParsedAsHTMLWarning

from rag.errors import SourceError
from rag.limits import MAX_DECOMPRESSED_BYTES

_MAX_FOOTER, _FOOTER_REPEATS = 80, 8  # running footers: short, and on at least this many pages
PAGE_NUMBER_RE = re.compile(r"^(page\s+)?[-\u2013\u2014 ]*([0-9]{1,3}|[ivxl]{1,6})[-\u2013\u2014 ]*$", re.I)

_BLOCK_TAGS = frozenset(
    "p div li ul ol h1 h2 h3 h4 h5 h6 section article blockquote pre hr center dl dt dd body html "
    "header footer form".split()
)
_SKIP_TAGS = frozenset("script style head title ix:header".split())


@dataclass(frozen=True)
class Block:
    """One paragraph or one table row of visible text, in reading order."""

    text: str
    table: int = -1  # index of the table the row belongs to; -1 for paragraphs


def read_raw(path: Path) -> bytes:
    """The file's bytes as stored (what `content_digest` hashes)."""
    try:
        return path.read_bytes()
    except OSError as e:
        raise SourceError(f"{path}: cannot read file ({e.strerror or e})") from e


def decompress(raw: bytes, path: Path) -> bytes:
    """Gunzip when the bytes are gzip (by magic number, not only by suffix)."""
    if raw[:2] == b"\x1f\x8b":
        try:  # bounded read: a gzip bomb stops at the cap, never fully in memory
            with gzip.GzipFile(fileobj=io.BytesIO(raw)) as gz:
                out = gz.read(MAX_DECOMPRESSED_BYTES + 1)
        except (OSError, EOFError, zlib.error) as e:
            raise SourceError(f"{path}: corrupt or truncated gzip ({e})") from e
        if len(out) > MAX_DECOMPRESSED_BYTES:
            raise SourceError(
                f"{path}: gzip data expands past {MAX_DECOMPRESSED_BYTES // 2**20} MB "
                "(rag/limits.py MAX_DECOMPRESSED_BYTES); a gzip bomb or the wrong file, remove or split it"
            )
        return out
    if path.suffix == ".gz":
        raise SourceError(f"{path}: named .gz but is not gzip data")
    return raw


def load_html(raw: bytes, path: Path, parser: str = "lxml") -> BeautifulSoup:
    """Parse HTML/XHTML; refuse input that is not markup so callers never see parser internals."""
    if not raw.strip():
        raise SourceError(f"{path}: empty file")
    if b"\x00" in raw[:4096]:  # UTF-16/32 (with or without a BOM) or binary: name it, not "no markup"
        raise SourceError(f"{path}: not HTML text (NUL bytes: UTF-16 or binary); save it as UTF-8")
    head = raw[:4096].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if not (head.startswith(b"<") or b"<html" in head):
        raise SourceError(f"{path}: not HTML (no markup at the start of the file)")
    try:
        with warnings.catch_warnings():
            # Inline XBRL is XHTML; the HTML parser reads it fine and tolerates broken markup.
            warnings.simplefilter("ignore", XMLParsedAsHTMLWarning)
            soup = BeautifulSoup(raw, parser)
    except Exception as e:  # parser failures on arbitrary bytes share no common type
        raise SourceError(f"{path}: cannot parse HTML ({type(e).__name__}: {e})") from e
    if soup.find(["body", "html", "div", "p", "table"]) is None:
        raise SourceError(f"{path}: not HTML (no document elements)")
    return soup


def clean_text(text: str) -> str:
    return re.sub(r"\s+", " ", text.replace("\xa0", " ")).strip()


def _is_hidden(tag: Tag) -> bool:
    style = str(tag.get("style") or "").replace(" ", "").lower()
    return "display:none" in style


def _cell_text(td: Tag) -> str:
    # get_text(" ") keeps words in nested divs apart but splits "(565)" into "( 565 )".
    return re.sub(r"\(\s+", "(", re.sub(r"\s+\)", ")", clean_text(td.get_text(" "))))


def _row_cells(tr: Tag) -> list[str]:
    """Non-empty cells, with "$" glued to the number after it and ")" / "%" to the one before.

    Financial tables put the currency sign and closing parenthesis in cells of their own; glued
    back they read "$391,035" and "(1,234)" instead of "$ | 391,035 | )". Column headers that
    are only "$" or "%" (change columns) stay cells of their own.
    """
    cells: list[str] = []
    pending = ""
    for td in tr.find_all(["td", "th"], recursive=False):
        text = _cell_text(td)
        if not text:
            continue
        if text in ("$", "(", "$(", "($"):
            if pending:
                cells.append(pending)
            pending = text
            continue
        if pending and not re.match(r"[\d(.\-\u2014\u2013]", text):
            cells.append(pending)
            pending = ""
        if not pending and cells and re.fullmatch(r"[)%]+", text) and re.search(r"[\d)]$", cells[-1]):
            cells[-1] += text
            continue
        cells.append(pending + text)
        pending = ""
    if pending:
        cells.append(pending)
    return cells


class _Flattener:
    """Depth-first walk that turns the DOM into `Block`s (paragraph boundaries at block tags)."""

    def __init__(self) -> None:
        self.blocks: list[Block] = []
        self.buf: list[str] = []
        self.tables = 0

    def flush(self) -> None:
        text = clean_text("".join(self.buf))
        self.buf = []
        if text:
            self.blocks.append(Block(text))

    def table(self, table: Tag) -> None:
        tid = self.tables
        self.tables += 1
        for tr in table.find_all("tr"):
            if tr.find_parent("table") is not table:
                continue  # rows of nested tables are read through their cell text
            cells = _row_cells(tr)
            if cells:
                self.blocks.append(Block(" | ".join(cells), table=tid))

    def walk(self, node: Tag) -> None:
        for child in node.children:
            if isinstance(child, Comment):
                continue
            if isinstance(child, NavigableString):
                self.buf.append(str(child))
                continue
            if not isinstance(child, Tag) or child.name in _SKIP_TAGS or _is_hidden(child):
                continue
            if child.name == "table":
                self.flush()
                self.table(child)
            elif child.name == "br":
                self.flush()
            elif child.name in _BLOCK_TAGS:
                self.flush()
                self.walk(child)
                self.flush()
            else:
                self.walk(child)


def _drop_page_furniture(blocks: list[Block]) -> list[Block]:
    """Remove "Table of Contents" back-links and running page footers ("Apple Inc. | 2024 Form 10-K | 17").

    A footer is a short block with letters, ending in a page number, whose shape (digits masked)
    repeats on many pages; one-off short lines ("None.") and year header rows ("2024 | 2023") stay.
    """
    shapes = Counter(re.sub(r"\d+", "#", b.text) for b in blocks if len(b.text) <= _MAX_FOOTER)

    def furniture(b: Block) -> bool:
        if b.text.lower() == "table of contents":
            return True
        if len(b.text) > _MAX_FOOTER or not re.search(r"[A-Za-z]", b.text) or not re.search(r"\d$", b.text):
            return False
        return shapes[re.sub(r"\d+", "#", b.text)] >= _FOOTER_REPEATS

    return [b for b in blocks if not furniture(b)]


def blocks_text(blocks: list[Block], drop: Callable[[Block], bool] | None = None) -> str:
    """Paragraphs separated by blank lines; rows of one table stay together, one row per line.

    Page numbers and blocks `drop` selects (a form's own running headings) are left out; a dropped
    block also ends the table run, so rows either side of it are not glued together.
    """
    parts: list[str] = []
    last_table = -1
    for b in blocks:
        if PAGE_NUMBER_RE.match(b.text) or (drop is not None and drop(b)):
            last_table = -1
            continue
        if b.table >= 0 and b.table == last_table and parts:
            parts[-1] += "\n" + b.text
        else:
            parts.append(b.text)
        last_table = b.table
    return "\n\n".join(parts)


def html_blocks(soup: BeautifulSoup) -> list[Block]:
    """Visible text of the document as paragraphs and table rows; hidden XBRL header dropped."""
    flat = _Flattener()
    flat.walk(soup)
    flat.flush()
    return _drop_page_furniture(flat.blocks)
