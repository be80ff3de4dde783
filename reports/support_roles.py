"""The roles rule of reports/support.py: a claim that keeps the passage's words but swaps who did what.

The small model rearranges a passage's own words so that the effect or the cause changes: from
"The year over year decrease in Graphics segment operating income was driven by an increase of 44%
in segment operating expenses, partially offset by growth in revenue" it wrote "NVIDIA CORP's
revenue was driven by a 44% increase in segment operating expenses, partially offset by growth in
revenue". Every word and figure is in the passage and the window cosine is 0.72, so the lexical and
embedding signals pass it. This rule reads a claim with a causal or offsetting connective as
EFFECT (before it) and CAUSE (after it) and asks for one passage sentence saying the same with a
connective of the same family (see role_mismatches); reports.support multiplies the score of a claim
that fails by MISMATCH_FACTOR, as for the polarity rule.
"""

from __future__ import annotations

import re
from functools import lru_cache

from reports.support_words import _CITATION, _DOWN, _UP, _normalise, _stem, content_words

# Roles: "X fell due to Y" built from the passage's words can still swap who did what ("revenue was
# driven by a 44% increase in operating expenses" where operating INCOME was). Two families of
# connective; "compared to" is not one: it links periods, which the number rule and reports/numbers.py
# check, not a cause to an effect. "primarily from" is one: in the filings it names what an amount
# comes from ("our sources to fund our cash requirements are predominantly from our deliveries").
# Consecutive connectives of one family ("due to A ... due to B") make one cause.
_CAUSE = (
    r"driven (?:\w+ ){0,2}by|due (?:\w+ ){0,2}to|because of|(?:as )?a result of|the result of|"
    r"attribut(?:able|ed) to|result(?:ing|ed|s)? from|"
    r"(?:primarily|mainly|largely|mostly|predominantly|principally) from"
)
_CONNECTIVE = re.compile(rf"\b(?:(?P<offset>offset (?:in part )?by)|(?P<cause>{_CAUSE}))\b")
# Words that say how much, when or how sure, not what: direction (the polarity rule's business),
# periods and hedges, scale words (the number rule's), corporate suffixes, the connectives' own
# words and the verbs a model puts between a company and its effect ("Apple has experienced a
# decline in"). Stemmed on first use.
_ROLE_GENERIC_WORDS = (
    "year years quarter quarters month months week period periods fiscal prior same compared "
    "ended ending first second third fourth three six nine twelve half ytd january february march "
    "april june july august september october november december primarily mainly largely mostly "
    "partially partly part entirely almost generally substantially significantly principally "
    "predominantly respectively overall total number amount level experienced saw seen reported "
    "recorded posted thousand million billion trillion percent inc corp corporation co ltd plc llc "
    "change changes changed due driven offset result resulting attributable"
)
# The company by name ("NVIDIA CORP's", "Apple Inc.", "Meta Platforms, Inc.", "Tesla's"): the passage
# says "we" or "the Company", so the name plays no role in the claim. (A capitalised possessive is
# taken for a name: "Mac's net sales" would lose "Mac".)
_COMPANY_NAME = re.compile(
    r"\b((?:[A-Z][\w&.-]*,?\s+){1,3}?)(?i:inc|corp|corporation|co|ltd|plc|llc)\b"
    r"|\b([A-Z][\w&.-]*)['\u2019]s\b"
)
# Of a part of the claim, the share (at least one word) that may be words the passage never uses:
# a paraphrase's own ("expects" for "anticipate"), which the lexical signal already charges for.
# Half: "Meta expects future advertising revenue to be driven by" keeps 3 of its 5 effect words.
# Words the passage does use elsewhere get no tolerance: moving them is the error this rule is for.
ROLE_ABSENT_SHARE = 0.5
# A passage effect of fewer words is an anaphor ("This increase was partially offset by ..."):
# the sentence before says what increased.
ANAPHOR_MAX_TERMS = 1
# Sentences (also before a lower-case product name: "desktops. iPad net sales"), table cells apart.
_PIECE = re.compile(r"(?<=[a-z0-9)%\u00ae][.!?])\s+(?=[A-Za-z])|\s\|\s")
_CLAIM_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")  # an answer of several sentences, each alone


@lru_cache(maxsize=1)
def _role_generic() -> frozenset[str]:
    return frozenset(_stem(w) for w in _ROLE_GENERIC_WORDS.split()) | _UP | _DOWN


def _role_terms(text: str, drop: frozenset[str] = frozenset()) -> frozenset[str]:
    return frozenset(content_words(text)) - _role_generic() - drop


def _relations(text: str, drop: frozenset[str] = frozenset()) -> list[tuple[str, frozenset, frozenset]]:
    """(family, effect terms, cause terms) per run of same-family connectives; effect: the text before
    the first connective ("Due to A, X rose": the text after the comma)."""
    t = _normalise(_CITATION.sub(" ", text))
    found = list(_CONNECTIVE.finditer(t))
    if not found:
        return []
    head, first_cause_end = t[: found[0].start()], None
    if not _role_terms(head, drop):
        segment_end = found[1].start() if len(found) > 1 else len(t)
        comma = t.find(",", found[0].end(), segment_end)
        if comma > 0:
            head, first_cause_end = t[comma + 1 : segment_end], comma
    effect, out = _role_terms(head, drop), []
    for i, m in enumerate(found):
        if i and m.lastgroup == found[i - 1].lastgroup:
            continue
        j = next((k for k in range(i + 1, len(found)) if found[k].lastgroup != m.lastgroup), len(found))
        end = found[j].start() if j < len(found) else len(t)
        if i == 0 and first_cause_end is not None:
            end = min(end, first_cause_end)
        out.append((m.lastgroup or "", effect, _role_terms(t[m.end() : end], drop)))
    return out


def _role_fits(part: frozenset[str], source_part: frozenset[str], source_terms: frozenset[str]) -> bool:
    """A part of the claim is in its place when some of it is there and none of the rest is a word the
    passage uses elsewhere (moved from another role), and at most ROLE_ABSENT_SHARE of it is new."""
    if not part:
        return True
    missing = part - source_part
    if missing == part or missing & source_terms:
        return False
    return len(missing) <= max(1, int(ROLE_ABSENT_SHARE * len(part)))


def role_mismatches(sentence: str, source: str) -> tuple[str, ...]:
    """("roles",) when a claim with a causal or offsetting connective is not the passage's own.

    The claim's effect and cause (see _relations) must both fit (_role_fits) the effect and the
    cause of one passage sentence with a connective of the same family; a passage sentence whose
    effect is an anaphor ("This increase was partially offset by ...") takes the sentence before
    as its effect too. A circular claim, whose cause adds nothing to its effect ("the increase in
    ad impressions was offset by a higher number of ad impressions"), fails unless the passage
    says it so ("Wearables net sales decreased due to lower net sales of Wearables"). No
    connective: ().
    """
    from rag.chunking import split_units

    names = frozenset(
        w for m in _COMPANY_NAME.finditer(sentence) for w in content_words(m.group(1) or m.group(2))
    )
    claims = [rel for part in _CLAIM_SENTENCE.split(sentence) for rel in _relations(part, names)]
    if not claims:
        return ()
    pieces = [p for u in split_units(source) or [source] for p in _PIECE.split(u) if p.strip()]
    source_terms = _role_terms(source)
    known: list[tuple[str, frozenset, frozenset]] = []
    for i, piece in enumerate(pieces):
        for family, effect, cause in _relations(piece):
            if len(effect) <= ANAPHOR_MAX_TERMS and i:
                effect = effect | _role_terms(pieces[i - 1])
            known.append((family, effect, cause))
    for family, effect, cause in claims:
        circular = bool(cause) and cause <= effect
        if not any(
            f == family
            and _role_fits(effect, e, source_terms)
            and _role_fits(cause, c, source_terms)
            and (not circular or c <= e)
            for f, e, c in known
        ):
            return ("roles",)
    return ()
