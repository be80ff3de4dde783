"""A ticker's news passages -> ranked, de-duplicated "stories" for the Recent developments section.

Why: retrieval ranks news by similarity to a query, not by importance, and the shipped feeds are
full of items that look relevant and say nothing (in the AAPL demo 4 of the 5 news sources shown
were law-firm "investigation" solicitations). Every article (a doc_id; chunking may split it into
several passages, counted once) is
1. demoted when it is noise, the reason kept for the audit: "solicitation" (law firms), "listicle"
   (buy/sell/hold columns, stock lists), "roundup" (market wraps, movers lists), "press-release"
   (other companies' releases), "off-topic" (never names the company), "price-move", "correction";
2. classified by ordered word-boundary regexes on its headline, first match wins ("Tesla CFO Sells
   3,000 Shares" is an insider trade, "market", before "CFO" makes it "management");
3. merged single-link with the other reports of its story: within WINDOW_HOURS, same demotion
   reason, no disjoint key figures ("$4,000,320" / "$4,211,791" are two filings), and headline
   Jaccard >= TITLE_JACCARD or, given `encode` (MiniLM), a row of COSINE_RULES. Measured on all
   same-window pairs of the 779 shipped headlines: Jaccard >= 0.5 joins only reports of one story;
   headline cosine mixes stories from 0.75 ("Nvidia Stock Rises. Why Next Week..." / "...Why This
   Analyst's": 0.77) while one story's reports go down to 0.55 ("Meta Shares Dip as German Court
   Backs AI Data Use" / "Meta Wins Legal Battle in Germany to Train AI with User Posts": 0.64,
   excerpts 0.84), so below 0.80 a second signal must agree; every pair those rows add on the
   shipped data was read and is one story.
Materiality = category weight x recency (half-life HALF_LIFE_DAYS, from the end of as_of to the
latest report) x coverage (1 + log2 outlets) x centrality (1 when a headline names the company or
ticker, BODY_ONLY when only the text does). Order: materiality, newer date, headline: the same
input always gives the same list.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

import numpy as np
from pydantic import BaseModel, ConfigDict

from rag.catalog import Company
from rag.sources.news_tickers import company_name_patterns
from rag.types import Passage

WEIGHTS = {"earnings": 1.0, "guidance": 1.0, "m&a": 0.95, "regulation": 0.85, "legal": 0.8, "products": 0.7,
           "management": 0.75, "capital": 0.75, "market": 0.35, "other": 0.5}  # fmt: skip
CATEGORIES = tuple(WEIGHTS)
HALF_LIFE_DAYS = 14.0
STALE_DAYS = 30  # newest article older than this before as_of: the feed is stale
WINDOW_HOURS = 48.0
TITLE_JACCARD = 0.5  # alone: same story
# (headline cosine, title+excerpt cosine, Jaccard) minimums; any row met: same story
COSINE_RULES = ((0.80, 0.0, 0.0), (0.70, 0.0, 0.25), (0.65, 0.75, 0.0), (0.55, 0.80, 0.0))
RELATED = (0.70, 0.80, 0.3)  # any one met: another angle on a shown story, kept out of `shown`
BODY_ONLY = 0.35  # centrality when only the article text, not a headline, names the company

Encode = Callable[[list[str]], np.ndarray]  # texts -> (n, dim) unit vectors


class Story(BaseModel):
    """One development as the section shows it; `passage_ids[0]` is the representative's passage."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    headline: str
    date: str  # ISO date of the representative report ("" if undated)
    outlet: str
    url: str
    passage_ids: tuple[str, ...]
    articles: int  # distinct articles (doc_ids) merged
    outlets: tuple[str, ...]  # distinct outlets that carried it, representative's first
    category: str
    score: float  # materiality
    demoted: str = ""  # why it is kept out of the shown list; "" for shown/ranked stories


class StoryList(BaseModel):
    """`shown`: the top `limit`; `more`: the rest of the ranked stories; `demoted`: the noise."""

    model_config = ConfigDict(extra="forbid")

    shown: list[Story]
    more: list[Story]
    demoted: list[Story]

    def demoted_counts(self) -> dict[str, int]:
        """Articles demoted per reason, for the audit trail."""
        counts: Counter[str] = Counter()
        for s in self.demoted:
            counts[s.demoted] += s.articles
        return dict(sorted(counts.items()))


def _rx(*alternatives: str, flags: int = re.I) -> re.Pattern[str]:
    return re.compile("|".join(alternatives), flags)


def _w(words: str) -> str:
    r"""Whole-word alternatives: _w("CEO|chief \w+ officer") -> \b(?:CEO|chief \w+ officer)\b."""
    return rf"\b(?:{words})\b"


_FIRMS = _w(
    r"Rosen Law|Pomerantz|Bragar Eagel|Levi (?:&|and) Korsinsky|Faruqi|Kessler Topaz|Bronstein,? Gewirtz"
    r"|Gross Law|Schall Law|Glancy Prongay|Robbins Geller|Bernstein Liebhard|Kirby McInerney|Johnson Fistel"
    r"|Block & Leviton|Howard G\. Smith|Portnoy Law|Holzer & Holzer|Frank R\. Cruz|Hagens Berman|Labaton"
    r"|Scott\+Scott|Wolf Haldenstein|Rigrodsky|Brodsky & Smith|Monteverde|Halper Sadeh|Ademi|Kahn Swick"
    r"|Lowey Dannenberg|Saxena White|Grabar Law|Berger Montague|Edelson Lechtzin|Zhang Investor Law"
)
# (reason, headline pattern), first match wins; tested on the label-stripped headline.
_DEMOTE: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("solicitation", re.compile(rf"{_FIRMS}|^[A-Z][A-Z .&'-]{{1,40}} ALERT\b")),  # "APPLE ALERT: ..."
    ("solicitation", _rx(
        _w(r"(?:shareholder|stockholder|investor)s? (?:alert|notice|reminder)|lost money (?:on|in)"
           r"|securities (?:fraud|investigation|class action|litigation)|protect your rights|lead plaintiff"
           r"|investigat\w* (?:claims )?on behalf of|encourages (?:stock|share)?(?:holders|investors)"
           r"|contact the firm|law firm|secure counsel"),
        r"\bclass action\b.*\b(?:deadline|investors|contact|filed)\b", r"\blawsuit filed\b.*\bdeadline\b",
        r"\b(?:deadline|investors who)\b.*\bclass action\b", r"\battorneys\b.*\binvestigat",
        r"\binvestigation\b.*\b(?:LLC|LLP|P\.C\.)")),
    ("listicle", _rx(
        r"\b\d+ (?:[\w-]+ ){0,3}(?:stocks|picks|giants|names|reasons|things|ways|factors)\b",
        r"\b(?:top|best)\b[\w\s&'-]{0,40}\b(?:stocks?|picks)\b",
        r"\b(?:should you|time to)\b.{0,20}\b(?:buy|hold|sell|stay)\b",
        r"\bwhich\b.{0,40}\bstock\b", r"^will [\w.' ]{1,30} stock\b", r"\bfavou?rite [\w ]{0,20}stocks\b",
        _w(r"ETFs?|stocks? to (?:buy|watch|bet|add|own|monitor)|buy,? (?:sell|hold)|(?:buy|hold|sell) or "
           r"(?:buy|hold|sell|wait)|buy the dip|too late to buy|better (?:buy|bet|play)|stronger play"
           r"|smart (?:buy|investment)|worth it|(?:bull|bear) of the day|zacks (?:analyst blog|investment"
           r" ideas|earnings|value)|feature highlights|top (?:stock|research) reports|buy these \d+"
           r"|how should you play|what's next for investors|book profits|screening for|turnaround in play"
           r"|key tips"))),
    ("roundup", _rx(
        r"^(?:sector update|top midday|social buzz|the score|(?:stock market|company) news for|pre-markets?"
        r"|(?:us |u\.s\. )?equit(?:y|ies)|exchange-traded funds|wall street|review|up & down wall street"
        r"|tech trader|income investing|big money poll|(?:the )?dow|s&p ?500|nasdaq|rate-sensitive"
        r"|treasury yields|earnings remain|u\.s\., chinese markets"
        r"|(?:us |u\.s\. |european |asian |global )?(?:stocks?|markets?|stock futures)"
        r"|(?:tech|megacap|big tech|technology) (?:stocks|heavyweights|boosts))\b", r"^funds:",
        _w(r"stocks? (?:that )?moved the most|stocks that (?:moved|defined)|equities|things to know today"
           r"|earnings (?:picture|season|trends|estimates)"))),
    ("correction", _rx(r"^correction to\b")),
)
_NEWSROOMS = ("Reuters", "Dow Jones Newswires", "The Wall Street Journal", "Barron's", "MarketWatch",
              "MT Newswires", "Bloomberg")  # fmt: skip
_PRESS_WIRES = ("ACCESS Newswire", "GlobeNewswire", "PR Newswire", "Business Wire", "Zawya")
# another company's own release headline: "Arbe Announces Q1 2025 Financial Results"
_ISSUER = re.compile(r"^[A-Z][\w.&' -]{1,60}? (?:announces|reports|launches|declares|unveils|to present)\b")
_PRICE_MOVE = _rx(
    r"\b(?:stock|shares?)\b[^.;:]{0,25}?\b(?:ris(?:e|es|ing)|rose|fall(?:s|ing)?|fell|drops?|dropp(?:ed|ing)"
    r"|slips?|slipp(?:ed|ing)|gains?|jumps?|surg(?:e|es|ing)|soars?|plung(?:e|es)|tumbles?|climbs?|sinks?"
    r"|slides?|rall(?:y|ies)|rebound\w*|extends?)\b",
    r"\b(?:gains|rises|falls|drops|jumps|surges|soars|plunges|tumbles|slides|climbs|sinks) \d+(?:\.\d+)?%",
    _w(r"winning streak|all-time high|52-week|worst (?:day|week|session)"))
_BROKERS = (r"Wedbush|Piper Sandler|Oppenheimer|Morgan Stanley|BofA|Citi|Evercore|Mizuho|Loop Capital|Cantor"
            r"|Wolfe|Goldman Sachs|JPMorgan|Jefferies|Bernstein|UBS|Barclays|Melius|Arete|Daiwa|New Street"
            r"|Wells Fargo|Needham|KeyBanc|Raymond James|Baird|Truist|Deutsche Bank|HSBC")  # fmt: skip
# (category, headline pattern), first match wins: analyst notes, previews and insider or fund
# trades are "market" before their words ("Q1", "CFO", "robotaxi") pick a content category.
_RULES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("market", _rx(_w(rf"price target|PT|(?:upgrade|downgrade)[sd]?|maintained at|rating|outperform"
                      rf"|overweight|underweight|coverage|analysts?|{_BROKERS}|preview|what to expect"
                      r"|ahead of (?:key |big )?(?:Q[1-4]|earnings)|earnings (?:approach|coming|due)"
                      r"|insiders?|sells? (?:[\d,]+ )?shares|sold shares|stake|13F|hedge fund|bets? on|bet"
                      r"|offloads|dumps|loads up|options"))),
    ("guidance", _rx(_w(r"guidance|outlook|forecasts?|demand|cut sales|to (?:more than )?double"),
                     r"\bsees\b.{0,30}\b(?:revenue|sales|growth)\b")),
    ("earnings", _rx(_w(r"earnings|results|quarter(?:ly)?|Q[1-4]|EPS|profits?|revenues?|margins?|sales"
                        r"|shipments"))),
    ("m&a", _rx(_w(r"acquir\w*|acquisition|merger|merge[sd]?|takeover|buyout|bidders?|bid for|divest\w*"
                   r"|spin-?off|spins? off|deal to buy"), r"\bbuying\b.{0,30}\bstart-?up\b")),
    ("capital", _rx(_w(r"buybacks?|buy back|repurchase\w*|dividends?|payouts?|debt|(?:bond|notes?) "
                       r"(?:offering|sale|issue)|stock split|share sale|IPO|goes public|delist\w*|funding"
                       r"|financing|credit facility|convertible"))),
    ("legal", _rx(_w(r"lawsuits?|sue[sd]?|suing|court|judge|jury|verdict|settle\w*|ruling|litigation"
                     r"|injunction|appeal\w*|legal|patents?|class action|case|dismissal|derivative|NLRB"
                     r"|union|cease and desist|fraud|allegations?|bylaws"))),
    ("regulation", _rx(_w(r"tariffs?|export (?:controls?|curbs?|restrictions?|ban|rules?)|curbs?|antitrust"
                          r"|monopoly|FTC|DOJ|regulat\w*|legislation|bill|senate|congress\w*|lawmakers"
                          r"|sanctions?|bans?|probe|scrutin\w*|government|white house|pentagon|polic(?:y|ies)"
                          r"|subsid\w*|credits|mandate|de minimis|age verification|diffusion rule"
                          r"|European Commission|EU"), r"\bSEC\b(?! filing)")),
    ("management", _rx(_w(r"CEO|CFO|COO|CTO|chief \w+ officer|chair(?:man|woman)?|executives?|board"
                          r"|directors?|appoint\w*|hires?|hired|steps? down|resign\w*|success(?:ion|or)"
                          r"|pay package|compensation|layoffs?|jobs|headcount|workforce|to head|leadership"
                          r"|founder"))),
    ("products", _rx(_w(r"launch\w*|unveil\w*|rollout|roll(?:s|ing)? out|releases?|debut\w*|introduc\w*"
                        r"|products?|AI models?|chips?(?! maker)|GPUs?|devices?|glasses|smartwatch|iPhones?"
                        r"|robo-?taxis?|self-driving|autonom\w*|Model [3SXY]|data cent(?:er|re)s?|factory"
                        r"|plant|suppl(?:ier|y chain)|partner\w*|collaborat\w*|team(?:s|ed)? up|deals?"
                        r"|agreement|contract|PPAs?|test(?:s|ing)?|expan(?:ds?|sion)|invest(?:s|ing|ment)?"
                        r"|prices?|discounts?|platform|services?|developers|battery|delay\w*"))),
    ("market", _rx(_w(r"stocks?|shares?|valuation|market (?:cap|value|share)|rall(?:y|ies)|investors?"))),
)
_OUTLET_SUFFIX = re.compile(
    r"\s+(?:[—–]\s+(?P<dash>Barrons\.com|Barron's|WSJ|MarketWatch|Market Talk|Journal Report"
    r"|Heard on the Street|Update)|-\s+(?P<hyphen>MarketWatch|Barrons\.com|Heard on the Street))\s*$",
    re.I,
)
_SUFFIX_OUTLETS = {"barrons.com": "Barron's", "barron's": "Barron's", "wsj": "The Wall Street Journal",
                   "journal report": "The Wall Street Journal", "marketwatch": "MarketWatch"}  # fmt: skip
_PROVIDERS = {"djn": "Dow Jones Newswires", "reuters.com": "Reuters", "mtnewswires.com": "MT Newswires",
              "zacks": "Zacks", "gnw": "GlobeNewswire", "bz": "Benzinga", "benzinga": "Benzinga",
              "gurufocus": "GuruFocus", "invezz": "Invezz", "marketbeat": "MarketBeat",
              "moneycontrol": "Moneycontrol", "tradingview": "TradingView", "prn": "PR Newswire",
              "bw": "Business Wire"}  # fmt: skip
_TEXT_WIRES = (("(GLOBE NEWSWIRE)", "GlobeNewswire"), ("ACCESS Newswire", "ACCESS Newswire"),
               ("/PRNewswire/", "PR Newswire"), ("(BUSINESS WIRE)", "Business Wire"),
               ("PRESSR:", "Zawya"))  # fmt: skip
_LABEL = re.compile(r"^(?:(?:update|market chatter|street color|exclusive)\s*:\s*)+", re.I)
# Figures that identify a story: amounts ($4,211,791), percentages, numbers of 3+ digits; small
# counts and spelled numbers ("5 years" / "five years") are how outlets paraphrase, not facts.
_NUMBER = re.compile(r"(?<=\$)\d+(?:\.\d+)?|\d+(?:\.\d+)?(?=%)|\d{3,}(?:\.\d+)?")
_STOP = frozenset(
    "a an the of to in on for and or as at by with from is are be its it this that after amid over "
    "says say said report reports reportedly could may will can new".split()
)


def clean_headline(title: str, provider: str = "") -> tuple[str, str]:
    """(headline without outlet suffixes, outlet named by a suffix or ""). Dow Jones titles end in
    " — Barrons.com"; a Reuters brief's " - WSJ" names its source, not its outlet, and is kept."""
    headline, outlet = " ".join(title.split()), ""
    while m := _OUTLET_SUFFIX.search(headline):
        if m.group("dash") and provider == "Reuters":
            break
        outlet = outlet or _SUFFIX_OUTLETS.get((m.group("dash") or m.group("hyphen")).lower(), "")
        headline = headline[: m.start()]
    return headline, outlet


def provider(url: str, text: str = "") -> str:
    """Who distributed an article: a press wire named in its text, the tradingview provider code
    ("/news/DJN_DN2025...", "/news/reuters.com,2025:..."), or the link's domain."""
    for marker, name in _TEXT_WIRES:
        if marker in text[:600]:
            return name
    parts = urlsplit(url)
    host = parts.netloc.lower().removeprefix("www.")
    if host.endswith("tradingview.com") and parts.path.startswith("/news/"):
        code = re.split(r"[:,]", parts.path[len("/news/") :], maxsplit=1)[0]
        if code.startswith("DJN_SN"):
            return "MarketWatch"
        code = code.split("_")[0]
        return _PROVIDERS.get(code.lower(), code)
    return host


def classify(headline: str) -> str:
    """The category of a headline by the ordered rule table ("other" when nothing matches)."""
    bare = _LABEL.sub("", headline)
    return next((cat for cat, rx in _RULES if rx.search(bare)), "other")


def spam_reason(headline: str) -> str:
    """The demotion reason a headline alone earns ("" for none)."""
    bare = _LABEL.sub("", headline)
    return next((why for why, rx in _DEMOTE if rx.search(bare)), "")


def _tokens(headline: str) -> frozenset[str]:
    """Content words, plural -s dropped: "Trump Threatens Apple's iPhones" -> trump threaten apple iphone."""
    text = re.sub(r"['’]s\b|(?<=\d),(?=\d)", "", _LABEL.sub("", headline).lower().replace("u.s.", "us"))
    words = [w for w in re.findall(r"[a-z0-9]+(?:\.\d+)?", text) if w not in _STOP]
    words = [w[:-3] + "y" if len(w) > 4 and w.endswith("ies") else w for w in words]
    return frozenset(w[:-1] if len(w) > 3 and w[-1] == "s" else w for w in words)


@dataclass
class _Article:
    passages: list[Passage]
    headline: str
    outlet: str
    when: datetime | None
    tokens: frozenset[str]
    numbers: frozenset[str]
    category: str
    central: float  # 1.0 a headline names the company, BODY_ONLY the text only, 0 neither
    reason: str


def _when(date: str) -> datetime | None:
    try:
        return datetime.fromisoformat(date.replace("Z", "+00:00")).replace(tzinfo=None) if date else None
    except ValueError:
        return None


def _article(passages: list[Passage], names: re.Pattern[str], ticker: re.Pattern[str]) -> _Article:
    first = passages[0]
    prov = provider(first.url, first.text)
    headline, suffix_outlet = clean_headline(first.title or first.text.split(". ")[0], prov)
    outlet = suffix_outlet or prov  # Barron's / WSJ / MarketWatch over the Dow Jones feed they came by
    bare = _LABEL.sub("", headline)

    def named(text: str) -> bool:
        return bool(ticker.search(text)) or any(m.group(0)[0].isupper() for m in names.finditer(text))

    central = 1.0 if named(headline) else BODY_ONLY if named(" ".join(p.text for p in passages)) else 0.0
    category, reason = classify(headline), spam_reason(headline)
    if not reason and central < 1 and (outlet in _PRESS_WIRES or _ISSUER.search(bare)):
        reason = "press-release"
    elif not reason and central == 0:
        reason = "off-topic"
    elif not reason and category in ("market", "other") and _PRICE_MOVE.search(bare):
        reason = "price-move"
    numbers = frozenset(_NUMBER.findall(re.sub(r"(?<=\d),(?=\d)", "", headline)))
    return _Article(passages, headline, outlet, _when(first.date), _tokens(headline), numbers, category,
                    central, reason)  # fmt: skip


class _Pairs:
    """Same-story and related tests between articles (sorted by date, then headline)."""

    def __init__(self, arts: list[_Article], encode: Encode | None):
        self.arts = arts
        self.heads = self.texts = None
        if encode is not None and arts:
            self.heads = np.asarray(encode([_LABEL.sub("", a.headline) for a in arts]))
            self.texts = np.asarray(encode([a.passages[0].text for a in arts]))

    def _signals(self, i: int, j: int) -> tuple[float, float, float] | None:
        """(headline cosine, title+excerpt cosine, Jaccard); None when the two cannot be one story."""
        a, b = self.arts[i], self.arts[j]
        if a.reason != b.reason or (a.numbers and b.numbers and not a.numbers & b.numbers):
            return None
        if a.when and b.when and abs((a.when - b.when).total_seconds()) > WINDOW_HOURS * 3600:
            return None
        union = len(a.tokens | b.tokens)
        jac = len(a.tokens & b.tokens) / union if union else 0.0
        if self.heads is None or self.texts is None:
            return 0.0, 0.0, jac  # without an encoder only the Jaccard rules can hold
        return float(self.heads[i] @ self.heads[j]), float(self.texts[i] @ self.texts[j]), jac

    def same(self, i: int, j: int) -> bool:
        if (sig := self._signals(i, j)) is None:
            return False
        head, text, jac = sig
        return jac >= TITLE_JACCARD or any(head >= h and text >= t and jac >= w for h, t, w in COSINE_RULES)

    def related(self, i: int, j: int) -> bool:  # any RELATED minimum met
        sig = self._signals(i, j)
        return sig is not None and any(v >= m for v, m in zip(sig, RELATED, strict=True))

    def clusters(self) -> list[list[int]]:
        """Union-find over same-story pairs."""
        parent = list(range(len(self.arts)))

        def root(i: int) -> int:
            while parent[i] != i:
                parent[i] = parent[parent[i]]
                i = parent[i]
            return i

        for i, a in enumerate(self.arts):
            for j in range(i + 1, len(self.arts)):
                b = self.arts[j]
                if a.when and b.when and (b.when - a.when).total_seconds() > WINDOW_HOURS * 3600:
                    break  # sorted by date: every later article is outside the window too
                if self.same(i, j):
                    parent[root(j)] = root(i)
        groups: dict[int, list[int]] = {}
        for i in range(len(self.arts)):
            groups.setdefault(root(i), []).append(i)
        return list(groups.values())


def _story(group: list[_Article], reference: datetime | None) -> Story:
    votes = Counter(a.category for a in group if a.category != "other")
    category = min(votes, key=lambda c: (-votes[c], -WEIGHTS[c], c)) if votes else "other"
    # the first report that names the company, is of the story's kind, from a news organisation
    rep = min(group, key=lambda a: (-a.central, a.category != category, a.outlet not in _NEWSROOMS,
                                    a.when or datetime.max, a.headline))  # fmt: skip
    outlets = tuple(dict.fromkeys([rep.outlet] + sorted(a.outlet for a in group)))
    dated = [a.when for a in group if a.when]
    age = (reference - max(dated)).total_seconds() / 86400 if reference and dated else HALF_LIFE_DAYS
    recency = 0.5 ** (max(0.0, age) / HALF_LIFE_DAYS)  # undated: half weight
    score = WEIGHTS[category] * recency * (1 + math.log2(len(outlets))) * max(a.central for a in group)
    rest = sorted((a for a in group if a is not rep), key=lambda a: (a.when or datetime.max, a.headline))
    return Story(
        headline=_LABEL.sub("", rep.headline),
        date=rep.passages[0].date[:10],
        outlet=rep.outlet,
        url=rep.passages[0].url,
        passage_ids=tuple(p.passage_id for a in [rep, *rest] for p in a.passages),
        articles=len(group),
        outlets=outlets,
        category=category,
        score=round(score, 6),
        demoted=rep.reason,
    )


def build_stories(
    passages: Sequence[Passage],
    company: str,
    ticker: str,
    as_of: str = "",
    limit: int = 5,
    encode: Encode | None = None,
    aliases: Sequence[str] = (),
) -> StoryList:
    """Rank a ticker's news passages into stories (module docstring).

    Passages dated after `as_of` are ignored (undated ones pass, as in retrieval); without
    `as_of` recency counts from the newest article. `aliases` are extra names that make an
    article about the company ("AWS", "Tim Cook"). `shown` holds distinct developments: a ranked
    story with an article within RELATED of a shown story's article is another angle on it
    ("Apple Can't Really Make iPhones in the U.S." next to the 25% iPhone tariff threat) and goes
    to `more`, so one big story cannot fill the section.
    """
    alts = company_name_patterns(Company(ticker, "", company)) if company else []
    alts += [re.escape(a) for a in aliases if a.strip()]
    never = re.compile(r"(?!x)x")
    names = re.compile(rf"(?<![\w-])(?:{'|'.join(alts)})(?![\w-])", re.I) if alts else never
    tick = re.compile(rf"(?<!\w)\$?{re.escape(ticker.upper())}(?!\w)") if ticker else never
    by_doc: dict[str, list[Passage]] = {}
    for p in passages:
        if not as_of or not p.date or p.date[:10] <= as_of[:10]:
            by_doc.setdefault(p.doc_id, []).append(p)
    arts = [_article(sorted(ps, key=lambda p: p.ordinal), names, tick) for ps in by_doc.values()]
    arts.sort(key=lambda a: (a.when or datetime.min, a.headline, a.passages[0].doc_id))
    end_of_day = _when(as_of[:10]) if as_of else None
    newest = max((a.when for a in arts if a.when), default=None)
    reference = end_of_day + timedelta(days=1) if end_of_day else newest
    if reference and newest and reference - newest > timedelta(days=STALE_DAYS):
        # A stale feed (newest article weeks before as_of): every story would decay to ~0 and
        # materiality could no longer rank them; recency then counts from the newest article,
        # and the report warns that its news is stale (reports/context.py).
        reference = newest + timedelta(days=1)
    pairs = _Pairs(arts, encode)
    ranked = sorted(
        ((_story([arts[i] for i in g], reference), g) for g in pairs.clusters()),
        key=lambda sg: (-sg[0].score, _newer_first(sg[0].date), sg[0].headline),
    )
    shown: list[tuple[Story, list[int]]] = []
    more: list[Story] = []
    for story, g in ranked:
        if story.demoted:
            continue
        if len(shown) < limit and not any(pairs.related(i, j) for _, h in shown for i in g for j in h):
            shown.append((story, g))
        else:
            more.append(story)
    return StoryList(shown=[s for s, _ in shown], more=more, demoted=[s for s, _ in ranked if s.demoted])


def _newer_first(date: str) -> tuple[int, ...]:
    return (0, *(-ord(c) for c in date)) if date else (1,)
