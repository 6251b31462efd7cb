"""The llmviz benchmark: start the app on 127.0.0.1, measure it, write the numbers down.

    .venv/bin/python -m benchmarks.run --quick          # < 5 minutes
    .venv/bin/python -m benchmarks.run                  # the full run (~10 minutes)
    .venv/bin/python -m benchmarks.run --cold-cache     # + first-ever GGUF conversion (~2 min more)

What it measures, in one run, against the targets of issue 8:

* cold start: process start -> first page served (``GET /`` answers 200); first model use from
  the on-disk cache (``/models_load`` on the fresh server); with ``--cold-cache`` the first-ever
  GGUF -> safetensors conversion, in a second server whose ``LLMVIZ_CACHE`` is a temporary folder;
* warm latency (median / p95 over repeated calls) of each tab's main endpoint, and the bytes of
  every endpoint's response (the event stream the browser's protocol carries);
* generation speed: the app's streaming endpoint, llmviz's own sampling loop in-process and plain
  ``model.generate`` on the same model, prompt and settings, against the memory-bandwidth bound
  (weight bytes per token / read bandwidth measured here with a large ``torch`` reduction);
* peak resident memory of the server process (``VmHWM`` in ``/proc/<pid>/status``);
* the classroom load test: N simulated students (threads, each with its own ``gradio_client``
  session, loopback only) mixing the tabs with think time, for a fixed duration; they stop by
  themselves. Errors and p50/p95 per endpoint, and the latency of light endpoints while a
  generation was running (do they queue behind it?).

Writes ``benchmarks/results/latest.json`` (not committed) and the generated part of
``BENCHMARKS.md`` (between the ``bench:start`` / ``bench:end`` markers; notes outside stay).
Endpoints are discovered from the running app; the main ones are looked up by name in ``MAIN``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import harness  # noqa: E402
from benchmarks.harness import Endpoint, summary  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
BENCHMARKS_MD = ROOT / "BENCHMARKS.md"
START, END = "<!-- bench:start -->", "<!-- bench:end -->"

# A 128-token text for the attention target (checked with the Gemma tokenizer at run time).
ATTENTION_TEXT = (
    "The animal didn't cross the street because it was too tired. Attention lets every token look "
    "back at the tokens before it and decide which ones matter: here, the word it should look at "
    "the animal, not at the street. 吾輩は猫である。名前はまだ無い。どこで生れたかとんと見当がつかぬ。"
    "何でも薄暗いじめじめした所でニャーニャー泣いていた事だけは記憶している。"
)
GEN_PROMPT = "Once upon a time, in a small village by the sea, there lived"
LIGHT_GROUPS = ("light",)
STEADY_AFTER_S = 10.0  # the classroom's opening burst: every student clicks in the first 3 s
#: Endpoints that generate text (they share the model lane with the rest of the model work).
GENERATION_ENDPOINTS = ("sampling_generate", "compare_run", "sampling_experiment")

#: The main endpoint of each tab (issue 8's list) and the arguments to time it with.
MAIN: dict[str, tuple[str, dict[str, Any]]] = {
    "tokenize": ("tokenizer_tokenize", {}),
    "attention (128 tokens)": ("attention_run", {"txt": ATTENTION_TEXT}),
    "next-token view": ("sampling_view", {"prompt": "The capital of France is"}),
    "generation (30 tokens)": ("sampling_generate", {"prompt": GEN_PROMPT, "n_tokens": 30}),
    "memory estimate": ("memory_calculate", {}),
    "base vs instruct, first token": ("compare_run", {"max_new_tokens": 1}),
}

TARGETS = {
    "page_served_s": 5.0,
    "cached_model_load_s": 3.0,
    "tokenize_s": 0.100,
    "attention_s": 1.0,
    "next_token_s": 0.250,
    "generate_vs_plain": 1.0,
    "bandwidth_share": 0.5,
    "light_p95_during_generation_s": 0.5,
    "rss_gb": 3.0,
}


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --- the server ----------------------------------------------------------------------------------
LAUNCHER = """
import json, os, sys
import app
import torch
from benchmarks.harness import groups_of
with open(sys.argv[1], "w") as f:  # the app's own queues, before any experiment below
    json.dump({"groups": groups_of(app.demo), "torch_threads": torch.get_num_threads()}, f)
# --limit (benchmark experiments only), before launch: "ID=N" sets a queue's concurrency
# limit; "ID:OTHER" moves ID's events into queue OTHER
for item in filter(None, os.environ.get("LLMVIZ_BENCH_LIMITS", "").split(",")):
    cid, sep, value = item.partition("=") if "=" in item else item.partition(":")
    for fn in app.demo.fns.values():
        if fn.concurrency_id == cid:
            if sep == "=":
                fn.concurrency_limit = int(value)
            else:
                fn.concurrency_id = value
app.demo.launch(server_name="127.0.0.1", server_port=int(sys.argv[2]), quiet=True, **app.LAUNCH_KWARGS)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    proc: subprocess.Popen
    url: str
    groups: dict[str, str]
    page_served_s: float
    log_path: Path
    torch_threads: int = 0

    @classmethod
    def start(cls, env_extra: dict[str, str] | None = None, timeout: float = 300.0) -> Server:
        """Start the app (same work as ``python app.py``) and wait for its first page."""
        port = free_port()
        RESULTS.mkdir(parents=True, exist_ok=True)
        groups_file = Path(tempfile.mkstemp(suffix=".json")[1])
        log_path = RESULTS / f"server-{port}.log"
        env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1",
               "PYTHONUNBUFFERED": "1", **(env_extra or {})}  # fmt: skip
        t0 = time.perf_counter()
        with open(log_path, "w") as out:
            proc = subprocess.Popen(
                [sys.executable, "-c", LAUNCHER, str(groups_file), str(port)],
                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        url = f"http://127.0.0.1:{port}/"
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the app exited with {proc.returncode}; see {log_path}")
            try:
                if httpx.get(url, timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.perf_counter() - t0 > timeout:
                proc.kill()
                raise RuntimeError(f"no page after {timeout:.0f} s; see {log_path}")
            time.sleep(0.05)
        served = time.perf_counter() - t0
        info = json.loads(groups_file.read_text() or "{}")
        groups_file.unlink(missing_ok=True)
        return cls(
            proc, url, info.get("groups", {}), served, log_path, info.get("torch_threads", 0)
        )

    def rss_bytes(self) -> tuple[int, int]:
        """(current, peak) resident memory of the server process."""
        return proc_memory(self.proc.pid)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


def proc_memory(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of ``pid`` in bytes, from /proc (0, 0 where unavailable)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0, 0
    values = dict(re.findall(r"^(VmRSS|VmHWM):\s+(\d+) kB", status, re.M))
    return int(values.get("VmRSS", 0)) * 1024, int(values.get("VmHWM", 0)) * 1024


# --- the machine ---------------------------------------------------------------------------------
def machine_info() -> dict[str, Any]:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = 0
    try:
        mem = (
            int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1)) * 1024
        )
    except (OSError, AttributeError):
        pass
    versions = {}
    for mod in ("torch", "transformers", "gradio", "gradio_client"):
        try:
            versions[mod] = __import__(mod).__version__
        except Exception:  # noqa: BLE001 - a report, not a requirement
            versions[mod] = "?"
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(mem / 2**30, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": versions,
        "date": dt.datetime.now().astimezone().isoformat(timespec="minutes"),
    }


def load_average() -> float:
    try:
        return os.getloadavg()[0]
    except OSError:
        return float("nan")


# --- latency -------------------------------------------------------------------------------------
def endpoint_map(server: Server) -> dict[str, Endpoint]:
    return {e.name: e for e in harness.discover(server.url, server.groups)}


def timed_calls(
    server: Server, ep: Endpoint, eps: dict[str, Endpoint], overrides: dict[str, Any], repeats: int
) -> dict[str, Any]:
    """First call (cold for this endpoint) and ``repeats`` warm calls, each in a fresh session."""
    times, payloads, errors = [], [], []
    first = None
    for i in range(repeats + 1):
        session = harness.new_session()
        outs, failed = harness.run_setup(server.url, ep, eps, session)
        if failed is not None:
            errors.append(f"setup: {failed.status} {failed.message}")
            continue
        args = harness.normal_args(ep, overrides, outs)
        res = harness.call_as_browser(server.url, ep.name, args, 600, session)
        if not res.ok:
            errors.append(f"{res.status}: {(res.message or res.text)[:200]}")
            continue
        if i == 0:
            first = res.seconds
        else:
            times.append(res.seconds)
        payloads.append(res.payload_bytes)
    return {
        "endpoint": ep.name,
        "group": ep.group,
        "first_s": first,
        **{k + "_s" if k != "n" else k: v for k, v in summary(times).items()},
        "payload_bytes": max(payloads) if payloads else None,
        "errors": errors,
    }


def payload_sweep(server: Server, eps: dict[str, Endpoint], quick: bool) -> list[dict[str, Any]]:
    """One normal request to every endpoint: time, bytes of the response, status."""
    rows = []
    for name, ep in sorted(eps.items()):
        if quick and harness.is_expensive(name):
            rows.append(
                {"endpoint": name, "group": ep.group, "skipped": "expensive (full run only)"}
            )
            continue
        res = harness.call_normal(server.url, ep, eps, timeout=600)
        rows.append(
            {
                "endpoint": name,
                "group": ep.group,
                "status": res.status,
                "seconds": round(res.seconds, 3),
                "payload_bytes": res.payload_bytes,
                "final_bytes": res.final_bytes,
                "events": res.events,
                "message": (res.message or "")[:200] if not res.ok else "",
            }
        )
        log(f"  {name}: {res.status} {res.seconds:.2f}s {res.payload_bytes} B")
    return rows


# --- generation vs plain generate and the bandwidth bound ----------------------------------------
def read_bandwidth(megabytes: int = 512, repeats: int = 5) -> dict[str, float]:
    """Bytes/s of a full read of a large array: torch reduction (all cores) and numpy copy."""
    import numpy as np
    import torch

    n = megabytes * 2**20 // 4
    a = torch.ones(n, dtype=torch.float32)
    a.sum()  # fault the pages in
    best = min(harness.timed(lambda: a.sum())[0] for _ in range(repeats))
    x = np.ones(n, dtype=np.float32)
    y = np.empty_like(x)
    np.copyto(y, x)
    copy = min(harness.timed(lambda: np.copyto(y, x))[0] for _ in range(repeats))
    return {
        "torch_sum_read_GBps": a.numel() * 4 / best / 1e9,
        "numpy_copy_read_write_GBps": 2 * x.nbytes / copy / 1e9,
        "threads": torch.get_num_threads(),
    }


def generation_speed(
    server: Server, eps: dict[str, Endpoint], n_tokens: int, repeats: int
) -> dict[str, Any]:
    """tokens/s: the app's streaming endpoint, llmviz's loop in-process, plain model.generate."""
    import torch

    from llmviz.generation import generate_ids
    from llmviz.models import load_model
    from llmviz.sampling import SamplingSettings

    ep = eps.get("sampling_generate")
    model_key = harness.NORMAL["sampling_generate"].args.get("model_key", "gemma-3-270m")
    out: dict[str, Any] = {"model": model_key, "tokens": n_tokens, "prompt": GEN_PROMPT}
    settings = SamplingSettings(temperature=1.0, top_k=50, top_p=1.0, min_p=0.0)

    if ep is not None:
        rates = []
        for i in range(repeats + 1):
            args = harness.normal_args(ep, {"prompt": GEN_PROMPT, "n_tokens": n_tokens, "seed": 42 + i,
                                            "temperature": 1.0, "top_k": 50, "top_p": 1.0, "min_p": 0.0})  # fmt: skip
            res = harness.call(
                server.url, ep.name, args, timeout=600, session_hash=harness.new_session()
            )
            if not res.ok:
                out["endpoint_error"] = res.message
                break
            made = _history_rows(res.data)
            if i and made:
                rates.append(made / res.seconds)
        out["endpoint_tokens_per_s"] = summary(rates)["median"] if rates else None

    from llmviz import config

    # the precision the server's sampling tab uses ("auto": bf16 only where it is fast)
    loaded = load_model(model_key, config.SAMPLING_PRECISION)
    out["precision"] = loaded.precision
    model, tok = loaded.model, loaded.tokenizer
    out["weight_bytes"] = sum(p.numel() * p.element_size() for p in model.parameters())
    ids = tok(GEN_PROMPT, return_tensors="pt")
    plain, ours = [], []
    with torch.inference_mode():
        model.generate(**ids, max_new_tokens=4, do_sample=True, top_k=50)  # warm-up
        generate_ids(model, tok, GEN_PROMPT, settings, 4, 0)
        for i in range(repeats):
            torch.manual_seed(42 + i)
            t, gen = harness.timed(
                lambda: model.generate(
                    **ids, max_new_tokens=n_tokens, min_new_tokens=n_tokens, do_sample=True,
                    top_k=50, temperature=1.0, top_p=1.0,
                )
            )  # fmt: skip
            plain.append((gen.shape[1] - ids["input_ids"].shape[1]) / t)
            t, new = harness.timed(
                lambda s=42 + i: generate_ids(model, tok, GEN_PROMPT, settings, n_tokens, s)
            )
            ours.append(len(new) / t)
    out["plain_generate_tokens_per_s"] = summary(plain)["median"]
    out["llmviz_loop_tokens_per_s"] = summary(ours)["median"]
    return out


def _history_rows(data: Any) -> int:
    """Tokens generated by sampling_generate: rows of its history table (a fresh session)."""
    if isinstance(data, list):
        for item in reversed(data):
            if isinstance(item, dict) and isinstance(item.get("data"), list) and "headers" in item:
                return len(item["data"])
            if isinstance(item, dict) and isinstance(item.get("value"), dict):
                inner = item["value"]
                if isinstance(inner.get("data"), list):
                    return len(inner["data"])
    return 0


# --- the classroom -------------------------------------------------------------------------------
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


def classroom(
    server: Server, eps: dict[str, Endpoint], students: int, duration: float, grace: float = 90.0
) -> dict[str, Any]:
    """``students`` threads, each its own gradio_client session, for ``duration`` seconds."""
    from gradio_client import Client

    actions = [a for a in CLASSROOM if a.endpoint in eps and (a.needs is None or a.needs in eps)]
    records: list[Record] = []
    lock = threading.Lock()
    clients: list[Any] = []

    def make_client(i: int) -> None:
        # a browser waits as long as it takes; httpx's default 5 s would count a slow
        # queue/join POST (server event loop starved of CPU) as an error
        c = Client(server.url, verbose=False, download_files=False, analytics_enabled=False,
                   httpx_kwargs={"timeout": httpx.Timeout(120.0, connect=30.0)})  # fmt: skip
        with lock:
            clients.append((i, c))

    log("classroom: warm-up (each endpoint once, models loaded)")
    for name in dict.fromkeys(a.endpoint for a in actions):
        harness.call_normal(server.url, eps[name], eps, timeout=600)

    log(f"classroom: connecting {students} clients")
    makers = [threading.Thread(target=make_client, args=(i,), daemon=True) for i in range(students)]
    for th in makers:
        th.start()
    for th in makers:
        th.join(timeout=120)
    clients.sort(key=lambda x: x[0])
    start_at = time.perf_counter()
    deadline = start_at + duration
    hard_stop = deadline + grace
    samples: list[tuple[float, int]] = []

    def student(i: int, client: Any) -> None:
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
                job.result(timeout=max(1.0, hard_stop - t0))
                ok, err = True, ""
                done.add(ep.name)
            except Exception as e:  # noqa: BLE001 - every failure is a data point
                ok, err = False, f"{type(e).__name__}: {str(e)[:160]}"
                try:
                    job.cancel()
                except Exception:  # noqa: BLE001
                    pass
            with lock:
                records.append(
                    Record(
                        i, ep.name, ep.group, t0 - start_at, time.perf_counter() - start_at, ok, err
                    )
                )
            think = rng.uniform(3.0, 8.0)  # reading the result before the next click
            time.sleep(max(0.0, min(think, deadline - time.perf_counter())))

    def sampler() -> None:
        while time.perf_counter() < hard_stop and any(t.is_alive() for t in threads):
            samples.append((time.perf_counter() - start_at, server.rss_bytes()[0]))
            time.sleep(1.0)

    threads = [threading.Thread(target=student, args=(i, c), daemon=True) for i, c in clients]
    log(f"classroom: {len(threads)} students for {duration:.0f} s")
    for th in threads:
        th.start()
    watcher = threading.Thread(target=sampler, daemon=True)
    watcher.start()
    for th in threads:
        th.join(timeout=max(0.0, hard_stop - time.perf_counter()))
    unfinished = sum(th.is_alive() for th in threads)
    for _, c in clients:
        try:
            c.close()
        except Exception:  # noqa: BLE001
            pass
    return analyse_classroom(records, students, duration, unfinished, samples)


def analyse_classroom(
    records: list[Record], students: int, duration: float, unfinished: int,
    samples: list[tuple[float, int]] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Per-endpoint counts, errors, p50/p95, and light latency while a generation ran."""
    per: dict[str, dict[str, Any]] = {}
    gen_spans = [(r.start, r.end) for r in records if r.endpoint in GENERATION_ENDPOINTS]
    for name in sorted({r.endpoint for r in records}):
        rs = [r for r in records if r.endpoint == name]
        lat = [r.end - r.start for r in rs if r.ok]
        during = harness.overlapping([(r.start, r.end) for r in rs if r.ok], gen_spans)
        ok_rs = [r for r in rs if r.ok]
        lat_during = [ok_rs[i].end - ok_rs[i].start for i in during]
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
    light = [r for r in records if r.group in LIGHT_GROUPS and r.ok]
    # after the opening burst (every student's first click lands within the first seconds)
    steady = [r for r in light if r.start >= STEADY_AFTER_S]
    steady_during = [
        steady[i] for i in harness.overlapping([(r.start, r.end) for r in steady], gen_spans)
    ]
    light_during = [
        light[i] for i in harness.overlapping([(r.start, r.end) for r in light], gen_spans)
    ]
    return {
        "students": students,
        "duration_s": duration,
        "calls": len(records),
        "errors": sum(not r.ok for r in records),
        "unfinished_students": unfinished,
        "light_p95_s": harness.percentile([r.end - r.start for r in light], 95),
        "light_p95_during_generation_s": harness.percentile(
            [r.end - r.start for r in light_during], 95
        ),
        "light_calls_during_generation": len(light_during),
        "steady_after_s": STEADY_AFTER_S,
        "light_p50_steady_s": harness.percentile([r.end - r.start for r in steady], 50),
        "light_p95_steady_s": harness.percentile([r.end - r.start for r in steady], 95),
        "light_p95_steady_during_generation_s": harness.percentile(
            [r.end - r.start for r in steady_during], 95
        ),
        "light_calls_steady_during_generation": len(steady_during),
        "peak_rss_bytes_sampled": max((s[1] for s in samples or []), default=0),
        "endpoints": per,
        "records": [
            [r.student, r.endpoint, r.group, round(r.start, 3), round(r.end, 3), r.ok]
            for r in records
        ],
    }


def first_model_uses(
    server: Server, eps: dict[str, Endpoint], timeout: float, label: str
) -> dict[str, Any]:
    """Load each default model once through ``/models_load``: seconds, status, message."""
    out: dict[str, Any] = {}
    for key in ("gemma-3-270m", "smollm2-135m-instruct"):
        args = harness.normal_args(eps["models_load"], {"name": key})
        res = harness.call(server.url, "models_load", args, timeout)
        out[key] = {"seconds": res.seconds, "status": res.status,
                    "message": (res.message or "")[:200]}  # fmt: skip
        log(f"{label} {key}: {res.seconds:.2f} s ({res.status})")
    return out


# --- cold cache ----------------------------------------------------------------------------------
def cold_cache() -> dict[str, Any]:
    """First-ever conversion: a server whose model cache is an empty temporary folder."""
    tmp = tempfile.mkdtemp(prefix="llmviz-cold-cache-")
    out: dict[str, Any] = {}
    server = Server.start({"LLMVIZ_CACHE": tmp})
    try:
        out.update(first_model_uses(server, endpoint_map(server), 900, "cold cache"))
    finally:
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return out


# --- report --------------------------------------------------------------------------------------
def fmt_s(x: Any) -> str:
    if x is None or (isinstance(x, float) and x != x):
        return "–"
    return f"{x * 1000:.0f} ms" if x < 1 else f"{x:.2f} s"


def fmt_bytes(n: Any) -> str:
    if not n:
        return "–"
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"


def verdict(ok: bool | None) -> str:
    return "–" if ok is None else ("✅ met" if ok else "❌ missed")


def targets_table(r: dict[str, Any]) -> list[tuple[str, str, str, bool | None]]:
    lat = {row["label"]: row for row in r.get("latency", [])}
    gen = r.get("generation", {})
    cls = r.get("classroom", {})
    bound = gen.get("bound_tokens_per_s")

    def med(label: str) -> float | None:
        row = lat.get(label)
        return row.get("median_s") if row else None

    rows: list[tuple[str, str, str, bool | None]] = []

    def add(
        name: str, target: str, value: float | None, shown: str, better_low: bool, limit: float
    ) -> None:
        ok = (
            None
            if value is None or value != value
            else (value <= limit if better_low else value >= limit)
        )
        rows.append((name, target, shown, ok))

    add(
        "page served after start",
        "≤ 5 s",
        r.get("page_served_s"),
        fmt_s(r.get("page_served_s")),
        True,
        5.0,
    )
    load = r.get("first_model_use", {}).get("gemma-3-270m", {}).get("seconds")
    add("cached model load (Gemma 270M, first use)", "≤ 3 s", load, fmt_s(load), True, 3.0)
    for label, target, limit in (
        ("tokenize", "≤ 100 ms", 0.1),
        ("attention (128 tokens)", "≤ 1 s", 1.0),
        ("next-token view", "≤ 250 ms", 0.25),
    ):
        add(f"{label}, median", target, med(label), fmt_s(med(label)), True, limit)
    ep, plain = gen.get("endpoint_tokens_per_s"), gen.get("plain_generate_tokens_per_s")
    ratio = ep / plain if ep and plain else None
    add(
        "generation vs plain generate",
        "≥ 1.0×",
        ratio,
        f"{ratio:.2f}×" if ratio else "–",
        False,
        1.0,
    )
    share = ep / bound if ep and bound else None
    add(
        "generation vs bandwidth bound",
        "≥ 50 %",
        share,
        f"{share:.0%}" if share else "–",
        False,
        0.5,
    )
    if cls:
        add("classroom errors", "0", cls.get("errors"), str(cls.get("errors")), True, 0)
        p95 = cls.get("light_p95_during_generation_s")
        add("light p95 while generation runs", "≤ 500 ms", p95, fmt_s(p95), True, 0.5)
        p95s = cls.get("light_p95_steady_during_generation_s")
        if p95s is not None:
            add("  same, after the opening burst", "≤ 500 ms", p95s, fmt_s(p95s), True, 0.5)
    rss = r.get("rss_peak_bytes")
    add("server peak RSS", "≤ 3 GB", rss / 1e9 if rss else None, fmt_bytes(rss), True, 3.0)
    return rows


def markdown(r: dict[str, Any]) -> str:
    m = r["machine"]
    lines = [
        START,
        f"Measured {m['date']} with `python -m benchmarks.run{' --quick' if r['quick'] else ''}"
        f"{' --cold-cache' if r.get('cold_cache') else ''}` on {m['cpu']}, {m['cores']} cores, "
        f"{m['memory_gb']} GB RAM, no GPU; Python {m['python']}, torch {m['versions']['torch']}, "
        f"transformers {m['versions']['transformers']}, gradio {m['versions']['gradio']}.",
        "",
        f"Load average (1 min) before / after: {r['load_before']:.1f} / {r['load_after']:.1f} on "
        f"{m['cores']} cores."
        + (
            " **Measured under load**: other processes shared the CPU, so latencies are pessimistic."
            if max(r["load_before"], r["load_after"]) > 0.5 * (m["cores"] or 1)
            else ""
        ),
        "",
        f"Server: torch {r.get('server_torch_threads', '?')} intra-op threads"
        + (f", environment {r['server_env']}" if r.get("server_env") else "")
        + ".",
        "",
        "### Targets (issue 8)",
        "",
        "| metric | target | measured | |",
        "|---|---|---|---|",
    ]
    lines += [f"| {a} | {b} | {c} | {verdict(d)} |" for a, b, c, d in targets_table(r)]
    lines += ["", "### Warm latency of each tab's main endpoint", "",
              "| what | endpoint | queue | first call | median | p95 | n | response |",
              "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for row in r.get("latency", []):
        lines.append(
            f"| {row['label']} | `{row['endpoint']}` | {row['group']} | {fmt_s(row['first_s'])} | "
            f"{fmt_s(row['median_s'])} | {fmt_s(row['p95_s'])} | {row['n']} | {fmt_bytes(row['payload_bytes'])} |"
            + (f" errors: {len(row['errors'])}" if row["errors"] else "")
        )
    g = r.get("generation", {})
    if g:
        bw = r.get("bandwidth", {})
        lines += [
            "", "### Generation speed", "",
            f"{g.get('model')}, {g.get('precision', 'bf16')}, {g.get('tokens')} new tokens, temperature 1, top-k 50, same prompt. "
            f"Weights read per token: {fmt_bytes(g.get('weight_bytes'))}; read bandwidth "
            f"{bw.get('torch_sum_read_GBps', 0):.1f} GB/s (torch sum over 512 MB, "
            f"{bw.get('threads')} threads; numpy copy {bw.get('numpy_copy_read_write_GBps', 0):.1f} GB/s "
            f"read+write) → bound {g.get('bound_tokens_per_s', 0):.0f} tokens/s.",
            "",
            "| path | tokens/s | vs plain generate | vs bandwidth bound |",
            "|---|---|---|---|",
        ]  # fmt: skip
        plain = g.get("plain_generate_tokens_per_s")
        bound = g.get("bound_tokens_per_s")
        for label, key in (("`model.generate` (plain transformers)", "plain_generate_tokens_per_s"),
                           ("llmviz sampling loop, in-process", "llmviz_loop_tokens_per_s"),
                           ("app endpoint `sampling_generate` (streamed, charts at the end)", "endpoint_tokens_per_s")):  # fmt: skip
            v = g.get(key)
            lines.append(
                f"| {label} | {v:.1f} | {v / plain:.2f}× | {v / bound:.0%} |"
                if v and plain and bound
                else f"| {label} | – | – | – |"
            )
    c = r.get("classroom")
    if c:
        lines += [
            "", f"### Classroom: {c['students']} students, {c['duration_s']:.0f} s", "",
            f"{c['calls']} calls, {c['errors']} errors, {c['unfinished_students']} students still "
            f"waiting at the end. Light endpoints: p95 {fmt_s(c['light_p95_s'])} overall, "
            f"{fmt_s(c['light_p95_during_generation_s'])} while a generation was running "
            f"({c['light_calls_during_generation']} calls). After the opening burst (calls "
            f"starting ≥ {c.get('steady_after_s', 0):.0f} s): light p50 "
            f"{fmt_s(c.get('light_p50_steady_s'))}, p95 {fmt_s(c.get('light_p95_steady_s'))}, "
            f"p95 while generating {fmt_s(c.get('light_p95_steady_during_generation_s'))} "
            f"({c.get('light_calls_steady_during_generation', 0)} calls). Peak server RSS during "
            f"the test {fmt_bytes(c['peak_rss_bytes_sampled'])}.",
            "",
            "| endpoint | queue | calls | errors | p50 | p95 | max | p95 while generating (n) |",
            "|---|---|---|---|---|---|---|---|",
        ]  # fmt: skip
        for name, e in c["endpoints"].items():
            lines.append(
                f"| `{name}` | {e['group']} | {e['calls']} | {e['errors']} | {fmt_s(e['p50_s'])} | "
                f"{fmt_s(e['p95_s'])} | {fmt_s(e['max_s'])} | "
                f"{fmt_s(e['during_generation_p95_s'])} ({e['during_generation_n']}) |"
            )
    if r.get("payloads"):
        lines += ["", "### Every endpoint once (normal request): time and response size", "",
                  "| endpoint | queue | status | time | response | events |", "|---|---|---|---|---|---|"]  # fmt: skip
        for p in r["payloads"]:
            if p.get("skipped"):
                lines.append(
                    f"| `{p['endpoint']}` | {p['group']} | skipped: {p['skipped']} | | | |"
                )
            else:
                lines.append(
                    f"| `{p['endpoint']}` | {p['group']} | {p['status']} | {fmt_s(p['seconds'])} | "
                    f"{fmt_bytes(p['payload_bytes'])} | {p['events']} |"
                )
    fm = r.get("first_model_use", {})
    cc = r.get("cold_cache")
    lines += ["", "### Start-up", "",
              f"- process start → first page served: {fmt_s(r.get('page_served_s'))}"]  # fmt: skip
    for key, v in fm.items():
        lines.append(
            f"- first use of `{key}` from the on-disk cache (`/models_load`): {fmt_s(v['seconds'])}"
        )
    if cc:
        for key, v in cc.items():
            lines.append(
                f"- first-ever GGUF conversion of `{key}` (empty cache): {fmt_s(v['seconds'])}"
            )
    else:
        lines.append("- first-ever GGUF conversion: not measured in this run (`--cold-cache`)")
    lines.append(f"- server peak RSS (VmHWM): {fmt_bytes(r.get('rss_peak_bytes'))}")
    lines.append(END)
    return "\n".join(lines)


def write_markdown(block: str) -> None:
    if BENCHMARKS_MD.exists():
        text = BENCHMARKS_MD.read_text(encoding="utf-8")
        if START in text and END in text:
            head, rest = text.split(START, 1)
            _, tail = rest.split(END, 1)
            BENCHMARKS_MD.write_text(head + block + tail, encoding="utf-8")
            return
    BENCHMARKS_MD.write_text("# llmviz benchmarks\n\n" + block + "\n", encoding="utf-8")


# --- main ----------------------------------------------------------------------------------------
def run(args: argparse.Namespace) -> dict[str, Any]:
    quick = args.quick
    repeats = args.repeats or (5 if quick else 20)
    result: dict[str, Any] = {
        "quick": quick,
        "machine": machine_info(),
        "load_before": load_average(),
    }
    log("starting the app")
    env = dict(kv.split("=", 1) for kv in args.env)
    if args.limit:
        env["LLMVIZ_BENCH_LIMITS"] = ",".join(args.limit)
    result["server_env"] = env
    phases = set(args.phases.split(","))
    server = Server.start(env)
    result["page_served_s"] = server.page_served_s
    result["server_torch_threads"] = server.torch_threads
    log(f"page served after {server.page_served_s:.2f} s")
    try:
        eps = endpoint_map(server)
        result["endpoints"] = sorted(eps)
        result["first_model_use"] = first_model_uses(server, eps, 600, "first use of")

        result["latency"] = []
        for label, (name, overrides) in MAIN.items() if "latency" in phases else ():
            if name not in eps:
                log(f"{label}: endpoint {name} not in the app, skipped")
                continue
            n = max(3, repeats // 4) if name in GENERATION_ENDPOINTS else repeats
            row = {"label": label, **timed_calls(server, eps[name], eps, overrides, n)}
            result["latency"].append(row)
            log(
                f"{label}: first {fmt_s(row['first_s'])}, median {fmt_s(row['median_s'])}, p95 {fmt_s(row['p95_s'])}"
            )

        result["rss_after_latency_bytes"] = server.rss_bytes()[1]
        if "payloads" in phases:
            log("every endpoint once")
            result["payloads"] = payload_sweep(server, eps, quick)
            result["rss_after_payloads_bytes"] = server.rss_bytes()[1]

        if "generation" in phases:
            log("generation speed")
            bw = read_bandwidth()
            result["bandwidth"] = bw
            gen = generation_speed(server, eps, 32 if quick else 64, 3 if quick else 5)
            gen["bound_tokens_per_s"] = bw["torch_sum_read_GBps"] * 1e9 / gen["weight_bytes"]
            result["generation"] = gen
            log(f"generation: {json.dumps({k: v for k, v in gen.items() if 'per_s' in k})}")

        if args.students and "classroom" in phases:
            result["classroom"] = classroom(
                server, eps, args.students, args.duration or (30 if quick else 60)
            )
            c = result["classroom"]
            log(f"classroom: {c['calls']} calls, {c['errors']} errors, light p95 during generation "
                f"{fmt_s(c['light_p95_during_generation_s'])}")  # fmt: skip
        result["rss_now_bytes"], result["rss_peak_bytes"] = server.rss_bytes()
    finally:
        server.stop()
    if args.cold_cache:
        result["cold_cache"] = cold_cache()
    result["load_after"] = load_average()
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="fewer repeats, 30 s classroom (< 5 min)")
    p.add_argument(
        "--cold-cache", action="store_true", help="also time the first-ever GGUF conversion"
    )
    p.add_argument("--students", type=int, default=40, help="simulated students (0: no load test)")
    p.add_argument(
        "--duration", type=float, default=0, help="load test seconds (default 60, quick 30)"
    )
    p.add_argument(
        "--repeats", type=int, default=0, help="warm calls per endpoint (default 20, quick 5)"
    )
    p.add_argument(
        "--env", action="append", default=[], metavar="KEY=VALUE",
        help="extra environment for the server, e.g. OMP_NUM_THREADS=1 (repeatable)",
    )  # fmt: skip
    p.add_argument(
        "--limit", action="append", default=[], metavar="QUEUE=N|QUEUE:OTHER",
        help="experiment: a queue's concurrency limit (generate=1) or move one queue's events into "
        "another (generate:model), applied in order before launch (repeatable)",
    )  # fmt: skip
    p.add_argument(
        "--phases", default="latency,payloads,generation,classroom",
        help="comma-separated subset of: latency, payloads, generation, classroom",
    )  # fmt: skip
    p.add_argument("--no-markdown", action="store_true", help="do not touch BENCHMARKS.md")
    args = p.parse_args(argv)
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    t0 = time.perf_counter()
    result = run(args)
    result["benchmark_seconds"] = time.perf_counter() - t0
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "latest.json").write_text(
        json.dumps(result, indent=1, default=str), encoding="utf-8"
    )
    block = markdown(result)
    if not args.no_markdown:
        write_markdown(block)
    print(block)
    log(f"done in {result['benchmark_seconds']:.0f} s; wrote {RESULTS / 'latest.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
