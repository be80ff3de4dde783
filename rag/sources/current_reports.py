"""Form 8-K (current report) text blocks -> Sections: one per Item, one per exhibit document.

Shared by both ways an 8-K arrives: a primary-document HTML file (`filings.py`) and a full EDGAR
submission (`submissions.py`). Conventions, so retrieval can filter on them:
- an Item is `Section(key="2.02", title=<heading as printed>)`, e.g. "ITEM 2.02. Results of
  Operations and Financial Condition"; only the gap between "Item" and the code is normalised, so
  every 8-K item title contains "item N.NN" (reports/spec.py filters on that);
- an exhibit (EX-99.x press release) is one `Section(key="EX-99.1", title="Exhibit 99.1: <what>")`;
  its Document keeps the filing's form ("8-K") and says "EX-99.1" in its title.
8-Ks have no table of contents, so unlike 10-K headings (filings.py) the first increasing run of
Item headings is the body; the cover page before the first Item and the signature block after
the last one carry no facts and are dropped.
"""

from __future__ import annotations

import re
from datetime import datetime

from dateutil import parser as date_parser

from rag.sources.html_text import Block, blocks_text
from rag.types import Section

# The SEC's Form 8-K item titles; used when a heading prints only the code, and to split a heading
# that runs into its first sentence ("Item 8.01 Other Events. On May 1, ...").
ITEM_TITLES = {
    "1.01": "Entry into a Material Definitive Agreement",
    "1.02": "Termination of a Material Definitive Agreement",
    "1.03": "Bankruptcy or Receivership",
    "1.04": "Mine Safety - Reporting of Shutdowns and Patterns of Violations",
    "1.05": "Material Cybersecurity Incidents",
    "2.01": "Completion of Acquisition or Disposition of Assets",
    "2.02": "Results of Operations and Financial Condition",
    "2.03": "Creation of a Direct Financial Obligation or an Obligation under an Off-Balance Sheet "
    "Arrangement of a Registrant",
    "2.04": "Triggering Events That Accelerate or Increase a Direct Financial Obligation or an "
    "Obligation under an Off-Balance Sheet Arrangement",
    "2.05": "Costs Associated with Exit or Disposal Activities",
    "2.06": "Material Impairments",
    "3.01": "Notice of Delisting or Failure to Satisfy a Continued Listing Rule or Standard; Transfer "
    "of Listing",
    "3.02": "Unregistered Sales of Equity Securities",
    "3.03": "Material Modification to Rights of Security Holders",
    "4.01": "Changes in Registrant's Certifying Accountant",
    "4.02": "Non-Reliance on Previously Issued Financial Statements or a Related Audit Report or "
    "Completed Interim Review",
    "5.01": "Changes in Control of Registrant",
    "5.02": "Departure of Directors or Certain Officers; Election of Directors; Appointment of Certain "
    "Officers; Compensatory Arrangements of Certain Officers",
    "5.03": "Amendments to Articles of Incorporation or Bylaws; Change in Fiscal Year",
    "5.04": "Temporary Suspension of Trading Under Registrant's Employee Benefit Plans",
    "5.05": "Amendments to the Registrant's Code of Ethics, or Waiver of a Provision of the Code of Ethics",
    "5.06": "Change in Shell Company Status",
    "5.07": "Submission of Matters to a Vote of Security Holders",
    "5.08": "Shareholder Director Nominations",
    "6.01": "ABS Informational and Computational Material",
    "6.02": "Change of Servicer or Trustee",
    "6.03": "Change in Credit Enhancement or Other External Support",
    "6.04": "Failure to Make a Required Distribution",
    "6.05": "Securities Act Updating Disclosure",
    "7.01": "Regulation FD Disclosure",
    "8.01": "Other Events",
    "9.01": "Financial Statements and Exhibits",
}

# "Item 2.02. Results ...", "ITEM 9.01(d). Exhibits", pre-2004 "Item 5. Other Events".
_ITEM_RE = re.compile(
    r"^(item)\s*(\d{1,2})(?:\.(\d{2})|(?![a-z]))(?![\d.]\d)\s*(\([a-z]\))?\s*[.:\-\u2014\u2013]?\s*(.*)$",
    re.I,
)
_MAX_HEADING = 250  # chars; the 5.02 title alone is ~150
_END_RE = re.compile(r"^(signatures?|exhibit index|index to exhibits)\b\W*$", re.I)
_GROUP_RE = re.compile(r"^section\s+\d{1,2}\s*[.:\-\u2014\u2013]", re.I)  # "Section 5 - Corporate Governance"
# "Exhibit 99.1", "EX-99.1", "EX-99.1 2 bke20241122-8kexhibit.htm EX-99.1" (EDGAR viewer header).
_EXHIBIT_MARK_RE = re.compile(r"^(?:ex-|exhibit\s*)(\d{1,3}(?:\.\d{1,2})?)\b", re.I)
# "...8-K.EX99.1.html", "nvda-20250226xex991.htm" (Workiva), "ex-99_1.htm"
_EXHIBIT_NAME_RE = re.compile(r"(?:^|[^a-z]|x)ex(?:hibit)?[-_.]?(99)[-_.]?(\d{1,2})?(?!\d)", re.I)
_MONTHS = "january february march april may june july august september october november december"
_DATE_RE = re.compile(rf"\b({'|'.join(_MONTHS.split())})\s+(\d{{1,2}}),\s*(\d{{4}})\b", re.I)
_SIGNED_RE = re.compile(r"(?:^|\| )dated?\s*:[\s|]*", re.I)  # "Date: | December 19, 2025" (cells)


def _norm(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", text.lower()).strip()


def _printed(text: str) -> str:
    """A heading as printed, with table cells joined and "Item2.02" spaced like "Item 2.02"."""
    return re.sub(r"^(item)\s*", r"\1 ", text.replace(" | ", " "), flags=re.I)


def _heading(text: str) -> tuple[tuple[int, int], str, str, str] | None:
    """(order, key, title as printed, body run into the heading) for an Item heading, else None.

    The title is "" when the heading prints only the code ("Item 2.02.").
    """
    text = _printed(text)
    m = _ITEM_RE.match(text)
    if not m:
        return None
    key = f"{m.group(2)}.{m.group(3)}" if m.group(3) else m.group(2)
    rest, title, body = m.group(5), text, ""
    official = ITEM_TITLES.get(key, "")
    if len(text) > _MAX_HEADING:
        if not (official and _norm(rest).startswith(_norm(official))):
            return None  # prose that happens to start with "Item"
        # Heading and first sentence in one paragraph: cut after the official title's words.
        cut = 0
        for _ in _norm(official).split():
            word = re.search(r"[A-Za-z0-9]+", rest[cut:])
            cut += word.end() if word else 0
        title, body = text[: m.start(5) + cut], rest[cut:].lstrip(" .:")
    if rest and not (rest[0].isupper() or rest[0] in "[\"'\u201c("):
        return None  # a cross reference: "Item 9.01 of this report"
    return (int(m.group(2)), int(m.group(3) or 0)), key, title if rest else "", body


def _drop(b: Block) -> bool:
    return bool(_GROUP_RE.match(b.text)) and len(b.text) < 100


def split_8k_items(blocks: list[Block]) -> list[Section]:
    """One Section per Item heading, in increasing item order, text up to the next Item."""
    found: list[tuple[int, str, str, str]] = []  # (block index, key, title, run-in body)
    last = (0, 0)
    end = len(blocks)
    for i, b in enumerate(blocks):
        if found and len(b.text) < 40 and _END_RE.match(b.text):
            end = i
            break
        h = _heading(b.text)
        if h is None or h[0] <= last:
            continue
        last = h[0]
        found.append((i, h[1], h[2], h[3]))
    sections: list[Section] = []
    for k, (i, key, title, run_in) in enumerate(found):
        stop = found[k + 1][0] if k + 1 < len(found) else end
        body = blocks[i + 1 : stop]
        if not title:  # the heading printed only the code: title from the next block or the SEC list
            official = ITEM_TITLES.get(key, "")
            printed = _printed(blocks[i].text).rstrip(" .:")
            if body and official and _norm(body[0].text).startswith(_norm(official)[:30]):
                title, body = f"{printed} {body[0].text.replace(' | ', ' ')}", body[1:]
            else:
                title = f"{printed} {official}".strip()
        if run_in:
            body = [Block(run_in), *body]
        sections.append(Section(key=key, title=title, text=blocks_text(body, drop=_drop)))
    return sections


def exhibit_number(name: str, blocks: list[Block]) -> str:
    """ "99.1" when a standalone file is an exhibit: its first lines or its name say so, else ""."""
    for b in blocks[:6]:
        m = _EXHIBIT_MARK_RE.match(b.text)
        if m and len(b.text) < 80:
            return m.group(1)
    m = _EXHIBIT_NAME_RE.search(name)
    return f"{m.group(1)}.{m.group(2)}" if m and m.group(2) else m.group(1) if m else ""


def exhibit_section(blocks: list[Block], number: str, description: str = "") -> Section:
    """The whole exhibit as one Section; the "Exhibit 99.1" marker lines at its top are dropped."""
    start = 0
    while (
        start < min(len(blocks), 4)
        and _EXHIBIT_MARK_RE.match(blocks[start].text)
        and len(blocks[start].text) < 80
    ):
        start += 1
    key = f"EX-{number}"
    what = description.strip()
    title = (
        f"Exhibit {number}: {what}" if what and _norm(what) not in (_norm(key), "") else f"Exhibit {number}"
    )
    return Section(key=key, title=title, text=blocks_text(blocks[start:]))


def _iso(m: re.Match) -> str:
    try:
        return datetime.strptime(f"{m.group(1)} {m.group(2)} {m.group(3)}", "%B %d %Y").date().isoformat()
    except ValueError:
        return ""


_EVENT_RE = re.compile(r"date\s+of\s+earliest\s+event\s+reported", re.I)
_YEAR_RE = re.compile(r"\b(?:19|20)\d{2}\b")


_NUMERIC_RE = re.compile(r"^(\d{1,2})[/.\-](\d{1,2})[/.\-]\d{2,4}$")


def iso_date(text: str) -> str:
    """One printed date ("November 22, 2024", "Nov. 22, 2024", "2024-11-22") as ISO, else "".

    dateutil reads the spellings. The year must be printed (dateutil would fill it in), and a
    numeric date that reads both ways ("03/02/2026") is refused rather than guessed.
    """
    text = text.strip(" .:|()")
    if not text or len(text) > 40 or not _YEAR_RE.search(text):
        return ""
    m = _NUMERIC_RE.match(text)
    if m and m.group(1) != m.group(2) and int(m.group(1)) <= 12 and int(m.group(2)) <= 12:
        return ""
    try:
        return date_parser.parse(text, default=datetime(1900, 1, 1)).date().isoformat()
    except (ValueError, OverflowError):
        return ""


def event_date(blocks: list[Block], cover: str = "") -> str:
    """The date an 8-K reports on, as ISO: `cover` (the inline XBRL dei:DocumentPeriodEndDate as
    printed) when it reads as a date, else the cover page's "Date of Report (Date of earliest
    event reported): June 24, 2026"; "" when neither is there (the caller falls back).

    The printed date sits after the label (same line) or on the line above it (Workiva, Buckle);
    only the first 60 blocks (the cover page) are read, and only a date written with its month's
    name counts, so a stray number is never taken for the event date.
    """
    if iso := iso_date(cover):
        return iso
    for i, b in enumerate(blocks[:60]):
        m = _EVENT_RE.search(b.text)
        if not m:
            continue
        after = b.text[m.end() :].lstrip(" ):|")
        candidates = [after, b.text[: m.start()]]
        candidates += [blocks[i - 1].text] if i else []
        candidates += [blocks[i + 1].text] if i + 1 < len(blocks) else []
        for text in candidates:
            if (d := _DATE_RE.search(text)) and (iso := _iso(d)):
                return iso
        return ""
    return ""


def report_date(blocks: list[Block]) -> str:
    """Best date for a standalone 8-K or exhibit with no EDGAR header: the signature date (filed
    within days of signing), else the first date near the top (date of report, release date)."""
    for b in reversed(blocks):
        signed = _SIGNED_RE.search(b.text)
        if signed and (m := _DATE_RE.match(b.text, signed.end())):
            return _iso(m)
    for b in blocks[:25]:
        if m := _DATE_RE.search(b.text):
            return _iso(m)
    return ""
