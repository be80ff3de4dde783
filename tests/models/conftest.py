"""Fixtures for models/ tests: a random tiny GPT-NeoX + a byte-level BPE trained on the spot.

The tiny model has the production chat model's architecture (GPT-NeoX), so padding, position
ids and generation go through the same transformers code paths as the 20B model, yet the whole
build/save/load takes a second and needs no download.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from models.presets import ModelPreset, register_preset

TINY = "tiny-neox-test"
CORPUS = [
    "<human>: What was Apple's revenue in fiscal 2024?\n<bot>: Apple reported net sales of $391.0 billion.",
    "Net income rose 12% to $93.7 billion while operating cash flow reached $118.3 billion.",
    "The company repurchased shares and paid dividends; liquidity remains strong.",
    "Risk factors include supply chain disruption, tariffs, competition and regulation.",
    "Possible labels: casual, needs caution, needs intervention, possibly needs caution.",
    "Input: I want to call in sick\nOutput: casual",
]

WORDS = ["dividend", "buyback", "guidance", "segment", "services", "wearables", "tariff", "lawsuit",
         "goodwill", "impairment", "inventory", "backlog", "headcount", "capex", "leverage", "covenant"]


def _build_tiny(path: Path) -> None:
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM, PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=512, special_tokens=["<|bos|>", "<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    # Enough distinct text for the BPE to reach all 512 ids, so every id the model can emit decodes.
    extra = [f"Item {i}: revenue {i * 37 % 1000} million, margin {i % 97}% and {WORDS[i % len(WORDS)]}"
             for i in range(400)]
    tok.train_from_iterator(CORPUS * 20 + extra, trainer=trainer)
    assert tok.get_vocab_size() == 512
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|bos|>", eos_token="<|endoftext|>",
                                   pad_token="<|endoftext|>")
    torch.manual_seed(0)
    cfg = GPTNeoXConfig(vocab_size=512, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=256, max_position_embeddings=256, rotary_pct=0.25,
                        bos_token_id=0, eos_token_id=1, pad_token_id=1)
    model = GPTNeoXForCausalLM(cfg).eval()
    model.save_pretrained(path)
    fast.save_pretrained(path)


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tiny-neox")
    _build_tiny(path)
    return path


@pytest.fixture(scope="session")
def tiny_preset(tiny_dir: Path) -> ModelPreset:
    """An ad-hoc local-dir preset: OpenChatKit format, greedy, small context to test overflow."""
    return register_preset(
        ModelPreset(name=TINY, source=str(tiny_dir), prompt_format="openchatkit", stop_words=(),
                    context_tokens=120, temperature=0.0, top_k=40, max_new_tokens=10),
        replace=True,
    )


@pytest.fixture(scope="session")
def tiny_engine(tiny_preset: ModelPreset):
    from models.engine import load_engine

    return load_engine(tiny_preset.name, cache_dir=None, device="cpu", dtype="float32", batch_size=4)
