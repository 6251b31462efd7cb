"""The compute lane: one forward pass at a time, first come first served, and views in batches.

A 2-core machine computes one forward pass at a time best (two at once only slow each other
down), but a class sends forty requests at once. So:

* ``COMPUTE`` is a first-come, first-served lock (``FairLock``) that every forward pass of a
  shared model takes (``share`` installs it as forward hooks). gradio may run several model
  requests at the same time; their forward passes take turns. A generation holds the lane for one
  token at a time, so a student asking for one view waits for at most one step of each stream
  ahead of them, never for a whole generation.
* ``last_logits`` is the next-token distribution after a prompt, for the views: requests that
  wait for the lane together run as ONE left-padded batch (``Batcher``), and results are kept per
  model (an LRU of read-only tensors), so the class's identical presets cost one forward pass.

This module does not load models (``llmviz.models``) and does not sample (``llmviz.sampling``).
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from llmviz import config, library

log = logging.getLogger(__name__)

#: Told where a request waiting for the lane stands: ``report(ahead, eta_s)`` with the turns
#: still ahead of it (the running one included) and an estimate in seconds; ``(0, 0.0)`` once
#: its turn has come. Set per request with ``reporting(...)`` (the UI shows it in the user's
#: language); a thread without one waits silently.
_WAIT_REPORT: contextvars.ContextVar[Callable[[int, float], None] | None] = contextvars.ContextVar(
    "llmviz_lane_wait_report", default=None
)


@contextlib.contextmanager
def reporting(report: Callable[[int, float], None] | None) -> Iterator[None]:
    """Within this block, a wait for ``COMPUTE`` (or any ``FairLock``) of this thread longer
    than ``config.LANE_REPORT_AFTER_S`` is told to ``report`` (see ``_WAIT_REPORT``)."""
    token = _WAIT_REPORT.set(report)
    try:
        yield
    finally:
        _WAIT_REPORT.reset(token)


class FairLock:
    """A lock granted in the order it was asked for (a ticket lock), re-entrant for its holder.

    ``threading.Lock`` is not fair: a generation thread that releases it and asks again a moment
    later usually wins over threads that have waited for seconds.

    It also keeps the mean length of a turn (an exponential moving average of hold times), so a
    waiting request can be told its place and an estimated wait (``reporting``).
    """

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._next = 0  # next ticket to hand out
        self._serving = 0  # ticket allowed in
        self._owner: int | None = None
        self._depth = 0
        self._since = 0.0  # when the holder got its turn
        self.turn_s = 0.1  # mean turn length, seconds (a first guess until turns are measured)

    def acquire(self) -> None:
        me = threading.get_ident()
        report = _WAIT_REPORT.get()
        with self._cond:
            if self._owner == me:
                self._depth += 1
                return
            ticket = self._next
            self._next += 1
            if report is None:
                while self._serving != ticket:
                    self._cond.wait()
            else:
                self._wait_reporting(ticket, report)
            self._owner, self._depth = me, 1
            self._since = time.monotonic()

    def _wait_reporting(self, ticket: int, report: Callable[[int, float], None]) -> None:
        """Wait for ``ticket`` (the condition held), telling ``report`` each new place in line
        once the wait has lasted ``config.LANE_REPORT_AFTER_S``, and ``(0, 0.0)`` at the end."""
        started = time.monotonic()
        shown: int | None = None
        while self._serving != ticket:
            self._cond.wait(timeout=config.LANE_REPORT_EVERY_S)
            ahead = ticket - self._serving
            if ahead <= 0 or time.monotonic() - started < config.LANE_REPORT_AFTER_S:
                continue
            if ahead != shown:
                shown = ahead
                self._tell(report, ahead, ahead * self.turn_s)
        if shown is not None:
            self._tell(report, 0, 0.0)

    def _tell(self, report: Callable[[int, float], None], ahead: int, eta_s: float) -> None:
        self._cond.release()  # never call out while holding the line
        try:
            report(ahead, eta_s)
        except Exception:  # noqa: BLE001 - a failed progress message must not lose the turn
            log.warning("lane wait report failed", exc_info=True)
        finally:
            self._cond.acquire()

    def release(self) -> None:
        with self._cond:
            if self._owner != threading.get_ident():
                raise RuntimeError("release of a FairLock this thread does not hold")
            self._depth -= 1
            if self._depth == 0:
                self.turn_s = 0.8 * self.turn_s + 0.2 * (time.monotonic() - self._since)
                self._owner = None
                self._serving += 1
                self._cond.notify_all()

    def __enter__(self) -> FairLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    @property
    def waiting(self) -> int:
        """Threads waiting for their turn (the holder not counted)."""
        with self._cond:
            return self._next - self._serving - (1 if self._owner is not None else 0)


COMPUTE = FairLock()


def share(model: Any, lock: FairLock = COMPUTE) -> Any:
    """Make every forward pass of ``model`` take ``lock`` (hooks on the top module; a pass that
    raises releases it too). Idempotent; returns ``model``."""
    if getattr(model, "_llmviz_lane", None) is lock:
        return model
    model.register_forward_pre_hook(lambda module, args: lock.acquire())
    model.register_forward_hook(lambda module, args, output: lock.release(), always_call=True)
    model._llmviz_lane = lock
    return model


# --- next-token views, batched and shared ---------------------------------------------------------
@dataclass(eq=False)
class _Request:
    ids: tuple[int, ...]
    done: threading.Event = field(default_factory=threading.Event)
    result: Any = None
    error: BaseException | None = None


class Batcher:
    """Last-position logits (V,) float32 of prompts for one model, batched and remembered.

    Thread-safe. A caller adds its request to the pending list, then waits for its turn on the
    lane; whoever gets the lane first runs every pending request (up to ``max_batch``) as one
    left-padded batch, so forty students clicking together cost a few batched passes instead
    of forty single ones. Results are read-only tensors kept in an LRU of ``keep`` entries.
    """

    def __init__(
        self,
        model: Any,
        pad_id: int,
        max_batch: int = config.BATCH_MAX,
        keep: int = config.SHARED_VIEWS,
        lock: FairLock = COMPUTE,
    ) -> None:
        self._model = weakref.ref(model)
        self.pad_id = int(pad_id)
        self.max_batch = max(1, int(max_batch))
        self.keep = max(0, int(keep))
        self.lock = lock
        self._pending: list[_Request] = []
        self._guard = threading.Lock()  # the pending list and the results
        self._results: OrderedDict[tuple[int, ...], Any] = OrderedDict()
        self.forward_passes = 0  # batched passes run (for tests and the benchmark)
        self.rows = 0  # prompts computed in them

    def forget(self) -> None:
        """Drop every kept result (benchmarks time computed views with it)."""
        with self._guard:
            self._results.clear()

    def cached(self, ids: Sequence[int]) -> Any | None:
        with self._guard:
            key = tuple(ids)
            if key in self._results:
                self._results.move_to_end(key)
                return self._results[key]
        return None

    def __call__(self, ids: Sequence[int]) -> Any:
        hit = self.cached(ids)
        if hit is not None:
            return hit
        req = _Request(tuple(int(i) for i in ids))
        with self._guard:
            self._pending.append(req)
        with self.lock:
            while not req.done.is_set():
                with self._guard:
                    batch = self._pending[: self.max_batch]
                    del self._pending[: self.max_batch]
                self._run(batch)
        if req.error is not None:
            raise req.error
        return req.result

    def _run(self, batch: list[_Request]) -> None:
        todo: dict[tuple[int, ...], list[_Request]] = {}
        for r in batch:  # the same prompt twice in one batch is computed once
            hit = self.cached(r.ids)
            if hit is not None:
                r.result = hit
                r.done.set()
            else:
                todo.setdefault(r.ids, []).append(r)
        if not todo:
            return
        try:
            model = self._model()
            if model is None:
                raise RuntimeError("the model was unloaded")
            rows = list(todo)
            try:
                logits = _last_logits(model, rows, self.pad_id)
                self.forward_passes += 1
            except Exception:  # noqa: BLE001
                if len(rows) == 1:
                    raise
                # one bad row must not fail the others: each alone, each with its own outcome
                for ids in rows:
                    self._run(todo[ids])
                return
            self.rows += len(rows)
            with self._guard:
                for ids, row in zip(rows, logits, strict=True):
                    self._results[ids] = row
                    self._results.move_to_end(ids)
                while len(self._results) > self.keep:
                    self._results.popitem(last=False)
            for ids, row in zip(rows, logits, strict=True):
                for r in todo[ids]:
                    r.result = row
        except BaseException as err:  # noqa: BLE001 - every waiter gets the error, none hangs
            for rs in todo.values():
                for r in rs:
                    r.error = err
        finally:
            for rs in todo.values():
                for r in rs:
                    r.done.set()


def _last_logits(model: Any, rows: list[tuple[int, ...]], pad_id: int) -> list[Any]:
    """One forward pass over ``rows`` (left-padded): the float32 logits after each row's last token.

    Left padding with the attention mask and position ids that count only real tokens, the way
    ``generate`` batches prompts: each row's numbers equal its own one-row pass up to float
    rounding (tested allclose). One row runs exactly as a one-row pass."""
    import inspect

    import torch

    device = next(model.parameters()).device
    width = max(len(r) for r in rows)
    keep = (
        {"logits_to_keep": 1}
        if "logits_to_keep" in inspect.signature(model.forward).parameters
        else {}
    )
    with torch.inference_mode():
        if len(rows) == 1:
            out = model(input_ids=torch.tensor([list(rows[0])], device=device), use_cache=False,
                        **keep)  # fmt: skip
        else:
            ids = torch.tensor([[pad_id] * (width - len(r)) + list(r) for r in rows], device=device)
            mask = torch.tensor(
                [[0] * (width - len(r)) + [1] * len(r) for r in rows], device=device
            )
            positions = (mask.cumsum(-1) - 1).clamp(min=0)
            out = model(input_ids=ids, attention_mask=mask, position_ids=positions,
                        use_cache=False, **keep)  # fmt: skip
    # generate() samples from a float32 copy of the last position's logits: so do we
    return [out.logits[i, -1].to(dtype=torch.float32, copy=True) for i in range(len(rows))]


_batchers: weakref.WeakKeyDictionary[Any, Batcher] = weakref.WeakKeyDictionary()
_batchers_lock = threading.Lock()


def batcher(model: Any, tokenizer: Any) -> Batcher:
    """The one ``Batcher`` of ``model`` (it goes when the model is unloaded)."""
    with _batchers_lock:
        b = _batchers.get(model)
        if b is None:
            pad = tokenizer.pad_token_id
            if pad is None:
                pad = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else 0
            b = _batchers[model] = Batcher(model, pad)
        return b


def last_logits(model: Any, tokenizer: Any, ids: Sequence[int]) -> Any:
    """The next-token logits (V,) float32 after ``ids`` (read-only: copy before changing them),
    shared between every caller of the same model object and batched with concurrent calls."""
    return batcher(model, tokenizer)(ids)


# --- decoding steps of concurrent generations, batched --------------------------------------------
@dataclass(eq=False)
class _Step:
    cache: Any  # the row's DynamicCache (batch 1), after the prompt and every earlier token
    token: int
    owner: int  # which generation asks (to know whom to wait for)
    done: threading.Event = field(default_factory=threading.Event)
    result: Any = None  # (float32 logits (V,), the row's new cache)
    error: BaseException | None = None


class Stepper:
    """One decoding step (one token appended to a KV cache) for every active generation of one
    model at once: ONE left-padded batched forward pass per step instead of one per stream.

    A generation on a small model is bound by reading the weights, once per forward pass whatever
    the batch, so eight students generating together cost about one student's time per token.
    Each stream keeps its own cache, its own settings and its own seeded generator (it samples
    outside, see ``generation.stream``); only the forward pass is shared. The rows are stacked
    left-padded into one cache with the mask and position ids that count only real tokens (the
    way ``generate`` batches), and split back after the pass: every row's logits equal its own
    one-row step up to float rounding (tested; tokens identical in float32).

    Why not transformers' continuous batching (``generate_batch`` / ``ContinuousBatchingManager``):
    it samples inside with one generation config for every request and no per-request
    ``torch.Generator``, so a student's seeded tokens could not equal what that student draws
    alone, and it owns the loop where this app shows and stops each token itself.

    Gathering: the first caller to reach the lane runs every pending step. So that the streams
    of the previous step are not split into a lone leader and the rest, a caller first waits for
    the owners of the previous batch to ask again (each samples its token in between, a few
    milliseconds, one after the other): as long as they keep arriving less than ``gather_s``
    apart (counted from the end of the batch they are in while it runs), at most a second. A
    stream that stopped costs the others one such gap, once.
    """

    def __init__(
        self,
        model: Any,
        max_batch: int = config.BATCH_MAX,
        gather_s: float = config.DECODE_GATHER_S,
        lock: FairLock = COMPUTE,
    ) -> None:
        self._model = weakref.ref(model)
        self.max_batch = max(1, int(max_batch))
        self.gather_s = max(0.0, float(gather_s))
        self.lock = lock
        self._pending: list[_Step] = []
        self._cond = threading.Condition(threading.Lock())  # the pending list, the last owners
        self._last_owners: frozenset[int] = frozenset()
        self._last_event = 0.0  # the last step filed or batch finished
        self._running = False  # a batch is being computed
        self._leading = False  # a caller is taking the pending steps to the lane
        self.forward_passes = 0  # batched passes run (for tests and the benchmark)
        self.rows = 0  # steps computed in them

    @property
    def pending(self) -> int:
        """Steps waiting to be computed."""
        with self._cond:
            return len(self._pending)

    def __call__(self, cache: Any, token: int, owner: int) -> tuple[Any, Any]:
        """The float32 logits after ``token`` and the row's new cache (``cache`` may be reused)."""
        req = _Step(cache, int(token), owner)
        give_up = time.monotonic() + _GATHER_MAX_S
        with self._cond:
            self._pending.append(req)
            self._last_event = time.monotonic()
            self._cond.notify_all()
            while not req.done.is_set():
                waiting_for = self._last_owners - {r.owner for r in self._pending}
                # wait while the others keep arriving less than a gap apart (the gap counts
                # from the end of the batch they are still in, if it is running)
                if self._running:
                    left = give_up - time.monotonic()
                else:
                    left = min(self._last_event + self.gather_s, give_up) - time.monotonic()
                if not waiting_for or left <= 0:
                    break
                self._cond.wait(left)
            # one leader at a time asks for the lane on behalf of all; the others sleep until
            # their step is done (so they do not file through the lane one by one afterwards)
            while not req.done.is_set() and self._leading:
                self._cond.wait()
            lead = not req.done.is_set()
            if lead:
                self._leading = True
        if lead:
            try:
                while not req.done.is_set():
                    with self.lock:  # one turn per batch: views queued meanwhile go next
                        with self._cond:
                            batch = self._pending[: self.max_batch]
                            del self._pending[: self.max_batch]
                            self._last_owners = frozenset(r.owner for r in batch)
                            self._running = True
                        try:
                            self._run(batch)
                        finally:
                            with self._cond:
                                self._running = False
                                self._last_event = time.monotonic()
                                self._cond.notify_all()
            finally:
                with self._cond:
                    self._leading = False
                    self._cond.notify_all()
        if req.error is not None:
            raise req.error
        return req.result

    def _run(self, batch: list[_Step]) -> None:
        try:
            model = self._model()
            if model is None:
                raise RuntimeError("the model was unloaded")
            together = [r for r in batch if _stackable(model, r.cache)]
            alone = [r for r in batch if r not in together]
            if together:
                try:
                    rows = [(r.cache, r.token) for r in together]
                    # a lone row runs as a batch of two (itself twice): see _batched_step
                    results = _batched_step(model, rows if len(rows) > 1 else rows * 2)
                    self.forward_passes += 1
                    self.rows += len(together)
                    for r, res in zip(together, results[: len(together)], strict=True):
                        r.result = res
                except Exception:  # noqa: BLE001 - one bad row must not fail the others
                    alone = together + alone
            for r in alone:
                try:
                    r.result = _one_step(model, r.cache, r.token)
                    self.forward_passes += 1
                    self.rows += 1
                except BaseException as err:  # noqa: BLE001
                    r.error = err
        except BaseException as err:  # noqa: BLE001 - every waiter gets the error, none hangs
            for r in batch:
                if r.result is None:
                    r.error = err
        finally:
            for r in batch:
                r.done.set()


def _keep_kwargs(model: Any) -> dict[str, int]:
    import inspect

    return (
        {"logits_to_keep": 1}
        if "logits_to_keep" in inspect.signature(model.forward).parameters
        else {}
    )


def _one_step(model: Any, cache: Any, token: int) -> tuple[Any, Any]:
    """The plain one-row step, exactly as ``generate`` runs it (and as a lone stream always did)."""
    import torch

    device = next(model.parameters()).device
    with torch.inference_mode():
        out = model(input_ids=torch.tensor([[token]], device=device), past_key_values=cache,
                    use_cache=True, **_keep_kwargs(model))  # fmt: skip
    # generate() samples from a float32 copy of the last position's logits: so do we
    return out.logits[0, -1].to(dtype=torch.float32, copy=True), out.past_key_values


def _sliding_window(model: Any) -> int | None:
    cfg = model.config.get_text_config(decoder=True)
    window = getattr(cfg, "sliding_window", None)
    return int(window) if window else None


def _stackable(model: Any, cache: Any) -> bool:
    """A one-row DynamicCache whose layers all hold every token so far (a sliding-window layer
    trims itself once the text outgrows its window: such a row steps alone, exactly)."""
    library.ready()  # names resolved before use (see llmviz.library)
    from transformers import DynamicCache

    if type(cache) is not DynamicCache:
        return False
    layers = list(cache)
    if not layers or any(k is None or k.shape[0] != 1 for k, *_ in layers):
        return False
    n = layers[0][0].shape[-2]
    window = _sliding_window(model)
    if window is not None and n + 1 >= window - 1:
        return False
    return all(k.shape[-2] == n for k, *_ in layers)


def _batched_step(model: Any, rows: list[tuple[Any, int]]) -> list[tuple[Any, Any]]:
    """One forward pass of one new token for each (cache, token) row, left-padded.

    Why a lone generation also runs as a batch (of itself twice): in bf16 the CPU's matrix
    kernels round a one-row product differently from a product of two or more rows (measured on
    Gemma 3 270M: a next-token distribution 0.03 apart in L1, enough to change a sampled token
    within 20-30 tokens), while a row of a batch of 2, 3, 4 or 8 rows, whatever the other rows
    and the padding, came out bit for bit the same. Every step running batched is what makes a
    student's seeded text the same whether they generate alone or with the whole class. In
    float32 both agree with ``model.generate`` (tested); in bf16 ``generate``'s one-row steps
    round differently from these (BENCHMARKS.md)."""
    import torch
    library.ready()  # names resolved before use (see llmviz.library)
    from transformers import DynamicCache

    device = next(model.parameters()).device
    per_row = [list(cache) for cache, _ in rows]
    lengths = [layers[0][0].shape[-2] for layers in per_row]
    width = max(lengths)

    def stack(layer: int, which: int) -> torch.Tensor:
        parts = []
        for layers, n in zip(per_row, lengths, strict=True):
            t = layers[layer][which]
            if n < width:
                pad = t.new_zeros((*t.shape[:-2], width - n, t.shape[-1]))
                t = torch.cat([pad, t], dim=-2)
            parts.append(t)
        return torch.cat(parts, dim=0)

    n_layers = len(per_row[0])
    joined = DynamicCache(
        ddp_cache_data=[(stack(i, 0), stack(i, 1)) for i in range(n_layers)], config=model.config
    )
    mask = torch.tensor([[0] * (width - n) + [1] * (n + 1) for n in lengths], device=device)
    positions = torch.tensor([[n] for n in lengths], device=device)
    ids = torch.tensor([[token] for _, token in rows], device=device)
    with torch.inference_mode():
        out = model(input_ids=ids, attention_mask=mask, position_ids=positions,
                    past_key_values=joined, use_cache=True, **_keep_kwargs(model))  # fmt: skip
    after = list(out.past_key_values)
    results = []
    for i, n in enumerate(lengths):  # row i's own cache again: its last n + 1 positions
        own = DynamicCache(
            ddp_cache_data=[
                (k[i : i + 1, :, width - n :], v[i : i + 1, :, width - n :])  # copied in
                for k, v, *_ in after
            ],
            config=model.config,
        )
        results.append((out.logits[i, -1].to(dtype=torch.float32, copy=True), own))
    return results


_GATHER_MAX_S = 1.0  # the longest any step waits for others before taking the lane itself
_steppers: weakref.WeakKeyDictionary[Any, Stepper] = weakref.WeakKeyDictionary()


def decode_step(model: Any, cache: Any, token: int, owner: object) -> tuple[Any, Any]:
    """The next-token logits (V,) float32 after appending ``token`` to ``cache`` (a one-row
    DynamicCache, or None for nothing) and the new cache: batched with the concurrent steps of
    other generations of the same model object. ``owner`` is the asking generation."""
    with _batchers_lock:
        s = _steppers.get(model)
        if s is None:
            s = _steppers[model] = Stepper(model)
    return s(cache, token, id(owner))


# --- other results of one model, shared ---------------------------------------------------------
@dataclass(eq=False)
class _Shelf:
    """One model's shared results: an LRU plus the computations in flight."""

    done: OrderedDict[Any, Any] = field(default_factory=OrderedDict)
    running: dict[Any, threading.Event] = field(default_factory=dict)
    guard: threading.Lock = field(default_factory=threading.Lock)


_shelves: weakref.WeakKeyDictionary[Any, _Shelf] = weakref.WeakKeyDictionary()


def shared(model: Any, key: Any, compute: Any, keep: int = config.SHARED_RESULTS) -> Any:
    """``compute()`` once per (``model`` object, ``key``), for every session.

    For results that depend on nothing but the model and ``key`` and are immutable (frozen
    dataclasses, tuples, read-only arrays): a perplexity score, an attention analysis. A request
    that arrives while the same one is being computed waits for it instead of computing it
    again (forty students pressing the same preset cost one computation). Errors are not kept.
    """
    with _batchers_lock:
        shelf = _shelves.get(model)
        if shelf is None:
            shelf = _shelves[model] = _Shelf()
    while True:
        with shelf.guard:
            if key in shelf.done:
                shelf.done.move_to_end(key)
                return shelf.done[key]
            running = shelf.running.get(key)
            if running is None:
                running = shelf.running[key] = threading.Event()
                mine = True
            else:
                mine = False
        if not mine:
            running.wait()  # then look again: done, or failed (and this caller tries itself)
            continue
        try:
            value = compute()
            with shelf.guard:
                shelf.done[key] = value
                while len(shelf.done) > max(0, keep):
                    shelf.done.popitem(last=False)
            return value
        finally:
            with shelf.guard:
                shelf.running.pop(key, None)
            running.set()
