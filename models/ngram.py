"""Ban repeated n-grams inside the generated continuation only (not across the prompt).

transformers' `no_repeat_ngram_size` looks at the whole sequence, prompt included, so it would
forbid a summariser from copying "$391,035 million" out of its numbered sources. This processor
starts counting at the first generated column of the (left-padded) batch.
"""

from __future__ import annotations

from typing import Any


def banned_next_tokens(generated: list[int], n: int) -> set[int]:
    """Tokens that would complete an n-gram already present in `generated`."""
    if n <= 0 or len(generated) < n:
        return set()
    prefix = tuple(generated[-(n - 1) :]) if n > 1 else ()
    banned = set()
    for i in range(len(generated) - n + 1):
        if tuple(generated[i : i + n - 1]) == prefix:
            banned.add(generated[i + n - 1])
    return banned


def generated_ngram_ban(n: int, prompt_width: int) -> Any:
    """A transformers LogitsProcessor banning repeats of any generated n-gram (built lazily)."""
    import torch
    from transformers import LogitsProcessor

    class _Ban(LogitsProcessor):
        def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
            for row in range(input_ids.shape[0]):
                banned = banned_next_tokens(input_ids[row, prompt_width:].tolist(), n)
                if banned:
                    scores[row, list(banned)] = -float("inf")
            return scores

    return _Ban()
