"""Fakes for the expensive seams: a deterministic engine and a bag-of-words embedder.

The fake engine writes text the way a well-behaved model would (sentences copied from its numbered
sources, cited), so pipeline tests exercise citations, checks and rendering without a model. A
request whose prompt contains FLAG_WORD gets the "needs intervention" moderation label.
"""

from __future__ import annotations

import hashlib
import re
from types import SimpleNamespace
from typing import Any

import numpy as np

from models.types import Completion, GenerationRequest, GenerationStats, Progress

FLAG_WORD = "FLAGME"
LABEL_FOR_FLAG = "needs intervention"


class FakeEngine:
    """Satisfies `models.types.Engine`; keeps no per-job accounting (`last_job` stays empty)."""

    name = "fake"
    revision = "fake-0"
    # Its moderation labels are scripted (FLAG_WORD), so it stands in for a trained moderation
    # model: label-scoring may withhold on its word (models/screens.py caps chat-model judges).
    preset = SimpleNamespace(role="moderation")

    def __init__(self, reply: str | None = None):
        self.reply = reply
        self.stats = GenerationStats(device="cpu", dtype="none")
        self.progress: Progress | None = None
        self.last_job: dict[str, Any] = {}  # the real engine's prefill/ttft/memory: a fake has none
        self.calls: list[list[GenerationRequest]] = []

    def generate(self, requests: list[GenerationRequest]) -> list[Completion]:
        self.calls.append(list(requests))
        out = []
        for r in requests:
            if not r.user.strip():
                out.append(Completion(r.request_id, "", finish_reason="error", error="empty prompt"))
                continue
            text = self.reply if self.reply is not None else self._cite_sources(r.user)
            self.stats.requests += 1
            self.stats.tokens_in += len(r.user.split())
            self.stats.tokens_out += len(text.split())
            out.append(Completion(r.request_id, text, len(r.user.split()), len(text.split())))
        return out

    @staticmethod
    def _cite_sources(prompt: str) -> str:
        if "\n\nQuestion: " in prompt and not re.search(r"^\[\d+\] ", prompt, flags=re.M):
            # a claim unit (one source, one question): answer with the source's first sentence
            body = prompt.split("\n\nQuestion: ", 1)[0].strip()
            first = re.split(r"(?<=[.!?])\s", body)[0].rstrip(".")
            flag = f" {FLAG_WORD} this text must be withheld." if FLAG_WORD in prompt else ""
            return f"{first}.{flag}"
        sentences = []
        for n, body in re.findall(r"^\[(\d+)\] [^:]*: (.+)$", prompt, flags=re.M)[:3]:
            first = re.split(r"(?<=[.!?])\s", body.strip())[0].rstrip(".")
            sentences.append(f"{first} [{n}].")
        if FLAG_WORD in prompt:
            sentences.append(f"{FLAG_WORD} this text must be withheld.")
        return " ".join(sentences)

    def loglikelihood(self, pairs: list[tuple[str, str]]) -> list[list[float]]:
        """The label matching the text's flag gets the highest score; everything else is casual."""
        out = []
        for context, continuation in pairs:
            text = context.rsplit("Input:", 1)[-1]
            wanted = LABEL_FOR_FLAG if FLAG_WORD in text else "casual"
            score = -0.1 if continuation.strip() == wanted else -3.0
            out.append([score] * max(1, len(continuation.split())))
        return out


def word_budget():
    """Prompt trimming that counts words instead of loading the real chat tokenizer (reports/trim.py)."""
    from reports.trim import PromptBudget

    return PromptBudget(lambda system, user: len(f"{system} {user}".split()), 2048)


class HashEmbedder:
    """Bag-of-words hashing embedder: deterministic, instant, shares words -> high cosine."""

    name = "hash-bow"
    dim = 256
    bf16 = False

    @property
    def signature(self) -> str:
        return f"{self.name}|dim={self.dim}"

    def encode(self, texts: list[str], batch_size: int = 64, progress=None) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in re.findall(r"[a-z0-9]+", text.lower()):
                out[i, int(hashlib.md5(word.encode()).hexdigest(), 16) % self.dim] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms == 0, 1, norms)
