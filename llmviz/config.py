"""Constants, limits and the few settings read from the environment.

Environment variables are read here and nowhere else, so every limit a student can hit is
visible in one file (and stated in the UI next to the control it limits).
"""

from __future__ import annotations

import os
from pathlib import Path

# --- where things live ------------------------------------------------------------------------
ROOT = Path(__file__).resolve().parent.parent
ASSETS = ROOT / "assets"

#: Dequantized GGUF models are cached here as safetensors + tokenizer files.
CACHE_DIR = Path(os.environ.get("LLMVIZ_CACHE", Path.home() / ".cache" / "llmviz")).expanduser()

#: Comma-separated catalog keys of Hub models to offer in addition to the packaged ones
#: (e.g. "smollm2-135m,smollm2-135m-instruct"), or "all" for every Hub preset.
HUB_MODELS = os.environ.get("LLMVIZ_HUB_MODELS", "")

#: Set LLMVIZ_OFFLINE=1 to refuse every Hub access even when a network is present.
OFFLINE = os.environ.get("LLMVIZ_OFFLINE", "") not in ("", "0", "false", "False")

#: Catalog keys of the default models (both work with no network).
DEFAULT_BASE = os.environ.get("LLMVIZ_BASE_MODEL", "gemma-3-270m")
DEFAULT_INSTRUCT = os.environ.get("LLMVIZ_INSTRUCT_MODEL", "smollm2-135m-instruct")

#: Models kept in memory at once are limited by their footprint (bytes), least recently used first out.
MODEL_MEMORY_BUDGET = int(float(os.environ.get("LLMVIZ_MODEL_BUDGET_GB", "6")) * 2**30)

# --- limits a student can hit (the UI states them) ---------------------------------------------
MAX_TEXT_CHARS = 20_000  # tokenizer playground input
MAX_PROMPT_TOKENS = 256  # attention / sampling / base-vs-instruct prompts
MAX_ATTENTION_TOKENS = 256
MAX_NEW_TOKENS = 200
MAX_CORPUS_CHARS = 2_000_000  # tokenizer training corpus
MAX_VOCAB_SIZE = 32_000
MIN_VOCAB_SIZE = 30

# --- labs tab ---
PPL_MAX_CHARS = 20_000  # perplexity text, checked before tokenizing
PPL_MAX_TOKENS = 2_048  # tokens scored per text (the UI states it); longer text is refused
PPL_WINDOW = 512  # sliding-window context (tokens) per forward pass
PPL_STRIDE = 256  # new tokens scored per window after the first
SCALING_MAX_PARAMS = 1e14  # 100 trillion parameters: beyond any model trained so far
SCALING_MAX_TOKENS = 1e16  # 10 quadrillion training tokens
SCALING_MAX_FLOPS = 1e30
SCALING_MAX_GPUS = 1_000_000  # GPUs in one training run
