"""Evidence-page hit@k: the metric on hand-built cases, question loading, and the whole evaluation.

The whole evaluation runs on the real FinanceBench fixture pages (tests/fixtures/financebench/)
and on hand-made PDFs whose expected ranks are known, with the bag-of-words HashEmbedder.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from rag.errors import ConfigError
from rag.evaluate import Question, evaluate_retrieval, first_hit, hit_rates, load_questions
from tests.fakes import HashEmbedder
from tests.pdfs import make_pdf

FB = Path(__file__).resolve().parents[1] / "fixtures" / "financebench"
GOLD = frozenset({("AMCOR", 51)})


@pytest.mark.parametrize(
    ("ranked", "rank"),
    [
        ([("AMCOR", 51)], 0),
        ([("AMCOR", 50), ("AMCOR", 52), ("AMCOR", 51)], 2),  # hit@1 = 0, hit@5 = 1
        ([("PFIZER", 51), ("AMCOR", 51)], 1),  # right page of the wrong document is no hit
        ([("AMCOR", 52)] * 10 + [("AMCOR", 51)], 10),  # only at rank 11
        ([], None),
        ([("AMCOR", 50)], None),
    ],
)
def test_first_hit(ranked, rank):
    assert first_hit(ranked, GOLD) == rank


def test_first_hit_accepts_any_evidence_entry():
    gold = frozenset({("AMCOR", 49), ("AMCOR", 51)})
    assert first_hit([("AMCOR", 3), ("AMCOR", 51), ("AMCOR", 49)], gold) == 1


def test_hit_rates_hand_built():
    # q1 hit at rank 1, q2 at rank 3 (hit@1 0, hit@5 1), q3 at rank 7, q4 never
    ranks = [0, 2, 6, None]
    assert hit_rates(ranks, (1, 5, 10)) == {1: 0.25, 5: 0.5, 10: 0.75}
    assert hit_rates([2], (1, 5, 10)) == {1: 0.0, 5: 1.0, 10: 1.0}
    assert hit_rates([], (1, 5)) == {1: 0.0, 5: 0.0}


def _write_questions(path: Path, rows: list) -> Path:
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
    return path


def _q(text: str, doc: str, *pages: int, qid: str = "") -> dict:
    ev = [{"doc_name": doc, "evidence_page_num": p} for p in pages]
    return {"financebench_id": qid or text[:10], "question": text, "doc_name": doc, "evidence": ev}


def test_load_questions_skips_bad_lines_with_line_numbers(tmp_path: Path):
    good = _q("What is the quick ratio?", "AMCOR_2023_10K", 51, qid="q1")
    rows = [
        good,
        "{not json",
        "[1, 2]",
        {"question": "No evidence?", "doc_name": "AMCOR_2023_10K"},
        _q("Page as text?", "AMCOR_2023_10K", 0) | {"evidence": [{"evidence_page_num": "51"}]},
        _q("Negative page?", "AMCOR_2023_10K", -1),
        _q("Bool page?", "AMCOR_2023_10K", 0) | {"evidence": [{"evidence_page_num": True}]},
        {"question": "", "doc_name": "X", "evidence": [{"evidence_page_num": 1}]},
        "",
    ]
    questions, warnings = load_questions(_write_questions(tmp_path / "q.jsonl", rows))
    assert questions == [
        Question("q1", "What is the quick ratio?", "AMCOR_2023_10K", frozenset({("AMCOR_2023_10K", 51)}))
    ]
    assert [w.split(": ", 1)[0].rsplit(":", 1)[1] for w in warnings] == ["2", "3", "4", "5", "6", "7", "8"]
    assert all(w.endswith("question skipped") and "\n" not in w for w in warnings)


def test_load_questions_missing_file(tmp_path: Path):
    with pytest.raises(ConfigError, match="q.jsonl: questions file not found"):
        load_questions(tmp_path / "q.jsonl")


def test_fixture_eval_with_known_ranks():
    result = evaluate_retrieval(FB / "questions.jsonl", FB, HashEmbedder())
    assert (result.questions, result.skipped, result.documents) == (7, 0, 2)
    assert result.passages > 30
    assert set(result.hits) == {"hit@1", "hit@5", "hit@10"}
    for mode in ("per_doc", "shared"):
        rates = [result.hits[k][mode] for k in ("hit@1", "hit@5", "hit@10")]
        assert rates == sorted(rates) and all(0 <= r <= 1 for r in rates)
    # filtering to the question's document can only move its evidence pages up
    for q in result.per_question:
        if q["shared"] is not None:
            assert q["per_doc"] is not None and q["per_doc"] <= q["shared"], q
    by_id = {q["id"]: q for q in result.per_question}
    upjohn = by_id["financebench_id_00283"]  # "…spin off Upjohn…": a rare word on the evidence page
    assert (upjohn["doc"], upjohn["pages"], upjohn["per_doc"]) == ("Pfizer_2023Q2_10Q", [2], 1)
    assert set(result.summary()) >= {"hit@1", "hit@5", "hit@10", "n", "model", "seconds"}


def test_hand_built_eval_hit5_not_hit1_and_shared_confusion(tmp_path: Path):
    """Doc A's page 0 repeats the question's words (decoy), the evidence is on page 2; doc B matches too."""
    filler = "The company reported its results for the fiscal year in this annual report filing."
    decoy = "Widget revenue growth widget revenue growth widget revenue growth. " + filler
    evidence = "Widget revenue growth was 12 percent in fiscal 2023 driven by hospitals. " + filler
    other = "Widget revenue growth widget revenue growth widget revenue growth widget. " + filler
    docs = tmp_path / "pdfs"
    docs.mkdir()
    (docs / "ACME_2023_10K.pdf").write_bytes(
        make_pdf([decoy, filler.replace("annual", "quarterly"), evidence])
    )
    (docs / "BETA_2023_10K.pdf").write_bytes(make_pdf([other, filler]))
    questions = _write_questions(
        tmp_path / "q.jsonl",
        [
            _q("widget revenue growth", "ACME_2023_10K", 2, qid="growth"),
            _q("hospitals", "ACME_2023_10K", 2, qid="hospitals"),
            _q("widget revenue growth", "GAMMA_2023_10K", 0, qid="no-such-doc"),
        ],
    )
    result = evaluate_retrieval(questions, tmp_path, HashEmbedder())  # finds DIR/pdfs/*.pdf
    by_id = {q["id"]: q for q in result.per_question}
    assert (by_id["growth"]["per_doc"], by_id["growth"]["shared"]) == (2, 3)  # behind decoy (and doc B)
    assert (by_id["hospitals"]["per_doc"], by_id["hospitals"]["shared"]) == (1, 1)
    assert result.hits["hit@1"] == {"per_doc": 0.5, "shared": 0.5}
    assert result.hits["hit@5"] == {"per_doc": 1.0, "shared": 1.0}
    assert (result.questions, result.skipped) == (2, 1)
    assert result.warnings == [
        f"question no-such-doc: document 'GAMMA_2023_10K' is not a readable PDF in {tmp_path}"
    ]


def test_unreadable_pdf_skips_its_questions(tmp_path: Path):
    shutil.copy(FB / "AMCOR_2023_10K.pdf", tmp_path)
    (tmp_path / "Pfizer_2023Q2_10Q.pdf").write_bytes(make_pdf([None]))  # a scan without OCR
    result = evaluate_retrieval(FB / "questions.jsonl", tmp_path, HashEmbedder())
    assert (result.questions, result.skipped, result.documents) == (4, 3, 1)
    assert any("Pfizer_2023Q2_10Q.pdf" in w and "OCR" in w for w in result.warnings)


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda d: d / "missing", "documents folder not found"),
        (lambda d: d, "no .pdf files"),
    ],
    ids=["no-folder", "no-pdfs"],
)
def test_unusable_docs_folder(tmp_path: Path, setup, message):
    with pytest.raises(ConfigError, match=message):
        evaluate_retrieval(FB / "questions.jsonl", setup(tmp_path), HashEmbedder())


def test_no_question_about_the_pdfs_is_unusable(tmp_path: Path):
    shutil.copy(FB / "AMCOR_2023_10K.pdf", tmp_path)
    questions = _write_questions(tmp_path / "q.jsonl", [_q("Q?", "BESTBUY_2023_10K", 3)])
    with pytest.raises(ConfigError, match="no usable questions: 1 read"):
        evaluate_retrieval(questions, tmp_path, HashEmbedder())


def test_routing_names_without_a_sidecar_match_the_company_as_a_word(tmp_path: Path):
    """No documents.jsonl: the company is the file name's upper-case "ACME"; "Acme's" must route."""
    from rag.evaluate import routing_names
    from rag.query import named_companies
    from rag.sources.pdf import parse_pdf

    path = tmp_path / "ACME_2023_10K.pdf"
    path.write_bytes(make_pdf(["Acme Corporation annual report for fiscal 2023 with its balance sheet."]))
    names = routing_names(path, parse_pdf(path))
    assert names == ["ACME", "Acme"]
    assert named_companies("What is Acme's quick ratio in FY2023?", {"ACME_2023_10K": names}) == ("ACME_2023_10K",)
    assert named_companies("How did the company do?", {"ACME_2023_10K": names}) == ()
