"""The "GPU vs CPU" lab: square every number of a random list, timed on this machine.

Methods: a pure Python loop over a list of Python floats, numpy vectorised, torch with one
thread and with every core this process may use, and the GPU (torch CUDA, synchronised) where
there is one. ``measure`` times them for growing list sizes (timeit-style autorange with the
injected timer, fastest of a few repeats) and yields each result as it comes, so a class sees the
curves grow; a method stops growing once a call would exceed its time budget or memory cap, and
what was not run says why, with an extrapolated time that is marked as such. Every method's
squares are checked against numpy's on a sample, so a broken method cannot report a fast time.
``crossovers`` and ``speedup`` read the measurements; ``hyakumasu`` is the 百ます計算 picture
(a 10 x 10 grid of additions shared by N workers).

Each measurement holds the compute lane (``llmviz.lane.COMPUTE``), so no model work runs while
torch's process-wide thread count is changed; it is restored before the lane is released.
What this module does not do: draw (``llmviz.plots.speed``) or word anything (``llmviz.ui``).
"""

from __future__ import annotations

import contextlib
import math
import os
import platform
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from llmviz import checks, config, lane
from llmviz.errors import UserError

METHODS = ("python", "numpy", "torch_1", "torch_all", "cuda")
CPU_METHODS = METHODS[:4]
BASELINE = "python"
#: Bytes per number while a method runs, input and output together: a Python float is a 24-byte
#: object plus an 8-byte pointer in its list; float32 arrays take 4.
BYTES_PER_NUMBER = {"python": 64, "numpy": 8, "torch_1": 8, "torch_all": 8, "cuda": 8}
SAMPLE = 64  # numbers of each result checked against numpy's (plus the first and the last)


@dataclass(frozen=True)
class Measurement:
    """One method at one size: ``seconds`` for one call squaring the whole list (the fastest
    of ``repeats`` repeats of ``loops`` calls each)."""

    method: str
    size: int
    seconds: float
    repeats: int
    loops: int

    @property
    def ns_per_number(self) -> float:
        return self.seconds / self.size * 1e9


@dataclass(frozen=True)
class Skipped:
    """Not run. ``reason``: "time" (a call would exceed the budget), "cap" (the Python list
    limit), "memory", "no_gpu" or "run_budget" (the click's time was up). ``estimate_s`` is
    extrapolated from the method's last measurement (linear in size), never measured."""

    method: str
    size: int
    reason: str
    estimate_s: float | None
    bytes: int


Result = Measurement | Skipped


class WrongResult(RuntimeError):
    """A method's squares differ from numpy's: its time must not be reported."""


# --- input ---------------------------------------------------------------------------------------
def check_methods(methods: Any) -> tuple[str, ...]:
    """The chosen methods in the lab's order, each once; refuses an empty or unknown choice."""
    if methods is None or (isinstance(methods, (list, tuple)) and not methods):
        raise UserError(
            "Tick at least one method to time (for example the Python loop and numpy).",
            key="labs_speed_no_method",
        )
    if not isinstance(methods, (list, tuple)):
        methods = [methods]
    for m in methods:
        checks.one_of(
            m, METHODS, key="labs_speed_unknown_method",
            message="Unknown method “{value}”. Tick methods from the list: {choices}.",
        )  # fmt: skip
    return tuple(m for m in METHODS if m in methods)


def check_max_size(value: Any) -> int:
    return checks.whole(
        value, config.SPEED_MIN_SIZE, config.SPEED_MAX_SIZE, key="labs_speed_max_size",
        message="The largest list size must be a whole number from {lo:,} to {hi:,}; got {value}. "
        "Try 10000000 (10^7).",
    )  # fmt: skip


def check_workers(value: Any) -> int:
    return checks.whole(
        value, 1, 100, key="labs_speed_workers",
        message="The number of workers must be a whole number from {lo} to {hi}; got {value}.",
    )  # fmt: skip


def sizes_up_to(max_size: int) -> tuple[int, ...]:
    """Powers of ten from 10 up to ``max_size``, and ``max_size`` itself.

    >>> sizes_up_to(1000), sizes_up_to(5000)
    ((10, 100, 1000), (10, 100, 1000, 5000))
    """
    sizes = [10**k for k in range(1, 10) if 10**k <= max_size]
    return tuple(sizes if sizes[-1] == max_size else [*sizes, max_size])


# --- the machine ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Machine:
    cpu: str
    cores: int  # logical CPUs this process may use
    gpu: str | None
    numpy: str  # versions
    torch: str


def all_threads() -> int:
    """The logical CPUs this process may run on (what "all threads" means here)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def cpu_name(cpuinfo: str = "/proc/cpuinfo") -> str:
    """The CPU's model name (Linux), else what ``platform`` knows."""
    try:
        with open(cpuinfo, encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("model name") and ":" in line:
                    name = line.split(":", 1)[1].strip()
                    if name:
                        return name
    except OSError:
        pass
    return platform.processor() or platform.machine() or "?"


def gpu_available() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def machine(gpu: bool | None = None) -> Machine:
    """What the times were measured on (``gpu``: whether to look for one; default: ask torch)."""
    import torch

    gpu = gpu_available() if gpu is None else gpu
    name = torch.cuda.get_device_name(0) if gpu else None
    return Machine(cpu_name(), all_threads(), name, np.__version__, torch.__version__)


# --- the methods ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Ready:
    run: Callable[[], Any]  # one call: squares the whole list, returns the result
    read: Callable[[Any, np.ndarray], np.ndarray]  # float32 values of a result at these indices


def _python(x: np.ndarray) -> _Ready:
    xs = x.tolist()  # Python floats (exact copies of the float32 values)

    def run() -> list[float]:
        out = []
        for v in xs:
            out.append(v * v)
        return out

    # the product of two float32 values is exact in a double: rounded to float32, it is numpy's
    return _Ready(run, lambda out, idx: np.array([out[i] for i in idx], dtype=np.float32))


def _numpy(x: np.ndarray) -> _Ready:
    out = np.empty_like(x)  # written in place: the time is the squaring, not the allocation
    return _Ready(lambda: np.multiply(x, x, out=out), lambda r, idx: r[idx])


def _torch(x: np.ndarray, device: str) -> _Ready:
    import torch

    tx = torch.from_numpy(x).to(device)  # on the CPU this shares numpy's memory
    out = torch.empty_like(tx)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)

    def run() -> Any:
        torch.mul(tx, tx, out=out)
        sync()  # a GPU call returns before the kernel is done: wait, or the time is a lie
        return out

    return _Ready(run, lambda r, idx: r[torch.from_numpy(idx).to(r.device)].cpu().numpy())


KERNELS: dict[str, Callable[[np.ndarray], _Ready]] = {
    "python": _python,
    "numpy": _numpy,
    "torch_1": lambda x: _torch(x, "cpu"),
    "torch_all": lambda x: _torch(x, "cpu"),
    "cuda": lambda x: _torch(x, "cuda"),
}


def threads_for(method: str) -> int | None:
    """torch's intra-op threads while ``method`` is timed (None: not a torch CPU method)."""
    return {"torch_1": 1, "torch_all": all_threads()}.get(method)


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """torch's (process-wide) thread count set to ``n`` inside the block, restored after it."""
    if n is None:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


# --- timing --------------------------------------------------------------------------------------
def _data(size: int, seed: int) -> np.ndarray:
    """``size`` random float32 numbers in [-10, 10): the same list for every method."""
    x = np.random.default_rng([seed, size]).random(size, dtype=np.float32)  # (size,)
    x *= 20
    x -= 10
    return x


def _sample(size: int, seed: int) -> np.ndarray:
    idx = np.random.default_rng([seed, size, 1]).integers(0, size, SAMPLE)
    return np.unique(np.concatenate([[0, size - 1], idx]))


def _verify(method: str, ready: _Ready, result: Any, x: np.ndarray, idx: np.ndarray) -> None:
    got, want = ready.read(result, idx), x[idx] * x[idx]
    if got.shape != want.shape or not np.array_equal(got, want):
        raise WrongResult(f"{method} did not compute the squares numpy computes")


def _repeat(run: Callable[[], Any], loops: int, timer: Callable[[], float]) -> tuple[float, Any]:
    result = None
    start = timer()
    for _ in range(loops):
        result = run()
    return timer() - start, result


def time_method(
    method: str,
    x: np.ndarray,
    *,
    timer: Callable[[], float] = time.perf_counter,
    min_time_s: float = config.SPEED_MIN_TIME_S,
    repeats: int = config.SPEED_REPEATS,
    seed: int = config.SPEED_SEED,
) -> Measurement:
    """Time ``method`` on ``x`` (with torch's thread count of that method): one untimed call
    (warm-up), calls per repeat grown 1, 2, 5, 10, 20... until a repeat lasts ``min_time_s``
    (bounded by ``config.SPEED_MAX_LOOPS`` and ``SPEED_MAX_BATCH_ELEMENTS``), then the fastest
    of ``repeats`` repeats. The first and the last results are checked against numpy's."""
    size = int(x.shape[0])
    idx = _sample(size, seed)
    ready = KERNELS[method](x)
    with torch_threads(threads_for(method)):
        _verify(method, ready, ready.run(), x, idx)
        loops, steps = 1, (2, 2.5, 2)  # 1, 2, 5, 10, 20, 50, ...
        elapsed, result = _repeat(ready.run, loops, timer)
        k = 0
        while elapsed < min_time_s:
            more = int(loops * steps[k % 3])
            if more > config.SPEED_MAX_LOOPS or more * size > config.SPEED_MAX_BATCH_ELEMENTS:
                break
            loops, k = more, k + 1
            elapsed, result = _repeat(ready.run, loops, timer)
        times = [elapsed]
        for _ in range(max(1, repeats) - 1):
            elapsed, result = _repeat(ready.run, loops, timer)
            times.append(elapsed)
        _verify(method, ready, result, x, idx)
    return Measurement(method, size, min(times) / loops, len(times), loops)


def _estimate(last: Measurement | None, size: int) -> float | None:
    return None if last is None else last.seconds * size / last.size


def _why_not(
    method: str, size: int, last: Measurement | None, budget_s: float, gpu: bool
) -> str | None:
    if method == "cuda" and not gpu:
        return "no_gpu"
    if method == "python" and size > config.SPEED_PYTHON_MAX_SIZE:
        return "cap"
    if BYTES_PER_NUMBER[method] * size > config.SPEED_MAX_BYTES:
        return "memory"
    estimate = _estimate(last, size)
    if estimate is not None and estimate > budget_s:
        return "time"
    return None


def measure(
    methods: Sequence[str],
    sizes: Iterable[int],
    budget_s: float = config.SPEED_CALL_BUDGET_S,
    *,
    timer: Callable[[], float] = time.perf_counter,
    run_budget_s: float = config.SPEED_RUN_BUDGET_S,
    lock: contextlib.AbstractContextManager[Any] | None = None,
    gpu: bool | None = None,
    seed: int = config.SPEED_SEED,
    min_time_s: float = config.SPEED_MIN_TIME_S,
    repeats: int = config.SPEED_REPEATS,
) -> Iterator[Result]:
    """A ``Measurement`` or ``Skipped`` for each size (outer, growing) and method (inner).

    A method whose call would take longer than ``budget_s`` at the next size (extrapolated from
    its last measurement) stops growing; after ``run_budget_s`` (by ``timer``) nothing new
    starts. Each measurement holds ``lock`` (default: the compute lane) and releases it before
    it is yielded, so closing the generator between results leaves nothing held or changed.
    """
    lock = lane.COMPUTE if lock is None else lock
    gpu = gpu_available() if gpu is None and "cuda" in methods else bool(gpu)
    start = timer()
    last: dict[str, Measurement] = {}
    for size in sizes:
        x = None
        for method in methods:
            reason = _why_not(method, size, last.get(method), budget_s, gpu)
            if reason is None and timer() - start > run_budget_s:
                reason = "run_budget"
            if reason is not None:
                yield Skipped(method, size, reason, _estimate(last.get(method), size),
                              BYTES_PER_NUMBER[method] * size)  # fmt: skip
                continue
            with lock:  # the list is made in the lane too: nothing of ours runs beside a timing
                if x is None:
                    x = _data(size, seed)
                m = time_method(method, x, timer=timer, min_time_s=min_time_s,
                                repeats=repeats, seed=seed)  # fmt: skip
            last[method] = m
            yield m


# --- reading the measurements --------------------------------------------------------------------
@dataclass(frozen=True)
class Crossover:
    """``size``: the smallest measured size from which ``method`` beat ``baseline`` at every
    size measured for both (None: not faster at the largest of them, or nothing to compare)."""

    method: str
    baseline: str
    size: int | None
    compared: tuple[int, ...]  # the sizes measured for both, ascending


@dataclass(frozen=True)
class Speedup:
    method: str
    baseline: str
    size: int  # the largest size measured for both
    seconds: float  # the method's time per call there
    baseline_seconds: float

    @property
    def ratio(self) -> float:
        """Baseline time / method time (above 1: the method is faster)."""
        return self.baseline_seconds / self.seconds if self.seconds > 0 else math.inf


def _times(results: Iterable[Result], method: str) -> dict[int, float]:
    return {r.size: r.seconds for r in results if isinstance(r, Measurement) and r.method == method}


def crossover(results: Sequence[Result], method: str, baseline: str = BASELINE) -> Crossover:
    """Where ``method`` overtakes ``baseline`` for good, from the measurements.

    >>> rs = [Measurement("numpy", n, t, 3, 1) for n, t in ((10, 5.0), (100, 1.0), (1000, 2.0))]
    >>> rs += [Measurement("python", n, t, 3, 1) for n, t in ((10, 1.0), (100, 2.0), (1000, 9.0))]
    >>> crossover(rs, "numpy").size
    100
    """
    a, b = _times(results, method), _times(results, baseline)
    common = tuple(sorted(set(a) & set(b)))
    size = None
    for n in reversed(common):
        if a[n] >= b[n]:
            break
        size = n
    return Crossover(method, baseline, size, common)


def crossovers(results: Sequence[Result]) -> list[Crossover]:
    """Each measured method against the Python loop, and all-threads torch against 1 thread."""
    measured = {r.method for r in results if isinstance(r, Measurement)}
    out = [crossover(results, m) for m in METHODS if m != BASELINE and m in measured]
    if {"torch_1", "torch_all"} <= measured:
        out.append(crossover(results, "torch_all", "torch_1"))
    return out


def speedup(results: Sequence[Result], method: str, baseline: str = BASELINE) -> Speedup | None:
    a, b = _times(results, method), _times(results, baseline)
    common = set(a) & set(b)
    if not common:
        return None
    n = max(common)
    return Speedup(method, baseline, n, a[n], b[n])


# --- 百ます計算: 100 additions shared by N workers ------------------------------------------------
@dataclass(frozen=True)
class Hyakumasu:
    """A 10 x 10 grid of additions (a shuffled digit down the side plus one along the top),
    filled in reading order: at each step every worker fills the next empty cell, so cell i is
    filled at step ``i // workers + 1`` by worker ``i % workers``."""

    workers: int
    steps: int
    done_at: np.ndarray  # (10, 10) int: the step (1-based) at which each cell is filled
    worker: np.ndarray  # (10, 10) int: who filled it (0-based)
    rows: np.ndarray  # (10,) int: the digit of each row
    cols: np.ndarray  # (10,) int: the digit of each column

    @property
    def sums(self) -> np.ndarray:
        """(10, 10) int: the answers, row digit + column digit."""
        return self.rows[:, None] + self.cols[None, :]

    def filled_after(self, step: int) -> np.ndarray:
        """(10, 10) bool: the cells filled once ``step`` steps are done."""
        return self.done_at <= step

    @property
    def speedup(self) -> float:
        """Against one worker (100 steps)."""
        return self.done_at.size / self.steps


def hyakumasu(workers: Any, seed: int = config.SPEED_SEED) -> Hyakumasu:
    """The grid for ``workers`` (1 to 100); the digits come from ``seed``.

    >>> [hyakumasu(w).steps for w in (1, 2, 7, 10, 100)]
    [100, 50, 15, 10, 1]
    """
    w, side = check_workers(workers), 10
    rng = np.random.default_rng([seed, 100])
    cells = np.arange(side * side)
    done_at = (cells // w + 1).reshape(side, side)
    worker = (cells % w).reshape(side, side)
    rows, cols = rng.permutation(side), rng.permutation(side)
    for a in (done_at, worker, rows, cols):
        a.flags.writeable = False
    return Hyakumasu(w, math.ceil(side * side / w), done_at, worker, rows, cols)
