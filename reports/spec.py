"""What a report contains: sections registered by key, each with its retrieval plan and composition.

Extend by registration: `register(SectionSpec(...))` adds a section (a user's own coverage or
template) without touching the pipeline. Order of registration is the order in the report.

`compose` names a composer registered in `reports/compose.py` / `reports/sections.py`: what code
states exactly (facts sentences, risk-factor headings, news stories) and what the model is asked
to write, in units sized for the model (`ModelPreset.generation_unit`): a small model gets one
source and one `question` per request, so its citation is right by construction; a large model
gets the section's sources numbered and `instruction`, and writes a short paragraph.
A user-defined section with the default composer ("claims") gets model sentences over its own
retrieved sources, checked like every other section.
"""

from __future__ import annotations

from dataclasses import dataclass

from rag.retrieve import SourceQuery


@dataclass(frozen=True)
class SectionSpec:
    key: str
    title: str
    instruction: str  # paragraph unit: what to write; the citation rules are added by the prompt builder
    queries: tuple[SourceQuery, ...]
    question: str = ""  # claim unit: one question asked of one source ("" -> derived from instruction)
    compose: str = "claims"  # registered composer name
    max_claims: int = 2  # claim units (model sentences) per section
    # Paragraph unit: two short paragraphs. Prompts stay near 900 tokens (sources ~160 words
    # each), so prompt plus answer fit GPT-NeoXT-Chat-Base-20B's 2,048-token context.
    max_new_tokens: int = 180
    # Claim unit: one sentence. SmolLM2 answers a focused one-source question in 20-40 tokens
    # (measured on the shipped sample), so 72 leaves room without inviting a second ramble.
    claim_tokens: int = 72


SECTIONS: dict[str, SectionSpec] = {}


def register(spec: SectionSpec) -> SectionSpec:
    SECTIONS[spec.key] = spec
    return spec


register(
    SectionSpec(
        key="overview",
        title="Company overview",
        instruction="Describe what {company} does: its main products or segments and how it makes money.",
        question="What does {company} do, and what are its main products or services?",
        queries=(
            SourceQuery("wikipedia", "{company} company products services", k=1),
            SourceQuery(
                "filings",
                "{company} business overview products services segments",
                k=1,
                sections=("business",),
            ),
        ),
        compose="overview",
    )
)
register(
    SectionSpec(
        key="financials",
        title="Financial performance",
        instruction=(
            "Explain what drove {company}'s revenue and profit changes, using only the management "
            "discussion and earnings-release sources. Do not restate the figures table."
        ),
        question="What drove the change in {company}'s revenue or profit?",
        queries=(
            SourceQuery(
                "filings",
                "{company} net sales revenue increased decreased compared to prior year due to",
                k=2,
                sections=("management", "results of operations", "exhibit 99"),
            ),
        ),
        compose="financials",
    )
)
register(
    SectionSpec(
        key="developments",
        title="Recent developments",
        instruction="Summarise what the listed news stories say about {company} for an investor.",
        question="What does this news report about {company}?",
        queries=(
            # 8-K items ("Item 5.02 …") and EX-99 press releases ("Exhibit 99.1: …"), titled by
            # rag/sources/current_reports.py; 10-K/10-Q titles ("Item 5. Market …") never match.
            SourceQuery(
                "filings",
                "{company} announced results agreement appointment officers shareholder vote",
                k=1,
                sections=(*(f"item {n}.0" for n in (1, 2, 3, 4, 5, 7, 8)), "exhibit 99"),
            ),
        ),
        compose="developments",
    )
)
register(
    SectionSpec(
        key="risks",
        title="Key risks",
        instruction="List the main risks to {company}'s business that the sources describe.",
        question="What risk to {company}'s business does this describe?",
        queries=(
            SourceQuery(
                "filings",
                "{company} principal risks that could adversely affect the business",
                k=2,
                sections=("risk factors",),
            ),
        ),
        compose="risks",
    )
)
