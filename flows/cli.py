"""`researchdesk` command line: ingest, run (nightly flow), report TICKER.

    researchdesk ingest [--rebuild] [--json]
    researchdesk fetch [--tickers AAPL,NVDA] [--forms 10-K,10-Q,8-K]
    researchdesk run [--tickers AAPL,NVDA] [--as-of 2025-06-01] [--no-ingest] [--fresh]
    researchdesk report AAPL [--as-of 2025-06-01] [--fresh]
    researchdesk eval faithfulness var/reports/latest [--json]
    researchdesk eval retrieval --questions Q.jsonl --docs DIR [--json]
    researchdesk eval answers --questions Q.jsonl --docs DIR [--json]
    researchdesk ask AAPL "What drove revenue?" [--session ID] [--json]
    researchdesk serve [--port 8765] [--host 127.0.0.1]

A second `run`/`report` with the same tickers and date resumes the first one's run folder: reports
already published are kept, stored sections are not generated again (`--fresh` starts over).

Every command takes `--debug` (before or after the subcommand) to show full tracebacks.

Exit status: 0 all reports written, 1 some tickers failed (named on stderr and in the manifest),
2 bad usage or configuration (a bad flag or date, an unknown ticker, a missing data folder),
3 internal error (a bug: the one line names the exception; `--debug` shows the traceback).
Errors print as one line `error: ...`, without a traceback, and so do Prefect's log records of
failed tasks and flows (flows/logs.py); `latest` moves only to a run that wrote a report.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
import traceback
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import flows  # noqa: F401  (sets the offline Prefect environment before Prefect is imported)
from flows.params import TICKER_RE as TICKER_RE  # the ticker shape, shared with the flows' parameters

if TYPE_CHECKING:
    from flows.settings import Settings

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3


class _Parser(argparse.ArgumentParser):
    """Usage mistakes are one `error:` line too, not argparse's usage block (`--help` shows it)."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(EXIT_USAGE, f"error: {self.prog}: {message} (see `{self.prog} --help`)\n")


def _as_of(value: str) -> str:
    try:
        return date.fromisoformat(value).isoformat()
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"must be a date like 2025-06-01, not {value!r}") from exc


def _debug_flag(parser: argparse.ArgumentParser, default: object = argparse.SUPPRESS) -> None:
    """`--debug` on the main parser and on every subcommand; SUPPRESS keeps a subcommand that does
    not repeat it from resetting `researchdesk --debug report X`."""
    parser.add_argument("--debug", action="store_true", default=default, help="show full tracebacks")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="researchdesk", description=__doc__.split("\n")[0])
    _debug_flag(parser, default=False)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("ingest", help="refresh the indexes and facts from the data directory")
    p.add_argument("--rebuild", action="store_true", help="re-parse and re-embed everything")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object, last line")
    p = sub.add_parser("fetch", help="download new SEC filings and XBRL facts from EDGAR into the data dir")
    p.add_argument("--tickers", help="comma-separated tickers (default: watchlist from settings)")
    p.add_argument("--forms", help="comma-separated forms, e.g. 10-K,10-Q,8-K (default: settings)")
    p = sub.add_parser("run", help="write reports for the watchlist (the nightly flow)")
    p.add_argument("--tickers", help="comma-separated tickers (default: watchlist from settings)")
    p.add_argument("--as-of", type=_as_of, help="report date, ISO (default: today)")
    p.add_argument("--no-ingest", action="store_true", help="skip the incremental ingest step")
    p.add_argument("--fresh", action="store_true", help="new run folder; do not resume an earlier attempt")
    p = sub.add_parser("report", help="write the report for one ticker (on demand)")
    p.add_argument("ticker")
    p.add_argument("--as-of", type=_as_of, help="report date, ISO (default: today)")
    p.add_argument("--fresh", action="store_true", help="new run folder; do not resume an earlier attempt")
    p = sub.add_parser("ask", help="answer a question about a company, with cited sources")
    p.add_argument("ticker")
    p.add_argument("question")
    p.add_argument("--session", help="continue this conversation (a new id is printed when omitted)")
    p.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    from flows.cli_audit import add_parser as add_audit_parser

    add_audit_parser(sub)
    from flows.serve import add_parser as add_serve_parser

    add_serve_parser(sub)
    p = sub.add_parser("eval", help="evaluate a finished run, or retrieval on FinanceBench questions")
    evals = p.add_subparsers(dest="what", required=True)
    e = evals.add_parser("faithfulness", help="citation and number checks of a run")
    e.add_argument("run_dir", type=Path, help="a run folder, e.g. var/reports/latest")
    e.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    e = evals.add_parser("retrieval", help="evidence-page hit@1/5/10 on FinanceBench-format PDFs")
    e.add_argument("--questions", type=Path, required=True, help="questions JSONL (FinanceBench format)")
    e.add_argument("--docs", type=Path, required=True, help="folder of the PDFs (or with a pdfs/ subfolder)")
    e.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    e.add_argument("--lexical-weight", type=float, help="BM25 weight in the fusion (default: rag/hybrid.py)")
    e.add_argument("--statement-weight", type=float, help="boost of a page printing the asked statement")
    e.add_argument("--period-weight", type=float, help="boost of a page from the asked fiscal period")
    e = evals.add_parser("answers", help="answer FinanceBench questions from their PDFs and score them")
    e.add_argument("--questions", type=Path, required=True, help="questions JSONL (FinanceBench format)")
    e.add_argument("--docs", type=Path, required=True, help="folder of the PDFs (or with a pdfs/ subfolder)")
    e.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    for action in (sub, evals):
        for command in action.choices.values():
            _debug_flag(command)
    return parser


def _quiet_libraries() -> None:
    """Library chatter (tqdm bars, HF warnings) would drown the progress lines."""
    import os

    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TQDM_DISABLE", "1")
    logging.getLogger("sentence_transformers").setLevel(logging.WARNING)


def _print_run(result: dict, seconds: float) -> int:
    print(f"\nrun {result['run_id']}: {result['status']} in {seconds:.1f}s")
    for ticker, record in result["tickers"].items():
        line = record.get("error") or ", ".join(
            f"{s['key']}={s['status']}" for s in record.get("sections", [])
        )
        print(f"  {ticker:6} {record['status']:9} {line}")
    for error in result["failed"].values():
        print(f"error: {error}", file=sys.stderr)
    print(f"open {result['run_dir']}/index.html")
    return EXIT_FAILED if result["failed"] else EXIT_OK


def _preflight(need_tickers: bool = True) -> Settings:
    """Check settings and the data folder before any flow starts, so mistakes are one clear line;
    returns the settings."""
    from pydantic import ValidationError

    from flows.settings import Settings
    from rag.errors import ConfigError

    try:
        settings = Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"RESEARCHDESK_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}" for e in exc.errors()
        )
        raise ConfigError(f"invalid setting: {problems}") from exc
    from models.screens import CHECKS

    unknown = [c for c in settings.input_checks + settings.output_checks if c not in CHECKS]
    if unknown:
        raise ConfigError(
            f"invalid setting: RESEARCHDESK_INPUT_CHECKS/OUTPUT_CHECKS: unknown checks {unknown}; "
            f"known: {sorted(CHECKS)}"
        )
    if not settings.output_checks:
        raise ConfigError(
            "invalid setting: RESEARCHDESK_OUTPUT_CHECKS is empty: generated text must be moderated"
        )
    settings.policy  # noqa: B018 - raises ConfigError naming a bad label or action
    if not settings.data_dir.is_dir():
        raise ConfigError(
            f"data directory {settings.data_dir.resolve()} does not exist; run from the project folder "
            "or set RESEARCHDESK_DATA_DIR"
        )
    if need_tickers and not settings.company_tickers.is_file():
        raise ConfigError(f"{settings.company_tickers} is missing: the ticker -> CIK list is required")
    return settings


def _tickers_asked(args: argparse.Namespace, settings: Settings) -> tuple[list[str], str] | None:
    """The tickers a command works on and where they came from (for the message); None for the
    commands that name none. `--tickers ""` is refused as an empty list, not read as "the watchlist"."""
    if args.command in ("report", "ask"):
        return [args.ticker], "the ticker argument"
    if args.command in ("run", "fetch"):
        if args.tickers is not None:
            return args.tickers.split(","), "--tickers"
        return list(settings.watchlist), "RESEARCHDESK_WATCHLIST"
    return None


def check_tickers(tickers: list[str], company_tickers: Path, where: str = "--tickers") -> list[str]:
    """Canonical tickers, or UnknownTickerError before any flow (and Prefect, and ingest) starts.

    The shape first (flows/params.py): `../etc` is "not a ticker", not a lookup, and an empty or
    oversized list is refused; then SEC's company_tickers list, whose error suggests close matches
    for one unknown ticker and counts many (rag/catalog.py).
    """
    from flows.params import check_known, check_ticker_list

    return check_known(check_ticker_list(tickers, where), company_tickers, where)


def _fetch(tickers: list[str], forms: str | None) -> int:
    """Live EDGAR download; the User-Agent is checked before the flow (and Prefect) starts."""
    from flows.settings import Settings
    from rag.edgar_http import check_user_agent

    check_user_agent(Settings().edgar_user_agent)
    from flows.fetch import fetch_flow

    def split(value: str | None) -> list[str] | None:
        return [x.strip() for x in value.split(",") if x.strip()] if value else None

    summary = fetch_flow(tickers=tickers, forms=split(forms))
    for warning in summary["warnings"]:
        print(f"warning: {warning}", file=sys.stderr)
    for ticker, r in summary["tickers"].items():
        print(f"  {ticker:6} {r['status']:10} {len(r['fetched'])} files")
        for reason in r["failed"]:
            print(f"error: {ticker}: {reason}", file=sys.stderr)
    files = sum(len(r["fetched"]) for r in summary["tickers"].values())
    print(f"fetch: {files} files, {summary['requests']} requests, {summary['seconds']:.1f}s")
    return 1 if any(r["failed"] for r in summary["tickers"].values()) else 0


FILE_NOTICES = ("failed", "set aside", "not recognised")  # a line each: the user has to act on these


def file_lines(summary: dict) -> list[str]:
    """One line per file the user has to look at, and the count per status; nothing for a summary
    written before ingest reported every file (no "files")."""
    files = summary.get("files")
    if not files:
        return []
    lines = [
        f"  {f['status']:14} {f['file']}" + (f": {f['reason']}" if f.get("reason") else "")
        for f in files
        if f.get("status") in FILE_NOTICES
    ]
    counts: dict[str, int] = {}
    for f in files:
        counts[f.get("status", "?")] = counts.get(f.get("status", "?"), 0) + 1
    from rag.ingest_report import STATUSES

    order = [s for s in STATUSES if s in counts] + sorted(set(counts) - set(STATUSES))
    lines.append("files: " + ", ".join(f"{counts[s]} {s}" for s in order))
    return lines


def _ingest(args: argparse.Namespace, started: float) -> int:
    from flows.ingest import ingest_flow

    summary = ingest_flow(rebuild=args.rebuild)
    for failure in summary["failures"]:
        print(f"warning: skipped {failure['file']}: {failure['error']}", file=sys.stderr)
    for skip in summary["skips"]:
        print(f"warning: partly skipped {skip['file']}: {skip['reason']}", file=sys.stderr)
    for line in file_lines(summary):
        print(line)
    print(
        f"ingest: {summary['documents']} new/changed documents, {summary['facts']} facts, "
        f"{len(summary['failures'])} files skipped, {len(summary['skips'])} parts skipped, "
        f"{time.perf_counter() - started:.1f}s"
    )
    if args.json:
        print(json.dumps(summary, default=str))
    return EXIT_OK


def _reports(args: argparse.Namespace, tickers: list[str], started: float) -> int:
    from flows.reports import RunFailed, nightly_reports, ticker_report

    try:
        if args.command == "run":
            result = nightly_reports(
                tickers=tickers or None, as_of=args.as_of, ingest=not args.no_ingest, resume=not args.fresh
            )
        else:
            result = ticker_report(tickers[0], as_of=args.as_of, resume=not args.fresh)
    except RunFailed as exc:  # no report produced: the flow failed, the manifest says why
        result = exc.result
    return _print_run(result, time.perf_counter() - started)


def _checked_tickers(args: argparse.Namespace, settings: Settings) -> list[str]:
    """Checked tickers of the command; fetch only checks their shape (EDGAR's own list names the
    unknown ones per ticker, and the others are fetched)."""
    from flows.params import check_ticker_list, known_or_warn

    asked = _tickers_asked(args, settings)
    if asked is None:
        return []
    if args.command == "fetch":
        return check_ticker_list(*asked)
    if asked[1] == "RESEARCHDESK_WATCHLIST":
        tickers, warning = known_or_warn(check_ticker_list(*asked), settings.company_tickers, asked[1])
        if warning:
            print(f"warning: {warning}", file=sys.stderr)
        return tickers
    return check_tickers(asked[0], settings.company_tickers, asked[1])


def _command(args: argparse.Namespace, started: float) -> int:
    if args.command == "serve":  # reads the reports folder only
        from flows.serve import run_serve

        return run_serve(args)
    if args.command == "audit":  # reads a finished run folder only
        from flows.cli_audit import run_audit

        return run_audit(args)
    if args.command == "eval":  # evaluations read their own inputs: no data-folder preflight
        from flows.cli_eval import run_eval

        return run_eval(args)
    settings = _preflight(need_tickers=args.command != "fetch")
    tickers = _checked_tickers(args, settings)
    if getattr(args, "as_of", None) is not None:  # the range (1993 .. today) needs the desk timezone
        from flows.params import check_as_of

        args.as_of = check_as_of(args.as_of, settings.timezone, "--as-of")
    if args.command == "ask":
        from flows.ask import ask

        return ask(tickers[0], args.question, args.session, args.json)
    from flows.workspace import check_workspace

    writes = [settings.var_dir, settings.reports_dir, settings.index_dir]
    check_workspace(writes + [settings.data_dir] * (args.command == "fetch"), settings.min_free_mb * 2**20)
    from flows.logs import install_redaction

    install_redaction()  # credentials out of the console and the API's copy of run logs, --debug too
    if not args.debug:  # the commands below run Prefect flows: their failures as one line too
        from flows.logs import install_one_line_errors

        install_one_line_errors()
    if args.command == "fetch":
        return _fetch(tickers, args.forms)
    if args.command == "ingest":
        return _ingest(args, started)
    return _reports(args, tickers, started)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    _quiet_libraries()
    from flows.redact import redact_text as _r  # an error line may quote a URL with credentials
    from rag.errors import ResearchDeskError

    try:
        return _command(args, time.perf_counter())
    except ResearchDeskError as exc:
        if args.debug:
            traceback.print_exc()
        print(_r(f"error: {exc}"), file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except OSError as exc:  # disk full, permission denied ...: the environment, not a bug
        if args.debug:
            traceback.print_exc()
        where = f" ({exc.filename})" if exc.filename else ""
        hint = "free space or fix permissions, then rerun"
        print(_r(f"error: {exc.strerror or exc}{where}; {hint}"), file=sys.stderr)
        return EXIT_FAILED
    except Exception as exc:  # a bug: say so in one line; --debug shows where
        if args.debug:
            traceback.print_exc()
        print(
            _r(f"error: internal error: {type(exc).__name__}: {exc}")
            + " (run again with --debug for the traceback)",
            file=sys.stderr,
        )
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
