"""Devices and bitsandbytes: which device to use, the quantization configs, and the CPU quirks.

On a ZeroGPU Space, GPU work must run inside a function decorated with ``spaces.GPU``; ``gpu``
is that decorator there and a no-op everywhere else, so tab handlers can always use it.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

from llmviz import library

F = TypeVar("F", bound=Callable[..., Any])

# bitsandbytes logs a harmless "Failed to load CPU gemm_4bit_forward from kernels-community".
logging.getLogger("bitsandbytes").setLevel(logging.ERROR)


def _no_gpu_here() -> bool:
    """True when this machine certainly has no GPU torch could use: no NVIDIA driver, no ROCm
    device, and not a Hugging Face Space (ZeroGPU attaches its GPU later). Lets the page be
    built without importing torch (~1.5 s) just to ask."""
    if os.environ.get("SPACE_ID") or "torch" in sys.modules:
        return False
    return not any(os.path.exists(p) for p in ("/proc/driver/nvidia/version", "/dev/nvidia0",
                                               "/dev/kfd"))  # fmt: skip


def pick() -> str:
    """"cuda" when a CUDA GPU is visible, else "cpu"."""
    if _no_gpu_here():
        return "cpu"
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def cpu_has_fast_bf16() -> bool:
    """True when the CPU computes bf16 natively (avx512_bf16 or AMX); without it, bf16 matmuls
    are emulated and run several times slower than fp32 (seen: 4x on an AVX2-only EPYC)."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="ignore") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"avx512_bf16", "amx_bf16"})
    except OSError:
        pass
    return False


def default_precision() -> str:
    """The fastest exact-enough precision here: bf16 on a GPU or a bf16-capable CPU, else fp32."""
    return "bf16" if pick() == "cuda" or cpu_has_fast_bf16() else "fp32"


def bnb_config(precision: str) -> Any:
    """The ``BitsAndBytesConfig`` for "int8", "nf4", "nf4-dq" or "fp4"."""
    import torch
    library.ready()
    from transformers import BitsAndBytesConfig

    if precision == "int8":
        return BitsAndBytesConfig(load_in_8bit=True)
    compute = torch.bfloat16 if pick() == "cpu" else torch.float16
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="fp4" if precision == "fp4" else "nf4",
        bnb_4bit_use_double_quant=precision == "nf4-dq",
        bnb_4bit_compute_dtype=compute,
    )


def prepare_4bit_for_cpu(model: Any) -> None:
    """Take bitsandbytes' generic CPU path for 4-bit layers.

    On CPUs with avx512-bf16 the first forward pass repacks 4-bit weights and asserts
    ``N must be divisible by block_n`` for shapes that are not multiples of 32/64 (Gemma, SmolLM2);
    turning that path off per layer avoids the crash and keeps double quantization intact.
    """
    if pick() != "cpu":
        return
    try:
        import bitsandbytes as bnb
    except ImportError:
        return
    for module in model.modules():
        if isinstance(module, bnb.nn.Linear4bit):
            module.support_avx512bf16_for_cpu = False


def _zero_gpu() -> Callable[[F], F] | None:
    if not os.environ.get("SPACES_ZERO_GPU"):
        return None
    try:
        import spaces  # provided on Hugging Face Spaces
    except ImportError:
        return None
    return spaces.GPU


def gpu(fn: F) -> F:
    """``spaces.GPU`` on a ZeroGPU Space; returns ``fn`` unchanged anywhere else."""
    decorator = _zero_gpu()
    return decorator(fn) if decorator else fn
