"""Ticker -> company (CIK, name) from SEC's company_tickers.json, the source of truth for coverage.

Any ticker in that list can be covered; a ticker not in it is a typo or a delisting, and the error
says which known tickers look closest.
"""

from __future__ import annotations

import difflib
import gzip
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from rag.errors import ConfigError, UnknownTickerError


@dataclass(frozen=True)
class Company:
    ticker: str
    cik: str  # 10-digit, zero-padded as EDGAR uses in URLs
    name: str


@cache
def load_companies(path: Path) -> dict[str, Company]:
    try:
        raw = path.read_bytes()
        if path.suffix == ".gz":
            raw = gzip.decompress(raw)
        data = json.loads(raw)
    except FileNotFoundError as exc:
        raise ConfigError(
            f"{path}: company_tickers.json not found; check the data directory setting"
        ) from exc
    except (OSError, EOFError, ValueError) as exc:
        raise ConfigError(f"{path}: cannot read company_tickers.json ({exc})") from exc
    companies = {}
    for row in data.values():
        ticker = str(row["ticker"]).upper()
        companies.setdefault(ticker, Company(ticker, f"{int(row['cik_str']):010d}", str(row["title"])))
    return companies


def resolve(ticker: str, companies: dict[str, Company]) -> Company:
    """The company for a ticker (case-insensitive), or UnknownTickerError with suggestions."""
    key = ticker.strip().upper()
    if key in companies:
        return companies[key]
    close = difflib.get_close_matches(key, companies.keys(), n=3, cutoff=0.6)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise UnknownTickerError(f"{ticker}: not an SEC-registered ticker (not in company_tickers.json){hint}")
