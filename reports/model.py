"""The report as data: what assembly produces and the templates render.

pydantic with `extra="forbid"` so a template never sees a field the code did not mean to give it.
Model-written text lives only in `Paragraph.text` and is sanitized before it is stored here.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SourceRef(_Strict):
    n: int  # 1-based citation number, unique within a report
    passage_id: str
    corpus: str  # filings | news | wikipedia
    ticker: str
    form: str
    date: str
    title: str
    section: str
    url: str
    excerpt: str  # first ~300 chars of the passage, plain text


class InputVerdict(_Strict):
    """Input moderation's decision on one retrieved passage."""

    drop: bool  # True: the passage never enters a prompt
    label: str  # combined moderation label (most severe check)
    reason: str  # which check said what, e.g. "injection: override instructions: 'ignore all ...'"


class DroppedPassage(_Strict):
    """A retrieved passage that input moderation kept out of every prompt (listed in the audit)."""

    passage_id: str
    corpus: str
    title: str
    date: str
    section: str
    url: str
    excerpt: str
    label: str
    reason: str
    sections: list[str]  # report sections that had retrieved it


class CheckResult(_Strict):
    """One moderation check's label for a section (models.screens)."""

    check: str
    label: str
    reason: str = ""
    advisory_label: str = ""  # a non-moderation judge's own label: recorded in the audit, not acted on


class Verdict(_Strict):
    label: str  # one of the five OpenChatKit moderation labels, or "error"
    action: Literal["publish", "caution", "withhold"]
    scores: dict[str, float]  # label -> mean token log-prob (calibrated)
    margin: float  # best minus second-best score
    reason: str  # human sentence shown in the report
    checks: list[CheckResult] = []  # every check's own label; `label` is the most severe


class Paragraph(_Strict):
    text: str  # sanitized plain text; citation markers kept as "[n]"
    citations: list[int]  # valid citation numbers found in text, in order
    # "code": stated by code from the facts table, risk-factor headings or news metadata (exact by
    # construction); "model": written by the chat model (checked for support, numbers, echo).
    origin: Literal["code", "model"] = "model"
    kind: Literal["prose", "item"] = "prose"  # "item": one entry of a list (a risk, a news story)
    # Model sentences whose cited source supports them (reports.support); code sentences count
    # as supported. `cited` is True only when every model citation in the paragraph is supported.
    sentences: int = 0
    supported_sentences: int = 0
    numbers_mismatched: list[str] = []  # figures matching a fact of another line/period: "why" each
    invalid_citations: list[int] = []  # [n] markers that were not among the section's sources
    attributed: list[int] = []  # numbers added by similarity attribution (reports.checks), not by the model
    numbers_verified: int = 0  # figures matched to the facts table or the section's sources
    numbers_unverified: list[str] = []  # figures as written that matched nothing (reports.numbers)
    cited: bool  # at least one valid citation (from the model or code, never an attribution) that supports it


class DroppedClaim(_Strict):
    """A model-written sentence the checks kept out of the report, listed in the audit."""

    request_id: str
    text: str  # sanitized text as generated (plain; never published in a section)
    reason: str  # "echoes the prompt", "not supported by its source (score 0.21)", ...


class SectionReport(_Strict):
    key: str  # "overview" | "financials" | "developments" | "risks" | user-defined
    title: str
    status: Literal["published", "caution", "withheld", "failed"]
    paragraphs: list[Paragraph]
    verdict: Verdict | None
    note: str = ""  # reason shown when withheld/failed, or a caution banner text
    sources: list[int]  # citation numbers offered to the model for this section
    dropped: list[DroppedClaim] = []  # model sentences the checks did not publish


class FactRow(_Strict):
    line: str  # "revenue"
    label: str  # "Revenue"
    unit: str  # "USD", "USD/shares", "%"
    values: dict[str, float | None]  # fiscal year ("2024") -> value (fully scaled; % as 0-100)
    concept: str  # XBRL concept (or "derived: gross_profit / revenue")


class FactsTable(_Strict):
    years: list[str]  # column keys, oldest first: fiscal years ("2024"), or quarters ("Q3 FY2025")
    rows: list[FactRow]
    source: str  # e.g. "SEC companyfacts (CIK0000320193), 10-K filed 2024-11-01"
    labels: dict[str, str] = {}  # column key -> header; default "FY<year>"
    quarterly: FactsTable | None = None  # latest fiscal quarter vs the year-ago quarter (10-Q facts)
    # The latest earnings release (8-K EX-99) when it reports a period later than any XBRL fact:
    # unaudited figures as printed, shown as their own table, never merged into the rows above.
    release: FactsTable | None = None
    unaudited: bool = False  # True for a release table: figures from a press release, not XBRL
    form: str = ""  # release tables: "8-K EX-99.1"
    filed: str = ""  # release tables: filing date (ISO) of the 8-K
    accession: str = ""  # release tables: accession number, or the exhibit's file name

    def header(self, key: str) -> str:
        return self.labels.get(key, f"FY{key}")


class Chart(_Strict):
    file: str  # file name of the SVG written next to the report
    title: str
    svg: str  # the SVG markup, built by reports.charts from numbers only


class Report(_Strict):
    ticker: str
    company: str
    cik: str
    as_of: str  # ISO date the report describes
    run_id: str
    generated_at: str  # ISO timestamp UTC
    model: str  # preset name + revision
    status: Literal["published", "caution", "withheld", "failed"]  # worst section status
    sections: list[SectionReport]
    facts: FactsTable | None
    charts: list[Chart]
    sources: list[SourceRef]
    warnings: list[str]  # data gaps, stale sources, ingest problems
    dropped_inputs: list[DroppedPassage] = []  # retrieved passages input moderation kept out of prompts


class SectionBadge(_Strict):
    """One section's outcome as the run index shows it."""

    key: str
    title: str
    status: Literal["published", "caution", "withheld", "failed"]
    label: str  # moderation label ("" when moderation did not run, e.g. the section failed)


class RunEntry(_Strict):
    """One ticker's line in the run index: a report that was written, or a ticker that failed."""

    ticker: str
    company: str = ""
    status: Literal["published", "caution", "withheld", "failed"]
    sections: list[SectionBadge] = []
    cited_pct: float | None = None  # % of shown paragraphs with a valid citation; None if none shown
    numbers_verified: int = 0  # figures in shown text matched to facts or sources
    numbers_unverified: int = 0
    inputs_dropped: int = 0  # retrieved passages kept out of prompts by input moderation
    md: str = ""  # report file names relative to the index ("AAPL.md"); "" when not written
    html: str = ""
    error: str = ""  # one-line reason for a failed ticker


class RunSummary(_Strict):
    """What `index.html` renders for one pipeline run."""

    run_id: str
    generated_at: str  # ISO timestamp UTC
    as_of: str
    model: str
    entries: list[RunEntry]
    totals: dict[str, float] = {}  # e.g. tickers, reports, failed, tokens_out
    timings: dict[str, float] = {}  # stage -> seconds
