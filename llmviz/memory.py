"""How much memory a model needs: parameters x bits, component by component.

The textbook rule is one line: ``bytes = parameters x bits / 8`` (GPT-2 1.5B: 6 / 3 / 1.5 / 0.75 GB
at 32 / 16 / 8 / 4 bits). Real loaders are less uniform, so with an architecture this module
also says *which* weights get quantized and what else is stored:

* bitsandbytes (through transformers) converts only ``nn.Linear`` layers (attention and MLP
  projections); embeddings, ``lm_head``, norms, biases and anything that is not an ``nn.Linear``
  (in transformers 5 the fused 3-D mixture-of-experts tensors) stay in the load dtype;
* quantization constants: int8 keeps one fp32 scale per output row (``SCB``); 4-bit keeps one
  fp32 absmax per block of 64 weights plus a 16-entry code table per layer; double quantization
  stores those absmax as 8-bit with one fp32 scale per 256 blocks and a 256-entry code table;
* the KV cache: 2 (K and V) x layers x KV heads x head_dim x tokens x batch x bytes - KV heads,
  not query heads (grouped-query attention), and sliding-window layers keep only the window;
* runtime overhead (CUDA context): an *estimate*, shown separately.

GB here is decimal (1 GB = 10^9 bytes), as in the textbook; a GPU's advertised "24 GB" is taken as
24 x 10^9 bytes (the card really has 24 GiB = 25.8 x 10^9, so card counts are slightly conservative).

Pure Python: no torch, no model loading. Counting parameters from a real config on the meta
device lives in ``llmviz.models.hub_config``; measuring a loaded model in ``llmviz.measure``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace

from llmviz import checks, config
from llmviz.errors import UserError

GB = 1e9
MB = 1e6


def gb_text(nbytes: float) -> str:
    """Decimal GB for a table: 3 significant digits, no scientific notation.

    >>> gb_text(350e9), gb_text(38_654_705_664), gb_text(2.5e8), gb_text(1e5), gb_text(0)
    ('350', '38.7', '0.25', '< 0.001', '0')
    """
    v = nbytes / GB
    if 0 < v < 0.001:
        return "< 0.001"
    return f"{v:,.0f}" if v >= 100 else f"{v:.3g}"


def mb_text(nbytes: float) -> str:
    """Decimal MB with two decimals: ``mb_text(134_515_008 * 2) == "269.03"``."""
    return f"{nbytes / MB:,.2f}"

# --- precisions ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Precision:
    key: str
    label: str
    bits: float  # storage bits per quantized weight (GGUF: effective bits per weight)
    kind: str  # "float" | "bnb8" | "bnb4" | "gguf"
    double_quant: bool = False
    note: str = ""

    @property
    def short(self) -> str:
        """The name in a chart or a dtype column: "int8", "nf4", "Q4_K_M"."""
        return self.label.removeprefix("GGUF ") if self.kind == "gguf" else self.key


def _gguf_bpw(gib_on_llama3_8b: float) -> float:
    """llama.cpp's quantize table gives whole-file sizes (GiB) for Llama-3-8B (8,030,261,248 params).

    >>> round(_gguf_bpw(4.58), 2)  # Q4_K_M
    4.9
    """
    return gib_on_llama3_8b * 2**30 * 8 / 8_030_261_248


PRECISIONS: dict[str, Precision] = {
    p.key: p
    for p in (
        Precision("fp32", "fp32", 32, "float"),
        Precision("fp16", "fp16", 16, "float"),
        Precision("bf16", "bf16", 16, "float"),
        Precision("int8", "int8 (bitsandbytes)", 8, "bnb8", note="LLM.int8: fp32 scale per row"),
        Precision("nf4", "nf4 (bitsandbytes)", 4, "bnb4", note="fp32 absmax per 64 weights"),
        Precision("nf4-dq", "nf4 + double quant", 4, "bnb4", True, "8-bit absmax per 64 weights"),
        Precision("fp4", "fp4 (bitsandbytes)", 4, "bnb4", note="fp32 absmax per 64 weights"),
        # GGUF block formats: Q8_0 = 32 int8 + one fp16 scale per block = 34 B / 32 weights.
        Precision("q8_0", "GGUF Q8_0", 34 * 8 / 32, "gguf", note="exact block size"),
        Precision("q6_k", "GGUF Q6_K", 210 * 8 / 256, "gguf", note="exact block size"),
        Precision(
            "q5_k_m", "GGUF Q5_K_M", _gguf_bpw(5.33), "gguf", note="mix; llama.cpp, Llama-3-8B"
        ),
        Precision(
            "q4_k_m", "GGUF Q4_K_M", _gguf_bpw(4.58), "gguf", note="mix; llama.cpp, Llama-3-8B"
        ),
        Precision("q4_0", "GGUF Q4_0", 18 * 8 / 32, "gguf", note="exact block size"),
        Precision(
            "q3_k_m", "GGUF Q3_K_M", _gguf_bpw(3.74), "gguf", note="mix; llama.cpp, Llama-3-8B"
        ),
        Precision("q2_k", "GGUF Q2_K", _gguf_bpw(2.96), "gguf", note="mix; llama.cpp, Llama-3-8B"),
    )
}

#: bytes per element of the dtypes that non-quantized parts and the KV cache can use
DTYPE_BYTES = {"fp32": 4, "fp16": 2, "bf16": 2, "fp8": 1}

BNB_BLOCK = 64  # bitsandbytes 4-bit: weights per absmax
BNB_NESTED_BLOCK = 256  # double quant: absmax values per second-level fp32 scale
BNB_CODE_ENTRIES = 16  # 4-bit code table (fp32) per layer
BNB_NESTED_CODE_ENTRIES = 256  # 8-bit code table for the quantized absmax (fp32) per layer


def get_precision(key: object) -> Precision:
    """The precision named ``key`` (exact keys only: ``"nf4"``, not ``"NF4"``)."""
    checks.one_of(
        key,
        PRECISIONS,
        key="mem_precision_unknown",
        message="Unknown precision '{precision}'. Choose one of: {choices}.",
        precision=checks.show(key, 20),
    )
    return PRECISIONS[key]  # type: ignore[index]


# --- the textbook formula -----------------------------------------------------------------------

_SUFFIX = {"": 1, "k": 1e3, "m": 1e6, "b": 1e9, "g": 1e9, "t": 1e12}
_NUMBER = re.compile(r"^([0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?)\s*([kmbgt]?)$")


def parse_param_count(value: object) -> int:
    """A parameter count from a number or text such as ``"1.5B"``, ``"175e9"``, ``"135M"``.

    >>> parse_param_count("1.5B"), parse_param_count("135m"), parse_param_count(7e9)
    (1500000000, 135000000, 7000000000)
    """
    if isinstance(value, bool):
        value = str(value)
    if isinstance(value, int | float):
        number = float(value)
    else:
        raw = str(value or "").strip().lower().replace(",", "").replace("_", "").replace(" ", "")
        match = _NUMBER.match(raw)
        if not match:
            raise UserError(
                f"'{str(value)[:40]}' is not a parameter count. Type a number such as 1.5B, "
                "175e9 or 135M (K = thousand, M = million, B = billion, T = trillion).",
                key="mem_params_not_number",
                value=str(value)[:40],
            )
        number = float(match.group(1)) * _SUFFIX[match.group(2)]
    if not math.isfinite(number) or number < 1:
        raise UserError(
            "The parameter count must be at least 1 (a model with 0 or fewer parameters "
            "has nothing to store). Try 1.5B.",
            key="mem_params_too_small",
        )
    if number > config.MEMORY_MAX_PARAMS:
        raise UserError(
            f"{number:.3g} parameters is far beyond any model built so far (the largest are a few "
            f"trillion). Enter at most {config.MEMORY_MAX_PARAMS:.0e}.",
            key="mem_params_too_large",
            value=f"{number:.3g}",
            limit=f"{config.MEMORY_MAX_PARAMS:.0e}",
        )
    return int(round(number))


# --- big counts in words ------------------------------------------------------------------------
# English groups digits by thousands (million, billion, trillion); Japanese by ten thousands
# (万 = 10^4, 億 = 10^8, 兆 = 10^12, 京 = 10^16): 175 billion is 1,750 億, never "175 十億".
_EN_UNITS = (
    (1e12, "trillion", "T"),
    (1e9, "billion", "B"),
    (1e6, "million", "M"),
    (1e3, "thousand", "K"),
)
_JA_UNITS = ((1e16, "京"), (1e12, "兆"), (1e8, "億"), (1e4, "万"))


def _significant(x: float, digits: int = 3) -> str:
    """``x`` to ``digits`` significant digits with thousands separators, never in e-notation.

    >>> _significant(1750.0), _significant(1.35), _significant(80.29), _significant(12345), _significant(0.5)
    ('1,750', '1.35', '80.3', '12,300', '0.5')
    """
    rounded = float(f"{x:.{digits}g}")
    if rounded == 0:
        return "0"
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(rounded))))
    out = f"{rounded:,.{decimals}f}"
    return out.rstrip("0").rstrip(".") if "." in out else out


def count_words(x: float, lang: str = "en", short: bool = False) -> str:
    """A big count as people say it, in ``lang`` (3 significant digits).

    English by thousands, ``short`` with the suffix; Japanese by 万 / 億 / 兆 / 京:

    >>> count_words(175e9), count_words(175e9, short=True), count_words(175e9, "ja")
    ('175 billion', '175B', '1,750 億')
    >>> count_words(1.5e9, "ja"), count_words(7e12, "ja"), count_words(135e6, "ja")
    ('15 億', '7 兆', '1.35 億')
    >>> count_words(999.9e9, short=True), count_words(1e16, short=True), count_words(512, "ja")
    ('1T', '10,000T', '512')
    """
    if not math.isfinite(x):
        return str(x)
    rounded = float(f"{x:.3g}")  # 999.9e9 is "1 trillion", not "1,000 billion"
    if lang == "ja":
        for size, unit in _JA_UNITS:
            if abs(rounded) >= size:
                return f"{_significant(rounded / size)} {unit}"
        return _significant(rounded)
    for size, word, suffix in _EN_UNITS:
        if abs(rounded) >= size:
            value = _significant(rounded / size)
            return f"{value}{suffix}" if short else f"{value} {word}"
    return _significant(rounded)


def weights_bytes(params: int, bits: float) -> float:
    """The textbook formula: parameters x bits / 8.

    >>> weights_bytes(1_500_000_000, 32) / GB
    6.0
    """
    return params * bits / 8


def cards_needed(model_bytes: float, card_gb: float, overhead_bytes: float = 0.0) -> int:
    """How many cards of ``card_gb`` (advertised, decimal) hold ``model_bytes`` when each card
    also spends ``overhead_bytes`` on its own runtime. 0 when nothing needs storing.

    >>> cards_needed(350e9, 24)  # GPT-3 at 16 bits on RTX 4090s
    15
    """
    usable = card_gb * GB - overhead_bytes
    if usable <= 0:
        raise UserError("The runtime overhead alone fills this card.", key="mem_card_too_small")
    if model_bytes <= 0:
        return 0
    # relative slack absorbs float noise (15.000000000001 cards is 15); any byte needs one card
    return max(1, math.ceil(model_bytes / usable * (1 - 1e-12)))


# --- GPUs: the one table both the memory tab and the scaling lab read --------------------------


@dataclass(frozen=True)
class Gpu:
    """A GPU as the vendor's datasheet states it."""

    key: str
    name: str
    short: str  # "RTX 4090": the name in a card-size label
    gb: float  # advertised memory, read as decimal GB
    peak_flops: float  # dense (no sparsity) 16-bit tensor-core FLOP/s, FP32 accumulate
    bandwidth: float  # memory bandwidth, bytes/s
    note: str = ""

    @property
    def memory_gb(self) -> float:
        return self.gb

    @property
    def peak_tflops(self) -> float:
        return self.peak_flops / 1e12


# Datasheet numbers; "dense" = without the 2:4 structured-sparsity doubling that headline
# figures often include.
GPUS: dict[str, Gpu] = {
    g.key: g
    for g in (
        # GeForce RTX 4060 (AD107): 30.2 TFLOPS BF16/FP16 tensor with FP32 accumulate (60.5 with
        # sparsity; the 242 "AI TOPS" are FP8 with sparsity), GDDR6 128-bit at 17 Gbps = 272 GB/s.
        Gpu(
            "rtx4060",
            "NVIDIA GeForce RTX 4060 8GB",
            "RTX 4060",
            8,
            30.23e12,
            272e9,
            "consumer card",
        ),
        # NVIDIA T4 datasheet: 65 TFLOPS mixed precision (FP16 x FP16 + FP32), 320 GB/s. Turing
        # has no bfloat16.
        Gpu("t4", "NVIDIA T4 16GB", "T4", 16, 65e12, 320e9, "FP16 (Turing has no bf16)"),
        # Ada Lovelace whitepaper (GeForce RTX 4090): peak BF16 tensor TFLOPS with FP32
        # accumulate 165.2 (330.4 with sparsity); GDDR6X 1,008 GB/s.
        Gpu(
            "rtx4090",
            "NVIDIA GeForce RTX 4090 24GB",
            "RTX 4090",
            24,
            165.2e12,
            1.008e12,
            "consumer card",
        ),
        # Tesla V100 SXM2 datasheet: 125 TFLOPS "deep learning" (FP16 tensor cores), 900 GB/s.
        Gpu("v100", "NVIDIA V100 SXM2 32GB", "V100", 32, 125e12, 900e9, "FP16 (Volta has no bf16)"),
        # L40S datasheet: BF16 tensor core 362.05 TFLOPS (733 with sparsity), GDDR6 864 GB/s.
        Gpu("l40s", "NVIDIA L40S 48GB", "L40S", 48, 362.05e12, 864e9),
        # A100 datasheet: BF16 tensor core 312 TFLOPS (624 with sparsity); 80GB SXM 2,039 GB/s.
        Gpu("a100", "NVIDIA A100 SXM 80GB", "A100", 80, 312e12, 2.039e12),
        # H100 datasheet, SXM5: BF16 tensor core 1,979 TFLOPS *with sparsity* -> 989.5 dense;
        # HBM3 3.35 TB/s.
        Gpu("h100", "NVIDIA H100 SXM 80GB", "H100", 80, 989.5e12, 3.35e12),
        # H200 datasheet, SXM: the H100's compute (1,979 with sparsity), 141 GB HBM3e, 4.8 TB/s.
        Gpu("h200", "NVIDIA H200 SXM 141GB", "H200", 141, 989.5e12, 4.8e12),
    )
}


@dataclass(frozen=True)
class CardSize:
    """One memory size and the GPUs of the table that have it (the calculator's columns)."""

    gb: float
    gpus: tuple[Gpu, ...]

    @property
    def label(self) -> str:
        """``"80 GB (A100 / H100)"``"""
        return f"{self.gb:g} GB ({' / '.join(g.short for g in self.gpus)})"


def card_sizes(gpus: dict[str, Gpu] = GPUS) -> tuple[CardSize, ...]:
    """The distinct memory sizes of ``gpus``, smallest first.

    >>> [c.label for c in card_sizes()][-2:]
    ['80 GB (A100 / H100)', '141 GB (H200)']
    """
    sizes = sorted({g.gb for g in gpus.values()})
    return tuple(CardSize(gb, tuple(g for g in gpus.values() if g.gb == gb)) for gb in sizes)


CARD_SIZES = card_sizes()


TEXTBOOK_BITS = (32, 16, 8, 4)


@dataclass(frozen=True)
class TextbookRow:
    name: str
    params: int
    gb: tuple[float, ...]  # one per TEXTBOOK_BITS
    rtx4090_at_16bit: int


def textbook_row(name: str, params: int) -> TextbookRow:
    """Weights-only sizes at 32 / 16 / 8 / 4 bits and how many 24 GB cards the 16-bit weights need."""
    gbs = tuple(weights_bytes(params, b) / GB for b in TEXTBOOK_BITS)
    cards = cards_needed(weights_bytes(params, 16), config.MEMORY_TEXTBOOK_CARD_GB)
    return TextbookRow(name, params, gbs, cards)


# --- architecture -> parameters by component ----------------------------------------------------


@dataclass(frozen=True)
class Architecture:
    """What a model's config says about its shapes (the numbers in ``config.json``)."""

    vocab_size: int
    hidden_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    intermediate_size: int
    tied_embeddings: bool
    gated_mlp: bool = True  # SwiGLU / GeGLU: gate, up and down projections
    attention_bias: bool = False  # Qwen2: biases on q, k, v
    norms_per_layer: int = 2  # Gemma 3: 4 (pre and post norms around attention and MLP)
    qk_norm: bool = False  # Gemma 3: an RMSNorm of head_dim on queries and on keys
    num_experts: int = 0  # 0 = dense MLP
    experts_per_token: int = 0
    sliding_window: int | None = None  # tokens a sliding-window layer keeps in its KV cache
    sliding_layers: int = 0  # how many layers use the sliding window
    max_context: int = 0  # trained context length
    buffers: int = 0  # non-parameter tensors (rotary tables), elements


@dataclass(frozen=True)
class LinearGroup:
    """``count`` nn.Linear weights of shape (out_features, in_features): what bitsandbytes converts."""

    out_features: int
    in_features: int
    count: int

    @property
    def params(self) -> int:
        return self.out_features * self.in_features * self.count


@dataclass(frozen=True)
class ParamBreakdown:
    """Parameters by what a loader does with them."""

    embeddings: int  # token embedding table (shared with lm_head when tied)
    lm_head: int  # 0 when tied to the embeddings
    linear: tuple[LinearGroup, ...]  # converted by bitsandbytes
    linear_bias: int  # biases of those layers (bitsandbytes keeps them unquantized)
    norms: int
    experts: int = 0  # fused 3-D MoE expert tensors: not nn.Linear, so bitsandbytes skips them
    other: int = 0  # e.g. the MoE router, anything else
    buffers: int = 0  # elements of non-parameter tensors (rotary tables), stored as fp32

    @property
    def linear_params(self) -> int:
        return sum(g.params for g in self.linear)

    @property
    def linear_share(self) -> float:
        """The share of the parameters that bitsandbytes quantizes (the nn.Linear layers)."""
        return self.linear_params / self.total if self.total else 0.0

    @property
    def total(self) -> int:
        return (
            self.embeddings
            + self.lm_head
            + self.linear_params
            + self.linear_bias
            + self.norms
            + self.experts
            + self.other
        )


def analytic_breakdown(arch: Architecture) -> ParamBreakdown:
    """Count parameters from the shapes alone (tested equal to transformers' meta-device count).

    SmolLM2-135M: 49152 x 576 embeddings (tied), 30 layers of q, k, v, o and gate, up, down:
    >>> b = analytic_breakdown(Architecture(49152, 576, 30, 9, 3, 64, 1536, True))
    >>> b.total
    134515008
    """
    d, L, hd = arch.hidden_size, arch.num_layers, arch.head_dim
    q, kv = arch.num_heads * hd, arch.num_kv_heads * hd
    attention = [LinearGroup(q, d, L), LinearGroup(kv, d, 2 * L), LinearGroup(d, q, L)]
    mlp_in = 2 if arch.gated_mlp else 1
    mlp = [
        LinearGroup(arch.intermediate_size, d, mlp_in * L),
        LinearGroup(d, arch.intermediate_size, L),
    ]
    experts = other = 0
    if arch.num_experts:
        experts = arch.num_experts * sum(g.params for g in mlp)
        other = L * arch.num_experts * d  # router
        mlp = []
    linear = tuple(_merge(attention + mlp))
    norms = L * arch.norms_per_layer * d + d + (2 * L * hd if arch.qk_norm else 0)
    return ParamBreakdown(
        embeddings=arch.vocab_size * d,
        lm_head=0 if arch.tied_embeddings else arch.vocab_size * d,
        linear=linear,
        linear_bias=(q + 2 * kv) * L if arch.attention_bias else 0,
        norms=norms,
        experts=experts,
        other=other,
        buffers=arch.buffers,
    )


def _merge(groups: list[LinearGroup]) -> list[LinearGroup]:
    """Merge groups of equal shape (q_proj and o_proj are both d x d in most models)."""
    counts: dict[tuple[int, int], int] = {}
    for g in groups:
        counts[(g.out_features, g.in_features)] = (
            counts.get((g.out_features, g.in_features), 0) + g.count
        )
    return [LinearGroup(o, i, c) for (o, i), c in counts.items()]


# --- parameters -> bytes ------------------------------------------------------------------------


@dataclass(frozen=True)
class Component:
    key: str  # embeddings | lm_head | linear | experts | norms_bias | other | constants | buffers | weights | kv_cache | overhead
    params: int
    bytes: float
    dtype: str
    quantized: bool = False
    estimate: bool = False  # a rough figure, not a count


def quant_constant_bytes(groups: tuple[LinearGroup, ...], precision: Precision) -> float:
    """Bytes of bitsandbytes' quantization state for these layers (the exact rule; see module doc).

    One 576 x 576 layer: int8 keeps 576 fp32 row scales; nf4 keeps 5184 fp32 absmax + 16 codes:
    >>> g = (LinearGroup(576, 576, 1),)
    >>> quant_constant_bytes(g, PRECISIONS["int8"]), quant_constant_bytes(g, PRECISIONS["nf4"])
    (2304, 20800)
    """
    if precision.kind == "bnb8":
        return sum(4 * g.out_features * g.count for g in groups)
    if precision.kind != "bnb4":
        return 0
    total = 0
    for g in groups:
        blocks = math.ceil(g.out_features * g.in_features / BNB_BLOCK)
        if precision.double_quant:
            nested = math.ceil(blocks / BNB_NESTED_BLOCK)
            per_layer = blocks + 4 * nested + 4 * BNB_NESTED_CODE_ENTRIES + 4  # + fp32 offset
        else:
            per_layer = 4 * blocks
        total += (per_layer + 4 * BNB_CODE_ENTRIES) * g.count
    return total


def predict_weights(
    breakdown: ParamBreakdown, precision: str, rest_dtype: str = "fp16"
) -> tuple[Component, ...]:
    """Bytes of every stored part of the model at ``precision``.

    ``rest_dtype`` is the load dtype of what bitsandbytes leaves unquantized (``dtype=`` in
    ``from_pretrained``; fp16 is usual on GPUs, llmviz loads fp32 on CPU). Float precisions store
    everything in that float type; GGUF stores every matrix (embeddings too) at its bits per
    weight and 1-D tensors (norms, biases) in fp32.

    >>> b = ParamBreakdown(embeddings=1000, lm_head=0, linear=(LinearGroup(64, 64, 2),), linear_bias=0, norms=64)
    >>> [(c.key, c.bytes, c.dtype) for c in predict_weights(b, "nf4", "fp32")]
    [('linear', 4096, 'nf4'), ('embeddings', 4000, 'fp32'), ('norms_bias', 256, 'fp32'), ('constants', 640, 'fp32')]
    """
    p = get_precision(precision)
    if rest_dtype not in DTYPE_BYTES:
        raise UserError(f"Unknown dtype '{rest_dtype}'.", key="mem_dtype_unknown", dtype=rest_dtype)
    if p.kind == "float":
        rest, rest_label = DTYPE_BYTES[p.key], p.key
    elif p.kind == "gguf":
        rest, rest_label = 4, "fp32"
    else:
        rest, rest_label = DTYPE_BYTES[rest_dtype], rest_dtype
    gguf = p.kind == "gguf"
    short = p.short

    def matrix(key: str, params: int) -> Component:
        """A weight matrix that is not an nn.Linear: quantized by GGUF only."""
        if gguf:
            return Component(key, params, params * p.bits / 8, short, True)
        return Component(key, params, params * rest, rest_label)

    parts = [
        Component(
            "linear",
            breakdown.linear_params,
            _linear_bytes(breakdown, p),
            short,
            p.kind != "float",
        ),
        matrix("embeddings", breakdown.embeddings),
    ]
    if breakdown.lm_head:
        parts.append(matrix("lm_head", breakdown.lm_head))
    if breakdown.experts:
        parts.append(matrix("experts", breakdown.experts))
    small = breakdown.norms + breakdown.linear_bias + breakdown.other
    parts.append(Component("norms_bias", small, small * rest, rest_label))
    constants = quant_constant_bytes(breakdown.linear, p)
    if constants:
        parts.append(
            Component("constants", 0, constants, "uint8 + fp32" if p.double_quant else "fp32")
        )
    if breakdown.buffers:
        parts.append(Component("buffers", 0, 4 * breakdown.buffers, "fp32"))
    return tuple(parts)


def _linear_bytes(breakdown: ParamBreakdown, p: Precision) -> float:
    if p.kind == "float":
        return breakdown.linear_params * DTYPE_BYTES[p.key]
    if p.kind == "bnb4":  # two 4-bit values per byte, per layer (odd sizes round up)
        return sum(
            math.ceil(g.out_features * g.in_features / 2) * g.count for g in breakdown.linear
        )
    return breakdown.linear_params * p.bits / 8


# --- KV cache, overhead, the whole picture ------------------------------------------------------


def check_context_batch(context: object, batch: object) -> tuple[int, int]:
    """Validate a context length and a batch size from the UI (numbers or numeric text).

    >>> check_context_batch("8192", 2.0)
    (8192, 2)
    """
    ctx = _whole_number(
        context,
        "context",
        "context length",
        config.MEMORY_MAX_CONTEXT,
        "Context length must be between 1 and {limit} tokens (got {value}). "
        "It is the number of tokens the KV cache holds: prompt + answer.",
    )
    bsz = _whole_number(
        batch,
        "batch",
        "batch size",
        config.MEMORY_MAX_BATCH,
        "Batch size must be between 1 and {limit} (got {value}): "
        "it is how many sequences are generated at once.",
        limit_text=str(config.MEMORY_MAX_BATCH),
    )
    return ctx, bsz


def _whole_number(
    value: object, what: str, name: str, limit: int, range_message: str, limit_text: str = ""
) -> int:
    """A whole number from 1 to ``limit``. Two messages: "not a whole number at all" (``3.5``,
    ``inf``, ``"lots"``) and "a whole number, but outside the range" (``0``, ``10**9``)."""
    n = checks.whole(
        value,
        -math.inf,  # type: ignore[arg-type] - any size: the range has its own message
        math.inf,  # type: ignore[arg-type]
        key=f"mem_{what}_not_number",
        message=f"The {name} must be a whole number (got '{{value}}').",
    )
    limit_text = limit_text or f"{limit:,}"
    return checks.whole(
        n, 1, limit, key=f"mem_{what}_range", message=range_message, limit=limit_text
    )


def kv_cache_bytes(arch: Architecture, context: int, batch: int, kv_dtype: str = "fp16") -> int:
    """K and V for every layer, KV head and token: 2 x layers x kv_heads x head_dim x tokens x batch x bytes.

    Sliding-window layers keep at most ``sliding_window`` tokens. Llama 3 8B, 8192 tokens, fp16:
    >>> arch = Architecture(128256, 4096, 32, 32, 8, 128, 14336, False)
    >>> kv_cache_bytes(arch, 8192, 1) / 2**30
    1.0
    """
    context, batch = check_context_batch(context, batch)
    if kv_dtype not in DTYPE_BYTES:
        raise UserError(f"Unknown dtype '{kv_dtype}'.", key="mem_dtype_unknown", dtype=kv_dtype)
    per_token_layer = 2 * arch.num_kv_heads * arch.head_dim * DTYPE_BYTES[kv_dtype]
    sliding = arch.sliding_layers if arch.sliding_window else 0
    window = min(context, arch.sliding_window or context)
    tokens = (arch.num_layers - sliding) * context + sliding * window
    return per_token_layer * tokens * batch


@dataclass(frozen=True)
class Estimate:
    """Everything one model needs on one device at one precision."""

    precision: str
    components: tuple[Component, ...]

    @property
    def model_bytes(self) -> float:
        """Weights, constants and KV cache: what has to be spread over the cards."""
        return sum(c.bytes for c in self.components if c.key != "overhead")

    @property
    def weights_bytes(self) -> float:
        return sum(c.bytes for c in self.components if c.key not in ("overhead", "kv_cache"))

    @property
    def overhead_bytes(self) -> float:
        return sum(c.bytes for c in self.components if c.key == "overhead")

    @property
    def total_bytes(self) -> float:
        return self.model_bytes + self.overhead_bytes

    def component(self, key: str) -> Component | None:
        return next((c for c in self.components if c.key == key), None)


def estimate(
    precision: str,
    *,
    params: int | None = None,
    breakdown: ParamBreakdown | None = None,
    arch: Architecture | None = None,
    context: int = 4096,
    batch: int = 1,
    kv_dtype: str = "fp16",
    rest_dtype: str = "fp16",
    overhead_gb: float | None = None,
) -> Estimate:
    """The full estimate: weights by component (``breakdown``) or by the textbook formula
    (``params`` only), the KV cache when the architecture is known, and the CUDA overhead estimate.
    """
    p = get_precision(precision)
    if breakdown is not None:
        parts = list(predict_weights(breakdown, precision, rest_dtype))
    elif params is not None:
        parts = [
            Component(
                "weights",
                params,
                weights_bytes(params, p.bits),
                p.short,
                p.kind != "float",
            )
        ]
        if p.kind == "bnb4":  # the absmax rule does not depend on the layout
            parts.append(
                Component(
                    "constants",
                    0,
                    quant_constant_bytes((LinearGroup(params, 1, 1),), p) - 4 * BNB_CODE_ENTRIES,
                    "fp32",
                    estimate=True,
                )
            )
    else:
        raise ValueError("estimate() needs params or breakdown")
    if arch is not None:
        parts.append(
            Component("kv_cache", 0, kv_cache_bytes(arch, context, batch, kv_dtype), kv_dtype)
        )
    else:
        check_context_batch(context, batch)
    overhead = config.MEMORY_CUDA_OVERHEAD_GB if overhead_gb is None else overhead_gb
    if overhead:
        parts.append(Component("overhead", 0, overhead * GB, "-", estimate=True))
    return Estimate(precision, tuple(parts))


@dataclass(frozen=True)
class GpuFit:
    card: CardSize
    cards: int  # how many are needed (each with its own overhead)
    fits_one: bool


def gpu_fit(est: Estimate) -> tuple[GpuFit, ...]:
    """For each card size: how many cards hold the model (each card pays the overhead once)."""
    out = []
    for card in CARD_SIZES:
        usable = card.gb * GB - est.overhead_bytes
        cards = cards_needed(est.model_bytes, card.gb, est.overhead_bytes) if usable > 0 else 0
        out.append(GpuFit(card, cards, usable > 0 and cards <= 1))
    return tuple(out)


def check_precisions(keys: object) -> tuple[str, ...]:
    """The ticked precisions, validated, in the calculator's order.

    >>> check_precisions(["nf4", "fp32"])
    ('fp32', 'nf4')
    """
    chosen = (
        [k for k in (keys or []) if isinstance(k, str)] if isinstance(keys, list | tuple) else []
    )
    if not chosen:
        raise UserError("Tick at least one precision to compare.", key="mem_precisions_empty")
    for k in chosen:
        get_precision(k)
    return tuple(k for k in PRECISIONS if k in chosen)


#: What the calculator counts. "weights": parameters x bits only, the textbook's table (GPT-3 at
#: 16 bits: 350 GB = 15 RTX 4090s). "serving": also the KV cache and each card's runtime
#: overhead, what running the model needs (GPT-3 at 8,192 tokens: 17). "auto": weights for the
#: textbook's own models and for a bare parameter count, serving for real architectures.
SCOPES = ("auto", "weights", "serving")


def counts_weights_only(scope: object, textbook: bool) -> bool:
    """Whether ``scope`` sizes the weights alone; ``textbook``: the model comes from the textbook
    (or is a bare parameter count, sized by the textbook's formula).

    >>> counts_weights_only("auto", True), counts_weights_only("auto", False)
    (True, False)
    """
    checks.one_of(
        scope,
        SCOPES,
        key="mem_scope_unknown",
        message="Unknown choice '{value}' of what to count. Choose one of: {choices}.",
    )
    return scope == "weights" or (scope == "auto" and textbook)


@dataclass(frozen=True)
class Sizing:
    """A model sized at several precisions, for the calculator's table, plot and GPU counts."""

    name: str
    params: int
    arch: Architecture | None  # the attention shape, when known (KV cache)
    breakdown: ParamBreakdown | None  # None: parameter count only (textbook formula)
    estimates: tuple[Estimate, ...]
    kv_bytes: int | None  # None when the attention shape is unknown
    kv_bytes_without_gqa: int | None  # the same cache with one KV head per query head
    weights_only: bool = False  # the estimates leave out the KV cache and the runtime overhead
    context: int = 4096
    batch: int = 1

    @property
    def component_keys(self) -> tuple[str, ...]:
        """Every component of any estimate, in the order they first appear."""
        keys: list[str] = []
        for est in self.estimates:
            keys += [c.key for c in est.components if c.key not in keys]
        return tuple(keys)

    def stack_gb(self) -> list[tuple[str, list[float]]]:
        """(component, GB in each estimate) for a stacked bar chart (0 where an estimate has none)."""
        return [
            (key, [sum(c.bytes for c in e.components if c.key == key) / GB for e in self.estimates])
            for key in self.component_keys
        ]

    @property
    def beyond_trained_context(self) -> bool:
        a = self.arch
        return a is not None and bool(a.max_context) and self.context > a.max_context

    @property
    def window_applies(self) -> bool:
        """Sliding-window layers hold fewer tokens than the context."""
        a = self.arch
        return (
            a is not None
            and bool(a.sliding_window and a.sliding_layers)
            and self.context > (a.sliding_window or 0)
        )


def size_model(
    name: str,
    precisions: object,
    *,
    params: int | None = None,
    breakdown: ParamBreakdown | None = None,
    arch: Architecture | None = None,
    context: object = 4096,
    batch: object = 1,
    kv_dtype: str = "fp16",
    rest_dtype: str = "fp16",
    weights_only: bool = False,
) -> Sizing:
    """Every precision of ``precisions`` sized. ``weights_only`` counts what the textbook counts
    (the stored weights); otherwise the KV cache (when ``arch`` is known) and the runtime
    overhead per card are added. The KV cache is computed either way, for the summary."""
    keys = check_precisions(precisions)
    ctx, bsz = check_context_batch(context, batch)
    total = breakdown.total if breakdown is not None else params
    if total is None:
        raise ValueError("size_model() needs params or breakdown")
    ests = tuple(
        estimate(
            k,
            params=total,
            breakdown=breakdown,
            arch=None if weights_only else arch,
            context=ctx,
            batch=bsz,
            kv_dtype=kv_dtype,
            rest_dtype=rest_dtype,
            overhead_gb=0 if weights_only else None,
        )
        for k in keys
    )
    kv = mha = None
    if arch is not None:
        kv = kv_cache_bytes(arch, ctx, bsz, kv_dtype)
        mha = kv_cache_bytes(replace(arch, num_kv_heads=arch.num_heads), ctx, bsz, kv_dtype)
    return Sizing(name, int(total), arch, breakdown, ests, kv, mha, weights_only, ctx, bsz)


@dataclass(frozen=True)
class ServingGap:
    """Cards of one size for the weights alone (the textbook's count), with the KV cache, and
    with the runtime overhead that every card pays: why serving needs more than the table says."""

    precision: str
    card: CardSize
    weights: int
    with_kv: int
    serving: int
    kv_bytes: int | None  # None: the attention shape is unknown, so is the cache
    overhead_bytes: float


def serving_gap(s: Sizing, card_gb: float = config.MEMORY_TEXTBOOK_CARD_GB) -> ServingGap:
    """The gap for the sizing's 16-bit estimate (the textbook's precision; else its first one).

    GPT-3 in bf16 with an 8,192-token KV cache (38.7 GB) on 24 GB cards: 15 -> 17 -> 17.
    """
    est = next((e for e in s.estimates if e.precision in ("bf16", "fp16")), s.estimates[0])
    card = next(c for c in CARD_SIZES if c.gb == card_gb)
    weights = est.weights_bytes
    kv = s.kv_bytes or 0
    overhead = config.MEMORY_CUDA_OVERHEAD_GB * GB
    return ServingGap(
        est.precision,
        card,
        cards_needed(weights, card.gb),
        cards_needed(weights + kv, card.gb),
        cards_needed(weights + kv, card.gb, overhead),
        s.kv_bytes,
        overhead,
    )
