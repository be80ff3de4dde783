"""Query understanding: what an analyst's question names, turned into filters and boosts.

A question like "What is the FY2018 capital expenditure amount (in USD millions) for 3M? Give a
response to the question by relying on the details shown in the cash flow statement." says four
things a retriever should not leave to cosine similarity:
- the company (3M): in one shared index, route to that company's documents;
- the fiscal period (FY2018): prefer the filing for that period;
- the statement (cash flow statement), named outright or implied by the metric (capital
  expenditure is a cash-flow line, a quick ratio is read off the balance sheet): boost pages
  that print that statement;
- what is asked, once the instruction boilerplate ("give a response ... by relying on ...") is
  removed: that boilerplate is most of the words, and embedded or matched as-is it pulls the
  query towards any page that talks about "details" and "statements".
In a report the section already knows its ticker and period; the same statement boost applies.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

BALANCE, INCOME, CASH_FLOW = "balance_sheet", "income_statement", "cash_flow"
STATEMENTS = (BALANCE, INCOME, CASH_FLOW)

# How a filing titles each primary statement (10-K Item 8 / 10-Q Part I Item 1 headings).
STATEMENT_TITLES: dict[str, re.Pattern[str]] = {
    BALANCE: re.compile(r"balance sheets?|statements? of financial (?:position|condition)", re.I),
    INCOME: re.compile(
        r"statements? of (?:consolidated )?(?:operations|income|earnings|comprehensive income)"
        r"|income statements?",
        re.I,
    ),
    CASH_FLOW: re.compile(r"statements? of (?:consolidated )?cash flows?|cash flows? statements?", re.I),
}

# The statement a question names outright ("... shown in the cash flow statement", "P&L").
_NAMED: dict[str, re.Pattern[str]] = {
    BALANCE: re.compile(r"balance sheet|statement of financial position", re.I),
    INCOME: re.compile(
        r"income statement|statements? of (?:income|operations|earnings)|p\s*&\s*l\b|profit and loss", re.I
    ),
    CASH_FLOW: re.compile(r"cash ?flows? statement|statements? of cash flows?", re.I),
}
# Metrics and line items read off one statement: standard financial-analysis definitions. Revenue
# is not here: questions about it are mostly about its breakdown (segments, regions), in the notes.
_IMPLIED: dict[str, re.Pattern[str]] = {
    BALANCE: re.compile(
        r"quick ratio|current ratio|working capital|total assets|total liabilities|shareholders.? equity"
        r"|stockholders.? equity|debt[- ]to[- ]equity|inventor(?:y|ies)|accounts (?:payable|receivable)"
        r"|book value|cash and cash equivalents|total debt|net debt|goodwill|retained earnings",
        re.I,
    ),
    INCOME: re.compile(
        r"gross (?:margin|profit)|operating (?:margin|income|profit)|net (?:income|margin|profit|earnings)"
        r"|cost of (?:goods|sales|revenue)|cogs|ebitda?|\beps\b|earnings per share"
        r"|sg&a|selling, general|interest expense|effective tax rate|income tax",
        re.I,
    ),
    CASH_FLOW: re.compile(
        r"capital expenditures?|capex|free cash flow|cash (?:flow )?from (?:operations|operating)"
        r"|operating cash flow|cash flows? from|(?:operating|investing|financing) activities"
        r"|dividends? paid|share repurchases?|buybacks?|depreciation and amortization|d&a\b",
        re.I,
    ),
}

# What a metric is computed from, in the words statements print (standard definitions): a page that
# prints "Gross profit" and "Net sales" answers a gross-margin question without saying "margin".
EXPANSIONS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern, re.I), words)
    for pattern, words in (
        (r"quick ratio|acid.test", "current assets inventories current liabilities cash receivables"),
        (r"current ratio|working capital", "total current assets total current liabilities"),
        (r"gross (?:margin|profit)", "gross profit net sales revenue cost of sales"),
        (r"operating (?:margin|income|profit)", "operating income revenue net sales"),
        (r"net (?:margin|profit margin)", "net income net earnings revenue net sales"),
        (r"capital expenditures?|capex", "purchases of property plant and equipment capital expenditures"),
        (r"free cash flow", "cash provided by operating activities purchases of property plant equipment"),
        (r"operating cash flow|cash from operations", "net cash provided by operating activities"),
        (r"debt[- ]to[- ]equity|leverage ratio", "total debt long-term debt total equity"),
        (r"return on assets|\broa\b", "net income total assets"),
        (r"return on equity|\broe\b", "net income total equity"),
        (r"inventory turnover|days inventory", "cost of sales inventories"),
        (r"days payable|\bdpo\b", "accounts payable cost of sales"),
        (r"days sales outstanding|\bdso\b", "accounts receivable revenue"),
        (r"interest coverage", "operating income interest expense"),
        (r"dividend payout", "dividends paid net income"),
        (r"ebitda", "operating income depreciation amortization"),
        (r"effective tax rate", "provision for income taxes income before income taxes"),
        (r"asset turnover", "revenue total assets"),
    )
)

_FY = re.compile(r"\b(?:fy|fiscal(?: year)?\s*)'?(\d{4}|\d{2})\b", re.I)
_QUARTER = re.compile(
    r"\b(?:q([1-4])\s*(?:fy)?'?\s*(\d{4}|\d{2})|(?:fy\s*)?'?(\d{4}|\d{2})\s*q([1-4]))\b", re.I
)
_YEAR = re.compile(r"\b(19[89]\d|20[0-4]\d)\b")

# Sentences that say how to answer, not what is asked. Matched per sentence (or per clause before
# a colon); a sentence that also holds the question mark keeps its question part.
_INSTRUCTION = re.compile(
    r"^(?:please\s+)?(?:give|provide|answer|respond|round|calculate|compute|use|using|base|rely|relying"
    r"|assume|assuming|utili[sz]e|utili[sz]ing|consider|approach|address|if\b.*\bthen\b|do not|don't"
    r"|you|your|the answer|express|show)\b",
    re.I,
)
_SENTENCE = re.compile(r"(?<=[.?!])\s+(?=[A-Z])")


@dataclass(frozen=True)
class QueryIntent:
    text: str  # the question without instruction boilerplate: what is embedded
    keywords: str = ""  # what BM25 matches: `text` minus what became a filter, plus metric definitions
    companies: tuple[str, ...] = ()  # keys of the `known` mapping named in the question
    years: tuple[int, ...] = ()  # fiscal years named (FY2018, fiscal 2022, 2023), in order of mention
    quarters: tuple[str, ...] = ()  # "2023Q2"
    statements: tuple[str, ...] = ()  # BALANCE / INCOME / CASH_FLOW, named first, then implied


def _year(text: str) -> int:
    """Four digits as written; two digits in the usual pivot ("FY23" -> 2023, "FY99" -> 1999)."""
    y = int(text)
    if y >= 100:
        return y
    return 2000 + y if y <= 50 else 1900 + y


def strip_instructions(question: str) -> str:
    """The question with its how-to-answer sentences removed (the whole text if nothing is left)."""
    kept: list[str] = []
    for sentence in _SENTENCE.split(" ".join(question.split())):
        parts = [p.strip() for p in re.split(r":\s+", sentence) if p.strip()]
        keep = [p for p in parts if "?" in p or not _INSTRUCTION.match(p)]
        kept.extend(keep)
    return " ".join(kept) or " ".join(question.split())


_LEGAL = re.compile(r"\b(?:inc|corp|corporation|co|company|plc|ltd|limited|group|holdings|the)\b\.?", re.I)


def _norm(name: str) -> str:
    name = _LEGAL.sub(" ", name)
    return " ".join(re.sub(r"[^a-z0-9&]+", " ", name.lower()).split())


def _is_ticker(name: str) -> bool:
    return name.isupper() and len(name) <= 5 and " " not in name


def named_companies(question: str, known: Mapping[str, Iterable[str]]) -> tuple[str, ...]:
    """Keys of `known` (key -> names and tickers) whose name appears in the question as whole words.

    Names compare without case or legal suffix ("Best Buy Co., Inc." is "best buy"); a ticker-like
    name (upper case, up to 5 letters) only as written, so ticker ON is not the word "on".
    """
    q = f" {_norm(question)} "
    found = []
    for key, names in known.items():
        for name in names:
            if _is_ticker(name) and not name.isdigit():
                hit = re.search(rf"(?<![\w&]){re.escape(name)}(?![\w&])", question) is not None
            else:
                n = _norm(name)
                hit = bool(n) and len(n) >= 2 and f" {n} " in q
            if hit:
                found.append(key)
                break
    return tuple(found)


def understand(question: str, known: Mapping[str, Iterable[str]] | None = None) -> QueryIntent:
    """Parse one question; `known` maps a routing key (document, ticker) to the names it goes by."""
    text = strip_instructions(question)
    quarters = []
    for m in _QUARTER.finditer(question):
        q, y = (m.group(1), m.group(2)) if m.group(1) else (m.group(4), m.group(3))
        quarters.append(f"{_year(y)}Q{q}")
    years = [_year(m.group(1)) for m in _FY.finditer(question)]
    years += [int(m.group(1)) for m in _YEAR.finditer(question)]
    years += [int(q[:4]) for q in quarters]
    named = [s for s in STATEMENTS if _NAMED[s].search(question)]
    implied = [s for s in STATEMENTS if s not in named and _IMPLIED[s].search(text)]
    companies = named_companies(question, known or {})
    return QueryIntent(
        text=text,
        keywords=keywords(text, [n for c in companies for n in (known or {}).get(c, ())]),
        companies=companies,
        years=tuple(dict.fromkeys(years)),
        quarters=tuple(dict.fromkeys(quarters)),
        statements=tuple(named or implied),
    )


def keywords(text: str, names: Iterable[str] = ()) -> str:
    """The lexical query: fiscal periods and company names removed (they are filters and boosts,
    and printed on nearly every page of the company's filing, so as terms they only add noise),
    metric definitions added."""
    out = _QUARTER.sub(" ", text)
    out = _FY.sub(" ", out)
    out = _YEAR.sub(" ", out)
    forms = {f for n in names for f in (n.strip(), _LEGAL.sub(" ", n).strip(" ,."))}
    for name in sorted(forms, key=len, reverse=True):  # "Apple Inc." before "Apple"
        if len(name) >= 2:
            words = r"\s+".join(re.escape(w) for w in name.split())
            out = re.sub(rf"(?<![\w&]){words}(?:'s|\u2019s)?(?![\w&])", " ", out, flags=re.I)
    extra = [words for pattern, words in EXPANSIONS if pattern.search(text)]
    return " ".join(" ".join([out, *extra]).split())


def statements_on(text: str) -> frozenset[str]:
    """The primary statements a page or passage prints a title of."""
    return frozenset(s for s, pattern in STATEMENT_TITLES.items() if pattern.search(text))
