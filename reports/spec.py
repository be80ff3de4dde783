"""What a report contains: sections registered by key, each with its retrieval plan and instruction.

Extend by registration: `register(SectionSpec(...))` adds a section (a user's own coverage or
template) without touching the pipeline. Order of registration is the order in the report.
"""

from __future__ import annotations

from dataclasses import dataclass

from rag.retrieve import SourceQuery


@dataclass(frozen=True)
class SectionSpec:
    key: str
    title: str
    instruction: str  # what to write; the citation rules are added by the prompt builder
    queries: tuple[SourceQuery, ...]
    facts: bool = False  # put the exact XBRL facts table in front of the model as a source
    # Two short paragraphs. Prompts stay near 900 tokens (sources ~160 words each), so prompt plus
    # answer fit GPT-NeoXT-Chat-Base-20B's 2,048-token context with room to spare.
    max_new_tokens: int = 180


SECTIONS: dict[str, SectionSpec] = {}


def register(spec: SectionSpec) -> SectionSpec:
    SECTIONS[spec.key] = spec
    return spec


register(
    SectionSpec(
        key="overview",
        title="Company overview",
        instruction="Describe what {company} does: its main products or segments and how it makes money.",
        queries=(
            SourceQuery(
                "filings",
                "{company} business overview products services segments",
                k=2,
                sections=("business",),
            ),
            SourceQuery("wikipedia", "{company} company history products", k=1),
        ),
    )
)
register(
    SectionSpec(
        key="financials",
        title="Financial performance",
        instruction=(
            "Summarise {company}'s financial performance over the last fiscal years: revenue, net "
            "income, margins and what drove the changes. Use only numbers that appear in the sources, "
            "exactly as written."
        ),
        queries=(
            SourceQuery(
                "filings",
                "{company} net sales revenue increased decreased compared to prior year",
                k=2,
                sections=("management", "results of operations"),
            ),
        ),
        facts=True,
    )
)
register(
    SectionSpec(
        key="developments",
        title="Recent developments",
        instruction="Summarise the most important recent news about {company} for an investor.",
        queries=(
            SourceQuery("news", "{company} {ticker} stock news earnings announcement", k=4),
            # 8-K items ("Item 5.02 …") and EX-99 press releases ("Exhibit 99.1: …"), titled by
            # rag/sources/current_reports.py; 10-K/10-Q titles ("Item 5. Market …") never match.
            SourceQuery(
                "filings",
                "{company} announced results agreement appointment officers shareholder vote",
                k=2,
                sections=(*(f"item {n}.0" for n in (1, 2, 3, 4, 5, 7, 8)), "exhibit 99"),
            ),
        ),
    )
)
register(
    SectionSpec(
        key="risks",
        title="Key risks",
        instruction="List the main risks to {company}'s business that the sources describe.",
        queries=(
            SourceQuery(
                "filings",
                "{company} principal risks that could adversely affect the business",
                k=3,
                sections=("risk factors",),
            ),
            SourceQuery("news", "{company} risk concern tariff lawsuit regulation decline", k=1),
        ),
    )
)
