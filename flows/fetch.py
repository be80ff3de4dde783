"""Fetch flow: new SEC filings and XBRL company facts for the watchlist, from EDGAR into `data_dir`.

Run it (needs network access to sec.gov and a declared User-Agent):
    RESEARCHDESK_EDGAR_USER_AGENT="Acme Research research@acme.com" researchdesk fetch
    researchdesk fetch --tickers AAPL,NVDA --forms 10-K,10-Q
    python -m flows.fetch                # same as `researchdesk fetch`, watchlist from settings

Then `researchdesk ingest` (or the nightly run, which ingests first) indexes what arrived. Only
filings newer than the last fetch are downloaded (state in `var/edgar_state.json`), at most
`edgar_rate_limit` requests/s (SEC allows 10). A ticker that fails is listed; the others complete.
"""

from __future__ import annotations

from prefect import flow, get_run_logger

from flows.params import check_ticker_list
from flows.settings import Settings
from rag.edgar import FetchSummary, fetch_edgar
from rag.edgar_http import EdgarClient


def edgar_client(settings: Settings) -> EdgarClient:
    """The one client of a run (ConfigError here, before any request, when no User-Agent is set)."""
    return EdgarClient(
        settings.edgar_user_agent,
        www_url=settings.edgar_www_url,
        data_url=settings.edgar_data_url,
        rate=settings.edgar_rate_limit,
        max_retries=settings.edgar_max_retries,
    )


@flow(name="fetch-edgar", log_prints=False)
def fetch_flow(tickers: list[str] | None = None, forms: list[str] | None = None) -> dict:
    settings = Settings()
    if tickers is None:  # an empty or `../x` list is one line here too, before the first request
        tickers = check_ticker_list(settings.watchlist, "RESEARCHDESK_WATCHLIST")
    else:
        tickers = check_ticker_list(tickers, "the tickers parameter")
    logger = get_run_logger()
    client = edgar_client(settings)
    summary: FetchSummary = fetch_edgar(
        client,
        tickers,
        settings.data_dir,
        settings.var_dir / "edgar_state.json",
        forms=tuple(forms or settings.edgar_forms),
        first_run=settings.edgar_first_run,
        workers=settings.edgar_workers,
        progress=logger.info,
    )
    for warning in summary.warnings:
        logger.warning(warning)
    for ticker, reasons in summary.failed.items():
        for reason in reasons:
            logger.warning("%s: %s", ticker, reason)
    logger.info(
        "fetch done in %.1fs: %d files, %d requests; up to date: %s; failed: %s",
        summary.seconds,
        len(summary.fetched),
        summary.requests,
        ", ".join(summary.up_to_date) or "-",
        ", ".join(summary.failed) or "-",
    )
    return summary.to_json()


if __name__ == "__main__":
    fetch_flow()
