"""Decoding that cannot invent: a per-request constraint on the numbers and citation markers a row writes.

A 135M chat model copies "$391.0 billion" from its sources most of the time and invents "$412.7
billion" the rest; the report checker catches an invented figure only after the whole answer is
written, and then the sentence (or the answer) is lost. Here the request carries what its own
sources contain (`GenerationRequest.allowed_numbers`, `.allowed_citations`) and the decoder bans,
token by token, whatever would spell a number or a marker that is not there. The model still
chooses the words; it only loses the tokens that would make a figure up.

Rules, and why:
* A number is a maximal run of ASCII digits with internal `,`/`.` between digits. Every run counts,
  even inside a word ("FY2024", "Q3", "10-K"): the sources carry those labels, so their digits are
  allowed, and a rule that guessed which runs are "labels" would be a hole to invent through.
* A source number allows its usual spellings (`number_forms`): as written, with and without
  thousands separators, rounded (half-up and truncated) to 0-2 decimals, and rescaled by 1,000s
  down to 1, because a filing's "391,035" (millions) is written "391.0 billion" or "$391B" in prose.
  A scale word after it ("1.2 billion") also allows the value in units, thousands and millions.
  A bare year (1900-2099, no scale word) is not rescaled: "2024" must not make "2" writable.
* Digits right after `[` (or after `,`/`-` inside an open marker) are a citation number: they must
  be an allowed citation and be followed by `]`, `,` or `-`. Digits there are never checked as
  numbers, so "[3]" needs citation 3, not the number 3. `[` followed by anything else is text.
* A token may extend a run only to a prefix of an allowed spelling, and may end a run only when it
  is a complete one. Ending tokens are banned only while some legal continuation exists; if a row
  has no legal token (a tokenizer that cannot spell the rest), it runs unconstrained until the run
  ends, and the downstream checker has the last word. A row is never left with nothing to pick.
* None means unconstrained; () means no digits (or no markers) at all.

Cost: every vocab token whose text has no digit and no bracket and does not start with `,`, `.`
or `-` ("plain") behaves the same at a given state: it either ends the run in progress or not.
So a step only simulates the few digit/bracket/separator tokens (`TokenTable`, built once per
tokenizer) and the result is memoised per scan state, which outside numbers is always the same
one: a constrained step costs a dict lookup plus one masked index on the logits. Unconstrained
rows skip all of it. The state is advanced one token at a time over each token's own decoded
text (`tokenizer.decode([id])`, so byte-level "Ġ" spaces come out right), never by re-decoding.

Pure functions of the request and the row's tokens, so every tensor-parallel rank bans the same
tokens and picks the same one. Only the loop backend (models/decode.py) applies constraints; the
engine routes constrained requests there from the paged/static CUDA paths (models/engine.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

DIGITS = frozenset("0123456789")
_SEPS = frozenset(",.")
_RUN = re.compile(r"[0-9]+(?:[.,][0-9]+)*")
_SCALE = re.compile(r"\s*(thousand|million|billion|trillion|bn|mn|mm|tn|[kmbt])(?![a-z])", re.I)
_POWER = {"thousand": 3, "k": 3, "million": 6, "mn": 6, "mm": 6, "m": 6, "billion": 9, "bn": 9, "b": 9,
          "trillion": 12, "tn": 12, "t": 12}
_YEAR = re.compile(r"(?:19|20)[0-9]{2}")
_TEXT, _OPEN, _CITE = 0, 1, 2  # scan modes: prose; inside `[` expecting a number; in a citation number
State = tuple[int, str]  # (mode, the run in progress: digits and separators, possibly one trailing sep)
START: State = (_TEXT, "")


def digit_runs(text: str) -> list[str]:
    """Every maximal digit run in `text` ("$391,035 in FY2024." -> ["391,035", "2024"])."""
    return _RUN.findall(text)


def number_forms(text: str) -> set[str]:
    """The digit strings a model may write for the numbers in `text` (see the module docstring)."""
    forms: set[str] = set()
    for m in _RUN.finditer(text):
        run = m.group()
        forms.add(run)
        scale = _SCALE.match(text, m.end())
        steps = 1 if _YEAR.fullmatch(run) and not scale else 5
        for value in _values(run):
            bases = [value] + ([value.scaleb(_POWER[scale.group(1).lower()])] if scale else [])
            for base in bases:
                for k in range(steps):
                    x = base.scaleb(-3 * k)
                    if k and x < 1:
                        break
                    forms |= _renderings(x)
    return forms


def _values(run: str) -> list[Decimal]:
    head, dot, frac = run.partition(".")
    groups = head.split(",")
    grouped = len(groups) == 1 or (1 <= len(groups[0]) <= 3 and all(len(g) == 3 for g in groups[1:]))
    if not grouped or "." in frac or "," in frac:  # "1,2" (a list), "1.2.3" (a version): each part
        parts = re.split(r"[.,]", run)
        return [Decimal(p) for p in parts] if len(parts) > 1 else []
    return [Decimal(head.replace(",", "") + dot + frac)]


def _renderings(x: Decimal) -> set[str]:
    out: set[str] = set()
    try:
        exact = x.normalize()
        if -exact.as_tuple().exponent <= 3:  # type: ignore[operator]
            out |= _spell(exact)
        for places in (0, 1, 2):
            for rounding in (ROUND_HALF_UP, ROUND_DOWN):
                out |= _spell(x.quantize(Decimal(1).scaleb(-places), rounding=rounding))
    except InvalidOperation:  # more digits than Decimal's context holds: keep what was spelled
        pass
    return out


def _spell(d: Decimal) -> set[str]:
    s = format(d, "f")
    head, _, frac = s.partition(".")
    return {s, f"{int(head):,}" + ("." + frac if frac else "")}


def _prefixes(forms: Iterable[str]) -> frozenset[str]:
    return frozenset(f[:i] for f in forms for i in range(1, len(f) + 1))


@dataclass
class Mask:
    """What a constraint leaves a row: only `ids` (allow=True), or anything but `ids` (allow=False)."""

    allow: bool
    ids: list[int]
    _index: dict = field(default_factory=dict, repr=False)

    def index(self, device: Any, width: int) -> Any:
        """`ids` below `width` as a long tensor on `device` (cached: the same mask recurs every step)."""
        key = (str(device), width)
        if key not in self._index:
            import torch

            ids = [i for i in self.ids if i < width]
            self._index[key] = torch.tensor(ids, dtype=torch.long, device=device)
        return self._index[key]


def apply_mask(logits: Any, mask: Mask, before: Any = None) -> None:
    """Apply `mask` to one row's logits in place. `before` (the allowed ids' logits before the
    n-gram ban) is restored if the ban and the constraint together would leave nothing."""
    idx = mask.index(logits.device, logits.shape[-1])
    if not mask.allow:
        logits[idx] = -float("inf")
        return
    keep = logits[idx].clone()
    if before is not None and not bool(keep.isfinite().any()):
        keep = before
    logits.fill_(-float("inf"))
    logits[idx] = keep


def _touches(piece: str) -> bool:
    """Whether a token can do anything but end a run: has a digit or bracket, or starts with , . -"""
    return piece[:1] in (",", ".", "-") or any(c in DIGITS or c in "[]" for c in piece)


class _Node:
    __slots__ = ("children", "ids", "all")

    def __init__(self) -> None:
        self.children: dict[str, _Node] = {}
        self.ids: list[int] = []  # tokens spelled by the path to this node
        self.all: list[int] = []  # tokens in this subtree


class TokenTable:
    """A tokenizer's tokens as the constraint sees them: the few that touch numbers, in a trie.

    The trie lets one scan of a state reject "391" + " 2019", " 2020", " 20s"... at their shared
    " 2" instead of token by token (GPT-NeoX's vocab has thousands of multi-digit tokens).
    """

    def __init__(self, decode: Callable[[int], str], touching: dict[int, str]) -> None:
        self._decode = decode
        self._pieces = dict(touching)
        self.touching = dict(touching)
        self.root = _Node()
        for tid in sorted(touching):
            node = self.root
            for ch in touching[tid]:
                node = node.children.setdefault(ch, _Node())
                node.all.append(tid)
            node.ids.append(tid)

    @classmethod
    def from_pieces(cls, pieces: list[str]) -> TokenTable:
        """A table over an explicit vocabulary: token id i spells `pieces[i]`."""
        return cls(pieces.__getitem__, {i: p for i, p in enumerate(pieces) if _touches(p)})

    def piece(self, tid: int) -> str:
        if tid not in self._pieces:
            self._pieces[tid] = self._decode(tid)
        return self._pieces[tid]


_TABLES: dict[int, tuple[Any, TokenTable]] = {}  # id(tokenizer) -> (tokenizer kept alive, table)


def token_table(tokenizer: Any) -> TokenTable:
    """The `TokenTable` of a transformers tokenizer, built once per tokenizer object."""
    hit = _TABLES.get(id(tokenizer))
    if hit is not None and hit[0] is tokenizer:
        return hit[1]
    specials = set(getattr(tokenizer, "all_special_ids", None) or [])
    n = len(tokenizer)
    raw = tokenizer.convert_ids_to_tokens(list(range(n)))

    def spell(tid: int, text: str) -> str:
        if tid in specials:
            return ""  # eos and friends are not written into the text (engine strips them)
        token = raw[tid] or ""
        return " " + text if token.startswith("▁") and not text.startswith(" ") else text  # SentencePiece

    # Raw vocab strings keep ASCII digits, brackets and punctuation as is (byte-level and
    # SentencePiece alike, byte fallback "<0x31>" has digits too), so only candidates are decoded.
    candidates = [i for i in range(n) if _touches((raw[i] or "").lstrip("Ġ▁")) or not raw[i]]
    decoded = tokenizer.batch_decode([[i] for i in candidates])
    touching = {i: p for i, t in zip(candidates, decoded, strict=True) if _touches(p := spell(i, t))}
    table = TokenTable(lambda tid: spell(tid, tokenizer.decode([tid])) if tid < n else "", touching)
    _TABLES[id(tokenizer)] = (tokenizer, table)
    return table


class TokenConstraint:
    """One row's constraint. `mask(tokens)` after each step; not shared between rows (it tracks one)."""

    def __init__(self, table: TokenTable, numbers: Iterable[str] | None, citations: Iterable[int] | None):
        self.table = table
        self.forms = None if numbers is None else frozenset(f for s in numbers for f in number_forms(str(s)))
        self.cites = None if citations is None else frozenset(str(int(n)) for n in citations if int(n) >= 0)
        self._num_pre = _prefixes(self.forms or ())
        self._cite_pre = _prefixes(self.cites or ())
        self._memo: dict[State, Mask | None] = {}
        self._n, self._last, self.state = 0, -1, START

    def _step(self, mode: int, run: str, ch: str) -> tuple[int, str, bool]:
        """(mode, run, legal) after one more character."""
        if mode == _TEXT:
            if self.forms is None:
                return (_OPEN if ch == "[" else _TEXT), "", True
            if ch in DIGITS:
                return _TEXT, run + ch, run + ch in self._num_pre
            if run and ch in _SEPS and run[-1] in DIGITS:  # a separator, or punctuation after a number
                return _TEXT, run + ch, run + ch in self._num_pre or run in self.forms
            ok = not run or (run[:-1] if run[-1] in _SEPS else run) in self.forms
            return (_OPEN if ch == "[" else _TEXT), "", ok
        if mode == _OPEN:
            if ch in DIGITS:
                return _CITE, ch, self.cites is None or ch in self._cite_pre
            return (_OPEN if ch.isspace() or ch == "[" else _TEXT), "", True
        if ch in DIGITS:
            return _CITE, run + ch, self.cites is None or run + ch in self._cite_pre
        if self.cites is None:
            return (_OPEN if ch in ",-" else _TEXT), "", True
        if ch == "]" or ch in ",-":
            return (_TEXT if ch == "]" else _OPEN), "", run in self.cites
        return _TEXT, "", False  # "[1 " or "[1a": not marker syntax

    def advance(self, state: State, text: str) -> State:
        """The scan state after `text` was written (illegal text included: the scan goes on)."""
        mode, run = state
        for ch in text:
            mode, run, _ = self._step(mode, run, ch)
        return mode, run

    def mask_for(self, state: State) -> Mask | None:
        """What may follow a scan state; None: anything (nothing to ban, or nothing legal at all)."""
        if state in self._memo:
            return self._memo[state]
        plain_ok = self._step(*state, "x")[2]
        legal: list[int] = []
        illegal: list[int] = []
        stack = [(self.table.root, state)]
        while stack:  # depth-first over the trie; a violation rejects the whole subtree
            node, (mode, run) = stack.pop()
            for ch, child in node.children.items():
                m, r, ok = self._step(mode, run, ch)
                if not ok:
                    illegal += child.all
                    continue
                legal += child.ids
                if child.children:
                    stack.append((child, (m, r)))
        if plain_ok:
            mask = Mask(False, sorted(illegal)) if illegal else None
        else:  # only continuations; none at all (a dead end) leaves the row unconstrained
            mask = Mask(True, sorted(legal)) if legal else None
        if len(self._memo) < 4096:
            self._memo[state] = mask
        return mask

    def mask(self, tokens: list[int]) -> Mask | None:
        """The mask for the token after `tokens` (this row's generated tokens so far)."""
        n = self._n
        if len(tokens) < n or (n and tokens[n - 1] != self._last):  # a new run of the row: rescan
            n, self.state = 0, START
        for tid in tokens[n:]:
            self.state = self.advance(self.state, self.table.piece(tid))
        self._n, self._last = len(tokens), tokens[-1] if tokens else -1
        return self.mask_for(self.state)


def is_constrained(request: Any) -> bool:
    return request.allowed_numbers is not None or request.allowed_citations is not None


def for_request(tokenizer: Any, request: Any) -> TokenConstraint | None:
    """A fresh constraint for one row of `request` (a GenerationRequest); None when unconstrained."""
    if not is_constrained(request):
        return None
    return TokenConstraint(token_table(tokenizer), request.allowed_numbers, request.allowed_citations)
