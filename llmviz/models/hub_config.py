"""Count a model's parameters from its config alone: no weights are downloaded or loaded.

``read_config(name)`` fetches only ``config.json`` (a few kB) for a Hub id, or reads it from the
local cache for a packaged catalog model. ``count_from_config(cfg)`` builds the model on
PyTorch's *meta* device (shapes without storage, milliseconds, zero bytes) and sorts every
parameter the way bitsandbytes will treat it: ``nn.Linear`` layers it converts (transformers'
own ``replace_with_bnb_linear`` rule and skip list), and what stays in the load dtype.

Offline, unknown, gated or unsupported models raise ``UserError`` with what to do.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from llmviz import config, library
from llmviz.errors import UserError
from llmviz.memory import Architecture, LinearGroup, ParamBreakdown, _merge
from llmviz.models import cache, packaged
from llmviz.models.catalog import get_spec

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConfigCount:
    name: str
    model_type: str
    arch: Architecture
    breakdown: ParamBreakdown

    @property
    def params(self) -> int:
        return self.breakdown.total


def count_model(name: str) -> ConfigCount:
    """``read_config`` + ``count_from_config`` for a catalog key or Hub id."""
    cfg = read_config(name)
    return ConfigCount(name.strip(), str(getattr(cfg, "model_type", "?")), *count_from_config(cfg))


# --- reading the config -------------------------------------------------------------------------


def read_config(name: str) -> Any:
    """The transformers config of ``name`` (catalog key or ``owner/name``), never its weights."""
    if not isinstance(name, str) or not name.strip():
        raise UserError(
            "Type a Hugging Face model id such as 'Qwen/Qwen2.5-7B', or pick a preset.",
            key="mem_hub_empty",
        )
    name = name.strip()
    spec = get_spec(name)  # refuses paths and malformed ids
    if spec.base:  # a LoRA entry has its base's architecture
        spec = get_spec(spec.base)
    if spec.is_packaged and packaged.is_installed(spec) and cache.is_valid(cache.cache_dir(spec)):
        return _auto_config(str(cache.cache_dir(spec)), spec.hub_id)
    hub_id = spec.hub_id
    if _offline():
        raise UserError(
            f"This machine cannot reach the Hugging Face Hub, so the config of '{hub_id}' cannot be "
            "read. Pick a preset instead (they need no network).",
            key="mem_hub_offline",
            model=hub_id,
        )
    return _auto_config(hub_id, hub_id)


def _offline() -> bool:
    if config.OFFLINE or os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0", "false", "False"):
        return True
    # Without a network huggingface_hub retries for ~25 s; a quick connect says the same at once.
    from huggingface_hub import constants

    host = urlparse(constants.ENDPOINT).hostname or "huggingface.co"
    try:
        socket.create_connection((host, 443), timeout=3).close()
    except OSError:
        return True
    return False


def _auto_config(source: str, hub_id: str) -> Any:
    library.ready()
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(source, trust_remote_code=False)
    except Exception as err:  # noqa: BLE001 - every failure becomes a message that says what to do
        raise _explain(err, hub_id) from err


def _explain(err: Exception, hub_id: str) -> UserError:
    chain, e = [], err
    while e is not None and len(chain) < 6:
        chain.append(e)
        e = e.__cause__ or e.__context__
    names = " ".join(type(x).__name__ for x in chain)
    text = " ".join(str(x) for x in chain).lower()
    if "Gated" in names or "gated" in text or " 401" in text or " 403" in text:
        return UserError(
            f"'{hub_id}' is gated on the Hugging Face Hub: even its config needs an accepted "
            "licence and a token (HF_TOKEN). Pick a preset, or accept the licence on the model page.",
            key="mem_hub_gated",
            model=hub_id,
        )
    if "RepositoryNotFound" in names or "not a valid model identifier" in text or " 404" in text:
        return UserError(
            f"There is no model '{hub_id}' on the Hugging Face Hub (or it is private). "
            "Check the spelling, e.g. 'Qwen/Qwen2.5-7B'.",
            key="mem_hub_not_found",
            model=hub_id,
        )
    if "LocalEntryNotFound" in names or "OfflineMode" in names or "couldn't connect" in text:
        return UserError(
            f"This machine cannot reach the Hugging Face Hub, so the config of '{hub_id}' cannot be "
            "read. Pick a preset instead (they need no network).",
            key="mem_hub_offline",
            model=hub_id,
        )
    if (
        "trust_remote_code" in text
        or "does not recognize this architecture" in text
        or isinstance(err, KeyError | ValueError)
    ):
        return UserError(
            f"'{hub_id}' uses an architecture that this version of transformers does not know "
            "(or that needs custom code, which llmviz never runs). Pick a preset.",
            key="mem_hub_unsupported",
            model=hub_id,
        )
    return UserError(f"Could not read the config of '{hub_id}': {str(err)[:200]}", key=None)


# --- counting on the meta device ----------------------------------------------------------------


def count_from_config(cfg: Any) -> tuple[Architecture, ParamBreakdown]:
    """Architecture numbers and the bitsandbytes-aware parameter breakdown of ``cfg``."""
    return architecture_of(cfg), breakdown_of_config(cfg)


def breakdown_of_config(cfg: Any) -> ParamBreakdown:
    """``breakdown_of`` the meta-device model of ``cfg``; cached per config (building the meta
    model takes about a second for a large one)."""
    return _cached_breakdown(cfg.to_json_string(use_diff=False), type(cfg))


@functools.lru_cache(maxsize=32)
def _cached_breakdown(cfg_json: str, cls: type) -> ParamBreakdown:
    cfg = cls.from_dict(json.loads(cfg_json))
    return breakdown_of(_meta_model(cfg))


def _meta_model(cfg: Any) -> Any:
    import torch
    library.ready()
    from transformers import AutoModelForCausalLM

    try:
        with torch.device("meta"):
            return AutoModelForCausalLM.from_config(cfg, trust_remote_code=False)
    except Exception as err:  # noqa: BLE001
        raise UserError(
            f"transformers cannot build a causal language model from this config "
            f"({type(err).__name__}). Pick a preset.",
            key="mem_hub_unsupported",
            model=str(getattr(cfg, "_name_or_path", "?"))[:80],
        ) from err


def breakdown_of(model: Any) -> ParamBreakdown:
    """Sort every parameter of ``model`` (meta or real, unquantized) by what bitsandbytes does.

    Converted: modules whose type is exactly ``nn.Linear`` (or GPT-2's ``Conv1D``) and that are
    not on transformers' skip list (the output embedding, tied weights, the last module,
    ``_keep_in_fp32_modules``). Everything else stays in the load dtype.
    """
    from torch import nn
    library.ready()
    from transformers.pytorch_utils import Conv1D
    from transformers.quantizers.base import get_keys_to_not_convert
    from transformers.quantizers.quantizers_utils import should_convert_module

    skip = list(get_keys_to_not_convert(model)) + list(
        getattr(model, "_keep_in_fp32_modules", None) or []
    )
    out_emb = model.get_output_embeddings()
    seen: set[int] = set()
    counts = {"embeddings": 0, "lm_head": 0, "linear_bias": 0, "norms": 0, "experts": 0, "other": 0}
    groups: list[LinearGroup] = []
    for name, module in model.named_modules():
        is_linear = type(module) is nn.Linear or isinstance(module, Conv1D)
        converted = is_linear and module is not out_emb and should_convert_module(name, skip)
        for pname, param in module.named_parameters(recurse=False):
            if id(param) in seen:
                continue  # tied: stored once
            seen.add(id(param))
            if converted and pname == "weight":
                shape = tuple(param.shape)
                out_f, in_f = (shape[1], shape[0]) if isinstance(module, Conv1D) else shape
                groups.append(LinearGroup(int(out_f), int(in_f), 1))
            else:
                counts[_bucket(module, converted, out_emb)] += param.numel()
    buffers = sum(b.numel() for b in model.buffers())
    return ParamBreakdown(
        embeddings=counts["embeddings"],
        lm_head=counts["lm_head"],
        linear=tuple(_merge(groups)),
        linear_bias=counts["linear_bias"],
        norms=counts["norms"],
        experts=counts["experts"],
        other=counts["other"],
        buffers=int(buffers),
    )


def _bucket(module: Any, converted: bool, out_emb: Any) -> str:
    from torch import nn

    kind = type(module).__name__.lower()
    if converted:
        return "linear_bias"  # the weight itself is counted in its LinearGroup
    if module is out_emb:
        return "lm_head"
    if isinstance(module, nn.Embedding):
        return "embeddings"
    if "norm" in kind:
        return "norms"
    if "expert" in kind:
        return "experts"
    return "other"


def architecture_of(cfg: Any) -> Architecture:
    """The shape numbers of a transformers config (text part of multimodal configs)."""
    text = cfg.get_text_config() if hasattr(cfg, "get_text_config") else cfg
    get: Callable[..., Any] = lambda *names, default=0: next(  # noqa: E731
        (getattr(text, n) for n in names if getattr(text, n, None) is not None), default
    )
    hidden = int(get("hidden_size", "n_embd", "d_model"))
    heads = int(get("num_attention_heads", "n_head"))
    kv_heads = int(get("num_key_value_heads", default=heads) or heads)
    layer_types = list(get("layer_types", default=[]) or [])
    window = get("sliding_window", default=None)
    sliding = sum(1 for t in layer_types if "sliding" in str(t))
    if window and not layer_types and get("use_sliding_window", default=True):
        sliding = int(get("num_hidden_layers", "n_layer"))  # Mistral-style: every layer
    return Architecture(
        vocab_size=int(get("vocab_size")),
        hidden_size=hidden,
        num_layers=int(get("num_hidden_layers", "n_layer")),
        num_heads=heads,
        num_kv_heads=kv_heads,
        head_dim=int(get("head_dim", default=hidden // max(heads, 1)) or hidden // max(heads, 1)),
        intermediate_size=int(
            get("intermediate_size", "n_inner", default=4 * hidden) or 4 * hidden
        ),
        tied_embeddings=bool(getattr(cfg, "tie_word_embeddings", True)),
        num_experts=int(get("num_local_experts", "num_experts", default=0) or 0),
        experts_per_token=int(get("num_experts_per_tok", default=0) or 0),
        sliding_window=int(window) if window and sliding else None,
        sliding_layers=sliding if window else 0,
        max_context=int(get("max_position_embeddings", "n_positions", default=0) or 0),
    )
