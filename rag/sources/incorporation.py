"""Does a 10-K's Item 8 hold the financial statements, or only point to another document?

Some filers (Wells Fargo, many banks and utilities) file the financial statements in the annual
report to shareholders, attached as Exhibit 13, and Item 8 of the 10-K only says so: "Information
in response to this Item 8 can be found in the 2024 Annual Report to Shareholders ... That
information is incorporated into this item by reference." The 10-K document then has no statement
facts, and an ingest that reads it finds none without telling anyone why. `incorporated_by_reference`
recognises that Item 8 so the parser can say so through `rag.sources.skipped`.

A pointer inside the same filing ("see Item 15", "pages F-1 to F-40", "on pages 153-156") is not
incorporation by reference from another document: those statements, and their XBRL, are in the
filing. So an Item 8 counts only when it is short AND names another document: an annual report
to shareholders/stockholders or Exhibit 13. "Annual Report on Form 10-K" is the 10-K itself.
"""

from __future__ import annotations

import re

from rag.types import Section

# What the skip note tells the user after the reason (see `rag.sources.filings.parse_filing`).
NO_STATEMENTS = "no statement facts in this filing; add the EX-13 annual report or companyfacts"

# Real Item 8 texts with statements run to tens of thousands of characters; a pointer is a few
# sentences (Wells Fargo's FY2024 Item 8: 261 characters).
MAX_POINTER_CHARS = 3000

# Another document the statements live in. "Annual Report" alone is not enough: filers call the
# 10-K itself their "Annual Report on Form 10-K".
_EXTERNAL = re.compile(
    r"(?P<doc>(?:\b(?:19|20)\d{2}\s+)?annual\s+report\s+to\s+(?:share|stock)holders"
    r"|\bexhibit\s+(?:no\.\s*)?13(?:\.\d+)?\b)",
    re.IGNORECASE,
)
# "incorporated herein by reference", "incorporated into this item by reference", "incorporated by
# reference"; "not incorporated by reference" (a website disclaimer) does not count.
_INCORPORATED = re.compile(
    r"(?<!not\s)\bincorporated\s+(?:herein\s+|here\s+|into\s+this\s+(?:item|report|annual\s+report)\s+)?"
    r"(?:in\s+its\s+entirety\s+)?by\s+reference\b",
    re.IGNORECASE,
)
_SEE = re.compile(
    r"\b(?:see|refer\s+to|can\s+be\s+found\s+in|(?:is|are)\s+(?:included|set\s+forth)\s+in)\b", re.IGNORECASE
)


def _item8(sections: list[Section]) -> Section | None:
    """Item 8 of a 10-K ("8", or "II-8" where a parser keeps the Part)."""
    return next((s for s in sections if s.key.upper() in ("8", "II-8")), None)


def incorporated_by_reference(sections: list[Section], form: str = "10-K") -> str | None:
    """One-line reason when Item 8 only points to the annual report (Exhibit 13); else None.

    None also when there is no Item 8 to judge (a partial filing, a 10-Q): saying nothing is
    better than a false warning.
    """
    if not form.upper().startswith("10-K"):
        return None
    item = _item8(sections)
    if item is None:
        return None
    text = " ".join(item.text.split())
    if not text or len(text) > MAX_POINTER_CHARS:
        return None
    external = _EXTERNAL.search(text)
    if external is None:
        return None
    if not (_INCORPORATED.search(text) or _SEE.search(text)):
        return None
    doc = " ".join(external.group("doc").split())
    doc = f"Exhibit {doc.split()[-1]}" if doc.lower().startswith("exhibit") else f"the {doc}"
    return f"Item 8 ({len(text)} characters) refers to {doc}"
