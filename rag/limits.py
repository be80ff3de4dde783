"""Input size limits, in one place, so each cap is documented and a test can name it.

Every cap refuses (SourceError, one line naming the file, the limit and the fix) or trims with
`skipped(...)`; none of them reads the whole oversized input into memory first.
"""

from __future__ import annotations

# A .gz input is gunzipped in bounded steps up to this many bytes. The largest real SEC primary
# document in the sample data is a few tens of MB; 256 MB leaves room while a gzip bomb (1 GB of
# zeros in ~1 MB) stops here instead of taking the worker's memory.
MAX_DECOMPRESSED_BYTES = 256 * 1024 * 1024

# Pages read from one PDF. FinanceBench 10-Ks run to ~300 pages; past 2,000 the file is not a
# filing (or is a merged binder) and text extraction would take minutes under the PDFium lock.
MAX_PDF_PAGES = 2000

# Model output kept per section before sanitizing (reports/sanitize.py). A section asks for a few
# hundred tokens; 10 MB of text is a runaway decode, and the regex passes over it would take
# seconds per section. The cut is on characters, then the normal rules run on what is left.
MAX_MODEL_TEXT_CHARS = 100_000

# Tickers in one report run (watchlist or --tickers, after de-duplication). SEC lists ~10,000
# tickers; a nightly of 5,000 is hours of generation on the GPU node. Past it the list is a pasted
# file or a loop gone wrong: refused with one line before any flow starts, split it into runs.
MAX_WATCHLIST = 5000

# Earliest report date (`--as-of`, the flows' `as_of`). EDGAR's electronic filings start in 1993;
# before that there is nothing to report from, and a report "as of" 1800 is a typo.
EARLIEST_AS_OF = "1993-01-01"
