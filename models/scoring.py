"""Continuation scoring for moderation labels: shared-prefix rows, trailing logits only."""

from __future__ import annotations

from typing import Any, Protocol

from rag.errors import ModelError


class Scorer(Protocol):
    """What scoring needs from the engine (models/engine.py `TransformersEngine`), all public."""

    batch_size: int  # rows per forward pass

    @property
    def context_tokens(self) -> int: ...  # longest row fed (positions the model knows)

    @property
    def start_id(self) -> int: ...  # token an empty context is scored from

    def encode(self, text: str) -> list[int]: ...

    def left_pad(self, rows: list[list[int]]) -> tuple[Any, Any, Any]: ...

    def forward_logits(self, ids: Any, mask: Any, pos: Any, keep: int) -> Any: ...


def score_pairs(engine: Scorer, pairs: list[tuple[str, str]]) -> tuple[list[list[float]], int]:
    """(per-token log-probs of each continuation given its raw context (no prompt format), rows fed).

    Context and continuation are tokenized separately and concatenated, so the scored tokens
    are exactly the continuation's tokens. Over-long pairs lose context from the left (the
    continuation and the context's end matter most); callers that need the start of a text
    (moderation) trim it themselves.

    Pairs share forward passes where causality allows: the tokens fed for a pair are
    `context + continuation[:-1]`, and when that is a prefix of another pair's fed tokens the
    logits at its positions are identical, so it is read from the longer row. Moderation's five
    labels per text need three rows (`needs caution`/`needs intervention` share `needs`).
    Rows are left padded with explicit position ids and only the trailing positions that
    hold scored tokens get logits (`logits_to_keep`): memory is batch x few x vocab, not
    batch x context x vocab.
    """
    import torch

    ctx_limit = engine.context_tokens
    results: list[list[float]] = [[] for _ in pairs]
    scored: list[tuple[int, tuple[int, ...], int]] = []  # (pair index, context+continuation, n_cont)
    for i, (context, continuation) in enumerate(pairs):
        cont = engine.encode(continuation)
        if not cont:
            continue
        if len(cont) >= ctx_limit:
            raise ModelError(f"continuation of pair {i} is {len(cont)} tokens; the context holds {ctx_limit}")
        # An empty context still needs one token to predict the first continuation token from.
        ctx = engine.encode(context) or [engine.start_id]
        scored.append((i, tuple((ctx + cont)[-ctx_limit:]), len(cont)))

    rows: list[tuple[int, ...]] = []  # fed token sequences
    first_pos: list[int] = []  # per row: earliest position whose logits some pair needs
    by_context: dict[tuple[int, ...], list[int]] = {}  # keeps the prefix search local
    reads: list[tuple[int, int, tuple[int, ...], int]] = []  # (pair, row, seq, n_cont)
    for i, seq, n in sorted(scored, key=lambda s: len(s[1]), reverse=True):
        fed, context_ids = seq[:-1], seq[: len(seq) - n]
        candidates = by_context.setdefault(context_ids, [])
        row = next((r for r in candidates if rows[r][: len(fed)] == fed), None)
        if row is None:
            rows.append(fed)
            first_pos.append(len(context_ids) - 1)
            row = len(rows) - 1
            candidates.append(row)
        first_pos[row] = min(first_pos[row], len(context_ids) - 1)
        reads.append((i, row, seq, n))
    by_row: dict[int, list[tuple[int, tuple[int, ...], int]]] = {}
    for i, row, seq, n in reads:
        by_row.setdefault(row, []).append((i, seq, n))

    order = sorted(range(len(rows)), key=lambda r: len(rows[r]), reverse=True)
    with torch.inference_mode():
        for b in range(0, len(order), engine.batch_size):
            batch = order[b : b + engine.batch_size]
            ids, mask, pos = engine.left_pad([list(rows[r]) for r in batch])
            keep = max(len(rows[r]) - first_pos[r] for r in batch)
            logits = engine.forward_logits(ids, mask, pos, keep)
            logprobs = torch.log_softmax(logits.float(), dim=-1)  # (batch, keep, vocab)
            for k, r in enumerate(batch):
                for i, seq, n in by_row[r]:
                    # Logits at row position q predict token q+1; the continuation starts at
                    # position len(seq)-n, so its logits sit at q = len(seq)-n-1 ... len(seq)-2,
                    # i.e. kept index keep - len(row) + q.
                    lo = keep - len(rows[r]) + len(seq) - n - 1
                    target = torch.tensor(seq[-n:], device=logprobs.device)
                    results[i] = logprobs[k, lo : lo + n].gather(-1, target[:, None])[:, 0].tolist()
    return results, len(rows)
