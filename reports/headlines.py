"""A news article's title, link and text -> headline, outlet, category and demotion reason.

The rule tables reports/stories.py clusters and ranks with: outlet suffixes stripped from titles
(" — Barrons.com"), the distributing wire or provider, the ordered category regexes (first match
wins: "Tesla CFO Sells 3,000 Shares" is an insider trade, "market", before "CFO" makes it
"management"), the demotion regexes ("solicitation", "listicle", "roundup", "price-move",
"correction"), and the content words and key figures two headlines are compared on.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit


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
NEWSROOMS = ("Reuters", "Dow Jones Newswires", "The Wall Street Journal", "Barron's", "MarketWatch",
              "MT Newswires", "Bloomberg")  # fmt: skip
PRESS_WIRES = ("ACCESS Newswire", "GlobeNewswire", "PR Newswire", "Business Wire", "Zawya")
# another company's own release headline: "Arbe Announces Q1 2025 Financial Results"
ISSUER = re.compile(r"^[A-Z][\w.&' -]{1,60}? (?:announces|reports|launches|declares|unveils|to present)\b")
PRICE_MOVE = _rx(
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
LABEL = re.compile(r"^(?:(?:update|market chatter|street color|exclusive)\s*:\s*)+", re.I)
# Figures that identify a story: amounts ($4,211,791), percentages, numbers of 3+ digits; small
# counts and spelled numbers ("5 years" / "five years") are how outlets paraphrase, not facts.
NUMBER = re.compile(r"(?<=\$)\d+(?:\.\d+)?|\d+(?:\.\d+)?(?=%)|\d{3,}(?:\.\d+)?")
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
    bare = LABEL.sub("", headline)
    return next((cat for cat, rx in _RULES if rx.search(bare)), "other")


def spam_reason(headline: str) -> str:
    """The demotion reason a headline alone earns ("" for none)."""
    bare = LABEL.sub("", headline)
    return next((why for why, rx in _DEMOTE if rx.search(bare)), "")


def headline_tokens(headline: str) -> frozenset[str]:
    """Content words, plural -s dropped: "Trump Threatens Apple's iPhones" -> trump threaten apple iphone."""
    text = re.sub(r"['’]s\b|(?<=\d),(?=\d)", "", LABEL.sub("", headline).lower().replace("u.s.", "us"))
    words = [w for w in re.findall(r"[a-z0-9]+(?:\.\d+)?", text) if w not in _STOP]
    words = [w[:-3] + "y" if len(w) > 4 and w.endswith("ies") else w for w in words]
    return frozenset(w[:-1] if len(w) > 3 and w[-1] == "s" else w for w in words)
