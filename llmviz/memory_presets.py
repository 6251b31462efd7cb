"""Preset models for the memory calculator: the textbook's table and modern architectures.

Architecture numbers are copied from each model's ``config.json`` on the Hugging Face Hub (layers,
hidden size, heads, KV heads, head_dim, MLP size, vocabulary, tied embeddings); the tests build
the same configs with transformers on the meta device and check that every count matches.
The textbook presets have only a parameter count (GPT-3.5's size was never published: 350B is
the textbook's figure) plus, where published, the attention shape for the KV cache.
"""

from __future__ import annotations

from dataclasses import dataclass

from llmviz import checks
from llmviz.memory import Architecture, ParamBreakdown, analytic_breakdown


@dataclass(frozen=True)
class Preset:
    key: str
    label: str
    params: int  # the textbook's nominal count, or the exact count of the architecture
    arch: Architecture | None = None  # full architecture (component breakdown)
    kv: Architecture | None = None  # attention shape only (KV cache) for params-only presets
    hub_id: str = ""
    textbook: bool = False
    note: str = ""

    @property
    def breakdown(self) -> ParamBreakdown | None:
        return analytic_breakdown(self.arch) if self.arch else None

    @property
    def kv_arch(self) -> Architecture | None:
        return self.arch or self.kv


def _kv_only(layers: int, heads: int, head_dim: int, context: int) -> Architecture:
    """Multi-head attention (every head has its own K and V): enough for the KV cache."""
    return Architecture(
        0, heads * head_dim, layers, heads, heads, head_dim, 0, True, max_context=context
    )


LLAMA3_8B = Architecture(128256, 4096, 32, 32, 8, 128, 14336, False, max_context=8192, buffers=128)
LLAMA3_70B = Architecture(128256, 8192, 80, 64, 8, 128, 28672, False, max_context=8192, buffers=128)
QWEN25_05B = Architecture(
    151936, 896, 24, 14, 2, 64, 4864, True, attention_bias=True, max_context=32768, buffers=64
)
QWEN25_7B = Architecture(
    152064, 3584, 28, 28, 4, 128, 18944, False, attention_bias=True, max_context=131072, buffers=128
)
GEMMA3_270M = Architecture(
    262144,
    640,
    18,
    4,
    1,
    256,
    2048,
    True,
    norms_per_layer=4,
    qk_norm=True,
    sliding_window=512,
    sliding_layers=15,
    max_context=32768,
    buffers=513,
)
SMOLLM2_135M = Architecture(49152, 576, 30, 9, 3, 64, 1536, True, max_context=8192, buffers=64)
MIXTRAL_8X7B = Architecture(
    32000,
    4096,
    32,
    32,
    8,
    128,
    14336,
    False,
    num_experts=8,
    experts_per_token=2,
    max_context=32768,
    buffers=128,
)


def _arch_preset(key: str, label: str, arch: Architecture, hub_id: str, note: str = "") -> Preset:
    return Preset(key, label, analytic_breakdown(arch).total, arch=arch, hub_id=hub_id, note=note)


PRESETS: dict[str, Preset] = {
    p.key: p
    for p in (
        Preset(
            "gpt2-1.5b",
            "GPT-2 1.5B (textbook)",
            1_500_000_000,
            kv=_kv_only(48, 25, 64, 1024),
            textbook=True,
        ),
        Preset(
            "gpt3-175b",
            "GPT-3 175B (textbook)",
            175_000_000_000,
            kv=_kv_only(96, 96, 128, 2048),
            textbook=True,
        ),
        Preset(
            "gpt3.5-350b",
            "GPT-3.5 350B (textbook)",
            350_000_000_000,
            textbook=True,
            note="size never published; the textbook's figure",
        ),
        _arch_preset("smollm2-135m", "SmolLM2 135M", SMOLLM2_135M, "HuggingFaceTB/SmolLM2-135M"),
        _arch_preset("gemma-3-270m", "Gemma 3 270M", GEMMA3_270M, "google/gemma-3-270m"),
        _arch_preset("qwen2.5-0.5b", "Qwen2.5 0.5B", QWEN25_05B, "Qwen/Qwen2.5-0.5B"),
        _arch_preset("qwen2.5-7b", "Qwen2.5 7B", QWEN25_7B, "Qwen/Qwen2.5-7B"),
        _arch_preset("llama3-8b", "Llama 3 8B", LLAMA3_8B, "meta-llama/Meta-Llama-3-8B"),
        _arch_preset("llama3-70b", "Llama 3 70B", LLAMA3_70B, "meta-llama/Meta-Llama-3-70B"),
        _arch_preset(
            "mixtral-8x7b",
            "Mixtral 8x7B (mixture of experts)",
            MIXTRAL_8X7B,
            "mistralai/Mixtral-8x7B-v0.1",
            note="8 experts per layer, 2 used per token: all must be in memory",
        ),
    )
}

TEXTBOOK_KEYS = tuple(k for k, p in PRESETS.items() if p.textbook)


def get_preset(key: object) -> Preset:
    checks.one_of(
        key,
        PRESETS,
        key="mem_preset_unknown",
        message="Unknown preset '{name}'. Choose one of: {choices}.",
        name=checks.show(key, 40),
    )
    return PRESETS[key]  # type: ignore[index]
