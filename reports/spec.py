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
    question: str = ""  # claim unit: the instruction given with one source ("" -> `instruction`)
    compose: str = "claims"  # registered composer name
    max_claims: int = 2  # claim units (model sentences) per section
    # Paragraph unit: two short paragraphs. Prompts stay near 900 tokens (sources ~160 words
    # each), so prompt plus answer fit GPT-NeoXT-Chat-Base-20B's 2,048-token context.
    max_new_tokens: int = 180
    # Claim unit: one sentence, ended by a newline. SmolLM2 answers in 20-70 tokens on the shipped
    # sample; at 72 and 96 some answers still ran into the limit mid-way through a second
    # sentence, so 128 lets every answer finish (only the first sentence is used).
    claim_tokens: int = 128


SECTIONS: dict[str, SectionSpec] = {}


def register(spec: SectionSpec) -> SectionSpec:
    SECTIONS[spec.key] = spec
    return spec


register(
    SectionSpec(
        key="overview",
        title="Company overview",
        instruction="Describe what {company} does: its main products or segments and how it makes money.",
        question="Summarize in one sentence what {company} does, using only the text above.",
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
        question="Summarize in one sentence what the text above says drove {company}'s revenue.",
        queries=(
            SourceQuery(
                "filings",
                "{company} net sales revenue increased decreased compared to prior year due to",
                k=2,
                sections=("management", "results of operations", "exhibit 99"),
            ),
            # The latest earnings release (8-K EX-99.1) on its own: a company that files only 8-Ks
            # between annual reports has its quarter's figures there, and the ranking above, over
            # long MD&A sections, would otherwise seldom surface the one short press release.
            SourceQuery(
                "filings",
                "{company} reports quarter results revenue net income compared with prior year quarter",
                k=1,
                sections=("exhibit 99",),
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
        question="Summarize the news above in one sentence.",
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
        question="Summarize the risk described above in one sentence.",
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
