"""`researchdesk eval retrieval`: the table, the last-line JSON, and one-line errors for bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from flows.cli import main
from flows.resources import register_embedder
from tests.fakes import HashEmbedder

FB = Path(__file__).resolve().parents[1] / "fixtures" / "financebench"


@pytest.fixture
def hash_embedder(monkeypatch):
    register_embedder("fake-hash", HashEmbedder)  # by name (flows/resources.py), not a module global
    monkeypatch.setenv("RESEARCHDESK_EMBEDDER", "fake-hash")


def _args(questions: Path, docs: Path, *extra: str) -> list[str]:
    return ["eval", "retrieval", "--questions", str(questions), "--docs", str(docs), *extra]


def test_json_is_the_last_line(hash_embedder, capsys):
    assert main(_args(FB / "questions.jsonl", FB, "--json")) == 0
    out = capsys.readouterr().out.strip().splitlines()
    summary = json.loads(out[-1])
    for key in ("hit@1", "hit@5", "hit@10"):
        assert set(summary[key]) == {"per_doc", "shared"}
        assert all(0.0 <= v <= 1.0 for v in summary[key].values())
    assert (summary["n"], summary["documents"], summary["model"]) == (7, 2, "hash-bow|dim=256")
    assert out[0].startswith("retrieval: 7 questions (0 skipped), 2 documents")
    assert any(line.split()[0] == "hit@5" for line in out)  # the readable table
    assert any("financebench_id_00283" in line and "Pfizer_2023Q2_10Q" in line for line in out)


def test_without_json_no_json_line(hash_embedder, capsys):
    assert main(_args(FB / "questions.jsonl", FB)) == 0
    assert not capsys.readouterr().out.strip().splitlines()[-1].startswith("{")


def test_bad_lines_and_missing_documents_are_warnings(hash_embedder, tmp_path: Path, capsys):
    lines = (FB / "questions.jsonl").read_text().splitlines()
    bad = [lines[0], "{oops", lines[-1].replace("Pfizer_2023Q2_10Q", "BESTBUY_2023_10K")]
    (tmp_path / "q.jsonl").write_text("\n".join(bad) + "\n")
    assert main(_args(tmp_path / "q.jsonl", FB, "--json")) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out.strip().splitlines()[-1])["skipped"] == 2
    warnings = [line for line in captured.err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 2 and "q.jsonl:2" in warnings[0] and "BESTBUY_2023_10K" in warnings[1]


@pytest.mark.parametrize(
    ("questions", "docs", "message"),
    [
        ("missing.jsonl", FB, "questions file not found"),
        (FB / "questions.jsonl", "missing-dir", "documents folder not found"),
        (FB / "documents.jsonl", FB, "no usable questions"),  # wrong file: no question in it
    ],
    ids=["no-questions-file", "no-docs-dir", "not-questions"],
)
def test_unusable_input_exits_2_with_one_line(
    hash_embedder, tmp_path: Path, capsys, questions, docs, message
):
    questions = questions if isinstance(questions, Path) else tmp_path / questions
    docs = docs if isinstance(docs, Path) else tmp_path / docs
    assert main(_args(questions, docs, "--json")) == 2
    captured = capsys.readouterr()
    errors = [line for line in captured.err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message in errors[0]
    assert "Traceback" not in captured.err and captured.out == ""


def test_missing_options_is_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["eval", "retrieval", "--questions", "q.jsonl"])
    assert exc.value.code == 2 and "--docs" in capsys.readouterr().err


@pytest.mark.slow
def test_real_minilm_on_the_fixture(tmp_path: Path, capsys):
    """The real embedder end to end: the evidence pages of the fixture are found per document."""
    shutil.copytree(FB, tmp_path / "fb")
    assert main(_args(tmp_path / "fb" / "questions.jsonl", tmp_path / "fb", "--json")) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["model"].startswith("all-MiniLM-L6-v2")
    assert summary["hit@10"]["per_doc"] >= 0.7  # 11 pages, 7 questions: MiniLM finds most pages
    assert summary["hit@10"]["per_doc"] >= summary["hit@10"]["shared"]
