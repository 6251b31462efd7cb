"""Scaling laws and compute: what training and running a model costs, and what loss it buys.

Pure arithmetic (numpy), no models, no plotting.

* Training compute ``C ≈ 6·N·D`` FLOPs for N parameters and D training tokens: per token, the
  forward pass costs ~2·N (one multiply and one add per weight) and the backward pass ~4·N.
  Inference (forward only) costs ``≈ 2·N`` FLOPs per generated token.
  Example: GPT-3, 6 × 175e9 × 300e9 = 3.15e23 FLOPs.
* Time on real hardware: ``C / (GPUs × peak FLOP/s × utilization)``; utilization (MFU, the
  fraction of peak a training run achieves) is typically 30-50 %.
* The Chinchilla loss fit (Hoffmann et al. 2022, "Training Compute-Optimal Large Language
  Models", eq. 10, approach 3): ``L(N, D) = A / N^α + B / D^β + L0`` with A = 406.4,
  B = 410.7, α = 0.34, β = 0.28, L0 = 1.69 (nats per token on their MassiveText data).
  Example: Gopher (280e9, 300e9) -> 1.993; Chinchilla (70e9, 1.4e12) -> 1.937.
* Compute-optimal allocation for a budget C (minimise L subject to 6·N·D = C), closed form:
  ``N_opt = G · (C/6)^(β/(α+β))``, ``D_opt = (C/6) / N_opt``, ``G = (αA / βB)^(1/(α+β))``.

What it deliberately does not do: model memory bandwidth-bound inference in detail, count
attention FLOPs (the 6·N·D rule ignores them; small at short context), or claim the fit holds far
outside the range it was fitted on (about 70M-16B parameters, 5B-500B tokens).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from llmviz import checks, config
from llmviz.errors import UserError
from llmviz.memory import GPUS, Gpu, weights_bytes

SECONDS_PER_DAY = 86_400.0


# --- hardware ------------------------------------------------------------------------------------
# One table of GPUs (memory, peak FLOP/s, bandwidth) serves the memory calculator and this lab:
# ``llmviz.memory.GPUS``.
DEFAULT_GPU = "h100"
DEFAULT_UTILIZATION = (
    0.4  # 40 % MFU: a well-tuned large run (PaLM reported 46 %, GPT-3 era ~20-30 %)
)


def get_gpu(key: object) -> Gpu:
    checks.one_of(
        key,
        GPUS,
        key="scaling_gpu_unknown",
        message="Unknown GPU '{name}'. Choose one of: {choices}.",
        name=checks.show(key, 40),
    )
    return GPUS[key]  # type: ignore[index]


# --- model presets -------------------------------------------------------------------------------
@dataclass(frozen=True)
class ModelPreset:
    key: str
    name: str
    n_params: float  # N
    n_tokens: float  # D (training tokens)
    source: str
    tokens_published: bool = True


PRESETS: dict[str, ModelPreset] = {
    p.key: p
    for p in (
        ModelPreset(
            "gpt2",
            "GPT-2 1.5B (2019)",
            1.5e9,
            10e9,
            "Radford et al. 2019. Tokens not published: assumed ~10B (about one pass over the "
            "40 GB WebText corpus).",
            tokens_published=False,
        ),
        ModelPreset("gpt3", "GPT-3 175B (2020)", 175e9, 300e9, "Brown et al. 2020, Table D.1"),
        ModelPreset("gopher", "Gopher 280B (2021)", 280e9, 300e9, "Rae et al. 2021"),
        ModelPreset("chinchilla", "Chinchilla 70B (2022)", 70e9, 1.4e12, "Hoffmann et al. 2022"),
        ModelPreset(
            "llama3-8b",
            "Llama 3 8B (2024)",
            8e9,
            15e12,
            "Meta 2024: 8B parameters, 15T+ tokens (far past Chinchilla-optimal, for cheap inference)",
        ),
    )
}


def get_preset(key: object) -> ModelPreset:
    checks.one_of(
        key,
        PRESETS,
        key="scaling_preset_unknown",
        message="Unknown model preset '{name}'. Choose one of: {choices}.",
        name=checks.show(key, 40),
    )
    return PRESETS[key]  # type: ignore[index]


# --- validation ----------------------------------------------------------------------------------
def _check_positive(value: object, what: str, key: str, limit: float) -> float:
    """A finite number from 1 to ``limit``: "not a positive number" (``0``, ``-5``, ``inf``,
    ``"lots"``) and "positive, but outside the range" (``0.5``, ``1e20``) are told apart."""
    v = checks.real(
        value,
        0,
        math.inf,
        lo_open=True,
        key=f"{key}_positive",
        message=f"{what} must be a positive number (got {{value}}).",
    )
    return checks.real(
        v,
        1,
        limit,
        key=f"{key}_range",
        message=f"{what} = {{value}} is outside the range this calculator accepts (1 to {{limit}}). "
        "Enter a realistic value, e.g. 7e9 parameters or 2e12 tokens.",
        limit=f"{limit:.0e}",
    )


def check_params(n_params: float) -> float:
    return _check_positive(
        n_params, "The number of parameters N", "scaling_n", config.SCALING_MAX_PARAMS
    )


def check_tokens(n_tokens: float) -> float:
    return _check_positive(
        n_tokens, "The number of training tokens D", "scaling_d", config.SCALING_MAX_TOKENS
    )


def check_budget(flops: float) -> float:
    return _check_positive(flops, "The compute budget C", "scaling_c", config.SCALING_MAX_FLOPS)


# --- compute -------------------------------------------------------------------------------------
def training_flops(n_params: float, n_tokens: float) -> float:
    """``6·N·D``. ``training_flops(175e9, 300e9) == 3.15e23``."""
    return 6.0 * check_params(n_params) * check_tokens(n_tokens)


def inference_flops_per_token(n_params: float) -> float:
    """``2·N`` (forward pass only). ``inference_flops_per_token(8e9) == 1.6e10``."""
    return 2.0 * check_params(n_params)


@dataclass(frozen=True)
class TrainingTime:
    flops: float
    gpu: Gpu
    n_gpus: int
    utilization: float

    @property
    def cluster_flops(self) -> float:
        """FLOP/s the whole cluster actually delivers."""
        return self.n_gpus * self.gpu.peak_flops * self.utilization

    @property
    def seconds(self) -> float:
        return self.flops / self.cluster_flops

    @property
    def days(self) -> float:
        return self.seconds / SECONDS_PER_DAY

    @property
    def gpu_hours(self) -> float:
        return self.seconds * self.n_gpus / 3600.0


def training_time(flops: float, gpu: str, n_gpus: int, utilization: float) -> TrainingTime:
    """Wall-clock time and GPU-hours for ``flops`` on ``n_gpus`` GPUs at ``utilization`` of peak.

    Example: 3.15e23 FLOPs on 1,024 A100s at 40 % -> 3.15e23 / (1024 × 312e12 × 0.4) s ≈ 28.5 days.
    """
    check_budget(flops)
    spec = get_gpu(gpu)
    u = checks.real(
        utilization,
        0,
        1,
        lo_open=True,
        key="scaling_utilization",
        message="Utilization is a fraction of peak between 0 and 1 (e.g. 0.4 for 40 %); "
        "got {value}.",
    )
    n = checks.whole(
        n_gpus,
        1,
        config.SCALING_MAX_GPUS,
        key="scaling_gpus",
        message="The GPU count must be a whole number from 1 to {limit}; got {value}.",
        limit=f"{config.SCALING_MAX_GPUS:,}",
    )
    return TrainingTime(flops=float(flops), gpu=spec, n_gpus=n, utilization=u)


def duration(days: float) -> tuple[float, str]:
    """``days`` in the unit that reads best: years from 365 days, days from 1, else hours.

    >>> duration(800), duration(28.5), duration(0.25)
    ((2.191780821917808, 'years'), (28.5, 'days'), (6.0, 'hours'))
    """
    if days >= 365:
        return days / 365, "years"
    if days >= 1:
        return days, "days"
    return days * 24, "hours"


def inference_tokens_per_second(
    n_params: float, gpu: str, utilization: float = 1.0, bytes_per_param: float = 2.0
) -> tuple[float, float]:
    """Upper bounds on generation speed for one sequence on one GPU: (compute-bound, memory-bound).

    Compute: peak × utilization / (2·N). Memory: every weight is read once per token at batch size 1,
    so bandwidth / (N × bytes per parameter). The smaller one wins; for one user it is memory.
    """
    n = check_params(n_params)
    spec = get_gpu(gpu)
    return spec.peak_flops * utilization / (2.0 * n), spec.bandwidth / (n * bytes_per_param)


@dataclass(frozen=True)
class Report:
    """Everything the scaling lab says about one (N, D) on a cluster, and the optimum of a budget."""

    n_params: float
    n_tokens: float
    time: TrainingTime
    inference_flops: float  # 2·N per generated token
    compute_tps: float  # tokens/s one GPU could compute for one user
    memory_tps: float  # tokens/s its memory bandwidth allows (reading every 16-bit weight)
    weights_bytes: float  # the 16-bit weights
    terms: tuple[float, float, float]  # the loss fit's model, data and irreducible terms
    optimum: Optimum

    @property
    def flops(self) -> float:
        return self.time.flops

    @property
    def loss(self) -> float:
        return sum(self.terms)

    @property
    def tokens_per_param(self) -> float:
        return self.n_tokens / self.n_params

    @property
    def equivalent_tokens(self) -> float:
        """Tokens one could generate for the training compute: 6·N·D / 2·N = 3·D."""
        return self.flops / self.inference_flops


def report(
    n_params: object,
    n_tokens: object,
    budget: object,
    gpu: object,
    n_gpus: object,
    utilization: object,
) -> Report:
    """Validate the lab's inputs and compute its numbers.

    >>> r = report(70e9, 1.4e12, 5.88e23, "h100", 1024, 0.4)
    >>> round(r.time.days, 1), r.equivalent_tokens == 3 * 1.4e12, round(r.loss, 3)
    (16.8, True, 1.937)
    """
    n, d = check_params(n_params), check_tokens(n_tokens)
    c = check_budget(budget)
    time = training_time(training_flops(n, d), gpu, n_gpus, utilization)  # type: ignore[arg-type]
    compute_tps, memory_tps = inference_tokens_per_second(n, time.gpu.key)
    return Report(
        n_params=n,
        n_tokens=d,
        time=time,
        inference_flops=inference_flops_per_token(n),
        compute_tps=compute_tps,
        memory_tps=memory_tps,
        weights_bytes=weights_bytes(n, 16),  # type: ignore[arg-type]
        terms=loss_terms(n, d),
        optimum=compute_optimal(c),
    )


# --- the Chinchilla loss fit ---------------------------------------------------------------------
@dataclass(frozen=True)
class LossFit:
    A: float = 406.4
    B: float = 410.7
    alpha: float = 0.34
    beta: float = 0.28
    L0: float = 1.69

    @property
    def a(self) -> float:
        """Exponent of C in N_opt: β / (α + β)."""
        return self.beta / (self.alpha + self.beta)

    @property
    def b(self) -> float:
        """Exponent of C in D_opt: α / (α + β)."""
        return self.alpha / (self.alpha + self.beta)

    @property
    def G(self) -> float:
        return (self.alpha * self.A / (self.beta * self.B)) ** (1.0 / (self.alpha + self.beta))


CHINCHILLA = LossFit()


def loss(n_params, n_tokens, fit: LossFit = CHINCHILLA):
    """``A/N^α + B/D^β + L0``, elementwise on arrays. ``loss(280e9, 300e9) ≈ 1.993`` (Gopher)."""
    n = np.asarray(n_params, dtype=float)
    d = np.asarray(n_tokens, dtype=float)
    if np.any(~np.isfinite(n)) or np.any(n <= 0) or np.any(~np.isfinite(d)) or np.any(d <= 0):
        raise UserError(
            "N and D must be positive numbers for the loss fit.", key="scaling_loss_positive"
        )
    out = fit.A / n**fit.alpha + fit.B / d**fit.beta + fit.L0
    return float(out) if out.ndim == 0 else out


def loss_terms(
    n_params: float, n_tokens: float, fit: LossFit = CHINCHILLA
) -> tuple[float, float, float]:
    """(model-size term A/N^α, data term B/D^β, irreducible L0): where the loss comes from."""
    n, d = check_params(n_params), check_tokens(n_tokens)
    return fit.A / n**fit.alpha, fit.B / d**fit.beta, fit.L0


@dataclass(frozen=True)
class Optimum:
    flops: float
    n_params: float
    n_tokens: float
    loss: float

    @property
    def tokens_per_param(self) -> float:
        return self.n_tokens / self.n_params


def compute_optimal(flops: float, fit: LossFit = CHINCHILLA) -> Optimum:
    """The (N, D) with the lowest fitted loss for ``6·N·D = flops`` (closed form, see module doc)."""
    c = check_budget(flops)
    n_opt = fit.G * (c / 6.0) ** fit.a
    d_opt = c / (6.0 * n_opt)
    return Optimum(c, n_opt, d_opt, loss(n_opt, d_opt, fit))


def iso_compute(
    flops: float, n_params: np.ndarray, fit: LossFit = CHINCHILLA
) -> tuple[np.ndarray, np.ndarray]:
    """Along a fixed budget: D = C / (6·N) and the fitted loss, for each N in ``n_params``."""
    c = check_budget(flops)
    n = np.asarray(n_params, dtype=float)
    d = c / (6.0 * n)
    return d, loss(n, d, fit)


def log_grid(lo: float, hi: float, points: int) -> np.ndarray:
    """``points`` values evenly spaced in log10 between lo and hi."""
    return np.logspace(math.log10(lo), math.log10(hi), points)


@dataclass(frozen=True)
class PresetSummary:
    preset: ModelPreset
    flops: float  # 6·N·D
    loss: float  # fitted loss at (N, D)
    optimum: Optimum  # the compute-optimal model for the same budget

    @property
    def tokens_per_param(self) -> float:
        return self.preset.n_tokens / self.preset.n_params


def summarize(key: str, fit: LossFit = CHINCHILLA) -> PresetSummary:
    """Compute, fitted loss and the compute-optimal alternative for one preset."""
    p = get_preset(key)
    c = training_flops(p.n_params, p.n_tokens)
    return PresetSummary(p, c, loss(p.n_params, p.n_tokens, fit), compute_optimal(c, fit))


@dataclass(frozen=True)
class Verdict:
    """The Chinchilla paper's comparison: about the same compute, a 4x smaller model, lower loss."""

    chinchilla: PresetSummary
    gopher: PresetSummary

    @property
    def flops_ratio(self) -> float:
        """Chinchilla's compute over Gopher's (5.88e23 / 5.04e23 = 1.17)."""
        return self.chinchilla.flops / self.gopher.flops


def chinchilla_vs_gopher() -> Verdict:
    return Verdict(summarize("chinchilla"), summarize("gopher"))


# --- curves for the charts -----------------------------------------------------------------------
@dataclass(frozen=True)
class IsoCurve:
    """Every (N, D) with 6·N·D = flops, and the loss the fit predicts along it."""

    flops: float
    n_params: np.ndarray  # (points,)
    n_tokens: np.ndarray  # (points,)
    loss: np.ndarray  # (points,)
    optimum: Optimum


def iso_curves(
    budgets: list[float], points: int = 121, span: float = 1e3, fit: LossFit = CHINCHILLA
) -> list[IsoCurve]:
    """One ``IsoCurve`` per budget, N from ``N_opt / span`` to ``N_opt × span`` (log spaced)."""
    out = []
    for c in budgets:
        opt = compute_optimal(c, fit)
        n = log_grid(opt.n_params / span, opt.n_params * span, points)
        d, losses = iso_compute(c, n, fit)
        out.append(IsoCurve(opt.flops, n, d, losses, opt))
    return out


def loss_grid(
    n_range: tuple[float, float],
    d_range: tuple[float, float],
    points: int = 100,
    fit: LossFit = CHINCHILLA,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """N values (points,), D values (points,) and L[d, n] (points, points) on log grids."""
    n = log_grid(*n_range, points)
    d = log_grid(*d_range, points)
    return n, d, loss(n[None, :], d[:, None], fit)


def optimal_frontier(
    c_range: tuple[float, float], points: int = 50, fit: LossFit = CHINCHILLA
) -> list[Optimum]:
    """The compute-optimal (N, D) for budgets across ``c_range``: a straight line on log axes."""
    return [compute_optimal(c, fit) for c in log_grid(*c_range, points)]
