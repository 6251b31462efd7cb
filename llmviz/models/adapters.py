"""LoRA adapters shipped in ``assets/``: a catalog entry = a base model + an adapter directory.

The adapter is in peft's own format (``adapter_config.json`` + ``adapter_model.safetensors``).
Loading one is: the base at the requested precision (the usual path, cache included), then
``PeftModel.from_pretrained(base, directory)``. At fp32 / bf16 / fp16 ``merge_and_unload()``
then folds ``(alpha / r) * B @ A`` into each wrapped weight (0.8 s here), so the result is a plain
transformers model that every tab treats like any other. Over bitsandbytes int8 / 4-bit weights
the adapter stays a separate layer, as in QLoRA: peft's merge there (dequantize, add, quantize
again) broke the model on CPU (nf4 answers turned to noise, logits off by 44), while the
unmerged model answers as in training.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from llmviz import config, library
from llmviz.errors import UserError
from llmviz.models.catalog import ModelSpec, get_spec

FILES = ("adapter_config.json", "adapter_model.safetensors")


def base_spec(spec: ModelSpec) -> ModelSpec:
    """The spec whose weights ``spec`` loads: its base for an adapter entry, else itself."""
    return get_spec(spec.base) if spec.base else spec


def adapter_dir(spec: ModelSpec) -> Path:
    """The adapter directory of ``spec``, refused with a fix when a file is missing."""
    assert spec.adapter is not None
    directory = config.ASSETS / spec.adapter
    missing = [n for n in FILES if not (directory / n).is_file()]
    if missing:
        raise UserError(
            f"{spec.display} needs its LoRA adapter in {directory} ({', '.join(missing)} missing). "
            "Rebuild it with `python scripts/build_adapter.py` (see the README).",
            key="adapter_missing",
            model=spec.display,
            path=str(directory),
        )
    return directory


def apply(model: Any, spec: ModelSpec, merge: bool = True) -> Any:
    """``model`` (the loaded base) with ``spec``'s adapter, merged in when ``merge``, else as a
    ``PeftModel`` wrapper; the base object is consumed either way."""
    import torch
    library.ready("peft")
    from peft import PeftModel

    directory = adapter_dir(spec)
    with torch.no_grad():
        wrapped = PeftModel.from_pretrained(model, str(directory), is_trainable=False)
        out = wrapped.merge_and_unload() if merge else wrapped
    out.eval()
    return out


def prepare_tokenizer(tokenizer: Any) -> Any:
    """Give an adapter entry's tokenizer the turn format it was trained with (when it has none)."""
    from llmviz.finetune import CHAT_TEMPLATE

    if not getattr(tokenizer, "chat_template", None):
        tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer
