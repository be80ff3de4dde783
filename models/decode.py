"""Continuous-batching decode loop for one device (CPU, or CUDA without paged attention).

Why not `model.generate` over left-padded batches (measured costs in bench/generate.py):
  1. Prefill: every prompt is prefilled alone, so no pad token is ever computed and attention takes
     SDPA's causal fast path (no mask; grouped KV heads without `repeat_kv`). Retrieved-source
     prompts vary 650-1,350 tokens; a padded batch computes ~25% padding.
  2. Slots: a finished row leaves the batch at once and a queued prompt takes its slot. `generate`
     keeps computing finished rows until the batch's longest answer ends.
  3. KV memory: the cache grows in place inside a preallocated buffer. transformers' DynamicLayer
     `torch.cat`s every layer's keys and values on every token, i.e. copies the whole cache per
     step: at 16 rows x 1,300 positions x 30 layers that is ~1 GB of memory traffic per token on
     SmolLM2-135M, more than its weights.
  4. Columns that are left padding for every remaining row are cut from the cache.

Rows are independent: greedy rows take the argmax of their own logits and sampled rows draw from
their own seeded generator, so a row's tokens do not depend on which rows share its batch. The
engine relies on that to retry an out-of-memory batch in halves without changing any output.
A row's number/citation constraint (models/constraint.py) is a function of its own tokens too.

Shapes: cache buffers are (rows, kv_heads, capacity, head_dim); every row is right-aligned, so its
newest token sits in column `width - 1` and `mask` (rows, width) marks its real columns.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from models.constraint import apply_mask
from models.ngram import banned_next_tokens
from models.sentences import BOUNDARY, sentence_ends


@dataclass
class Row:
    """One prompt to continue, and (after `run`) what was generated for it."""

    ids: list[int]
    max_new: int
    stops: tuple[str, ...] = ()
    temperature: float = 0.0  # <= 0: greedy
    top_k: int = 0
    top_p: float = 1.0
    seed: int = 0
    tag: Any = None  # the caller's handle (request index)
    tokens: list[int] = field(default_factory=list)
    reason: str = ""  # "eos" | "stop" | "length"
    first_token_s: float = 0.0  # seconds from the start of `run` to this row's first token
    constraint: Any = None  # models/constraint.py TokenConstraint (one per row), or None
    sentences: int = 0  # stop once this many complete sentences are written (0: no such stop)


@dataclass
class DecodeStats:
    prefill_seconds: float = 0.0
    prefill_tokens: int = 0
    decode_seconds: float = 0.0
    decode_steps: int = 0
    decode_row_steps: int = 0  # sum over steps of active rows (tokens produced by decode steps)
    max_active: int = 0


_LAYER: type | None = None


def _layer_class() -> type:
    """A DynamicLayer that appends in place into a preallocated buffer (built lazily: heavy import)."""
    global _LAYER
    if _LAYER is not None:
        return _LAYER
    from transformers.cache_utils import DynamicLayer

    class GrowLayer(DynamicLayer):
        n: int = 0  # valid columns

        def lazy_initialization(self, key_states: Any, value_states: Any) -> None:
            self.device = key_states.device
            self.n = 0
            self.kbuf = key_states.new_zeros(*key_states.shape[:2], 0, key_states.shape[3])
            self.vbuf = value_states.new_zeros(*value_states.shape[:2], 0, value_states.shape[3])
            self.is_initialized = True

        def _views(self) -> None:
            self.keys, self.values = self.kbuf[:, :, : self.n], self.vbuf[:, :, : self.n]

        def set_buffers(self, kbuf: Any, vbuf: Any, n: int) -> None:
            self.kbuf, self.vbuf, self.n, self.is_initialized = kbuf, vbuf, n, True
            self.device = kbuf.device
            self._views()

        def update(self, key_states: Any, value_states: Any, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
            if not self.is_initialized:
                self.lazy_initialization(key_states, value_states)
            t = key_states.shape[-2]
            if self.n + t > self.kbuf.shape[2]:  # out of room: grow geometrically (rare)
                cap = max(self.n + t, self.kbuf.shape[2] * 3 // 2 + 64)
                for name in ("kbuf", "vbuf"):
                    old = getattr(self, name)
                    new = old.new_zeros(*old.shape[:2], cap, old.shape[3])
                    new[:, :, : self.n] = old[:, :, : self.n]
                    setattr(self, name, new)
            self.kbuf[:, :, self.n : self.n + t] = key_states
            self.vbuf[:, :, self.n : self.n + t] = value_states
            self.n += t
            self._views()
            return self.keys, self.values

        def get_seq_length(self) -> int:
            return self.n if self.is_initialized else 0

        def batch_select_indices(self, indices: Any) -> None:
            self.kbuf, self.vbuf = self.kbuf[indices], self.vbuf[indices]
            self._views()

        def trim_left(self, columns: int) -> None:
            self.kbuf, self.vbuf = self.kbuf[:, :, columns:], self.vbuf[:, :, columns:]
            self.n -= columns
            self._views()

    _LAYER = GrowLayer
    return _LAYER


def new_cache() -> Any:
    from transformers.cache_utils import Cache

    return Cache(layer_class_to_replicate=_layer_class())


def _choose(logits: Any, rows: list[Row], gens: list[Any], ngram: int) -> list[int]:
    """Next token per row: argmax for greedy rows, seeded top-k/top-p sampling for the others.

    `logits` is (rows, vocab) in float32, as `generate` scores them. The n-gram ban looks at the
    row's generated tokens only (models/ngram.py). A row's constraint (models/constraint.py) bans
    after it; where the two together would leave nothing, the constraint wins.
    """
    import torch

    masks = [row.constraint.mask(row.tokens) if row.constraint is not None else None for row in rows]
    before = {
        i: logits[i, m.index(logits.device, logits.shape[-1])].clone()
        for i, m in enumerate(masks)
        if ngram and m is not None and m.allow
    }
    if ngram:
        for i, row in enumerate(rows):
            banned = banned_next_tokens(row.tokens, ngram)
            if banned:
                logits[i, list(banned)] = -float("inf")
    for i, m in enumerate(masks):
        if m is not None:
            apply_mask(logits[i], m, before.get(i))
    picks = logits.argmax(-1).tolist()
    for i, row in enumerate(rows):
        if row.temperature <= 0:
            continue
        x = logits[i] / row.temperature
        if 0 < row.top_k < x.shape[-1]:
            kth = torch.topk(x, row.top_k).values[-1]
            x = x.masked_fill(x < kth, -float("inf"))
        if row.top_p < 1.0:
            sorted_x, order = torch.sort(x, descending=True)
            cum = torch.softmax(sorted_x, -1).cumsum(-1)
            drop = cum - torch.softmax(sorted_x, -1) >= row.top_p  # keep the smallest set reaching top_p
            x = x.masked_fill(torch.zeros_like(drop).scatter(0, order, drop), -float("inf"))
        picks[i] = int(torch.multinomial(torch.softmax(x, -1), 1, generator=gens[i]).item())
    return picks


def finished(row: Row, eos_ids: set[int], tokenizer: Any) -> bool:
    """Record why a row ends after its newest token, if it does (eos, then stop word, then length)."""
    if row.tokens[-1] in eos_ids:
        row.reason = "eos"
    elif row.stops:
        # A stop word of c chars spans at most ~4c byte-level tokens; decode just that tail.
        window = 4 * max(len(s) for s in row.stops) + 2
        tail = tokenizer.decode(row.tokens[-window:], skip_special_tokens=False)
        if any(s in tail for s in row.stops):
            row.reason = "stop"
    if not row.reason and row.sentences:
        # a boundary is completed by the token that starts the next sentence: look at the tail,
        # and count over the whole answer only when the tail holds one
        if BOUNDARY.search(tokenizer.decode(row.tokens[-8:], skip_special_tokens=True)):
            if sentence_ends(tokenizer.decode(row.tokens, skip_special_tokens=True)) >= row.sentences:
                row.reason = "stop"
    if not row.reason and len(row.tokens) >= row.max_new:
        row.reason = "length"
    return bool(row.reason)


def replay(tokens: list[int], row: Row, eos_ids: set[int], tokenizer: Any) -> Row:
    """Apply the decoder's stopping rules to tokens generated elsewhere (paged / static paths)."""
    row.tokens, row.reason = [], ""
    for tok in tokens:
        row.tokens.append(tok)
        if finished(row, eos_ids, tokenizer):
            break
    row.reason = row.reason or "length"
    return row


def _same_length(rows: list[Row]) -> list[list[Row]]:
    """Consecutive rows of equal prompt length (the queue is sorted by length)."""
    groups: list[list[Row]] = []
    for row in rows:
        if groups and len(groups[-1][0].ids) == len(row.ids):
            groups[-1].append(row)
        else:
            groups.append([row])
    return groups


class Decoder:
    """Runs rows through one model with at most `max_batch` rows decoding at a time."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        eos_ids: list[int],
        ngram: int = 0,
        max_batch: int = 16,
        tick: Callable[[], None] | None = None,
    ) -> None:
        self.model = model
        self.tick = tick or (lambda: None)  # called after every forward pass (memory sampling)
        self.tokenizer = tokenizer
        self.eos_ids = set(eos_ids)
        self.ngram = ngram
        self.max_batch = max_batch
        self.stats = DecodeStats()

    def _generator(self, row: Row, device: Any) -> Any:
        import torch

        if row.temperature <= 0:
            return None
        return torch.Generator(device=device).manual_seed(row.seed)

    def _prefill(
        self, take: list[Row], device: Any, start: float, gens: list[Any], done: Callable[[Row], None]
    ) -> list[tuple[Row, Any, int]]:
        """Prefill new prompts (equal-length ones in one pass, so never with padding) and pick each
        one's first token; rows that did not finish at once come back as (row, its prefill cache,
        index in it), their generators appended to `gens`."""
        import torch

        fresh: list[tuple[Row, Any, int]] = []
        for group in _same_length(take):
            t = time.perf_counter()
            one = new_cache()
            ids = torch.tensor([r.ids for r in group], device=device)
            logits = self.model(input_ids=ids, cache=one, use_cache=True, logits_to_keep=1).logits
            group_gens = [self._generator(r, device) for r in group]
            for r in group:
                r.tokens, r.reason = [], ""
            picks = _choose(logits[:, -1].float(), group, group_gens, self.ngram)
            self.tick()
            self.stats.prefill_seconds += time.perf_counter() - t
            self.stats.prefill_tokens += ids.numel()
            now = time.perf_counter() - start
            for b, (row, tok, gen) in enumerate(zip(group, picks, group_gens, strict=True)):
                row.tokens.append(tok)
                row.first_token_s = now
                if finished(row, self.eos_ids, self.tokenizer):
                    done(row)
                else:
                    fresh.append((row, one, b))
                    gens.append(gen)
        return fresh

    def run(self, rows: list[Row], on_done: Callable[[Row], None] | None = None) -> list[Row]:
        """Generate for every row (in place); `on_done(row)` fires as each row finishes.

        Rows are admitted longest prompt first, so rows decoding together have similar lengths
        (little left padding) and an out-of-memory surfaces on the first, largest batch.
        """
        import torch

        start = time.perf_counter()
        device = self.model.device
        queue = sorted(rows, key=lambda r: len(r.ids), reverse=True)
        active: list[Row] = []
        gens: list[Any] = []
        cache = None
        mask = lens = last = None  # (B, width) long, (B,) positions of the next token, (B,) tokens
        done = on_done or (lambda row: None)
        with torch.inference_mode():
            while queue or active:
                # 1. fill free slots: prefill the new prompts (equal-length ones in one pass, so
                #    never with padding), then merge them into the batch
                take: list[Row] = []
                while queue and len(active) + len(take) < self.max_batch:
                    take.append(queue.pop(0))
                fresh = self._prefill(take, device, start, gens, done)
                if fresh:
                    cache, mask = self._merge(cache, mask, active, fresh, device)
                    active += [r for r, _, _ in fresh]
                    lens = torch.tensor([len(r.ids) + len(r.tokens) - 1 for r in active], device=device)
                    last = torch.tensor([r.tokens[-1] for r in active], device=device)
                if not active:
                    continue
                # 2. one decode step for every active row
                t = time.perf_counter()
                mask = torch.cat([mask, mask.new_ones(len(active), 1)], dim=1)
                out = self.model(
                    input_ids=last[:, None],
                    attention_mask=mask,
                    position_ids=lens[:, None],
                    cache=cache,
                    use_cache=True,
                    logits_to_keep=1,
                )
                picks = _choose(out.logits[:, -1].float(), active, gens, self.ngram)
                self.tick()
                self.stats.decode_seconds += time.perf_counter() - t
                self.stats.decode_steps += 1
                self.stats.decode_row_steps += len(active)
                self.stats.max_active = max(self.stats.max_active, len(active))
                keep = []
                for i, (row, tok) in enumerate(zip(active, picks, strict=True)):
                    row.tokens.append(tok)
                    if finished(row, self.eos_ids, self.tokenizer):
                        done(row)
                    else:
                        keep.append(i)
                lens = lens + 1
                last = torch.tensor(picks, device=device)
                # 3. finished rows leave; columns that are padding for every row left go too
                if len(keep) < len(active):
                    idx = torch.tensor(keep, device=device, dtype=torch.long)
                    active = [active[i] for i in keep]
                    gens = [gens[i] for i in keep]
                    if not active:
                        cache = mask = None
                        continue
                    mask, lens, last = mask[idx], lens[idx], last[idx]
                    for layer in cache.layers:
                        layer.batch_select_indices(idx)
                    pad = int((mask.shape[1] - mask.sum(1)).min())
                    if pad:
                        mask = mask[:, pad:]
                        for layer in cache.layers:
                            layer.trim_left(pad)
        return rows

    def _merge(
        self, cache: Any, mask: Any, active: list[Row], fresh: list[tuple[Row, Any, int]], device: Any
    ) -> tuple[Any, Any]:
        """A new batch cache: the active rows, then the freshly prefilled ones, all right-aligned.

        Capacity is sized for the longest remaining answer, so decode steps never reallocate.
        """
        import torch

        old_width = mask.shape[1] if mask is not None else 0
        width = max([old_width] + [len(r.ids) for r, _, _ in fresh])
        rows = active + [r for r, _, _ in fresh]
        room = max(r.max_new - len(r.tokens) for r in rows) + 1
        new_mask = torch.zeros((len(rows), width), dtype=torch.long, device=device)
        if mask is not None:
            new_mask[: len(active), width - old_width :] = mask
        for j, (r, _, _) in enumerate(fresh):
            new_mask[len(active) + j, width - len(r.ids) :] = 1
        merged = new_cache()
        n_layers = len(fresh[0][1].layers)
        for li in range(n_layers):
            ref = fresh[0][1].layers[li].keys
            shape = (len(rows), ref.shape[1], width + room, ref.shape[3])
            kbuf, vbuf = ref.new_zeros(shape), ref.new_zeros(shape)
            if cache is not None:
                old = cache.layers[li]
                kbuf[: len(active), :, width - old_width : width] = old.keys
                vbuf[: len(active), :, width - old_width : width] = old.values
                old.kbuf = old.vbuf = old.keys = old.values = None  # peak memory: one layer extra, not 2x
            for j, (r, one, k) in enumerate(fresh):
                b, lo = len(active) + j, width - len(r.ids)
                kbuf[b, :, lo:width] = one.layers[li].keys[k]
                vbuf[b, :, lo:width] = one.layers[li].values[k]
            layer = _layer_class()()
            layer.set_buffers(kbuf, vbuf, width)
            merged.layers.append(layer)
        return merged, new_mask
