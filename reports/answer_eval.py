"""Answer quality on FinanceBench-format questions: is the answer right, and does it cite the evidence?

`researchdesk eval answers` runs the question answerer (injected here as a callable, so this module
knows nothing about how answers are produced) on each question and scores what comes back:

* numeric questions (the gold answer is essentially one figure: "77.78", "$1.8 bn", "-3.4%") are
  correct when the answer states that figure within 1% of the gold, at any scale it writes it in;
* other questions are correct when the answer cites a gold evidence page AND its text is supported
  by the sources it cites (reports/support.py). Only [n] markers that appear in the text count as
  citations; an answer without markers falls back to all its listed sources, and says so;
* refusals (flagged by the answerer, or "I cannot answer ..." in the text) are counted apart: not
  wrong answers, not in `accuracy_answered`'s denominator, not correct in `accuracy_all`'s;
* an answerer error (any ResearchDeskError) is recorded against its question and the run goes on.

`evidence_overlap` (support of the answer against the gold evidence text) is a rough correctness
proxy for the "other" questions, reported but never used for `correct`.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rag.errors import ResearchDeskError
from rag.evaluate import load_rows
from reports.gold_figures import (
    _MARKER,
    TOLERANCE,
    Figure,
    figures,
    gold_figure,
    states_figure,
    strip_markers,
)
from reports.support import Encode, support_score, threshold_for

__all__ = [
    "TOLERANCE",
    "Figure",
    "figures",
    "gold_figure",
    "states_figure",
    "strip_markers",
]  # re-exported: one import


@dataclass(frozen=True)
class AnswerSource:
    label: str  # as listed under the answer: "AMCOR_2023_10K.pdf, PDF page 52" or "XBRL fact: Revenue FY2024"
    doc: str  # document name: PDF file stem for FinanceBench ("AMCOR_2023_10K"), doc_id otherwise
    page: int  # 0-based PDF page, -1 when unpaged (facts, HTML)
    text: str  # the passage or fact text the answer cited


@dataclass(frozen=True)
class Answer:
    text: str  # the answer shown, with [n] markers referring to sources (1-based)
    sources: tuple[AnswerSource, ...]
    refused: bool = False  # the system declined (no evidence, moderation)
    reason: str = ""
    from_facts: bool = False  # answered exactly from the XBRL facts table
    seconds: float = 0.0  # wall time to answer


# --- citations and refusals ------------------------------------------------------------------------

_REFUSAL = re.compile(
    r"\b(?:cannot|can ?not|can't|unable to) answer\b|\bnot in the (?:provided )?sources\b"
    r"|\binsufficient information\b|\bnot enough information\b|\bno evidence\b|\bI (?:don't|do not) know\b",
    re.I,
)


def cited_markers(text: str) -> list[int]:
    """The 1-based source numbers the text's markers name: "[1]", "[1, 3]", "[2-4]"; sorted, distinct."""
    out: set[int] = set()
    for m in _MARKER.finditer(text):
        for part in m[1].split(","):
            lo, _, hi = part.replace("\u2013", "-").partition("-")
            a, b = int(lo), int(hi or lo)
            out.update(range(a, min(b, a + 1000) + 1))  # a [1-99999] marker is no reason to hang
    return sorted(out)


def refusal(answer: Answer) -> str:
    """Why the answer counts as a refusal ("" when it does not): the answerer's flag or the text."""
    if answer.refused:
        return answer.reason or "refused"
    m = _REFUSAL.search(answer.text.replace("\u2019", "'"))
    return f'says "{m[0]}"' if m else ""


def _doc_key(name: str) -> str:
    key = name.strip().casefold()
    return key.removesuffix(".pdf")


# --- questions -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GoldQuestion:
    qid: str
    text: str
    doc: str  # the question's document: PDF file name without ".pdf"
    answer: str  # the gold answer, free text
    gold: frozenset[tuple[str, int]]  # (doc name, 0-based page) of every evidence entry
    evidence: tuple[str, ...]  # every evidence entry's evidence_text, in file order
    question_type: str = ""
    reasoning: str = ""

    @property
    def figure(self) -> Figure | None:
        return gold_figure(self.answer)

    @property
    def kind(self) -> str:
        return "numeric" if self.figure is not None else "other"


def _gold_question(row: object, n: int) -> GoldQuestion:
    """One JSONL row -> GoldQuestion; ValueError says what is wrong with it."""
    if not isinstance(row, dict):
        raise ValueError("not a JSON object")
    text, doc, answer = row.get("question"), row.get("doc_name"), row.get("answer")
    if not isinstance(text, str) or not text.strip():
        raise ValueError('missing "question" text')
    if not isinstance(doc, str) or not doc:
        raise ValueError('missing "doc_name"')
    if isinstance(answer, (int, float)) and not isinstance(answer, bool):
        answer = str(answer)
    if not isinstance(answer, str) or not answer.strip():
        raise ValueError('missing gold "answer" text')
    evidence = row.get("evidence")
    if not isinstance(evidence, list) or not evidence:
        raise ValueError('missing "evidence" list')
    gold, texts = set(), []
    for e in evidence:
        page = e.get("evidence_page_num") if isinstance(e, dict) else None
        if not isinstance(page, int) or isinstance(page, bool) or page < 0:
            raise ValueError('evidence without a 0-based integer "evidence_page_num"')
        ev_text = e.get("evidence_text", "")
        if not isinstance(ev_text, str):
            raise ValueError('evidence "evidence_text" is not text')
        gold.add((str(e.get("doc_name") or doc), page))
        texts.append(ev_text)
    return GoldQuestion(
        qid=str(row.get("financebench_id") or f"line{n}"),
        text=text.strip(),
        doc=doc,
        answer=answer.strip(),
        gold=frozenset(gold),
        evidence=tuple(texts),
        question_type=str(row.get("question_type") or ""),
        reasoning=str(row.get("question_reasoning") or ""),
    )


def load_answer_questions(path: Path) -> tuple[list[GoldQuestion], list[str]]:
    """Questions of a FinanceBench JSONL file with their gold answers, and a warning per skipped line."""
    return load_rows(path, _gold_question)


# --- scoring ---------------------------------------------------------------------------------------


def _record(q: GoldQuestion, answer_text: str) -> dict:
    """The per-question record with every score unset (a refusal or an error keeps it so)."""
    return {
        "id": q.qid,
        "doc": q.doc,
        "kind": q.kind,
        "gold": q.answer,
        "answer": answer_text,
        "correct": None,
        "refused": False,
        "reason": "",
        "error": None,
        "figure_match": None,
        "page_cited": None,
        "cited": [],  # 1-based numbers of the sources counted as cited
        "all_sources_fallback": False,  # no [n] marker in the text: every listed source counted
        "unknown_markers": [],  # marker numbers with no such source
        "cited_pages": [],  # [doc, 0-based page] of the cited sources
        "support": None,
        "supported": None,
        "evidence_overlap": None,
        "from_facts": False,
        "seconds": 0.0,
    }


def score_answer(q: GoldQuestion, a: Answer, encode: Encode | None = None) -> dict:
    """Score one answer against its question: the per-question record of `AnswersEval.per_question`.

    `correct` is None for a refusal; otherwise a numeric question is correct when the answer
    states the gold figure, an "other" one when it cites a gold evidence page and is supported
    (support >= reports.support.threshold_for(encode)) by the sources it cites.
    """
    rec = _record(q, a.text)
    rec |= {"from_facts": a.from_facts, "seconds": round(float(a.seconds), 3)}
    why = refusal(a)
    if why:
        return rec | {"refused": True, "reason": why}
    markers = cited_markers(a.text)
    if markers:
        cited = [n for n in markers if 1 <= n <= len(a.sources)]
        rec["unknown_markers"] = [n for n in markers if not 1 <= n <= len(a.sources)]
    else:
        cited = list(range(1, len(a.sources) + 1))
        rec["all_sources_fallback"] = bool(a.sources)
    sources = [a.sources[n - 1] for n in cited]
    gold_pages = {(_doc_key(doc), page) for doc, page in q.gold}
    pages = sorted({(s.doc, s.page) for s in sources})
    text = " ".join(strip_markers(a.text).split())
    support = support_score(text, "\n".join(s.text for s in sources), encode) if sources else 0.0
    rec |= {
        "cited": cited,
        "cited_pages": [list(p) for p in pages],
        "page_cited": any((_doc_key(d), p) in gold_pages for d, p in pages),
        "support": round(support, 4),
        "supported": support >= threshold_for(encode),
        "evidence_overlap": round(support_score(text, "\n".join(q.evidence), encode), 4),
    }
    fig = q.figure
    if fig is not None:
        rec["figure_match"] = states_figure(a.text, fig)
        rec["correct"] = rec["figure_match"]
    else:
        rec["correct"] = rec["page_cited"] and rec["supported"]
    return rec


def _ratio(num: int, den: int) -> float | None:
    return round(num / den, 4) if den else None  # None: nothing to divide, not 0% accuracy


@dataclass
class AnswersEval:
    per_question: list[dict] = field(default_factory=list)  # score_answer records (+ error ones)
    support_signal: str = "lexical"  # "lexical" or "lexical+embedding": what support_score used
    threshold: float = 0.0  # the `supported` threshold for that signal
    seconds: float = 0.0  # wall time of the whole run

    def summary(self) -> dict:
        """The one-line JSON the CLI prints: accuracy first, then counts by kind, then the setup."""
        recs = self.per_question
        errors = [r for r in recs if r["error"] is not None]
        refused = [r for r in recs if r["refused"]]
        answered = [r for r in recs if r["error"] is None and not r["refused"]]
        correct = sum(bool(r["correct"]) for r in answered)
        kinds = {}
        for kind in ("numeric", "other"):
            of_kind = [r for r in recs if r["kind"] == kind]
            done = [r for r in answered if r["kind"] == kind]
            kinds[kind] = {
                "n": len(of_kind),
                "answered": len(done),
                "correct": sum(bool(r["correct"]) for r in done),
            }
            if kind == "other":
                kinds[kind] |= {
                    "page_cited": sum(bool(r["page_cited"]) for r in done),
                    "supported": sum(bool(r["supported"]) for r in done),
                }
        supports = [r["support"] for r in answered]
        return {
            "accuracy_answered": _ratio(correct, len(answered)),
            "accuracy_all": _ratio(correct, len(recs)),
            "n": len(recs),
            "answered": len(answered),
            "refused": len(refused),
            "errors": len(errors),
            **kinds,
            "from_facts": sum(bool(r["from_facts"]) for r in answered),
            "mean_support": round(sum(supports) / len(supports), 4) if supports else None,
            "seconds_per_question": round(sum(r["seconds"] for r in recs) / len(recs), 3) if recs else 0.0,
            "support_signal": self.support_signal,
            "support_threshold": self.threshold,
            "seconds": round(self.seconds, 2),
        }


def evaluate_answers(
    questions: Sequence[GoldQuestion],
    answer: Callable[[GoldQuestion], Answer],
    encode: Encode | None = None,
    progress: Callable[[str], None] = lambda msg: None,
) -> AnswersEval:
    """Answer and score every question; an answerer's ResearchDeskError is that question's error.

    A question's `seconds` is the answerer's `Answer.seconds`, or the wall time measured here when
    the answerer left it 0 (and for an error). Any other exception is a bug and propagates.
    """
    t0 = time.perf_counter()
    result = AnswersEval(
        support_signal="lexical+embedding" if encode is not None else "lexical",
        threshold=threshold_for(encode),
    )
    for i, q in enumerate(questions, start=1):
        start = time.perf_counter()
        try:
            a = answer(q)
        except ResearchDeskError as exc:
            message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            rec = _record(q, "") | {"error": message, "seconds": round(time.perf_counter() - start, 3)}
            status = f"error: {message}"
        else:
            took = time.perf_counter() - start
            rec = score_answer(q, a, encode)
            if not a.seconds:
                rec["seconds"] = round(took, 3)
            status = "refused" if rec["refused"] else "correct" if rec["correct"] else "wrong"
        result.per_question.append(rec)
        progress(f"{i}/{len(questions)} {q.qid} ({rec['kind']}): {status}")
    result.seconds = time.perf_counter() - t0
    return result
