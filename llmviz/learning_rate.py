"""The learning rate: θ ← θ − α∇L on a 2-D bowl, in a real tiny training run, over a schedule.

* The bowl: ``L(θ) = ½ θᵀHθ`` with ``H = R diag(λ₁, λ₂) Rᵀ`` (elongated when λ₁ ≠ λ₂, turned by
  the angle of R). ``descend`` iterates the update with the gradient ``∇L = Hθ``; on a quadratic
  this has the closed form ``θ_k = (I − αH)^k θ₀`` (``closed_form``): along each eigen-direction
  the distance to the minimum is multiplied by ``1 − αλᵢ`` per step, so the path converges iff
  ``0 < α < 2/λmax`` and zig-zags along a direction where ``αλᵢ > 1``. A path whose ``|θ|``
  passes ``LR_DIVERGE_FACTOR·|θ₀|`` stops there ("diverged after k steps"): it never crashes.
* The bigram run: a character-level bigram language model (a V×V table of logits, row = the
  previous character) trained with cross-entropy by plain SGD on the whole shipped corpus at
  every step (full batch: exactly θ ← θ − α∇L), several α's side by side. The references are
  the uniform model (``ln V`` nats per character) and the best any bigram table can do on this
  text: the empirical conditional entropy H(next | previous) from the counts (the table of
  log-frequencies attains it). A run whose loss becomes NaN or inf stops ("diverged at step k").
* The schedule: linear warm-up to a peak, then cosine decay to a fraction of it, from
  transformers (``get_cosine_with_min_lr_schedule_with_warmup`` on a dummy optimizer).

What it deliberately does not do: draw (``llmviz.plots.learning_rate``), mini-batches, momentum
or Adam (the point is the bare update), or train anything bigger than a bigram table.
Randomness (the sampled characters) comes from a local ``torch.Generator``; torch's thread count
is left as it is; torch work holds the compute lane (``lane.COMPUTE``) a chunk of steps at a time.
"""

from __future__ import annotations

import functools
import importlib
import math
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from llmviz import checks, config, lane, library
from llmviz.errors import UserError
from llmviz.library import torch

CORPORA = ("en", "ja")
ROLES = ("small", "good", "large")  # the three preset α's of a training run


# --- input checks ----------------------------------------------------------------------------
def check_alpha(value: object, name: str = "α") -> float:
    """A learning rate: any finite number above 0 (a huge one is allowed: it diverges)."""
    return checks.real(
        value, 0.0, sys.float_info.max, lo_open=True, key="labs_lr_alpha", name=name,
        message="The learning rate {name} must be a number above 0 (for example 0.1); got {value}.",
    )  # fmt: skip


def check_steps(value: object, hi: int) -> int:
    return checks.whole(
        value, 1, hi, key="labs_lr_steps",
        message="The number of steps must be a whole number from {lo} to {hi}; got {value}.",
    )  # fmt: skip


def check_corpus(value: object) -> str:
    return checks.one_of(
        value, CORPORA, key="labs_lr_corpus",
        message="Unknown training text '{value}'. Choose one of: {choices}.",
    )  # fmt: skip


# --- the 2-D bowl ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Bowl:
    """``L(θ) = ½ θᵀHθ``: curvature λ₁ along the bowl's first axis, λ₂ along the second, the
    axes turned by ``angle_deg`` from x and y. The minimum is at θ = 0 with L = 0."""

    curvatures: tuple[float, float]
    angle_deg: float

    @property
    def rotation(self) -> np.ndarray:
        """(2, 2); its columns are the eigen-directions of H."""
        a = math.radians(self.angle_deg)
        return np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])

    @property
    def hessian(self) -> np.ndarray:
        r = self.rotation
        return r @ np.diag(self.curvatures) @ r.T

    @property
    def lam_max(self) -> float:
        return max(self.curvatures)

    @property
    def lam_min(self) -> float:
        return min(self.curvatures)

    def loss(self, theta: np.ndarray) -> np.ndarray:
        """L at points (..., 2) -> (...)."""
        with np.errstate(over="ignore", invalid="ignore"):
            return 0.5 * np.einsum("...i,ij,...j->...", theta, self.hessian, theta)

    def gradient(self, theta: np.ndarray) -> np.ndarray:
        """∇L = Hθ for a point (2,)."""
        return self.hessian @ theta


def make_bowl(lam1: object, lam2: object, angle: object) -> Bowl:
    lo, hi = config.LR_CURVATURE_MIN, config.LR_CURVATURE_MAX
    lams = tuple(
        checks.real(
            v,
            lo,
            hi,
            key="labs_lr_curvature",
            name=name,
            message="The curvature {name} must be a number from {lo} to {hi}; got {value}.",
        )  # fmt: skip
        for v, name in ((lam1, "λ₁"), (lam2, "λ₂"))
    )
    turn = checks.real(
        angle, 0, 180, key="labs_lr_angle",
        message="The turn of the bowl must be from {lo} to {hi} degrees; got {value}.",
    )  # fmt: skip
    return Bowl((lams[0], lams[1]), turn)


def preset_alphas(bowl: Bowl) -> tuple[float, ...]:
    """The preset α's: ``LR_PRESET_FACTORS`` / λmax (too small, good, too large by default)."""
    return tuple(f / bowl.lam_max for f in config.LR_PRESET_FACTORS)


def best_alpha(bowl: Bowl) -> float:
    """The fastest constant α on this bowl, ``2 / (λmax + λmin)``: both directions then shrink
    by the same factor ``(λmax − λmin) / (λmax + λmin)`` per step."""
    return 2.0 / (bowl.lam_max + bowl.lam_min)


@dataclass(frozen=True)
class Path:
    """A gradient-descent path on a bowl."""

    alpha: float
    points: np.ndarray  # (k + 1, 2): θ₀ .. θ_k
    losses: np.ndarray  # (k + 1,)
    diverged_at: int | None  # the step whose θ passed the bound (the last point); None if none
    bound: float  # |θ| above which a path counts as diverged

    @property
    def steps(self) -> int:
        return len(self.points) - 1

    def converged(self, fraction: float = 0.01) -> bool:
        """Ended within ``fraction`` of the start's distance from the minimum."""
        if self.diverged_at is not None:
            return False
        start, end = (float(np.linalg.norm(p)) for p in (self.points[0], self.points[-1]))
        return end <= fraction * start


def descend(
    bowl: Bowl,
    alpha: object,
    steps: object,
    start: Sequence[float] = config.LR_START,
    factor: float = config.LR_DIVERGE_FACTOR,
) -> Path:
    """Iterate ``θ ← θ − α ∇L(θ)`` from ``start`` for ``steps`` steps, stopping at the first θ
    with ``|θ| > factor·|start|`` (or not finite: α = 1e300 overflows in one step)."""
    a = check_alpha(alpha)
    n = check_steps(steps, config.LR_GD_MAX_STEPS)
    theta = np.asarray(start, dtype=float)
    bound = factor * float(np.linalg.norm(theta))
    points, diverged = [theta], None
    with np.errstate(over="ignore", invalid="ignore"):
        for k in range(1, n + 1):
            theta = theta - a * bowl.gradient(theta)
            points.append(theta)
            if not (np.isfinite(theta).all() and np.linalg.norm(theta) <= bound):
                diverged = k
                break
    pts = np.array(points)
    return Path(a, pts, bowl.loss(pts), diverged, bound)


def closed_form(
    bowl: Bowl, alpha: float, k: int, start: Sequence[float] = config.LR_START
) -> np.ndarray:
    """θ_k = (I − αH)^k θ₀ = R diag((1 − αλᵢ)^k) Rᵀ θ₀, without iterating.

    >>> bowl = Bowl((10.0, 1.0), 0.0)  # steep along θ₁, flat along θ₂; θ₀ = (-4, 3)
    >>> [round(float(v), 6) for v in closed_form(bowl, 0.1, 1)]  # α = 1/λmax: θ₁ gone at once
    [0.0, 2.7]
    >>> descend(bowl, 0.21, 50).diverged_at  # α = 2.1/λmax: θ₁ is multiplied by -1.1 per step
    10
    """
    r = bowl.rotation
    factors = (1.0 - alpha * np.asarray(bowl.curvatures)) ** k
    return r @ (factors * (r.T @ np.asarray(start, dtype=float)))


# --- the bigram training run ---------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class Corpus:
    """A shipped text as character ids."""

    lang: str
    chars: tuple[str, ...]  # the vocabulary, sorted
    ids: np.ndarray  # (n,) int64, read-only

    @property
    def vocab(self) -> int:
        return len(self.chars)

    @property
    def pairs(self) -> int:
        return len(self.ids) - 1


@functools.lru_cache(maxsize=len(CORPORA))
def _read_corpus(lang: str) -> Corpus:
    text = (config.ASSETS / "tokenizer" / f"corpus_{lang}.txt").read_text(encoding="utf-8")
    chars = tuple(sorted(set(text)))
    index = {c: i for i, c in enumerate(chars)}
    ids = np.array([index[c] for c in text], dtype=np.int64)
    ids.flags.writeable = False
    return Corpus(lang, chars, ids)


def load_corpus(lang: object) -> Corpus:
    """The shipped tokenizer corpus in ``"en"`` or ``"ja"`` (``assets/tokenizer``)."""
    return _read_corpus(check_corpus(lang))


def bigram_counts(corpus: Corpus) -> np.ndarray:
    """(V, V) int64: how often character j follows character i."""
    counts = np.zeros((corpus.vocab, corpus.vocab), dtype=np.int64)
    np.add.at(counts, (corpus.ids[:-1], corpus.ids[1:]), 1)
    return counts


def conditional_entropy(counts: np.ndarray) -> float:
    """H(next | previous) in nats per character from bigram counts: the lowest cross-entropy any
    bigram table reaches on this text (the one whose rows are the observed frequencies)."""
    rows = counts.sum(axis=1, keepdims=True)
    seen = counts > 0
    p = counts[seen] / np.broadcast_to(rows, counts.shape)[seen]
    return float(-(counts[seen] * np.log(p)).sum() / counts.sum())


def uniform_loss(corpus: Corpus) -> float:
    """ln V: the loss of the untrained (all-zero, uniform) table."""
    return math.log(corpus.vocab)


@dataclass(frozen=True)
class RunView:
    """One α's run so far: ``losses[s]`` is the loss of the table after s updates."""

    alpha: float
    losses: np.ndarray  # (steps done + 1,) float64, all finite
    diverged_at: int | None  # the step whose loss was NaN or inf (that run stopped there)
    sample: str | None = None  # characters sampled from the trained table (the last snapshot)

    @property
    def final(self) -> float:
        return float(self.losses[-1])


@dataclass(frozen=True)
class Snapshot:
    step: int  # steps done
    steps: int  # steps asked for
    runs: tuple[RunView, ...]
    done: bool = False
    out_of_time: bool = False  # stopped at the compute budget before ``steps``
    seconds: float = 0.0  # compute time so far (time holding the lane)


@dataclass(eq=False)
class _Run:
    alpha: float
    blocks: list[Any]  # the (V, V) float32 logits as row blocks (``table_blocks``), requiring grad
    optimizer: Any
    losses: list[float] = field(default_factory=list)
    diverged_at: int | None = None

    def view(self, sample: str | None = None) -> RunView:
        return RunView(self.alpha, np.array(self.losses), self.diverged_at, sample)


_FLOAT32_MAX = float(np.finfo(np.float32).max)
#: torch splits an op over its threads from this many elements on (``at::internal::GRAIN_SIZE``)
_GRAIN = 32_768


def block_rows(vocab: int) -> int:
    """Rows per block of a V×V table so that every op on a block stays under torch's parallel
    grain and runs on the calling thread. Why: a parallel op waits for both of torch's threads,
    and with another process busy on one of the two cores each such wait lasts a scheduler
    slice. Measured here with one core kept busy: ``log_softmax`` of a 60×60 table took 12 ms
    instead of 0.004 ms, a whole training step 10-30 ms instead of 0.2-0.6 ms; in blocks of
    serial ops it stays at the idle speed. (torch's thread count is process-wide: not touched.)"""
    return max(1, _GRAIN // max(1, vocab) - 1)


def corpus_loss(blocks: Sequence[Any], counts: Sequence[Any]) -> Any:
    """The mean cross-entropy of a bigram table over every character pair of the text, from the
    pair counts: ``−Σᵢⱼ C[i, j] · log softmax(table[i])[j] / Σ C``, the table and the counts
    given as matching row blocks. The same number as ``cross_entropy(table[prev], next)`` over
    all pairs (tested), in V² instead of N·V work, and with only serial ops (``block_rows``)."""
    total = sum(c.sum() for c in counts)
    nll = 0.0
    for w, c in zip(blocks, counts, strict=True):
        z = w - w.detach().amax(dim=1, keepdim=True)  # the shift cancels in the softmax
        log_p = z - z.exp().sum(dim=1, keepdim=True).log()
        nll = nll - (c * log_p).sum()
    return nll / total


def _steps(run: _Run, counts: Sequence[Any], first: int, n: int) -> None:
    """``n`` SGD steps of one run; records the loss before each (stops at a non-finite one)."""
    for s in range(first, first + n):
        loss = corpus_loss(run.blocks, counts)
        value = float(loss.item())
        if not math.isfinite(value):
            run.diverged_at = s
            return
        run.losses.append(value)
        if run.alpha > _FLOAT32_MAX:  # torch refuses such an lr: α·∇L is inf in a float32 table
            run.diverged_at = s + 1
            return
        run.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        run.optimizer.step()  # table ← table − α · ∇loss


def _final_loss(run: _Run, counts: Sequence[Any], step: int) -> None:
    with torch.no_grad():
        value = float(corpus_loss(run.blocks, counts).item())
    if math.isfinite(value):
        run.losses.append(value)
    else:
        run.diverged_at = step


def sample_text(corpus: Corpus, table: Any, n: int, seed: int) -> str | None:
    """``n`` characters drawn from a bigram table (V, V) after the corpus's first character,
    with a local seeded generator; None when the table holds NaN or inf."""
    if not bool(torch.isfinite(table).all()):
        return None
    g = torch.Generator().manual_seed(int(seed))
    with torch.no_grad():
        probs = torch.softmax(table.detach().double(), dim=1)  # (V, V)
        out, prev = [corpus.chars[int(corpus.ids[0])]], int(corpus.ids[0])
        for _ in range(n):
            prev = int(torch.multinomial(probs[prev], 1, generator=g))
            out.append(corpus.chars[prev])
    return "".join(out)


def train(
    corpus: Corpus,
    alphas: Sequence[object],
    steps: object,
    every: int = config.LR_TRAIN_EVERY,
    budget_s: float = config.LR_TRAIN_SECONDS,
    sample_chars: int = config.LR_SAMPLE_CHARS,
    seed: int = config.LR_SAMPLE_SEED,
) -> Iterator[Snapshot]:
    """Train one zero-initialised bigram table per α on ``corpus`` (checked here, before any
    work); a generator of snapshots every ``every`` steps, the last with ``done`` and samples."""
    names = ("α₁", "α₂", "α₃", "α₄")
    checked = [check_alpha(a, names[i] if i < len(names) else "α") for i, a in enumerate(alphas)]
    n = check_steps(steps, config.LR_TRAIN_MAX_STEPS)
    return _train(corpus, checked, n, max(1, int(every)), float(budget_s), sample_chars, seed)


def _train(corpus, alphas, steps, every, budget_s, sample_chars, seed) -> Iterator[Snapshot]:
    rows = block_rows(corpus.vocab)
    counts = torch.tensor(bigram_counts(corpus), dtype=torch.float32).split(rows)
    runs = []
    for a in alphas:
        blocks = [torch.zeros(c.shape, requires_grad=True) for c in counts]
        runs.append(_Run(a, blocks, torch.optim.SGD(blocks, lr=a)))
    step, spent, out_of_time = 0, 0.0, False
    while step < steps and any(r.diverged_at is None for r in runs):
        n = min(every, steps - step)
        with lane.COMPUTE:  # a chunk of every run, then the class's other model work goes
            t0 = time.perf_counter()
            for r in runs:
                if r.diverged_at is None:
                    _steps(r, counts, step, n)
            spent += time.perf_counter() - t0
        step += n
        if step < steps and spent > budget_s:
            out_of_time = True
            break
        yield Snapshot(step, steps, tuple(r.view() for r in runs), seconds=spent)
    with lane.COMPUTE:
        samples = []
        for r in runs:
            if r.diverged_at is None:
                _final_loss(r, counts, step)
            diverged = r.diverged_at is not None  # its table is (or would be) inf / NaN
            table = torch.cat([b.detach() for b in r.blocks])
            samples.append(None if diverged else sample_text(corpus, table, sample_chars, seed))
    views = tuple(r.view(s) for r, s in zip(runs, samples, strict=True))
    yield Snapshot(step, steps, views, done=True, out_of_time=out_of_time, seconds=spent)


def presets(lang: object) -> tuple[float, float, float]:
    """The measured α's (too small, good, too large) for a corpus (``config.LR_TRAIN_ALPHAS``)."""
    return config.LR_TRAIN_ALPHAS[check_corpus(lang)]


# --- the warm-up + cosine schedule ---------------------------------------------------------------
@dataclass(frozen=True)
class Schedule:
    peak: float
    warmup: int
    total: int
    final_ratio: float
    steps: np.ndarray  # (P,) int64, sampled from 0 to total (the end of warm-up included)
    lrs: np.ndarray  # (P,) the learning rate at those steps


def check_schedule(
    peak: object, warmup: object, total: object, final_ratio: object
) -> tuple[float, int, int, float]:
    p = checks.real(
        peak, 0.0, sys.float_info.max, lo_open=True, key="labs_lr_peak",
        message="The peak learning rate must be a number above 0 (for example 2.5e-4); got {value}.",
    )  # fmt: skip
    t = checks.whole(
        total, 1, config.LR_SCHEDULE_MAX_STEPS, key="labs_lr_total",
        message="The length of the run must be a whole number of steps from {lo} to {hi}; got {value}.",
    )  # fmt: skip
    w = checks.whole(
        warmup, 0, config.LR_SCHEDULE_MAX_STEPS, key="labs_lr_warmup",
        message="The warm-up must be a whole number of steps from {lo} to {hi}; got {value}.",
    )  # fmt: skip
    if w >= t:
        raise UserError(
            f"The warm-up ({w:,} steps) must be shorter than the whole run ({t:,} steps): "
            "lower the warm-up or lengthen the run.",
            key="labs_lr_warmup_long", warmup=f"{w:,}", total=f"{t:,}",
        )  # fmt: skip
    r = checks.real(
        final_ratio, 0.0, 1.0, key="labs_lr_final",
        message="The final learning rate must be a fraction of the peak from {lo} to {hi}; got {value}.",
    )  # fmt: skip
    return p, w, t, r


@functools.cache
def _optimization() -> Any:
    library.ready()  # names resolved before use (see llmviz.library)
    with library.LOCK:
        return importlib.import_module("transformers.optimization")


def library_schedule(peak: float, warmup: int, total: int, final_ratio: float) -> Any:
    """transformers' warm-up + cosine scheduler (a ``LambdaLR``) driving a dummy SGD optimizer."""
    dummy = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([dummy], lr=peak)
    return _optimization().get_cosine_with_min_lr_schedule_with_warmup(
        optimizer, num_warmup_steps=warmup, num_training_steps=total, min_lr_rate=final_ratio
    )


def schedule(
    peak: object, warmup: object, total: object, final_ratio: object,
    points: int = config.LR_SCHEDULE_POINTS,
) -> Schedule:  # fmt: skip
    """The learning rate over a run, read from the library's schedule at ``points`` steps (its
    factor function: what the optimizer's lr is after that many ``scheduler.step()`` calls)."""
    p, w, t, r = check_schedule(peak, warmup, total, final_ratio)
    factor = library_schedule(p, w, t, r).lr_lambdas[0]
    grid = np.linspace(0, t, max(2, int(points))).round().astype(np.int64)
    steps = np.unique(np.concatenate([grid, [w]]))
    lrs = np.array([p * factor(int(s)) for s in steps])
    return Schedule(p, w, t, r, steps, lrs)
