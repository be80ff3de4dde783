"""Per-row stopping for batched generation: stop words and per-request token limits.

`model.generate` takes one `max_new_tokens` and one set of stop strings for the whole batch, but
requests in a batch differ in both. This criterion tracks each row separately and reports a
row as finished (transformers then pads it) the moment its own stop word appears or its own
token budget is spent; the batch ends when every row has finished, so one short answer does not
idle while a long one runs, and no row runs past its budget.
"""

from __future__ import annotations

from typing import Any

_CLASS: type | None = None


def _criteria_class() -> type:
    """Build the StoppingCriteria subclass on first use (transformers is a heavy, late import)."""
    global _CLASS
    if _CLASS is not None:
        return _CLASS
    import torch
    from transformers import StoppingCriteria

    class PerRowStop(StoppingCriteria):
        def __init__(self, tokenizer: Any, prompt_width: int, stops: list[tuple[str, ...]],
                     max_new: list[int]) -> None:
            self.tokenizer = tokenizer
            self.prompt_width = prompt_width  # left-padded prompt columns; generated tokens follow
            self.stops = stops
            self.max_new = max_new
            self.stopped_at: list[int | None] = [None] * len(stops)  # generated tokens kept
            self.reason: list[str | None] = [None] * len(stops)  # "stop" | "length"
            # A stop word of c characters spans at most c tokens (ASCII) or ~4c (multi-byte UTF-8
            # split by a byte-level BPE); decoding only that tail keeps each step O(batch).
            longest = max((len(s) for row in stops for s in row), default=0)
            self.window = 4 * longest + 2

        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
            n = input_ids.shape[1] - self.prompt_width
            done = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
            for i, stops in enumerate(self.stops):
                if self.stopped_at[i] is None:
                    if stops:
                        lo = max(self.prompt_width, input_ids.shape[1] - self.window)
                        tail = self.tokenizer.decode(input_ids[i, lo:].tolist(), skip_special_tokens=False)
                        if any(s in tail for s in stops):
                            self.stopped_at[i], self.reason[i] = n, "stop"
                    if self.stopped_at[i] is None and n >= self.max_new[i]:
                        self.stopped_at[i], self.reason[i] = n, "length"
                done[i] = self.stopped_at[i] is not None
            return done

    _CLASS = PerRowStop
    return _CLASS


def make_stop_criteria(tokenizer: Any, prompt_width: int, stops: list[tuple[str, ...]],
                       max_new: list[int]) -> Any:
    """A StoppingCriteria recording, per row, how many generated tokens to keep and why."""
    return _criteria_class()(tokenizer, prompt_width, stops, max_new)
