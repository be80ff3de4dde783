"""A section from its plan: code paragraphs around the best-supported model candidate, checked."""

from __future__ import annotations

from models.types import Completion
from reports.assemble import assemble_section
from reports.compose import CLAIM_SYSTEM, SectionPlan, UnitPlan, code_paragraph
from reports.model import Verdict

SOURCE = (
    "Total net sales increased 2% or $7.8 billion during 2024 compared to 2023. The increase was driven by "
    "higher net sales of Services, partially offset by lower net sales of iPhone and Wearables."
)
OK = Verdict(label="casual", action="publish", scores={}, margin=1.0, reason="")


def _unit(rid: str, group: str = "g0") -> UnitPlan:
    return UnitPlan(
        request_id=rid,
        mode="claim",
        source_map={1: 3},
        source_texts={1: SOURCE},
        system=CLAIM_SYSTEM,
        user=f"{SOURCE}\n\nSummarize.",
        question="Summarize.",
        max_new_tokens=72,
        allowed_numbers=[],
        allowed_citations=[],
        group=group,
    )


def _section(plan: SectionPlan, texts: dict[str, str], verdicts: dict[str, Verdict] | None = None):
    completions = {rid: Completion(rid, t) for rid, t in texts.items()}
    verdicts = verdicts if verdicts is not None else {rid: OK for rid in texts}
    return assemble_section(plan, completions, verdicts, warnings=[])


def test_the_best_supported_candidate_of_a_group_is_published_once():
    plan = SectionPlan(
        key="financials", title="Financial performance", units=[_unit("a"), _unit("b")], sources=[3]
    )
    sec = _section(
        plan,
        {
            "a": "Net sales increased during 2024, driven by Services and other things.",
            "b": "Total net sales increased 2% during 2024, driven by higher net sales of Services.",
        },
    )
    (para,) = sec.paragraphs
    assert para.origin == "model" and para.sentences == 1 and para.cited and para.citations == [3]
    assert (
        para.text == "Total net sales increased 2% during 2024, driven by higher net sales of Services [3]."
    )
    assert sec.dropped == []  # a failed sibling candidate is not an unpublished claim


def test_when_every_candidate_fails_the_audit_lists_why_and_code_text_stays():
    lead = [code_paragraph(["Revenue was $391,035 million in FY2024."], 1)]
    plan = SectionPlan(
        key="financials",
        title="Financial performance",
        lead=lead,
        units=[_unit("a"), _unit("b")],
        sources=[1, 3],
    )
    sec = _section(plan, {"a": "The company is great.", "b": "Its flagship product is the Apple I."})
    assert sec.status == "published" and [p.origin for p in sec.paragraphs] == ["code"]
    assert len(sec.dropped) == 2 and all(
        "not supported" in d.reason or "too short" in d.reason for d in sec.dropped
    )


def test_a_model_sentence_that_restates_the_code_text_is_dropped():
    lead = [
        code_paragraph(
            ["Total net sales increased 2% during 2024, driven by higher net sales of Services."], 3
        )
    ]
    plan = SectionPlan(
        key="developments", title="Recent developments", lead=lead, units=[_unit("a")], sources=[3]
    )
    sec = _section(
        plan, {"a": "Total net sales increased 2% during 2024, driven by higher net sales of Services."}
    )
    assert [p.origin for p in sec.paragraphs] == ["code"]
    assert sec.dropped[0].reason == "repeats what the section already states"


def test_one_withheld_candidate_withholds_the_section_and_unmoderated_text_fails_closed():
    plan = SectionPlan(key="overview", title="Company overview", units=[_unit("a"), _unit("b")], sources=[3])
    texts = {
        "a": "Total net sales increased 2% during 2024.",
        "b": "Total net sales increased 2% during 2024.",
    }
    bad = Verdict(label="needs intervention", action="withhold", scores={}, margin=1.0, reason="unsafe")
    assert _section(plan, texts, {"a": OK, "b": bad}).status == "withheld"
    sec = _section(plan, texts, {"a": OK})  # "b" was never moderated
    assert sec.status == "withheld" and sec.paragraphs == []


def test_a_section_with_nothing_to_say_says_so_without_failing():
    plan = SectionPlan(
        key="financials", title="Financial performance", note="No XBRL financial facts were available."
    )
    sec = _section(plan, {})
    assert sec.status == "published" and sec.paragraphs == [] and sec.note.startswith("No XBRL")
