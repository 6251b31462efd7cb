"""The on-disk cache of dequantized packaged models.

Dequantizing a GGUF file takes tens of seconds on a 2-core CPU (Gemma-3-270M ~48 s); loading
the same weights back from safetensors takes one to three. So the first use converts once and
saves ``config.CACHE_DIR/<key>/`` with the model, the tokenizer and a ``llmviz-manifest.json``
listing every file's size.

Writes are atomic: everything goes to a temporary sibling directory that is renamed into place
only when complete, so a crash or a second process never leaves a half-written cache behind.
A cache whose files do not match its manifest (truncated, missing) counts as absent and is
rebuilt.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from llmviz import config, library
from llmviz.models import packaged
from llmviz.models.catalog import ModelSpec

log = logging.getLogger(__name__)

MANIFEST = "llmviz-manifest.json"
FORMAT_VERSION = 1
_convert_lock = threading.Lock()


def cache_dir(spec: ModelSpec) -> Path:
    return config.CACHE_DIR / spec.key


def is_valid(path: Path) -> bool:
    """True when ``path`` holds a complete conversion: manifest present and every size matching."""
    try:
        manifest = json.loads((path / MANIFEST).read_text())
        if manifest.get("format") != FORMAT_VERSION:
            return False
        files = manifest["files"]
        return bool(files) and all((path / n).stat().st_size == size for n, size in files.items())
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False


def ensure_converted(
    spec: ModelSpec, progress: Callable[[float, str], None], force: bool = False
) -> Path:
    """Return the cache directory of packaged model ``spec``, converting its GGUF first if needed."""
    target = cache_dir(spec)
    if not force and is_valid(target):
        return target
    with _convert_lock:
        if not force and is_valid(target):  # converted by another thread meanwhile
            return target
        _convert(spec, target, progress)
    return target


def _convert(spec: ModelSpec, target: Path, progress: Callable[[float, str], None]) -> None:
    import torch
    library.ready()
    from transformers import AutoModelForCausalLM, AutoTokenizer

    start = time.perf_counter()
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{spec.key}-", dir=target.parent))
    try:
        progress(0.05, f"Preparing the packaged GGUF file of {spec.display}")
        gguf = packaged.gguf_path(spec, work)
        progress(0.15, f"Converting {spec.display} from GGUF (once; ~1 min on a small CPU)")
        kw = {"gguf_file": gguf.name, "trust_remote_code": False}
        tok = AutoTokenizer.from_pretrained(gguf.parent, **kw)
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, dtype=torch.bfloat16, **kw)
        # The GGUF loader marks the model as quantized; the weights are plain bf16 now, and
        # save_pretrained refuses (or writes a wrong config) while those marks remain.
        model.hf_quantizer = None
        model.is_quantized = False
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        progress(0.6, f"Saving {spec.display} to the cache")
        out = work / "model"
        model.save_pretrained(out, safe_serialization=True)
        tok.save_pretrained(out)
        files = {p.name: p.stat().st_size for p in out.iterdir() if p.is_file()}
        manifest = {
            "format": FORMAT_VERSION,
            "key": spec.key,
            "source_package": spec.package,
            "seconds": round(time.perf_counter() - start, 1),
            "files": files,
        }
        (out / MANIFEST).write_text(json.dumps(manifest, indent=1))
        _swap_into_place(out, target)
        log.info("converted %s in %.1f s -> %s", spec.key, time.perf_counter() - start, target)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _swap_into_place(new: Path, target: Path) -> None:
    """Replace ``target`` by ``new`` with renames only (atomic on one filesystem)."""
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}-old-{os.getpid()}-{time.time_ns()}")
        os.replace(target, old)
    os.replace(new, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
