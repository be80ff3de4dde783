"""Build the shipped `data/` sample from the shared real-data folder.

Run once by maintainers (not at install time):
    python tools/make_sample_data.py ../shared/data

Why a script: news articles are publishers' copyright, so the product ships only titles, dates,
links and a short excerpt; Wikipedia pages are cut down to the watchlist companies. Filings and
XBRL facts are public and copied unchanged.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import shutil
import sys
from pathlib import Path

TICKERS = ["AAPL", "NVDA", "TSLA", "AMZN", "META"]
EXCERPT_CHARS = 400
# The S&P 500 dump has "Amazon" (a disambiguation page) for AMZN; the topic folder has the real article.
REPLACEMENTS = {"AMZN": ("Amazon (company)", "Amazon_company.txt")}
GENERAL_TOPICS = [
    ("S&P 500", "SP_500.txt"),
    ("Market capitalization", "Market_capitalization.txt"),
    ("Nasdaq", "NASDAQ.txt"),
]  # short excerpt: enough to retrieve on, far from the full article


def copy_submissions(shared: Path, out: Path) -> None:
    """The watchlist's 8-Ks as full EDGAR submissions (SGML with exhibits), unchanged.

    Only the `.txt.gz`: shipping the same 8-K's primary `.htm` as well would index it twice.
    """
    (out / "sec" / "submissions").mkdir(parents=True, exist_ok=True)
    for path in sorted((shared / "sec" / "8-K").glob("*.txt.gz")):
        if path.name.split("-")[0].upper() in TICKERS:
            shutil.copy(path, out / "sec" / "submissions" / path.name)


def main(shared: Path, out: Path) -> None:
    sec = shared / "sec"
    (out / "sec" / "filings").mkdir(parents=True, exist_ok=True)
    (out / "sec" / "companyfacts").mkdir(parents=True, exist_ok=True)
    for form in ("10-K", "10-Q"):
        for path in sorted((sec / form).glob("*.html.gz")):
            if path.name.split("-")[0].upper() in TICKERS:
                shutil.copy(path, out / "sec" / "filings" / path.name)
    for path in sorted((sec / "edgar_api").glob("companyfacts_*.json.gz")):
        shutil.copy(path, out / "sec" / "companyfacts" / path.name)
    with (
        open(sec / "edgar_api" / "company_tickers.json", "rb") as src,
        gzip.open(out / "sec" / "company_tickers.json.gz", "wb") as dst,
    ):
        shutil.copyfileobj(src, dst)
    copy_submissions(shared, out)

    (out / "news").mkdir(parents=True, exist_ok=True)
    for ticker in TICKERS:
        with gzip.open(shared / "news" / f"{ticker}.csv.gz", "rt", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=["title", "published", "descriptionText", "storyPath"])
        writer.writeheader()
        for row in rows:
            body = (row.get("descriptionText") or "").strip()
            row["descriptionText"] = body[:EXCERPT_CHARS].rsplit(" ", 1)[0] + (
                " …" if len(body) > EXCERPT_CHARS else ""
            )
            writer.writerow({k: row.get(k, "") for k in writer.fieldnames})
        with gzip.open(out / "news" / f"{ticker}.csv.gz", "wt", encoding="utf-8") as fh:
            fh.write(buf.getvalue())

    (out / "wikipedia").mkdir(parents=True, exist_ok=True)
    topics = shared / "wikipedia" / "finance_topics_txt"
    with (
        gzip.open(
            shared / "wikipedia" / "sp500_company_wikipedia_pages.jsonl.gz", "rt", encoding="utf-8"
        ) as src,
        gzip.open(out / "wikipedia" / "companies.jsonl.gz", "wt", encoding="utf-8") as dst,
    ):
        for line in src:
            page = json.loads(line)
            if page["ticker"] in TICKERS and page.get("exists"):
                keep = {
                    k: page[k] for k in ("ticker", "cik", "company_name", "wiki_title_used", "clean_text")
                }
                if page["ticker"] in REPLACEMENTS:  # the S&P 500 dump resolved a disambiguation page
                    title, fname = REPLACEMENTS[page["ticker"]]
                    keep["wiki_title_used"] = title
                    keep["clean_text"] = (topics / fname).read_text(encoding="utf-8").strip()
                dst.write(json.dumps(keep) + "\n")
        for title, fname in GENERAL_TOPICS:  # market background, not tied to one ticker
            text = (topics / fname).read_text(encoding="utf-8").strip()
            page = {"ticker": "", "cik": "", "company_name": "", "wiki_title_used": title, "clean_text": text}
            dst.write(json.dumps(page) + "\n")


if __name__ == "__main__":
    main(
        Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data"),
        Path(__file__).resolve().parents[1] / "data",
    )
