"""The benchmark's measurements of one running app, each a function returning plain numbers:

* ``main_latency()``: each tab's main endpoint (``MAIN``): first call, then median / p95 of
  repeated calls, each in a fresh session, and the bytes of its response;
* ``payload_sweep()``: every discovered endpoint once with a normal request (time, bytes, events);
* ``generation_speed()``: tokens/s of the app's ``sampling_generate``, of llmviz's sampling loop
  in-process and of plain ``model.generate`` (same model, prompt, settings);
  ``read_bandwidth()`` gives the memory-bandwidth bound it is compared with;
* ``first_model_uses()``: ``/models_load`` of the default models on a fresh server;
  ``cold_cache()``: the same on a second server whose model cache is an empty folder.

Not here: starting the server (``server.py``), the classroom load test (``classroom.py``), targets
and the markdown report (``report.py``).
"""

from __future__ import annotations

import shutil
import tempfile
import time
from typing import Any

from benchmarks import harness
from benchmarks.harness import Endpoint, summary
from benchmarks.report import fmt_s
from benchmarks.server import Server, endpoint_map, log

# A 128-token text for the attention target (checked with the Gemma tokenizer at run time).
ATTENTION_TEXT = (
    "The animal didn't cross the street because it was too tired. Attention lets every token look "
    "back at the tokens before it and decide which ones matter: here, the word it should look at "
    "the animal, not at the street. 吾輩は猫である。名前はまだ無い。どこで生れたかとんと見当がつかぬ。"
    "何でも薄暗いじめじめした所でニャーニャー泣いていた事だけは記憶している。"
)
GEN_PROMPT = "Once upon a time, in a small village by the sea, there lived"
#: Endpoints that generate text (they share the model lane with the rest of the model work).
GENERATION_ENDPOINTS = ("sampling_generate", "compare_run", "sampling_experiment")

#: The main endpoint of each tab (issue 8's list) and the arguments to time it with.
MAIN: dict[str, tuple[str, dict[str, Any]]] = {
    "tokenize": ("tokenizer_tokenize", {}),
    "attention (128 tokens)": ("attention_run", {"txt": ATTENTION_TEXT}),
    # a new prompt each call: the forward pass is computed (a repeated one is shared)
    "next-token view": ("sampling_view", {"prompt": lambda i: f"The capital of country {i} is"}),
    "next-token view, shared (same prompt)": (
        "sampling_view",
        {"prompt": "The capital of France is"},
    ),
    "generation (30 tokens)": ("sampling_generate", {"prompt": GEN_PROMPT, "n_tokens": 30}),
    "memory estimate": ("memory_calculate", {}),
    "base vs instruct, first token": ("compare_run", {"max_new_tokens": 1}),
}


# --- latency -------------------------------------------------------------------------------------
def main_latency(server: Server, eps: dict[str, Endpoint], repeats: int) -> list[dict[str, Any]]:
    """``timed_calls`` of each ``MAIN`` endpoint the app has (fewer repeats for generation)."""
    rows = []
    for label, (name, overrides) in MAIN.items():
        if name not in eps:
            log(f"{label}: endpoint {name} not in the app, skipped")
            continue
        n = max(3, repeats // 4) if name in GENERATION_ENDPOINTS else repeats
        row = {"label": label, **timed_calls(server, eps[name], eps, overrides, n)}
        rows.append(row)
        log(
            f"{label}: first {fmt_s(row['first_s'])}, median {fmt_s(row['median_s'])}, p95 {fmt_s(row['p95_s'])}"
        )
    return rows


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
        values = {k: v(i) if callable(v) else v for k, v in overrides.items()}
        args = harness.normal_args(ep, values, outs)
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
    ep = eps.get("sampling_generate")
    model_key = harness.NORMAL["sampling_generate"].args.get("model_key", "gemma-3-270m")
    out: dict[str, Any] = {"model": model_key, "tokens": n_tokens, "prompt": GEN_PROMPT}
    if ep is not None:
        out.update(_endpoint_rate(server, ep, n_tokens, repeats))
    out.update(_in_process_rates(model_key, n_tokens, repeats))
    return out


def _endpoint_rate(server: Server, ep: Endpoint, n_tokens: int, repeats: int) -> dict[str, Any]:
    """Median tokens/s of ``sampling_generate`` over ``repeats`` calls after a first one."""
    out: dict[str, Any] = {}
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
    return out


def _in_process_rates(model_key: str, n_tokens: int, repeats: int) -> dict[str, Any]:
    """The same generation in this process: llmviz's sampling loop and plain ``model.generate``."""
    import torch

    from llmviz import config
    from llmviz.generation import generate_ids
    from llmviz.models import load_model
    from llmviz.sampling import SamplingSettings

    settings = SamplingSettings(temperature=1.0, top_k=50, top_p=1.0, min_p=0.0)
    # the precision the server's sampling tab uses ("auto": bf16 only where it is fast)
    loaded = load_model(model_key, config.SAMPLING_PRECISION)
    out: dict[str, Any] = {"precision": loaded.precision}
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
    out.update(_concurrent_streams(model, tok, settings, n_tokens, repeats))
    return out


CONCURRENT_STREAMS = 8


def _concurrent_streams(model: Any, tok: Any, settings: Any, n_tokens: int,
                        repeats: int) -> dict[str, Any]:  # fmt: skip
    """Eight students generating at once (each its own prompt and seed, all started together)
    against one alone, in this process: the decoding steps of concurrent streams run as one
    batched pass (``llmviz.lane.Stepper``). Wall time of the eight / of one, and how many
    batched passes the steps took."""
    import threading

    from llmviz import lane
    from llmviz.generation import generate_ids

    prompts = [f"{GEN_PROMPT} ({i})" for i in range(CONCURRENT_STREAMS)]

    def at_once(n: int, seed: int) -> float:
        barrier = threading.Barrier(n + 1)

        def run(i: int) -> None:
            barrier.wait()
            generate_ids(model, tok, prompts[i], settings, n_tokens, seed + i)

        threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        barrier.wait()
        start = time.perf_counter()
        for t in threads:
            t.join()
        return time.perf_counter() - start

    one, eight = [], []
    stepper = lane._steppers.get(model)
    passes, rows = (stepper.forward_passes, stepper.rows) if stepper else (0, 0)
    for i in range(repeats):
        one.append(at_once(1, 100 + i))
        stepper = lane._steppers.get(model)
        p0, r0 = stepper.forward_passes, stepper.rows
        eight.append(at_once(CONCURRENT_STREAMS, 200 + 10 * i))
        passes += stepper.forward_passes - p0
        rows += stepper.rows - r0
    one_s, eight_s = summary(one)["median"], summary(eight)["median"]
    return {
        "concurrent_streams": CONCURRENT_STREAMS,
        "concurrent_one_s": one_s,
        "concurrent_all_s": eight_s,
        "concurrent_ratio": eight_s / one_s if one_s else None,
        "concurrent_rows_per_pass": rows / passes if passes else None,
    }


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


# --- model loading -------------------------------------------------------------------------------
def cached_model(key: str) -> bool:
    """Whether ``key`` is in the app's on-disk model cache (a converted model's manifest)."""
    from llmviz import config

    return (config.CACHE_DIR / key / "llmviz-manifest.json").is_file()


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
