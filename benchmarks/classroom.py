"""The classroom load test: simulated students using one running app at the same time.

``classroom()`` calls each endpoint of ``CLASSROOM`` once (models loaded), connects N
``gradio_client`` sessions (one thread per student, loopback only), and lets every student click
a weighted random action (``CLASSROOM``), each request a bit different, with 3-8 s of think time,
until the duration is over; calls still in flight get ``grace`` seconds more. The server's RSS is
sampled every second meanwhile. ``analyse_classroom()`` turns the ``Record`` of every call into
errors and p50 / p95 per endpoint, and the latency of light endpoints while a generation ran
(overall and after the opening burst).

Not here: starting the server (``server.py``), the other measurements (``measure.py``), targets and
the report (``report.py``).
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from benchmarks import harness
from benchmarks.harness import Endpoint
from benchmarks.measure import GEN_PROMPT, GENERATION_ENDPOINTS
from benchmarks.server import Server, log

LIGHT_GROUPS = ("light",)
STEADY_AFTER_S = 10.0  # the classroom's opening burst: every student clicks in the first 3 s


@dataclass
class Record:
    student: int
    endpoint: str
    group: str
    start: float
    end: float
    ok: bool
    error: str = ""


@dataclass
class Action:
    endpoint: str
    weight: float
    args: dict[str, Any] = field(default_factory=dict)
    needs: str | None = None  # an endpoint this student must have called first (session state)


WORDS = ("cat", "river", "quantum", "猫", "東京", "bread", "emoji 😀", "language", "model", "tea")

CLASSROOM: tuple[Action, ...] = (
    Action("tokenizer_tokenize", 20),
    Action("tokenizer_decode", 4),
    Action("memory_calculate", 12),
    Action("labs_scaling", 4),
    Action("compare_preview", 4),
    Action(
        "attention_run", 8, {"txt": "The animal didn't cross the street because it was too tired."}
    ),
    Action("attention_layer", 8, {"layer": 3, "head": 1, "token": 5}, needs="attention_run"),
    Action("sampling_view", 10, {"prompt": "The capital of France is"}),
    Action(
        "sampling_refilter",
        8,
        {"temperature": 0.7, "top_k": 20, "top_p": 0.9},
        needs="sampling_view",
    ),
    Action("sampling_generate", 8, {"prompt": GEN_PROMPT, "n_tokens": 30}),
    Action("compare_run", 4, {"max_new_tokens": 20}),
)


def _vary(student: int, rng: random.Random, ep: Endpoint, args: dict[str, Any]) -> dict[str, Any]:
    """Each student types something a bit different (no two requests are identical)."""
    out = dict(args)
    names = {p.name for p in ep.params}
    for key in ("txt", "prompt"):
        base = out.get(key, ep.defaults.get(key))
        if key in names and isinstance(base, str):
            out[key] = f"{base} {rng.choice(WORDS)} {student}"
    if "context" in names:
        out["context"] = rng.choice([1024, 4096, 8192, 32768])
    return out


# --- running it ----------------------------------------------------------------------------------
def classroom(
    server: Server, eps: dict[str, Endpoint], students: int, duration: float, grace: float = 90.0
) -> dict[str, Any]:
    """``students`` threads, each its own gradio_client session, for ``duration`` seconds."""
    actions = [a for a in CLASSROOM if a.endpoint in eps and (a.needs is None or a.needs in eps)]
    log("classroom: warm-up (each endpoint once, models loaded)")
    for name in dict.fromkeys(a.endpoint for a in actions):
        harness.call_normal(server.url, eps[name], eps, timeout=600)

    clients = _connect(server.url, students)
    start_at = time.perf_counter()
    deadline = start_at + duration
    lesson = _Lesson(eps, actions, start_at, deadline, deadline + grace)
    threads = [
        threading.Thread(target=lesson.student, args=(i, c), daemon=True) for i, c in clients
    ]
    log(f"classroom: {len(threads)} students for {duration:.0f} s")
    for th in threads:
        th.start()
    samples: list[tuple[float, int]] = []
    watcher = threading.Thread(
        target=_sample_rss, args=(server, lesson, threads, samples), daemon=True
    )
    watcher.start()
    for th in threads:
        th.join(timeout=max(0.0, lesson.hard_stop - time.perf_counter()))
    unfinished = sum(th.is_alive() for th in threads)
    for _, c in clients:
        try:
            c.close()
        except Exception:  # noqa: BLE001
            pass
    return analyse_classroom(lesson.records, students, duration, unfinished, samples)


def _connect(url: str, students: int) -> list[tuple[int, Any]]:
    """One ``gradio_client.Client`` per student, connected in parallel, in student order."""
    from gradio_client import Client

    clients: list[Any] = []
    lock = threading.Lock()

    def make_client(i: int) -> None:
        # a browser waits as long as it takes; httpx's default 5 s would count a slow
        # queue/join POST (server event loop starved of CPU) as an error
        c = Client(url, verbose=False, download_files=False, analytics_enabled=False,
                   httpx_kwargs={"timeout": httpx.Timeout(120.0, connect=30.0)})  # fmt: skip
        with lock:
            clients.append((i, c))

    log(f"classroom: connecting {students} clients")
    makers = [threading.Thread(target=make_client, args=(i,), daemon=True) for i in range(students)]
    for th in makers:
        th.start()
    for th in makers:
        th.join(timeout=120)
    clients.sort(key=lambda x: x[0])
    return clients


@dataclass
class _Lesson:
    """What the student threads share: the actions, the clock, and the records they append."""

    eps: dict[str, Endpoint]
    actions: list[Action]
    start_at: float
    deadline: float  # no new click after this
    hard_stop: float  # calls still waiting are given up
    records: list[Record] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def student(self, i: int, client: Any) -> None:
        """Click, wait for the answer, read it (think time), until the deadline."""
        actions, eps, start_at, deadline = self.actions, self.eps, self.start_at, self.deadline
        rng = random.Random(1000 + i)
        done: set[str] = set()
        time.sleep(rng.uniform(0, 3))  # not all at the same instant
        while time.perf_counter() < deadline:
            action = rng.choices(actions, weights=[a.weight for a in actions])[0]
            if action.needs and action.needs not in done:
                action = next(a for a in actions if a.endpoint == action.needs)
            ep = eps[action.endpoint]
            args = harness.normal_args(ep, _vary(i, rng, ep, action.args))
            t0 = time.perf_counter()
            try:
                job = client.submit(*args, api_name="/" + ep.name)
                job.result(timeout=max(1.0, self.hard_stop - t0))
                ok, err = True, ""
                done.add(ep.name)
            except Exception as e:  # noqa: BLE001 - every failure is a data point
                ok, err = False, f"{type(e).__name__}: {str(e)[:160]}"
                try:
                    job.cancel()
                except Exception:  # noqa: BLE001
                    pass
            with self.lock:
                self.records.append(
                    Record(
                        i, ep.name, ep.group, t0 - start_at, time.perf_counter() - start_at, ok, err
                    )
                )
            think = rng.uniform(3.0, 8.0)  # reading the result before the next click
            time.sleep(max(0.0, min(think, deadline - time.perf_counter())))


def _sample_rss(
    server: Server, lesson: _Lesson, threads: list[threading.Thread], samples: list
) -> None:
    """Every second while students are busy: (seconds since start, server RSS)."""
    while time.perf_counter() < lesson.hard_stop and any(t.is_alive() for t in threads):
        samples.append((time.perf_counter() - lesson.start_at, server.rss_bytes()[0]))
        time.sleep(1.0)


# --- analysis ------------------------------------------------------------------------------------
def _latencies(records: list[Record]) -> list[float]:
    return [r.end - r.start for r in records]


def _during(records: list[Record], gen_spans: list[tuple[float, float]]) -> list[Record]:
    """The records whose call overlapped a generation."""
    return [records[i] for i in harness.overlapping([(r.start, r.end) for r in records], gen_spans)]


def _per_endpoint(
    records: list[Record], gen_spans: list[tuple[float, float]]
) -> dict[str, dict[str, Any]]:
    per: dict[str, dict[str, Any]] = {}
    for name in sorted({r.endpoint for r in records}):
        rs = [r for r in records if r.endpoint == name]
        ok_rs = [r for r in rs if r.ok]
        lat = _latencies(ok_rs)
        lat_during = _latencies(_during(ok_rs, gen_spans))
        per[name] = {
            "group": rs[0].group,
            "calls": len(rs),
            "errors": sum(not r.ok for r in rs),
            "p50_s": harness.percentile(lat, 50),
            "p95_s": harness.percentile(lat, 95),
            "max_s": max(lat) if lat else None,
            "during_generation_n": len(lat_during),
            "during_generation_p95_s": harness.percentile(lat_during, 95),
            "error_examples": sorted({r.error for r in rs if not r.ok})[:3],
        }
    return per


def analyse_classroom(
    records: list[Record], students: int, duration: float, unfinished: int,
    samples: list[tuple[float, int]] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Per-endpoint counts, errors, p50/p95, and light latency while a generation ran."""
    gen_spans = [(r.start, r.end) for r in records if r.endpoint in GENERATION_ENDPOINTS]
    per = _per_endpoint(records, gen_spans)
    light = [r for r in records if r.group in LIGHT_GROUPS and r.ok]
    # after the opening burst (every student's first click lands within the first seconds)
    steady = [r for r in light if r.start >= STEADY_AFTER_S]
    steady_during = _during(steady, gen_spans)
    light_during = _during(light, gen_spans)
    model = [r for r in records if r.group not in LIGHT_GROUPS and r.ok]
    return {
        "students": students,
        "duration_s": duration,
        "calls": len(records),
        "errors": sum(not r.ok for r in records),
        "unfinished_students": unfinished,
        "light_p95_s": harness.percentile(_latencies(light), 95),
        "model_p50_s": harness.percentile(_latencies(model), 50),
        "model_p95_s": harness.percentile(_latencies(model), 95),
        "light_p95_during_generation_s": harness.percentile(_latencies(light_during), 95),
        "light_calls_during_generation": len(light_during),
        "steady_after_s": STEADY_AFTER_S,
        "light_p50_steady_s": harness.percentile(_latencies(steady), 50),
        "light_p95_steady_s": harness.percentile(_latencies(steady), 95),
        "light_p95_steady_during_generation_s": harness.percentile(_latencies(steady_during), 95),
        "light_calls_steady_during_generation": len(steady_during),
        "peak_rss_bytes_sampled": max((s[1] for s in samples or []), default=0),
        "endpoints": per,
        "records": [
            [r.student, r.endpoint, r.group, round(r.start, 3), round(r.end, 3), r.ok]
            for r in records
        ],
    }
