"""What quantization does to a weight matrix, step by step.

Methods, from worst to best (each returns the *dequantized* weights, i.e. what the model computes with):

* ``naive``: round every weight to the nearest b-bit integer (-2^(b-1) .. 2^(b-1)-1) with no
  scaling. Trained weights are mostly |w| < 0.1, so almost all of them become 0 - the textbook's
  "3-bit integers turn small weights into zeros".
* ``absmax`` scaling: divide by ``scale = max|w| / (2^(b-1)-1)`` first, round, multiply back.
  One scale per tensor is ruined by a single outlier; one per row (LLM.int8's rule for weights) is
  better; one per block of 64 consecutive weights (the 4-bit bitsandbytes layout) is best, at the
  price of one fp32 scale per 64 weights (0.5 bit per weight).
* ``nf4``: per block of 64, normalize by absmax, then snap to the nearest of 16 *NormalFloat*
  levels (bitsandbytes' table, spaced like the quantiles of a normal distribution, so more levels
  sit where most weights are). Hand-written here and tested equal to ``bitsandbytes.functional``.

Error numbers: relative error ``||w - q|| / ||w||`` and SQNR = ``10 log10(sum w^2 / sum (w - q)^2)``
dB (higher is better; each extra bit buys about 6 dB), and the share of non-zero weights that became 0.

numpy in, frozen dataclasses out; the caller passes the weight matrix (see ``weight_matrix``).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from llmviz import checks, config
from llmviz.errors import UserError

BLOCK = 64
METHODS = ("naive", "tensor", "row", "block", "nf4")
MIN_BITS, MAX_BITS = 2, 8


def check_bits(bits: object) -> int:
    """A whole number of bits from ``MIN_BITS`` to ``MAX_BITS``.

    >>> check_bits("3"), check_bits(4.0)
    (3, 4)
    """
    return checks.whole(
        bits,
        MIN_BITS,
        MAX_BITS,
        key="mem_bits_range",
        message="Bits must be a whole number from {lo} to {hi} (got '{value}').",
    )


def naive(w: np.ndarray, bits: int) -> np.ndarray:
    """Round to b-bit integers with no scale.

    >>> naive(np.array([0.03, -0.4, 0.6, 2.7], dtype=np.float32), 3).tolist()
    [0.0, -0.0, 1.0, 3.0]
    """
    lo, hi = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    return np.clip(np.round(w), lo, hi).astype(np.float32)


def absmax(w: np.ndarray, bits: int, granularity: str) -> np.ndarray:
    """Symmetric absmax quantization with one scale per ``granularity`` ("tensor", "row", "block").

    One scale for [0.01, -0.02, 0.5] at 3 bits: scale = 0.5 / 3, so the two small weights round to 0:
    >>> absmax(np.array([[0.01, -0.02, 0.5]], dtype=np.float32), 3, "tensor").tolist()
    [[0.0, -0.0, 0.5]]
    """
    qmax = 2 ** (bits - 1) - 1
    groups = _groups(w, granularity)  # (n_groups, group_size)
    scale = np.abs(groups).max(axis=1, keepdims=True) / qmax
    safe = np.where(scale == 0, 1.0, scale)
    q = np.clip(np.round(groups / safe), -qmax, qmax)
    return _ungroup((q * scale).astype(np.float32), w)


def _groups(w: np.ndarray, granularity: str) -> np.ndarray:
    if granularity == "tensor":
        return w.reshape(1, -1)
    if granularity == "row":
        return w.reshape(w.shape[0], -1)
    if granularity == "block":  # consecutive weights of the flattened matrix, like bitsandbytes
        flat = w.reshape(-1)
        pad = (-flat.size) % BLOCK
        return np.concatenate([flat, np.zeros(pad, flat.dtype)]).reshape(-1, BLOCK)
    raise ValueError(f"unknown granularity {granularity!r}")


def _ungroup(groups: np.ndarray, like: np.ndarray) -> np.ndarray:
    return groups.reshape(-1)[: like.size].reshape(like.shape)


@lru_cache(maxsize=1)
def nf4_levels() -> np.ndarray:
    """bitsandbytes' 16 NormalFloat-4 levels in [-1, 1] (its own table, on the CPU)."""
    from bitsandbytes.functional import get_4bit_type

    return get_4bit_type("nf4", device="cpu").numpy().astype(np.float32)


def nf4(w: np.ndarray) -> np.ndarray:
    """NF4 by hand: per block of 64, divide by absmax, snap to the nearest NF4 level, scale back."""
    levels = nf4_levels()
    blocks = _groups(w.astype(np.float32), "block")
    amax = np.abs(blocks).max(axis=1, keepdims=True)
    normed = blocks / np.where(amax == 0, 1.0, amax)
    # nearest level = which interval between neighbouring midpoints the value falls in
    idx = np.searchsorted((levels[1:] + levels[:-1]) / 2, normed)
    return _ungroup((levels[idx] * amax).astype(np.float32), w)


# --- error numbers ------------------------------------------------------------------------------


@dataclass(frozen=True)
class QuantResult:
    method: str  # one of METHODS
    bits: int
    dequantized: np.ndarray  # same shape as the input
    rel_error: float
    sqnr_db: float
    zero_share: float  # of the weights that were not 0, the share that became 0
    distinct: int  # distinct values in the result
    scale_bits_per_weight: float  # storage of the scales, spread over the weights


def errors(w: np.ndarray, q: np.ndarray) -> tuple[float, float, float]:
    """(relative error, SQNR in dB, share of non-zero weights turned into 0).

    >>> [round(x, 3) for x in errors(np.array([1.0, 2.0]), np.array([1.0, 0.0]))]
    [0.894, 0.969, 0.5]
    """
    w64, q64 = w.astype(np.float64), q.astype(np.float64)
    signal, noise = float((w64**2).sum()), float(((w64 - q64) ** 2).sum())
    rel = math.sqrt(noise / signal) if signal else 0.0
    sqnr = math.inf if noise == 0 else (10 * math.log10(signal / noise) if signal else -math.inf)
    nonzero = w64 != 0
    zeros = float(((q64 == 0) & nonzero).sum() / max(nonzero.sum(), 1))
    return rel, sqnr, zeros


def quantize(w: np.ndarray, method: str, bits: int) -> QuantResult:
    """Quantize ``w`` (2-D) with ``method`` at ``bits`` (NF4 is always 4 bits)."""
    bits = check_bits(bits)
    if method == "naive":
        q, overhead = naive(w, bits), 0.0
    elif method in ("tensor", "row", "block"):
        q = absmax(w, bits, method)
        per = {"tensor": w.size, "row": w.shape[1] if w.ndim == 2 else w.size, "block": BLOCK}[
            method
        ]
        overhead = 32 / per
    elif method == "nf4":
        bits, q, overhead = 4, nf4(w), 32 / BLOCK
    else:
        raise UserError(
            f"Unknown method '{method}'. Choose one of: {', '.join(METHODS)}.", key=None
        )
    rel, sqnr, zeros = errors(w, q)
    return QuantResult(method, bits, q, rel, sqnr, zeros, int(np.unique(q).size), overhead)


def quantize_all(w: np.ndarray, bits: int) -> tuple[QuantResult, ...]:
    return tuple(quantize(w, m, bits) for m in METHODS)


def histogram(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts of ``values`` in bins ``edges`` (values outside are clipped into the end bins)."""
    clipped = np.clip(values.reshape(-1), edges[0], edges[-1])
    return np.histogram(clipped, bins=edges)[0]


def histogram_edges(w: np.ndarray, bins: int = 120) -> np.ndarray:
    """``bins + 1`` equal bins from ``-max|w|`` to ``max|w|``: symmetric, so 0 sits on a bin edge
    at even ``bins`` and the spike of weights rounded to 0 is easy to see (all-zero ``w``: -1..1).

    >>> histogram_edges(np.array([[0.5, -2.0]]), bins=4).tolist()
    [-2.0, -1.0, 0.0, 1.0, 2.0]
    """
    amax = float(np.abs(w).max()) if w.size else 0.0
    amax = amax if amax > 0 else 1.0
    return np.linspace(-amax, amax, bins + 1)


def magnitudes(w: np.ndarray) -> tuple[float, float]:
    """(largest |w|, median |w|): the outlier that one scale per tensor must cover, and a typical
    weight.

    >>> magnitudes(np.array([[0.01, -0.02, 0.03, 1.0]]))
    (1.0, 0.025)
    """
    a = np.abs(w.astype(np.float64))
    return float(a.max()), float(np.median(a))


def lab_layer_slider(num_layers: int, preferred: int = 3) -> tuple[int, int]:
    """(largest layer index, the layer to show) for a model with ``num_layers`` layers.

    >>> lab_layer_slider(30), lab_layer_slider(2)
    ((29, 3), (1, 1))
    """
    last = max(num_layers - 1, 0)
    return last, min(preferred, last)


def patch(w: np.ndarray, rows: int = 16, cols: int = 32) -> np.ndarray:
    """The top-left ``rows x cols`` corner: small enough to see single weights as pixels."""
    return w[:rows, :cols]


# --- picking a real weight matrix ---------------------------------------------------------------

_LAYER = re.compile(r"(?:^|\.)layers\.(\d+)\.(.+)$")


def matrix_names(model: Any) -> tuple[int, tuple[str, ...]]:
    """(number of layers, names of the Linear weight matrices inside a layer), e.g. "self_attn.q_proj"."""
    from torch import nn

    layers, names = set(), []
    for full, module in model.named_modules():
        match = _LAYER.search(full)
        if match and isinstance(module, nn.Linear):
            layers.add(int(match.group(1)))
            if match.group(2) not in names:
                names.append(match.group(2))
    return len(layers), tuple(names)


def check_layer(model: Any, layer: object) -> int:
    """The index of a layer of ``model``: a whole number from 0 to its last layer."""
    n_layers, _ = matrix_names(model)
    return checks.whole(
        layer,
        0,
        n_layers - 1,
        key="mem_layer_range",
        message="Layer must be between 0 and {limit}.",
        limit=str(n_layers - 1),
    )


def weight_matrix(model: Any, layer: object, name: str) -> np.ndarray:
    """The weight of ``layers.<layer>.<name>`` as float32 numpy (at most MEMORY_LAB_MAX_ELEMENTS;
    bigger matrices keep their first rows)."""
    index = check_layer(model, layer)
    _, names = matrix_names(model)
    checks.one_of(
        name,
        names,
        key="mem_matrix_unknown",
        message="Unknown matrix '{name}'. Choose one of: {choices}.",
        name=checks.show(name, 40),
    )
    module = next(m for f, m in model.named_modules() if f.endswith(f"layers.{index}.{name}"))
    w = module.weight.detach()
    if not w.is_floating_point():  # bitsandbytes packs quantized weights as int8 / uint8
        raise UserError(
            "Pick a model loaded in fp32/bf16/fp16 for the lab.", key="mem_lab_needs_float"
        )
    rows = max(1, min(w.shape[0], config.MEMORY_LAB_MAX_ELEMENTS // max(w.shape[1], 1)))
    return w[:rows].float().cpu().numpy()
