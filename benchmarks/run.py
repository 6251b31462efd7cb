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
Endpoints are discovered from the running app; the main ones are looked up by name in
``measure.MAIN``.

This file is the command line and the order of the phases only. The parts: ``server.py`` (the app
as a child process, run by ``launch_app.py``; memory, machine, endpoints), ``measure.py``
(latency, payloads, generation speed, model loading), ``classroom.py`` (the load test and its
analysis), ``report.py`` (targets and the BENCHMARKS.md block), ``harness.py`` (calling endpoints,
statistics; shared with the hostile-input sweep).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:  # run as a script: python benchmarks/run.py
    sys.path.insert(0, _ROOT)

from benchmarks.classroom import classroom  # noqa: E402
from benchmarks.measure import (  # noqa: E402
    cached_model,
    cold_cache,
    first_model_uses,
    generation_speed,
    main_latency,
    payload_sweep,
    read_bandwidth,
)
from benchmarks.report import fmt_s, markdown, write_markdown  # noqa: E402
from benchmarks.server import (  # noqa: E402
    RESULTS,
    Server,
    endpoint_map,
    load_average,
    log,
    machine_info,
)


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Every phase of one benchmark run against one fresh server; the result as a dict."""
    quick = args.quick
    repeats = args.repeats or (5 if quick else 20)
    result: dict[str, Any] = {
        "quick": quick,
        "machine": machine_info(),
        "load_before": load_average(),
    }
    # a model missing from the on-disk cache is converted from GGUF on first use (about a
    # minute): that run's "first use" is a conversion, not a cached load, and says so
    result["cache_had"] = {k: cached_model(k) for k in ("gemma-3-270m", "smollm2-135m-instruct")}
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
        result["latency"] = main_latency(server, eps, repeats) if "latency" in phases else []

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
