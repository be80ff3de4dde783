"""`researchdesk` command line: ingest, run (nightly flow), report TICKER.

    researchdesk ingest [--rebuild]
    researchdesk run [--tickers AAPL,NVDA] [--as-of 2025-06-01] [--no-ingest]
    researchdesk report AAPL [--as-of 2025-06-01]

Exit status: 0 all reports written, 1 some tickers failed (named on stderr and in the manifest),
2 bad usage or configuration. Errors the user can fix print as one line, without a traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from datetime import date

import flows  # noqa: F401  (sets the offline Prefect environment before Prefect is imported)


def _as_of(value: str) -> str:
    try:
        return date.fromisoformat(value).isoformat()
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"--as-of must be a date like 2025-06-01, not {value!r}") from exc


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="researchdesk", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("ingest", help="refresh the indexes and facts from the data directory")
    p.add_argument("--rebuild", action="store_true", help="re-parse and re-embed everything")
    p = sub.add_parser("run", help="write reports for the watchlist (the nightly flow)")
    p.add_argument("--tickers", help="comma-separated tickers (default: watchlist from settings)")
    p.add_argument("--as-of", type=_as_of, help="report date, ISO (default: today)")
    p.add_argument("--no-ingest", action="store_true", help="skip the incremental ingest step")
    p = sub.add_parser("report", help="write the report for one ticker (on demand)")
    p.add_argument("ticker")
    p.add_argument("--as-of", type=_as_of, help="report date, ISO (default: today)")
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
    return 1 if result["failed"] else 0


def _preflight() -> None:
    """Check settings and the data folder before any flow starts, so mistakes are one clear line."""
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
    if not settings.data_dir.is_dir():
        raise ConfigError(
            f"data directory {settings.data_dir.resolve()} does not exist; run from the project folder "
            "or set RESEARCHDESK_DATA_DIR"
        )
    if not settings.company_tickers.is_file():
        raise ConfigError(f"{settings.company_tickers} is missing: the ticker -> CIK list is required")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    _quiet_libraries()
    from rag.errors import ResearchDeskError

    started = time.perf_counter()
    try:
        _preflight()
        if args.command == "ingest":
            from flows.ingest import ingest_flow

            summary = ingest_flow(rebuild=args.rebuild)
            for failure in summary["failures"]:
                print(f"warning: skipped {failure['file']}: {failure['error']}", file=sys.stderr)
            print(
                f"ingest: {summary['documents']} new/changed documents, {summary['facts']} facts, "
                f"{len(summary['failures'])} files skipped, {time.perf_counter() - started:.1f}s"
            )
            return 0
        from flows.reports import nightly_reports, ticker_report

        if args.command == "run":
            tickers = [t for t in args.tickers.split(",") if t.strip()] if args.tickers else None
            result = nightly_reports(tickers=tickers, as_of=args.as_of, ingest=not args.no_ingest)
        else:
            result = ticker_report(args.ticker, as_of=args.as_of)
        return _print_run(result, time.perf_counter() - started)
    except ResearchDeskError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
