"""Validation of the per-run choices (tickers, as_of), shared by the CLI and the report flows.

Why one module: a Prefect deployment calls `nightly_reports(tickers=..., as_of=...)` without the
CLI, so every check the CLI makes on its flags must also hold for flow parameters, with the same
one-line message. The CLI runs these before any flow (or Prefect) starts; the flows run them again
on their own parameters before a run folder is made, so a `../x` ticker never reaches a path.

What is refused here (a typed ResearchDeskError, one line): a ticker that is not shaped like one,
an empty list, more than MAX_WATCHLIST tickers, a date before EARLIEST_AS_OF or after today. A
well-shaped ticker SEC does not list is not refused here: a flow records it as failed alone
(the others complete). The CLI refuses one named on its command line before the flow
(`check_known`), and only warns about one in the standing watchlist (`known_or_warn`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from rag.errors import ConfigError, UnknownTickerError
from rag.limits import EARLIEST_AS_OF, MAX_WATCHLIST

# Shape of a ticker as SEC lists them (BRK-B, BF.B); checked before the list, so a path such as
# `../etc` is refused as "not a ticker" instead of being looked up, or written into a file name.
TICKER_RE = re.compile(r"^[A-Za-z][A-Za-z0-9.\-]{0,9}$")
_SHAPE = "1-10 letters, digits, '.' or '-', starting with a letter"
_SHOWN = 5  # names quoted in a one-line message about many tickers


def _few(names: list[str], quote: bool = False) -> str:
    shown = ", ".join(repr(n) if quote else n for n in names[:_SHOWN])
    return shown + (f" ... ({len(names) - _SHOWN} more)" if len(names) > _SHOWN else "")


def check_ticker_list(tickers: Iterable[object], where: str) -> list[str]:
    """Upper-cased, de-duplicated (first occurrence kept) tickers; ResearchDeskError when the list
    is empty, too long or holds something that is not a ticker. `where` names the list's origin in
    the message (e.g. "--tickers", "RESEARCHDESK_WATCHLIST")."""
    raw = [str(t).strip() for t in tickers]
    bad = [t for t in raw if t and not TICKER_RE.match(t)]
    if len(bad) == 1:
        raise UnknownTickerError(f"{bad[0]!r} is not a ticker ({_SHAPE}); fix {where}")
    if bad:
        raise UnknownTickerError(
            f"{len(bad)} entries of {where} are not tickers ({_SHAPE}): {_few(bad, quote=True)}"
        )
    unique = list(dict.fromkeys(t.upper() for t in raw if t))
    if not unique:
        raise ConfigError(
            f"the watchlist is empty: {where} names no ticker; set RESEARCHDESK_WATCHLIST=AAPL,NVDA "
            "(or a JSON list) or pass --tickers AAPL,NVDA"
        )
    if len(unique) > MAX_WATCHLIST:
        raise ConfigError(
            f"{where} names {len(unique)} tickers, more than rag/limits.py MAX_WATCHLIST={MAX_WATCHLIST}: "
            "split it into several runs"
        )
    return unique


def check_known(tickers: list[str], company_tickers: Path, where: str) -> list[str]:
    """Canonical tickers, or UnknownTickerError naming those not in SEC's company_tickers list:
    one unknown ticker gets close-match suggestions (rag/catalog.py), many get a count and the
    first few names on the same line."""
    from rag.catalog import load_companies, resolve

    companies = load_companies(company_tickers)
    unknown = [t for t in tickers if t.strip().upper() not in companies]
    if len(unknown) == 1:
        resolve(unknown[0], companies)  # raises, with suggestions
    if unknown:
        raise UnknownTickerError(_unknown_message(unknown, tickers, where))
    return [resolve(t, companies).ticker for t in tickers]


def known_or_warn(tickers: list[str], company_tickers: Path, where: str) -> tuple[list[str], str | None]:
    """For the standing watchlist: tickers SEC does not list are kept (the flow fails them alone,
    the others are written: one delisted company must not stop a nightly) and named in a warning;
    UnknownTickerError only when none is listed (a wrong list, not a stale entry)."""
    from rag.catalog import load_companies

    companies = load_companies(company_tickers)
    unknown = [t for t in tickers if t not in companies]
    if unknown and len(unknown) == len(tickers):
        raise UnknownTickerError(_unknown_message(unknown, tickers, where))
    canonical = [companies[t].ticker if t in companies else t for t in tickers]
    warning = _unknown_message(unknown, tickers, where) + "; their reports fail, the others are written"
    return canonical, warning if unknown else None


def _unknown_message(unknown: list[str], tickers: list[str], where: str) -> str:
    return (
        f"{len(unknown)} of {len(tickers)} tickers in {where} are not SEC-registered tickers "
        f"(not in company_tickers.json): {_few(unknown)}"
    )


def today_in(timezone: str) -> date:
    """Today's date where the desk is (a scheduled run's as_of is taken in the same timezone)."""
    return datetime.now(ZoneInfo(timezone)).date()


def check_as_of(value: str | None, timezone: str, option: str = "as_of") -> str | None:
    """The ISO report date, None when not given (the flow uses its scheduled date); ConfigError
    naming `option` and the allowed range for a malformed date, one before EDGAR's electronic
    filings begin, or one after today (a report "as of" the future would silently use today's data)."""
    if value is None:
        return None
    today = today_in(timezone)
    allowed = f"use a date from {EARLIEST_AS_OF} to today ({today.isoformat()}, {timezone})"
    try:
        day = date.fromisoformat(str(value).strip())
    except ValueError as exc:
        raise ConfigError(f"{option} must be a date like 2025-06-01, not {value!r}; {allowed}") from exc
    if day < date.fromisoformat(EARLIEST_AS_OF):
        raise ConfigError(
            f"{option} {day.isoformat()} is before {EARLIEST_AS_OF}, when EDGAR's electronic filings "
            f"start; {allowed}"
        )
    if day > today:
        raise ConfigError(
            f"{option} {day.isoformat()} is in the future (a report as of it would use today's data); "
            + allowed
        )
    return day.isoformat()
