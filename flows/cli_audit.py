"""`researchdesk audit RUN [--ticker T] [--json]`: verify a run folder and re-render its reports.

Exit 0 when every check passes, 1 when something was tampered with (each file or record named).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rag.errors import SourceError


def _run_dir(run: str) -> Path:
    from flows.settings import Settings

    path = Path(run)
    if not (path / "manifest.json").is_file():
        path = Settings().reports_dir / run
    if not (path / "manifest.json").is_file():
        raise SourceError(f"{run}: no manifest.json there; pass a run id, a run folder or `latest`")
    return path.resolve()


def run_audit(args: argparse.Namespace) -> int:
    """Verify files, digests and chain, then re-render the published reports (or --ticker)."""
    from flows.resources import shared_embedder
    from flows.settings import Settings
    from reports.audit_trail import manifest_dict, rerender_check, verify_run

    run_dir = _run_dir(args.run)
    result = verify_run(run_dir)
    tickers = [args.ticker] if args.ticker else [
        tk for tk, r in manifest_dict(run_dir).get("tickers", {}).items() if r.get("inputs")
    ]
    if tickers and result.checks and result.checks[0][0] != "manifest schema":
        encode = shared_embedder(Settings().embedder).encode
        for ticker in tickers:
            rerender_check(run_dir, ticker, encode, result)
    for what, ok, detail in result.checks:
        print(f"{'ok ' if ok else 'BAD'} {what}" + (f": {detail}" if detail else ""))
    verdict = "verified" if result.ok else f"TAMPERED ({len(result.problems)} problems)"
    print(f"audit {result.run_id}: {verdict}")
    if args.json:
        print(json.dumps({"run_id": result.run_id, "ok": result.ok, "problems": result.problems}))
    return 0 if result.ok else 1


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("audit", help="verify a run's files, digests and hash chain; re-render its reports")
    p.add_argument("run", help="run id, run folder, or `latest`")
    p.add_argument("--ticker", help="re-render only this ticker's report")
    p.add_argument("--json", action="store_true", help="print one JSON object as the last line")
