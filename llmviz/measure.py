"""Measured footprint of a loaded model, next to the calculator's prediction.

*Measured* = the bytes of every tensor the model keeps: parameters, buffers, and bitsandbytes'
quantization state, which ``model.get_memory_footprint()`` leaves out (int8: the fp32 row scales
``SCB``; 4-bit: the absmax per block, its code table, and with double quantization the nested
absmax, code and offset). Tensors that share storage (tied embeddings; int8 ``CB`` is the weight
itself) count once. On CUDA, ``torch.cuda.max_memory_allocated`` during the load is reported too
(it also sees temporary buffers of the load).

*Predicted* = ``llmviz.memory.predict_weights`` on the parameter breakdown that
``llmviz.models.hub_config`` computes from the model's *config* on the meta device: the
prediction never looks at the loaded weights.

Takes loaded models as arguments; never loads one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from llmviz.library import torch
from llmviz.memory import Component, ParamBreakdown, predict_weights
from llmviz.models.hub_config import breakdown_of_config

T = TypeVar("T")


@dataclass(frozen=True)
class Measured:
    parameters: int  # bytes
    buffers: int
    quant_state: int
    allocator_peak: int | None = None  # CUDA only: peak allocated bytes during the load

    @property
    def total(self) -> int:
        return self.parameters + self.buffers + self.quant_state


@dataclass(frozen=True)
class Comparison:
    model: str
    precision: str
    predicted: tuple[Component, ...]
    measured: Measured

    @property
    def predicted_bytes(self) -> float:
        return sum(c.bytes for c in self.predicted)

    @property
    def error_pct(self) -> float:
        """(predicted - measured) / measured x 100."""
        return 100.0 * (self.predicted_bytes - self.measured.total) / self.measured.total


def measure(model: Any, allocator_peak: int | None = None) -> Measured:
    """Bytes held by ``model``'s tensors, each storage counted once (see module docstring)."""
    seen: set[tuple[int, int]] = set()

    def size(tensors: Iterator[torch.Tensor]) -> int:
        total = 0
        for t in tensors:
            nbytes = t.numel() * t.element_size()
            key = (t.data_ptr(), nbytes)
            if nbytes and key not in seen:
                seen.add(key)
                total += nbytes
        return total

    params = size(p for p in model.parameters())
    buffers = size(b for b in model.buffers())
    state = size(t for m in model.modules() for t in _quant_state_tensors(m))
    return Measured(params, buffers, state, allocator_peak)


def _quant_state_tensors(module: Any) -> Iterator[torch.Tensor]:
    weight = getattr(module, "weight", None)
    for attr in ("CB", "SCB"):  # int8 before the first forward pass
        t = getattr(weight, attr, None)
        if isinstance(t, torch.Tensor):
            yield t
    state = getattr(module, "state", None)  # int8 after it: bitsandbytes moves CB/SCB here
    if state is not None and not isinstance(state, dict) and hasattr(state, "__dict__"):
        yield from (v for v in vars(state).values() if isinstance(v, torch.Tensor))
    qs = getattr(weight, "quant_state", None)  # 4-bit
    while qs is not None:
        yield from (v for v in vars(qs).values() if isinstance(v, torch.Tensor))
        qs = getattr(qs, "state2", None)  # double quantization: the absmax' own state


def rest_dtype(precision: str, device: str) -> str:
    """The dtype of what bitsandbytes leaves unquantized: ``llmviz.models`` loads it as fp32 on
    CPU and fp16 on CUDA (the ``dtype=`` it passes to ``from_pretrained``)."""
    if precision in ("fp32", "fp16", "bf16"):
        return precision
    return "fp32" if device == "cpu" else "fp16"


def predict_for(model: Any, precision: str, device: str) -> tuple[Component, ...]:
    """The calculator's prediction for ``model``'s config at ``precision`` (config only)."""
    breakdown: ParamBreakdown = breakdown_of_config(model.config)
    return predict_weights(breakdown, precision, rest_dtype(precision, device))


def compare(
    name: str, model: Any, precision: str, device: str, allocator_peak: int | None = None
) -> Comparison:
    """Prediction and measurement side by side. ``allocator_peak`` (CUDA, from ``cuda_load_peak``)
    is dropped when it is under half the tensors: the model came from the cache, nothing was loaded."""
    measured = measure(model)
    if allocator_peak is not None and allocator_peak >= measured.total / 2:
        measured = Measured(
            measured.parameters, measured.buffers, measured.quant_state, allocator_peak
        )
    return Comparison(name, precision, predict_for(model, precision, device), measured)


def cuda_load_peak(load: Callable[[], T]) -> tuple[T, int | None]:
    """Run ``load`` and return its result with the CUDA allocator's peak growth (None on CPU)."""
    if not torch.cuda.is_available():
        return load(), None
    torch.cuda.synchronize()
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    result = load()
    torch.cuda.synchronize()
    return result, int(torch.cuda.max_memory_allocated() - base)


def largest_error(errors: list[float]) -> int:
    """The index of the error furthest from 0 (the worst prediction), e.g. ``[0.1, -0.4, 0.2]`` -> 1.

    >>> largest_error([0.1, -0.4, 0.2])
    1
    """
    return max(range(len(errors)), key=lambda i: abs(errors[i]))
