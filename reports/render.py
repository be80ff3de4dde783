"""Render a `Report` to Markdown and HTML, and a run's reports to `index.html`.

Why the split of duties: templates in `reports/templates/` decide layout and wording; this
module decides what is trusted. The environment uses `StrictUndefined` (a typo in a template
fails the render instead of printing an empty string) and autoescapes `*.html` / `*.html.j2`
templates only. The Markdown template is not HTML-escaped - escaping would litter the .md with
`&amp;` - so every untrusted string in it goes through the `md`/`plain`/`md_cell` filters, which
run `reports.sanitize` (idempotent, so already-sanitized paragraphs come out unchanged).

The only markup this module marks safe (`markupsafe.Markup`) is:
- citation links, built by escaping the paragraph first and then inserting `<a>` tags whose
  only variable part is an integer (`cite_html`);
- chart SVG, and only charts that `reports.charts.verified_charts` confirms are exactly what
  `financial_charts` builds from the report's own facts (numbers in, escaped labels only).

And it does not trust even that: every HTML page's body then passes the nh3 allow-list
(`reports.page_clean.clean_page`), which returns the page unchanged when it removes nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from urllib.parse import quote, urlsplit

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup, escape
from pydantic import BaseModel

from reports.charts import verified_charts
from reports.model import Paragraph, Report, RunEntry, RunSummary, SectionBadge
from reports.page_clean import clean_page
from reports.sanitize import CITATION_MARKER, sanitize_inline, sanitize_model_text

TEMPLATES = Path(__file__).parent / "templates"
_BLANK_RUNS = re.compile(r"\n(?:[ \t]*\n){2,}")
SHOWN = ("published", "caution")  # section statuses whose paragraphs appear in a report


class TrustSummary(BaseModel):
    """Counts behind the report header's trust line and the index's cited-% column."""

    published: int
    caution: int
    withheld: int
    failed: int
    paragraphs: int  # paragraphs shown (published + caution sections)
    cited: int  # of those, paragraphs with at least one valid citation
    numbers_verified: int = 0  # figures in shown text matched to facts or sources
    numbers_unverified: int = 0  # figures matching nothing, or a fact of another line/period
    inputs_dropped: int = 0  # retrieved passages input moderation kept out of prompts
    model_sentences: int = 0  # sentences the model wrote that are shown
    supported_sentences: int = 0  # of those, supported by the source they cite
    sentences_dropped: int = 0  # model sentences the checks kept out (listed in the audit)

    @property
    def cited_pct(self) -> float | None:
        return 100.0 * self.cited / self.paragraphs if self.paragraphs else None

    @property
    def text(self) -> str:
        sections = (
            f"Sections: {self.published} published, {self.caution} with caution, "
            f"{self.withheld} withheld" + (f", {self.failed} failed" if self.failed else "")
        )
        pct = self.cited_pct
        cited = "no paragraphs shown" if pct is None else f"{pct:.0f}% of paragraphs cited"
        model = (
            f"model sentences supported by their source {self.supported_sentences} of {self.model_sentences}"
            + (f", {self.sentences_dropped} not published (see Audit)" if self.sentences_dropped else "")
        )
        numbers = f"numbers verified {self.numbers_verified}, unverified {self.numbers_unverified}"
        dropped = f"inputs dropped by moderation {self.inputs_dropped}"
        return f"{sections} · {cited} ({self.cited} of {self.paragraphs}) · {model} · {numbers} · {dropped}"


def trust_summary(report: Report) -> TrustSummary:
    counts = {s: sum(1 for sec in report.sections if sec.status == s) for s in SHOWN + ("withheld", "failed")}
    shown = [p for sec in report.sections if sec.status in SHOWN for p in sec.paragraphs]
    return TrustSummary(
        **counts,
        paragraphs=len(shown),
        cited=sum(1 for p in shown if p.cited),
        numbers_verified=sum(p.numbers_verified for p in shown),
        numbers_unverified=sum(len(p.numbers_unverified) + len(p.numbers_mismatched) for p in shown),
        inputs_dropped=len(report.dropped_inputs),
        model_sentences=sum(p.sentences for p in shown if p.origin == "model"),
        supported_sentences=sum(p.supported_sentences for p in shown if p.origin == "model"),
        sentences_dropped=sum(len(sec.dropped) for sec in report.sections if sec.status in SHOWN),
    )


def run_entry(report: Report, md: str = "", html: str = "") -> RunEntry:
    """The index line for a written report; `md`/`html` are file names relative to the index."""
    trust = trust_summary(report)
    return RunEntry(
        ticker=report.ticker,
        company=report.company,
        status=report.status,
        sections=[
            SectionBadge(
                key=sec.key,
                title=sec.title,
                status=sec.status,
                label=sec.verdict.label if sec.verdict else "",
            )
            for sec in report.sections
        ],
        cited_pct=trust.cited_pct,
        numbers_verified=trust.numbers_verified,
        numbers_unverified=trust.numbers_unverified,
        inputs_dropped=trust.inputs_dropped,
        md=md,
        html=html,
    )


# -- filters -----------------------------------------------------------------------------------


def safe_url(url: str) -> str | None:
    """`url` if it is an absolute http(s) URL, percent-encoded so it cannot break out of an
    attribute or a Markdown autolink; None for anything else (javascript:, data:, relative...)."""
    url = url.strip()
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    return quote(url, safe="/:?#[]@!$&'()*+,;=%-._~")


_ACCESSION = re.compile(r"(\d{10})-(\d{2})-(\d{6})")


def edgar_url(accession: str, cik: str) -> str | None:
    """The filing's EDGAR folder for an accession number ("0000885245-24-000071") and the
    company's CIK; None when either is missing (a standalone exhibit's "accession" is its file name)."""
    m = _ACCESSION.fullmatch(str(accession).strip())
    digits = re.sub(r"\D", "", str(cik))
    if not m or not digits or int(digits) == 0:
        return None
    return f"https://www.sec.gov/Archives/edgar/data/{int(digits)}/{''.join(m.groups())}/"


def safe_href(target: str) -> str | None:
    """A link target for the index: an http(s) URL or a plain relative file path of ours."""
    if re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9._/-]*", target) and ".." not in target:
        return quote(target)
    return safe_url(target)


def cite_html(paragraph: Paragraph, sources: Iterable[int], mark_unverified: bool = False) -> Markup:
    """Paragraph text as HTML with citation markers linked to `#src-n`.

    Order matters: sanitize, then escape the whole text, then rewrite markers in the *escaped*
    string. A number gets a link only if it is in `paragraph.citations` (checked valid for the
    section) and in `sources` (the report lists it, so the anchor exists); others are flagged.
    With `mark_unverified`, each figure the number check could not verify is wrapped in
    `<mark class="unverified">` where it stands (escaped figure text, so nothing can be injected).
    """
    ok = set(paragraph.citations) & set(sources)
    similar = (set(paragraph.attributed) - set(paragraph.citations)) & set(sources)
    escaped = str(escape(sanitize_model_text(paragraph.text)))
    flagged = paragraph.numbers_unverified + [m.split(" (", 1)[0] for m in paragraph.numbers_mismatched]
    if mark_unverified and flagged:
        escaped = _mark_figures(escaped, flagged)

    def number(match: re.Match[str]) -> str:
        n = int(match.group())
        if n in ok:
            return f'<a class="cite" href="#src-{n}">{n}</a>'
        return f'<span class="cite-bad" title="no source [{n}] in this report">{n}</span>'

    def marker(match: re.Match[str]) -> str:
        body = match.group(1)
        if body.strip().isdigit() and int(body) in similar:  # added by similarity, not by the model
            n = int(body)
            return (
                f'<a class="cite attributed" href="#src-{n}" '
                f'title="attributed by similarity, not cited by the model">[~{n}]</a>'
            )
        if body.strip().isdigit() and int(body) in ok:  # the common "[n]": link the whole marker
            return f'<a class="cite" href="#src-{int(body)}">[{int(body)}]</a>'
        return "[" + re.sub(r"\d+", number, body) + "]"

    return Markup(CITATION_MARKER.sub(marker, escaped))


def _mark_figures(escaped: str, figures: list[str]) -> str:
    """Wrap each unverified figure's first unmarked occurrence; longest first so "$1.2 billion"
    is marked whole before a bare "1.2" could claim part of it."""
    markers = [(m.start(), m.end()) for m in CITATION_MARKER.finditer(escaped)]  # never inside "[12]"
    spans: list[tuple[int, int]] = []
    for fig in sorted(set(figures), key=len, reverse=True):
        needle = str(escape(fig))
        for m in re.finditer(re.escape(needle), escaped):
            if not any(a < m.end() and m.start() < b for a, b in spans + markers):
                spans.append((m.start(), m.end()))
                break
    out, pos = [], 0
    for a, b in sorted(spans):
        out += [
            escaped[pos:a],
            '<mark class="unverified" title="not found in the facts table or sources">',
            escaped[a:b],
            "</mark>",
        ]
        pos = b
    return "".join(out) + escaped[pos:]


def md_paragraph(paragraph: Paragraph) -> str:
    """Markdown text of a paragraph: attributed markers read "[~n]", never like the model's own."""
    text = sanitize_model_text(paragraph.text)
    for n in set(paragraph.attributed) - set(paragraph.citations):
        text = text.replace(f"[{n}]", f"[~{n}]")
    return text


def md_cell(text: str) -> str:
    """One-line sanitized text for a Markdown table cell (a `|` would end the cell)."""
    return sanitize_inline(text).replace("|", "\\|")


def _exact_number(value: float, grouping: str = ",") -> str:
    return f"{int(value):{grouping}}" if float(value).is_integer() else f"{value:{grouping}}"


def fact_exact(value: float | None, unit: str) -> str:
    """Full value as reported: "$391,035,000,000", "$6.11", "45.6213%"."""
    if value is None:
        return "n/a"
    sign, mag = ("-" if value < 0 else ""), abs(value)
    if unit in ("USD", "USD/shares"):
        return f"{sign}${_exact_number(mag)}"
    if unit == "%":
        return f"{sign}{mag}%"
    return f"{sign}{_exact_number(mag)} {unit}"


def fact_short(value: float | None, unit: str) -> str:
    """Table display: USD in millions ("$391,035M"), EPS to cents ("$6.11"), % to 0.1 ("46.2%")."""
    if value is None:
        return "n/a"
    sign, mag = ("-" if value < 0 else ""), abs(value)
    if unit == "USD":
        return f"{sign}${mag / 1e6:,.0f}M" if mag >= 1e6 else f"{sign}${mag:,.0f}"
    if unit == "USD/shares":
        return f"{sign}${mag:,.2f}"
    if unit == "%":
        return f"{sign}{mag:.1f}%"
    if unit == "shares" and mag >= 1e6:
        return f"{sign}{mag / 1e6:,.0f}M shares"
    return f"{sign}{mag:,.2f} {unit}"


def fact_md(value: float | None, unit: str) -> str:
    """Markdown cell: the short form, plus the exact value when rounding hid part of it.

    HTML keeps the exact value in the cell's `<data value>`/title; Markdown has no tooltip, so a
    non-round dollar figure is written out in full rather than silently rounded.
    """
    short = fact_short(value, unit)
    if value is None or unit == "%":
        return short
    rounded = round(value / 1e6) * 1e6 if unit == "USD" and abs(value) >= 1e6 else round(value, 2)
    return short if rounded == value else f"{short} ({fact_exact(value, unit)})"


def _first_line(text: str) -> str:
    lines = [ln.strip() for ln in str(text).splitlines() if ln.strip()]
    return lines[0] if lines else ""


@lru_cache(maxsize=1)
def get_environment() -> Environment:
    """The one Jinja2 environment for all report templates (cached: templates compile once)."""
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        undefined=StrictUndefined,
        autoescape=select_autoescape(["html", "html.j2"]),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(
        md=sanitize_model_text,
        plain=sanitize_inline,
        md_cell=md_cell,
        md_paragraph=md_paragraph,
        cite_html=cite_html,
        safe_url=safe_url,
        safe_href=safe_href,
        edgar_url=edgar_url,
        fact_exact=fact_exact,
        fact_short=fact_short,
        fact_md=fact_md,
        number_raw=lambda v: _exact_number(v, ""),  # machine-readable: <data value="391035000000">
        first_line=_first_line,
    )
    return env


def _report_context(report: Report) -> dict:
    charts, omitted = verified_charts(report)
    keys = {s.key for s in report.sections}
    return {
        "report": report,
        "trust": trust_summary(report),
        "valid_sources": {s.n for s in report.sources},
        # Marked safe only after verified_charts matched them against a rebuild from the facts.
        "charts": [{"file": c.file, "title": c.title, "svg": Markup(c.svg)} for c in charts],
        "charts_omitted": omitted,
        "facts_in_section": "financials" in keys,  # else the facts get their own block
    }


def render_markdown(report: Report) -> str:
    """`<TICKER>.md`: the report as Markdown, charts referenced as `![title](file.svg)`."""
    text = get_environment().get_template("report.md.j2").render(**_report_context(report))
    # Blank lines separate Markdown blocks; the template errs on the side of too many.
    return _BLANK_RUNS.sub("\n\n", text).strip() + "\n"


def render_html(report: Report) -> str:
    """`<TICKER>.html`: one self-contained page (inline CSS and SVG, no JS, works offline), its body
    through the nh3 allow-list (reports/page_clean.py) with only the verified charts held out."""
    context = _report_context(report)
    page = get_environment().get_template("report.html.j2").render(**context)
    return clean_page(page, trusted=[str(chart["svg"]) for chart in context["charts"]])


def render_index(run: RunSummary) -> str:
    """`index.html` for a run: every ticker with status, section badges, links and failures."""
    return clean_page(get_environment().get_template("index.html.j2").render(run=run))
