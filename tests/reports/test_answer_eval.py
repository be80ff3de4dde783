"""Answer scoring on the FinanceBench format (reports/answer_eval.py): figures, citations, refusals.

Gold answers are the real ones of FinanceBench's dev questions (inlined, and checked against
../shared/data/financebench-dev/ when that folder is there); evidence texts come from the repo
fixture tests/fixtures/financebench/questions.jsonl. Support is lexical only (no embedder load),
except one test with the instant HashEmbedder to check the threshold follows the signal.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rag.errors import ConfigError, ModelError, ResearchDeskError
from reports.answer_eval import (
    Answer,
    AnswersEval,
    AnswerSource,
    Figure,
    GoldQuestion,
    cited_markers,
    evaluate_answers,
    gold_figure,
    load_answer_questions,
    refusal,
    score_answer,
    states_figure,
)
from reports.support import LEXICAL_THRESHOLD, SUPPORT_THRESHOLD
from tests.fakes import HashEmbedder

FB = Path(__file__).resolve().parents[1] / "fixtures" / "financebench" / "questions.jsonl"
DEV = Path(__file__).resolve().parents[3] / "shared" / "data" / "financebench-dev" / "questions.jsonl"

# The 10 dev questions' gold answers, and whether each is a numeric-exact question.
DEV_GOLD = [
    (
        "financebench_id_00799",
        "The quick ratio has slightly improved from 0.67 times to 0.69 times between FY 2023 and FY 2022.(3.4% jump)",
        None,
    ),
    (
        "financebench_id_01079",
        "Amcor completed these acquisitions during FY2023:\n-100% equity interest of a flexibles manufacturing company in the Czech Republic\n- 100% equity interest in a medical device packaging manufacturing site in\nShanghai, China.\n-acquisition of a New Zealand-based leading manufacturer of state-of-the-art, automated protein\npackaging machines.",
        None,
    ),
    (
        "financebench_id_01148",
        "Amcor is a global leader in packaging production for various use cases.",
        None,
    ),
    (
        "financebench_id_00684",
        "No. For AMCOR there has been a slight decline in gross margins by 0.8%.",
        None,
    ),
    (
        "financebench_id_00685",
        "Yes, the margins have been consistent, there has been a minor decline of 1.1% in gross margins between FY2022 and FY2023.",
        None,
    ),
    (
        "financebench_id_01077",
        "Best Buy closed two acquisitions, both these companies were already partially owned by Best Buy, but Best Buy acquired all outstanding shares of these two companies during FY 2022: (1) Current Health Ltd and (2) Two Peaks, LLC d/b/a Yardbird Furniture",
        None,
    ),
    # a sentence whose figure is an aside, not the answer (the question asks which activity)
    (
        "financebench_id_01275",
        "Best Buy generated the most cash flow from operating activities in FY 2023 ($1.8 bn)",
        None,
    ),
    ("financebench_id_00283", "77.78", Figure("77.78", 77.78, 1.0, "", "")),
    ("financebench_id_00724", "Developed Rest of the World", None),
    ("financebench_id_02419", "Yes, it's spinning off Upjohn.", None),
]


@pytest.mark.parametrize(("qid", "gold", "figure"), DEV_GOLD, ids=[r[0][-5:] for r in DEV_GOLD])
def test_gold_figure_on_the_dev_answers(qid, gold, figure):
    assert gold_figure(gold) == figure


@pytest.mark.skipif(not DEV.exists(), reason="the FinanceBench dev folder is not next to the repo")
def test_dev_table_is_the_dev_file():
    rows = [json.loads(line) for line in DEV.read_text().splitlines() if line.strip()]
    assert [(r["financebench_id"], r["answer"]) for r in rows] == [(q, a) for q, a, _ in DEV_GOLD]


@pytest.mark.parametrize(
    ("gold", "value", "scale", "unit"),
    [
        ("$1.8 bn", 1.8, 1e9, "$"),
        ("0.69", 0.69, 1.0, ""),
        ("-3.4%", -3.4, 1.0, "%"),
        ("$ 1,616.00 million", 1616.0, 1e6, "$"),
        ("USD 1,577 million", 1577.0, 1e6, "$"),
        ("(862)", -862.0, 1.0, ""),
        ("$(862)", -862.0, 1.0, "$"),
        ("0.69 times", 0.69, 1.0, ""),
        ("approximately $700 million.", 700.0, 1e6, "$"),
        ("$1.8B", 1.8, 1e9, "$"),
        ("$500k", 500.0, 1e3, "$"),
        ("24.26 percent", 24.26, 1.0, "%"),
        ("$8.70 per share", 8.70, 1.0, "$"),
    ],
)
def test_gold_figure_numeric(gold, value, scale, unit):
    fig = gold_figure(gold)
    assert fig is not None and (fig.value, fig.scale, fig.unit) == (value, scale, unit)


@pytest.mark.parametrize(
    "gold",
    [
        "Yes, 3.4%",
        "from 0.67 to 0.69",
        "FY2023",
        "The answer is 5",
        "Developed Rest of the World",
        "",
        "2022-2023",
    ],
)
def test_gold_figure_not_numeric(gold):
    assert gold_figure(gold) is None


@pytest.mark.parametrize(
    ("gold", "text", "states"),
    [
        # 1% of the gold, both sides of the boundary
        ("100", "It was 101.", True),
        ("100", "It was 101.02.", False),
        ("100", "It was 99.", True),
        ("100", "It was 98.98.", False),
        ("$1.8 bn", "$1.818 billion", True),  # exactly 1%
        ("$1.8 bn", "$1.81 billion", True),
        ("$1.8 bn", "$1.82 billion", False),  # 1.1% off
        ("$1.8 bn", "$1,824 million", False),  # 1.3% off
        ("$1.8 bn", "$1,810 million", True),
        ("$1.8 bn", "cash from operations was 1,800,000,000", True),
        ("$1.8 bn", "$1.8B [2]", True),
        ("$1.8 bn", "1.8", True),  # bare answer: compared unscaled too
        ("$1.8 bn", "1.8 million", False),  # both scaled: amounts differ
        ("77.78", "about $77.78 million [1]", True),  # unscaled gold: digits compared
        ("77.78", "$70 million, 10% of $700 million [1]", False),
        ("1,616", "1616.0", True),
        ("1616.0", "$1,616 million", True),
        ("$ 1,616.00 million", "$1.616 billion", True),
        # percent vs percent
        ("24.26%", "24.3%", True),
        ("24.26%", "24.26", False),
        ("24.26", "24.26%", False),
        ("0.8%", "down 0.8 percentage points", True),
        # signs
        ("-3.4%", "-3.4%", True),
        ("-3.4%", "revenue fell 3.4%", True),
        ("-3.4%", "revenue was 3.4%", False),
        ("-3.4%", "(3.4)%", True),
        ("3.4%", "-3.4%", False),
        ("(862)", "(862)", True),
        ("(862)", "-862", True),
        ("(862)", "a net loss of $862 million", True),
        ("(862)", "862", False),
        ("862", "-862", False),
        ("862", "(862)", True),  # parentheses in prose are often an aside: either sign
        # citation markers are not figures
        ("2", "Revenue grew [2].", False),
        ("2", "Revenue grew 2 points [1].", True),
    ],
)
def test_states_figure(gold, text, states):
    fig = gold_figure(gold)
    assert fig is not None
    assert states_figure(text, fig) is states


def test_states_figure_tolerance_is_a_parameter():
    fig = gold_figure("$1.8 bn")
    assert states_figure("$1,824 million", fig, tolerance=0.02)


@pytest.mark.parametrize(
    ("text", "cited"),
    [
        ("Revenue grew [1].", [1]),
        ("Revenue grew [1, 3] and fell [3].", [1, 3]),
        ("See [2-4].", [2, 3, 4]),
        ("See [2\u20133][1].", [1, 2, 3]),
        ("No markers; 10-K page 5.", []),
    ],
)
def test_cited_markers(text, cited):
    assert cited_markers(text) == cited


EVIDENCE = (
    "Today, we are a global leader in developing and producing responsible\npackaging for food, beverage, "
    "pharmaceutical, medical, home and personal-care, and other products"
)
OTHER = "Net sales were $14,694 million in fiscal 2023, up 0.4% from fiscal 2022."
GOOD = "Amcor is a global leader in developing and producing responsible packaging for food and beverage"


def _q(answer="Amcor is a global leader in packaging production for various use cases.", qid="q1"):
    return GoldQuestion(
        qid,
        "What industry does AMCOR primarily operate in?",
        "AMCOR_2023_10K",
        answer,
        frozenset({("AMCOR_2023_10K", 4)}),
        (EVIDENCE,),
    )


def _src(page=4, text=EVIDENCE, doc="AMCOR_2023_10K"):
    return AnswerSource(f"{doc}.pdf, PDF page {page + 1}", doc, page, text)


SOURCES = (_src(), _src(10, OTHER))


@pytest.mark.parametrize(
    ("text", "sources", "cited", "fallback", "unknown", "page_cited"),
    [
        (f"{GOOD} [1].", SOURCES, [1], False, [], True),
        (f"{GOOD} [2].", SOURCES, [2], False, [], False),  # the gold page is listed but not cited
        (f"{GOOD}.", SOURCES, [1, 2], True, [], True),  # no markers: every listed source
        (f"{GOOD} [5].", SOURCES, [], False, [5], False),
        (f"{GOOD} [1].", (_src(doc="amcor_2023_10k.pdf"),), [1], False, [], True),  # file name, any case
        (f"{GOOD} [1].", (_src(-1, doc="AMCOR_2023_10K"),), [1], False, [], False),  # unpaged
        (f"{GOOD} [1].", (_src(doc="BESTBUY_2023_10K"),), [1], False, [], False),  # right page, wrong doc
        (f"{GOOD}.", (), [], False, [], False),
    ],
)
def test_page_cited(text, sources, cited, fallback, unknown, page_cited):
    rec = score_answer(_q(), Answer(text, sources))
    assert (rec["cited"], rec["all_sources_fallback"], rec["unknown_markers"]) == (cited, fallback, unknown)
    assert rec["page_cited"] is page_cited
    assert rec["kind"] == "other" and rec["figure_match"] is None


@pytest.mark.parametrize(
    ("text", "sources", "page_cited", "supported"),
    [
        (f"{GOOD} [1].", SOURCES, True, True),
        ("Amcor mostly sells industrial chemicals to miners [1].", SOURCES, True, False),  # unsupported
        (f"{GOOD} [2].", (_src(), _src(10, EVIDENCE)), False, True),  # supported, but not the gold page
    ],
)
def test_other_correct_needs_page_and_support(text, sources, page_cited, supported):
    rec = score_answer(_q(), Answer(text, sources))
    assert (rec["page_cited"], rec["supported"]) == (page_cited, supported)
    assert rec["correct"] is (page_cited and supported)
    assert (rec["support"] >= LEXICAL_THRESHOLD) is supported
    assert 0.0 <= rec["evidence_overlap"] <= 1.0


def test_evidence_overlap_is_against_the_gold_text():
    rec = score_answer(_q(), Answer(f"{GOOD} [1].", (_src(10, OTHER),)))
    assert rec["support"] < LEXICAL_THRESHOLD <= rec["evidence_overlap"]
    assert rec["correct"] is False


UPJOHN = GoldQuestion(
    "financebench_id_00283",
    "How much does Pfizer expect to pay to spin off Upjohn in the future in USD million?",
    "Pfizer_2023Q2_10Q",
    "77.78",
    frozenset({("Pfizer_2023Q2_10Q", 40)}),
    ("We expect to incur costs of approximately $700 million in connection with separating Upjohn.",),
)


@pytest.mark.parametrize(
    ("text", "correct"),
    [("Pfizer expects to pay about $77.78 million [1].", True), ("About $70 million [1].", False)],
)
def test_numeric_correct_is_the_figure_whatever_the_page(text, correct):
    rec = score_answer(UPJOHN, Answer(text, (AnswerSource("XBRL fact: x", "pfe-facts", -1, "700"),)))
    assert rec["kind"] == "numeric"
    assert rec["figure_match"] is correct and rec["correct"] is correct
    assert rec["page_cited"] is False


@pytest.mark.parametrize(
    ("answer", "refused"),
    [
        (Answer("", (), refused=True, reason="no evidence retrieved"), True),
        (Answer("Anything.", (), refused=True), True),
        (Answer("I cannot answer this from the sources.", ()), True),
        (Answer("The figure is not in the sources.", ()), True),
        (Answer("There is insufficient information to say.", ()), True),
        (Answer("No evidence of that.", ()), True),
        (Answer("I don\u2019t know.", ()), True),
        (Answer("Revenue grew 5% [1].", ()), False),
        (Answer("I know the answer: 5 [1].", ()), False),
    ],
)
def test_refusal(answer, refused):
    assert bool(refusal(answer)) is refused
    rec = score_answer(_q(), answer)
    assert rec["refused"] is refused
    if refused:
        assert rec["correct"] is None and rec["support"] is None and rec["reason"]


def _answers(by_id: dict):
    def answer(q: GoldQuestion) -> Answer:
        got = by_id[q.qid]
        if isinstance(got, Exception):
            raise got
        return got

    return answer


def test_evaluate_answers_counts_refusals_apart_and_records_errors():
    questions = [_q(qid="right"), _q(qid="wrong"), _q(qid="refused"), _q(qid="broken"), UPJOHN]
    answers = {
        "right": Answer(f"{GOOD} [1].", SOURCES, seconds=2.0),
        "wrong": Answer(f"{GOOD} [2].", SOURCES, seconds=4.0),
        "refused": Answer("I cannot answer that.", (), seconds=1.0),
        "broken": ModelError("model 'qwen' could not be loaded; run `researchdesk models pull`\ntrace"),
        "financebench_id_00283": Answer("$77.78 million", SOURCES, from_facts=True, seconds=3.0),
    }
    seen = []
    result = evaluate_answers(questions, _answers(answers), progress=seen.append)
    assert isinstance(result, AnswersEval)
    s = result.summary()
    assert (s["n"], s["answered"], s["refused"], s["errors"]) == (5, 3, 1, 1)
    assert s["accuracy_answered"] == round(2 / 3, 4) and s["accuracy_all"] == 0.4
    assert s["numeric"] == {"n": 1, "answered": 1, "correct": 1}
    assert s["other"] == {"n": 4, "answered": 2, "correct": 1, "page_cited": 1, "supported": 1}
    assert s["from_facts"] == 1
    assert (s["support_signal"], s["support_threshold"]) == ("lexical", LEXICAL_THRESHOLD)
    assert 0 < s["mean_support"] <= 1
    broken = next(r for r in result.per_question if r["id"] == "broken")
    assert broken["error"] == "model 'qwen' could not be loaded; run `researchdesk models pull`"
    assert broken["correct"] is None and not broken["refused"]
    # seconds: the answerer's own, or measured (tiny here) for the error
    assert broken["seconds"] < 0.5 and s["seconds_per_question"] == pytest.approx(2.0, abs=0.1)
    assert len(seen) == 5 and seen[3].startswith("4/5 broken (other): error: model 'qwen'")
    assert "\n" not in json.dumps(s)


def test_evaluate_answers_measures_time_when_the_answerer_does_not():
    result = evaluate_answers([_q()], lambda q: Answer(f"{GOOD} [1].", SOURCES))
    assert 0.0 <= result.per_question[0]["seconds"] < 1.0
    assert result.summary()["accuracy_all"] == 1.0


def test_evaluate_answers_other_exceptions_are_bugs():
    def answer(q):
        raise RuntimeError("bug")

    with pytest.raises(RuntimeError):
        evaluate_answers([_q()], answer)


def test_evaluate_answers_empty_and_all_refused():
    assert evaluate_answers([], _answers({})).summary()["accuracy_all"] is None
    s = evaluate_answers([_q()], lambda q: Answer("", (), refused=True)).summary()
    assert (s["accuracy_answered"], s["accuracy_all"], s["mean_support"]) == (None, 0.0, None)


def test_threshold_follows_the_encoder():
    result = evaluate_answers([_q()], lambda q: Answer(f"{GOOD} [1].", SOURCES), encode=HashEmbedder().encode)
    s = result.summary()
    assert (s["support_signal"], s["support_threshold"]) == ("lexical+embedding", SUPPORT_THRESHOLD)
    assert result.per_question[0]["supported"] is (result.per_question[0]["support"] >= SUPPORT_THRESHOLD)


def test_error_is_a_researchdesk_error():
    assert issubclass(ModelError, ResearchDeskError)  # what evaluate_answers catches


# --- loading --------------------------------------------------------------------------------------


def _row(qid="q1", answer="77.78", **extra):
    ev = [
        {"doc_name": "Pfizer_2023Q2_10Q", "evidence_page_num": 40, "evidence_text": "costs of $700 million"}
    ]
    return {
        "financebench_id": qid,
        "question": "How much?",
        "doc_name": "Pfizer_2023Q2_10Q",
        "answer": answer,
        "evidence": ev,
    } | extra


def test_load_fixture_questions():
    questions, warnings = load_answer_questions(FB)
    assert warnings == [] and len(questions) == 7
    by_id = {q.qid: q for q in questions}
    assert [q.qid for q in questions if q.kind == "numeric"] == ["financebench_id_00283"]
    upjohn = by_id["financebench_id_00283"]
    assert (upjohn.answer, upjohn.gold) == ("77.78", frozenset({("Pfizer_2023Q2_10Q", 2)}))
    assert "approximately $700 million" in upjohn.evidence[0]
    assert upjohn.question_type == "novel-generated"
    assert by_id["financebench_id_00799"].reasoning == "Numerical reasoning OR Logical reasoning"
    assert all(q.evidence and all(q.evidence) for q in questions)


def test_load_skips_bad_lines_with_line_numbers(tmp_path: Path):
    rows = [
        _row(),
        "{not json",
        "[1]",
        _row(answer=""),
        _row(answer=None),
        _row(answer=True),
        _row(evidence=[]),
        _row(evidence=[{"evidence_page_num": -1}]),
        _row(evidence=[{"evidence_page_num": 3, "evidence_text": ["a"]}]),
        _row(question=" "),
        _row(qid="num", answer=77.78),  # a JSON number is a gold answer too
        _row(qid="notext", evidence=[{"evidence_page_num": 3}]),  # evidence_text is optional
        "",
    ]
    path = tmp_path / "q.jsonl"
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
    questions, warnings = load_answer_questions(path)
    assert [(q.qid, q.answer, q.evidence) for q in questions] == [
        ("q1", "77.78", ("costs of $700 million",)),
        ("num", "77.78", ("costs of $700 million",)),
        ("notext", "77.78", ("",)),
    ]
    assert questions[2].gold == frozenset({("Pfizer_2023Q2_10Q", 3)})
    assert [w.split(": ", 1)[0].rsplit(":", 1)[1] for w in warnings] == [str(n) for n in range(2, 11)]
    assert all(w.endswith("; question skipped") and "\n" not in w for w in warnings)
    assert 'missing gold "answer" text' in warnings[2]


def test_load_missing_file(tmp_path: Path):
    with pytest.raises(ConfigError, match="q.jsonl: questions file not found"):
        load_answer_questions(tmp_path / "q.jsonl")


def test_load_unreadable_file(tmp_path: Path):
    path = tmp_path / "q.jsonl"
    path.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(ConfigError, match="cannot read questions file"):
        load_answer_questions(path)
