"""Two models generating at the same time, streamed as they go.

``DualStream`` runs ``model.generate`` for each column in its own worker thread with a
``TextIteratorStreamer`` whose finished pieces go into ONE shared queue, tagged with the column,
so a single consumer (a gradio generator) sees both texts grow. Both columns use the same
``Sampling`` settings and seed, and each stops at its own end-of-sequence / end-of-turn token,
at the token limit, or when ``stop()`` sets the shared ``threading.Event`` (a ``StoppingCriteria``
checks it after every token).

Reproducible sampling with two threads: ``torch.multinomial`` draws from the process-wide
generator, so two threads sampling at once would interleave draws. Each column therefore samples
inside its own logits processor with its own ``torch.Generator(seed)`` (after transformers' own
temperature / top-p warpers) and hands ``generate`` a one-hot choice to take greedily.

``StreamSlot`` keeps at most one running ``DualStream`` per user: starting a new one first stops
and joins the old one (a second click restarts cleanly; no thread is left behind).

This module does not build prompts (``compare``) and does not load models (``models``).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from llmviz import config, library
from llmviz.errors import UserError
from llmviz.tokens import readable_decode, stop_token_ids

log = logging.getLogger(__name__)


# --- settings ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Sampling:
    """Generation settings shared by both columns. ``temperature == 0`` means greedy."""

    max_new_tokens: int = config.COMPARE_DEFAULT_NEW_TOKENS
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        # The same ranges and messages as the sampling tab: one definition of each knob.
        from llmviz.generation import check_max_new_tokens, check_seed
        from llmviz.sampling import SamplingSettings

        n = check_max_new_tokens(self.max_new_tokens, config.MAX_NEW_TOKENS)
        knobs = SamplingSettings(temperature=self.temperature, top_k=0, top_p=self.top_p)
        object.__setattr__(self, "max_new_tokens", n)
        object.__setattr__(self, "seed", check_seed(self.seed))
        object.__setattr__(self, "temperature", knobs.temperature)
        object.__setattr__(self, "top_p", knobs.top_p)

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0


@dataclass(frozen=True)
class Job:
    """One column: a model, its tokenizer and the exact input ids (from ``compare.build_prompt``)."""

    model: Any
    tokenizer: Any
    input_ids: Sequence[int]
    stop_ids: tuple[int, ...] = ()


# --- events ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ColumnResult:
    text: str
    n_tokens: int
    finish: str  # "eos" | "limit" | "stopped" | "error"
    stop_token: str | None  # the end token that stopped it (finish == "eos")
    first_token_s: float | None  # seconds from start() to the first new token
    seconds: float  # start() to the end of this column
    error: str = ""

    @property
    def tokens_per_s(self) -> float:
        """Decoding speed after the first token (the first one also pays for the prompt)."""
        if self.n_tokens < 2 or self.first_token_s is None:
            return 0.0
        span = self.seconds - self.first_token_s
        return (self.n_tokens - 1) / span if span > 0 else 0.0


@dataclass(frozen=True)
class StreamEvent:
    """``kind``: "first" (the first-step logits are in), "text" (a new piece of text) or "done"."""

    column: int
    kind: str
    text: str = ""
    n_tokens: int = 0
    elapsed_s: float = 0.0
    first_logits: np.ndarray | None = field(default=None, repr=False)  # (vocab,) float32
    result: ColumnResult | None = None


# --- the pieces handed to generate() -----------------------------------------------------------
def _streamer_class() -> type:
    library.ready()
    from transformers import TextIteratorStreamer

    class _Streamer(TextIteratorStreamer):
        """New text goes to the shared queue, tagged with the column; counts tokens."""

        def __init__(self, tokenizer: Any, column: int, out: queue.Queue, t0: float) -> None:
            super().__init__(tokenizer, skip_prompt=True, skip_special_tokens=True)
            self.column, self.out, self.t0 = column, out, t0
            self.n_tokens = 0
            self.first_token_s: float | None = None
            self._prompt_seen = False

        def put(self, value: Any) -> None:
            # Unlike the base class, which holds text back until a space (or a CJK ideograph)
            # arrives, every token is shown at once: the first token must reach the screen
            # without waiting for the second, and Japanese has no spaces. Only an incomplete
            # multi-byte character (decoded as U+FFFD) waits for its remaining bytes.
            if value.dim() > 1:
                value = value[0]
            if not self._prompt_seen:  # generate() first sends the prompt
                self._prompt_seen = True
                return
            self.n_tokens += int(value.numel())
            if self.first_token_s is None:
                self.first_token_s = time.perf_counter() - self.t0
            self.token_cache.extend(value.tolist())
            text = self.tokenizer.decode(self.token_cache, **self.decode_kwargs)
            if text.endswith("\ufffd"):
                return
            if "\ufffd" in text:  # bytes that never became a character: shown as bytes
                text = readable_decode(self.tokenizer, self.token_cache)
            printable = text[self.print_len :]
            if text.endswith("\n"):  # as the base class: a line break starts a fresh cache
                self.token_cache, self.print_len = [], 0
            else:
                self.print_len = len(text)
            self.on_finalized_text(printable)

        def end(self) -> None:
            # The base class decodes what is left with "\ufffd" for a character the limit cut
            # in half; the tail is shown as its bytes instead (<E3 81>), like the final text.
            if self.token_cache:
                text = readable_decode(self.tokenizer, self.token_cache)
                self.on_finalized_text(text[self.print_len :])
                self.token_cache, self.print_len = [], 0
            self.next_tokens_are_prompt = True

        def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
            if text:
                self.out.put(
                    StreamEvent(
                        self.column,
                        "text",
                        text=text,
                        n_tokens=self.n_tokens,
                        elapsed_s=time.perf_counter() - self.t0,
                    )
                )

    return _Streamer


def _processors(column: int, out: queue.Queue, t0: float, sampling: Sampling) -> Any:
    import torch
    library.ready()
    from transformers import (
        LogitsProcessor,
        LogitsProcessorList,
        TemperatureLogitsWarper,
        TopPLogitsWarper,
    )

    class FirstStep(LogitsProcessor):
        """Sends the raw logits of the first answer token, untouched."""

        def __init__(self) -> None:
            self.sent = False

        def __call__(self, input_ids: Any, scores: Any) -> Any:
            if not self.sent:
                self.sent = True
                logits = scores[0].detach().float().cpu().numpy()
                out.put(
                    StreamEvent(
                        column, "first", first_logits=logits, elapsed_s=time.perf_counter() - t0
                    )
                )
            return scores

    class SeededSample(LogitsProcessor):
        """Samples with its own generator, then leaves only the chosen token (greedy takes it)."""

        def __init__(self) -> None:
            warpers: list[Any] = [TemperatureLogitsWarper(sampling.temperature)]
            if sampling.top_p < 1.0:
                warpers.append(TopPLogitsWarper(sampling.top_p))
            self.warpers = LogitsProcessorList(warpers)
            self.generator: Any = None

        def __call__(self, input_ids: Any, scores: Any) -> Any:
            if self.generator is None:
                self.generator = torch.Generator(device=scores.device).manual_seed(sampling.seed)
            probs = torch.softmax(self.warpers(input_ids, scores.float()), dim=-1)
            choice = torch.multinomial(probs, 1, generator=self.generator)
            onehot = torch.full_like(scores, float("-inf"))
            return onehot.scatter_(1, choice, 0.0)

    items: list[Any] = [FirstStep()]
    if not sampling.greedy:
        items.append(SeededSample())
    return LogitsProcessorList(items)


def _event_stop(event: threading.Event) -> Any:
    import torch
    library.ready()
    from transformers import StoppingCriteria, StoppingCriteriaList

    class EventStop(StoppingCriteria):
        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
            return torch.full((input_ids.shape[0],), event.is_set(), dtype=torch.bool)

    return StoppingCriteriaList([EventStop()])


# --- torch threads while two generations share the CPU -----------------------------------------
class _ThreadBudget:
    """Lowers torch's intra-op threads while dual streams run and restores them after the last.

    ``torch.set_num_threads`` is process-wide (and per OpenMP thread), so this is reference
    counted: the first stream saves the setting, the last one puts it back.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users = 0
        self._saved: int | None = None

    def enter(self, threads: int | None) -> None:
        import torch

        with self._lock:
            self._users += 1
            if self._users == 1:
                self._saved = torch.get_num_threads()
        if threads:
            torch.set_num_threads(min(int(threads), self._saved or int(threads)))

    def leave(self) -> None:
        import torch

        with self._lock:
            self._users -= 1
            if self._users == 0 and self._saved is not None:
                torch.set_num_threads(self._saved)
                self._saved = None


_BUDGET = _ThreadBudget()


# --- the dual stream ----------------------------------------------------------------------------
class DualStream:
    """Generate for several ``Job``s at once (two in the lesson), streaming tagged events.

    >>> # with DualStream([job_a, job_b], Sampling(max_new_tokens=20)) as ds:
    >>> #     for ev in ds.events(): ...
    """

    def __init__(
        self,
        jobs: Sequence[Job],
        sampling: Sampling,
        threads_per_stream: int | None = None,
    ) -> None:
        if not jobs:
            raise ValueError("DualStream needs at least one job")
        self.jobs = list(jobs)
        self.sampling = sampling
        self.threads_per_stream = threads_per_stream
        self.stop_event = threading.Event()
        self._queue: queue.Queue[StreamEvent] = queue.Queue()
        self._threads: list[threading.Thread] = []
        self._done = 0
        self.results: dict[int, ColumnResult] = {}
        self.t0 = 0.0

    # context manager: leaving always stops and joins
    def __enter__(self) -> DualStream:
        if not self._threads:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> DualStream:
        if self._threads:
            raise RuntimeError("this DualStream was already started")
        self.t0 = time.perf_counter()
        for column, job in enumerate(self.jobs):
            thread = threading.Thread(
                target=self._work, args=(column, job), name=f"llmviz-stream-{column}", daemon=True
            )
            self._threads.append(thread)
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        """Ask every column to stop after its current token."""
        self.stop_event.set()

    @property
    def running(self) -> bool:
        return any(t.is_alive() for t in self._threads)

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the worker threads; True when all have ended."""
        deadline = None if timeout is None else time.perf_counter() + timeout
        for thread in self._threads:
            left = None if deadline is None else max(0.0, deadline - time.perf_counter())
            thread.join(left)
        return not self.running

    def close(self, timeout: float = 30.0) -> bool:
        self.stop()
        return self.join(timeout)

    def events(self, poll_s: float = 0.05) -> Iterator[StreamEvent]:
        """Every event of every column, in arrival order, until all columns are done."""
        while self._done < len(self.jobs):
            try:
                event = self._queue.get(timeout=poll_s)
            except queue.Empty:
                if not self.running and self._queue.empty() and self._done < len(self.jobs):
                    break  # cannot happen unless a worker died without reporting
                continue
            if event.kind == "done":
                self._done += 1
                assert event.result is not None
                self.results[event.column] = event.result
            yield event

    def run(self) -> dict[int, ColumnResult]:
        """Start (if needed), drain every event, join; the results by column."""
        if not self._threads:
            self.start()
        try:
            for _ in self.events():
                pass
        finally:
            self.close()
        return self.results

    # worker thread
    def _work(self, column: int, job: Job) -> None:
        import torch
        library.ready()
        from transformers import GenerationConfig

        _BUDGET.enter(self.threads_per_stream if len(self.jobs) > 1 else None)
        streamer = None
        try:
            streamer = _streamer_class()(job.tokenizer, column, self._queue, self.t0)
            stop_ids = tuple(job.stop_ids) or stop_token_ids(job.tokenizer, job.model)
            pad = job.tokenizer.pad_token_id
            gen_cfg = GenerationConfig(
                max_new_tokens=self.sampling.max_new_tokens,
                do_sample=False,  # sampling (if any) happens in SeededSample with its own generator
                eos_token_id=list(stop_ids),
                pad_token_id=stop_ids[0] if pad is None else pad,
            )
            device = next(job.model.parameters()).device
            ids = torch.tensor([list(job.input_ids)], dtype=torch.long, device=device)
            with torch.inference_mode():
                out = job.model.generate(
                    input_ids=ids,
                    attention_mask=torch.ones_like(ids),
                    generation_config=gen_cfg,
                    logits_processor=_processors(column, self._queue, self.t0, self.sampling),
                    stopping_criteria=_event_stop(self.stop_event),
                    streamer=streamer,
                )
            new = out[0, ids.shape[1] :].tolist()
            last = new[-1] if new else None
            if last in stop_ids:
                finish, stop_token = "eos", job.tokenizer.convert_ids_to_tokens(int(last))
            elif self.stop_event.is_set():
                finish, stop_token = "stopped", None
            else:
                finish, stop_token = "limit", None
            text = readable_decode(job.tokenizer, new)  # a cut character shows as its bytes
            result = ColumnResult(
                text, len(new), finish, stop_token, streamer.first_token_s, self._elapsed()
            )
        except Exception as err:  # noqa: BLE001 - reported to the consumer, never lost
            log.exception("generation failed in column %d", column)
            result = ColumnResult(
                "",
                getattr(streamer, "n_tokens", 0),
                "error",
                None,
                getattr(streamer, "first_token_s", None),
                self._elapsed(),
                error=f"{type(err).__name__}: {str(err)[:200]}",
            )
        finally:
            _BUDGET.leave()
        self._queue.put(StreamEvent(column, "done", result=result, elapsed_s=result.seconds))

    def _elapsed(self) -> float:
        return time.perf_counter() - self.t0


class StreamSlot:
    """At most one running ``DualStream`` per user (keep one in ``gr.State``).

    ``start`` stops and joins the stream already running, so a second click restarts cleanly.
    Deep copies (gradio copies a ``gr.State``'s initial value per session) are fresh empty slots.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.current: DualStream | None = None

    def __deepcopy__(self, memo: dict) -> StreamSlot:
        return StreamSlot()

    def start(
        self, jobs: Sequence[Job], sampling: Sampling, threads_per_stream: int | None = None
    ) -> DualStream:
        with self._lock:
            if self.current is not None and not self.current.close(timeout=30.0):
                raise UserError(
                    "The previous generation is still finishing. Wait a moment and click again.",
                    key="compare_still_running",
                )
            self.current = DualStream(jobs, sampling, threads_per_stream).start()
            return self.current

    def is_current(self, stream: DualStream) -> bool:
        return self.current is stream

    def stop(self) -> bool:
        """Stop the running stream; True when there was one running."""
        stream = self.current
        if stream is None or not stream.running:
            return False
        stream.stop()
        return True
