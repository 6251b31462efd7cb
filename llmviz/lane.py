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

import threading
import weakref
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from llmviz import config


class FairLock:
    """A lock granted in the order it was asked for (a ticket lock), re-entrant for its holder.

    ``threading.Lock`` is not fair: a generation thread that releases it and asks again a moment
    later usually wins over threads that have waited for seconds.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._next = 0  # next ticket to hand out
        self._serving = 0  # ticket allowed in
        self._owner: int | None = None
        self._depth = 0

    def acquire(self) -> None:
        me = threading.get_ident()
        with self._cond:
            if self._owner == me:
                self._depth += 1
                return
            ticket = self._next
            self._next += 1
            while self._serving != ticket:
                self._cond.wait()
            self._owner, self._depth = me, 1

    def release(self) -> None:
        with self._cond:
            if self._owner != threading.get_ident():
                raise RuntimeError("release of a FairLock this thread does not hold")
            self._depth -= 1
            if self._depth == 0:
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
