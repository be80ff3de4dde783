"""Write rendered reports to a local folder, atomically, and say what was written.

Why atomic: the nightly run overwrites yesterday's reports in place, and readers (analysts, a web
server, an S3 sync) may open a file at any moment. Each file goes through `rag.atomic.write_atomic`
(temporary file in the same directory, fsynced, then `os.replace`d over the target), so a reader
sees the old report or the new one, never half of one - also after a crash or a full disk.

Why digests: the run manifest records every published file with its sha256 so a report can be
checked later against what the run actually wrote.
"""

from __future__ import annotations

import re
from pathlib import Path

from rag.atomic import sha256_hex, write_atomic
from rag.errors import ResearchDeskError
from reports.charts import verified_charts
from reports.model import Report, RunSummary
from reports.render import render_html, render_index, render_markdown

__all__ = ["PublishError", "publish_report", "sha256_hex", "write_atomic", "write_index"]
# write_atomic / sha256_hex live in rag/atomic.py (shared by every package); flows/ import them here.

_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


class PublishError(ResearchDeskError):
    """A report could not be written where asked (bad name, unwritable folder)."""


def _check_name(name: str, what: str) -> str:
    if not _SAFE_NAME.fullmatch(name) or ".." in name:
        raise PublishError(
            f"{what} {name!r} is not a safe file name: use letters, digits, '.', '_' and '-' only"
        )
    return name


def publish_report(report: Report, out_dir: Path) -> dict[str, str]:
    """Write `<TICKER>.md`, `<TICKER>.html` and the report's chart SVGs into `out_dir`.

    Returns {written path: sha256 hex} for the run manifest. Only charts that
    `verified_charts` confirms are written, i.e. exactly what `financial_charts(facts,
    ticker=report.ticker)` builds: their names are then `<TICKER>-*.svg` (safe, and distinct
    from other tickers' charts in the same folder), and the rendered report notes any omitted.
    """
    out_dir = Path(out_dir)
    ticker = _check_name(report.ticker, "ticker")
    charts, _ = verified_charts(report)
    # Render everything before writing anything: a template error then leaves the folder untouched.
    files: list[tuple[Path, str]] = [
        (out_dir / f"{ticker}.md", render_markdown(report)),
        (out_dir / f"{ticker}.html", render_html(report)),
        *[(out_dir / chart.file, chart.svg) for chart in charts],
    ]
    try:
        return {str(path): write_atomic(path, text) for path, text in files}
    except OSError as exc:
        raise PublishError(f"could not write {ticker}'s report to {out_dir}: {exc}") from exc


def write_index(run_summary: RunSummary, out_dir: Path) -> dict[str, str]:
    """Write `index.html` for the run into `out_dir`; returns {path: sha256 hex}."""
    path = Path(out_dir) / "index.html"
    try:
        return {str(path): write_atomic(path, render_index(run_summary))}
    except OSError as exc:
        raise PublishError(f"could not write the run index to {path}: {exc}") from exc
