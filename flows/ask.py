"""`researchdesk ask` and `researchdesk eval answers`: follow-up questions, answered and scored.

    researchdesk ask AAPL "What was revenue in fiscal 2024?" [--session ID] [--json]
    researchdesk eval answers --questions Q.jsonl --docs DIR [--json]

`ask` wires the real seams of reports/answer.py: the ingested indexes (hybrid retrieval over the
ticker's filings and news), the facts table, the configured chat model (loaded once), the
report's input/output moderation checks and policy, and the session store
(RESEARCHDESK_SESSIONS: SQLite under var/ by default, `dynamodb://TABLE` in production).
`eval answers` answers FinanceBench questions from their PDFs with the same answerer and the
production retrieval ranking, and scores them (reports/answer_eval.py).
No Prefect here: answering one question is one process, not a flow.
"""

from __future__ import annotations

import json
import sys
import time
from datetime import date
from pathlib import Path

from flows.settings import Settings
from models.moderation import decide
from models.screens import make_checks, screen
from rag.errors import ConfigError
from reports.answer import AskContext, answer_question
from reports.answer_eval import Answer
from reports.sessions import Turn, check_session_id, open_sessions


def _err(*parts: object) -> None:
    """Notices and progress on stderr (looked up per call: stdout's last line stays the JSON)."""
    print(*parts, file=sys.stderr)


def _settings() -> Settings:
    from pydantic import ValidationError

    try:
        return Settings()
    except ValidationError as exc:
        raise ConfigError(f"invalid setting: {exc.errors()[0]['msg']}") from exc


def _screen(names: list[str], settings: Settings, engine_for):
    """texts -> (withhold, reason) with the report's checks and policy (fail closed)."""
    checks, policy = make_checks(names, engine_for), settings.policy

    def run(texts: list[str]) -> list[tuple[bool, str]]:
        return [
            (decide(s.label, policy) == "withhold", s.reasons() or s.label) for s in screen(texts, checks)
        ]

    return run


def _engine_for(settings: Settings, preset: str):
    from flows.resources import shared_engine

    return lambda: shared_engine(preset, str(settings.models_dir), settings.batch_size)


def _print_answer(answer: Answer, session: str, as_json: bool, extra: dict | None = None) -> None:
    if answer.refused:
        print(f"not answered: {answer.reason}")
    else:
        print(answer.text)
        if answer.sources:
            print("\nSources:")
            for n, s in enumerate(answer.sources, start=1):
                print(f"  [{n}] {s.label}")
    print(f"\nsession: {session}  ({answer.seconds:.1f}s)")
    if as_json:
        record = {
            "session": session,
            "answer": answer.text,
            "sources": [
                {"n": n, "label": s.label, "doc": s.doc, "page": s.page, "text": s.text}
                for n, s in enumerate(answer.sources, start=1)
            ],
            "refused": answer.refused,
            "reason": answer.reason,
            "from_facts": answer.from_facts,
            "seconds": round(answer.seconds, 3),
            **(extra or {}),
        }
        print(json.dumps(record))


def ask(ticker: str, question: str, session: str | None, as_json: bool) -> int:
    """One question about one company; exit 0 answered, 1 refused (the reason is printed)."""
    from flows.resources import settings_retriever
    from rag import facts as facts_mod
    from rag.catalog import load_companies, resolve
    from rag.ingest import FACTS_FILE
    from rag.retrieve import SourceQuery
    from reports.financials import report_facts

    settings = _settings()
    if session is not None:
        check_session_id(session)
    company = resolve(ticker, load_companies(settings.company_tickers))
    store = open_sessions(settings.sessions, settings.var_dir)
    try:
        if session is None:
            session = store.create()
            _err(f"new session {session} (pass --session {session} to ask a follow-up)")
        elif not store.exists(session):
            _err(f"session {session} not found: starting a new session under that id")
        history = store.turns(session)
        today = date.today().isoformat()
        retriever = settings_retriever(settings)
        facts = [
            f
            for f in facts_mod.read_facts(settings.index_dir / FACTS_FILE, ticker=company.ticker)
            if not f.filed or f.filed <= today
        ]

        def search(text: str):
            text = text.replace("{", "{{").replace("}", "}}")  # query texts are format templates
            queries = [SourceQuery("filings", text, k=3), SourceQuery("news", text, k=1)]
            hits = retriever.search(queries, company.ticker, company.name, as_of=today)
            return [h.passage for h in hits]

        chat = _engine_for(settings, settings.chat_preset)
        moderation = _engine_for(settings, settings.moderation_preset or settings.chat_preset)
        ctx = AskContext(
            ticker=company.ticker,
            company=company.name,
            search=search,
            generate=lambda requests: chat().generate(requests),
            screen_input=_screen(settings.input_checks, settings, moderation),
            screen_output=_screen(settings.output_checks, settings, moderation),
            facts=report_facts(facts) if facts else None,
            encode=retriever.embedder.encode,
        )
        answer = answer_question(question, ctx, history)
        if not answer.refused:
            store.append(
                session,
                [
                    Turn("user", question, company.ticker),
                    Turn("assistant", answer.text, company.ticker, tuple(s.label for s in answer.sources)),
                ],
            )
    finally:
        store.close()
    _print_answer(answer, session, as_json, {"ticker": company.ticker, **ctx.stats})
    return 1 if answer.refused else 0


def eval_answers(questions: Path, docs: Path, as_json: bool) -> int:
    """FinanceBench questions answered from their PDFs by the production answerer, then scored."""
    from flows.resources import shared_embedder
    from rag import evaluate as ev
    from rag.chunking import chunk_document
    from rag.embedding import CachedEncoder
    from rag.query import understand
    from rag.sources import collect_skips
    from rag.sources.pdf import parse_pdf, pdf_meta
    from reports.answer_eval import evaluate_answers, load_answer_questions

    settings = _settings()
    started = time.perf_counter()
    gold, warnings = load_answer_questions(questions)
    embedder = CachedEncoder(
        shared_embedder(settings.embedder), settings.var_dir / "cache" / "eval-embeddings"
    )
    parsed, known, periods = {}, {}, {}
    for path in ev.find_pdfs(Path(docs)):
        try:
            with collect_skips():
                parsed[path.stem] = parse_pdf(path)
        except ConfigError:
            raise
        except Exception as exc:  # noqa: BLE001 - one unreadable PDF skips its questions, named
            warnings.append(f"skipped document {path.name}: {str(exc).splitlines()[0]}")
            continue
        known[path.stem] = ev.routing_names(path, parsed[path.stem])
        periods[path.stem] = pdf_meta(path).period
    usable = [q for q in gold if q.doc in parsed]
    if not usable:
        raise ConfigError(f"no usable questions: none of {len(gold)} in {questions} is about a PDF in {docs}")
    _err(f"embed {len(parsed)} documents")
    corpus = ev._build(parsed, {n: chunk_document(d) for n, d in parsed.items()}, embedder)
    chat = _engine_for(settings, settings.chat_preset)
    moderation = _engine_for(settings, settings.moderation_preset or settings.chat_preset)
    screen_in = _screen(settings.input_checks, settings, moderation)
    screen_out = _screen(settings.output_checks, settings, moderation)
    tokens = {"requests": 0, "tokens_out": 0}

    def answer(q) -> Answer:
        intent = understand(q.text, known)
        docs_filter = set(intent.companies) or None  # shared index, routed by the company named

        def search(text: str):
            vec = embedder.encode([understand(text, known).text])[0]
            return ev.best_passages(corpus, vec, intent, docs_filter, periods)

        company = next(iter(intent.companies), q.doc)
        ctx = AskContext(
            q.doc,
            company,
            search,
            lambda r: chat().generate(r),
            screen_in,
            screen_out,
            encode=embedder.encode,
        )
        out = answer_question(q.text, ctx)
        for key in tokens:
            tokens[key] += ctx.stats.get(key, 0)
        return out

    result = evaluate_answers(usable, answer, encode=embedder.encode, progress=_err)
    summary = {
        **result.summary(),
        **tokens,
        "skipped": len(gold) - len(usable),
        "wall_seconds": round(time.perf_counter() - started, 1),
    }
    for w in warnings:
        _err(f"warning: {w}")
    for r in result.per_question:
        verdict = "refused" if r["refused"] else ("correct" if r["correct"] else "wrong")
        print(
            f"  {r['id']:24} {r['kind']:7} {verdict:8} cited pages {r.get('cited_pages')} "
            f"support {r.get('support')}"
        )
    print(
        f"answers: {summary['n']} questions, accuracy {summary['accuracy_all']} (answered: "
        f"{summary['accuracy_answered']}), refused {summary['refused']}, "
        f"{summary['seconds_per_question']}s per question"
    )
    if as_json:
        print(json.dumps(summary))
    return 0
