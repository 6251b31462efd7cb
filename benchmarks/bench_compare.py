"""Benchmark: two models streaming at once (the base-vs-instruct tab).

Target (issue 7): warm, both columns show their first token within 1 s of the click, and neither
stalls while they share the CPU. Measured here:

* core: ``DualStream`` with each model alone, then both together, with torch's default threads
  and with ``threads_per_stream=1`` (time to first token, time to first visible text, tokens/s);
* click: the tab's own handler (``_on_run``: validation, cached models, prompt building, threads)
  until each column's first text reaches the browser's output.

Prints a markdown table. Usage: ``python benchmarks/bench_compare.py [--tokens 32] [--repeats 3]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import torch  # noqa: E402

from llmviz import compare, config  # noqa: E402
from llmviz.models import load_model  # noqa: E402
from llmviz.streams import DualStream, Job, Sampling  # noqa: E402

NO_STOP = (10**9,)  # run every column to the token limit, so speeds compare like with like
QUESTION = "What is the capital of England?"


def _jobs():
    gemma = load_model("gemma-3-270m", config.COMPARE_PRECISION)
    smol = load_model("smollm2-135m-instruct", config.COMPARE_PRECISION)
    g = compare.build_prompt(gemma.tokenizer, QUESTION)
    s = compare.build_prompt(smol.tokenizer, QUESTION, use_template=True)
    jobs = [
        Job(gemma.model, gemma.tokenizer, g.input_ids, NO_STOP),
        Job(smol.model, smol.tokenizer, s.input_ids, NO_STOP),
    ]
    return jobs, gemma.precision


def _measure(jobs, n_tokens, threads):
    """{column: (first token s, first text s, tokens/s, process CPU ms per token)} of one run.

    CPU time per token is the number to trust on a shared machine: wall-clock speed there mostly
    measures how many runnable threads the scheduler gives this process a share for."""
    cpu0 = time.process_time()
    ds = DualStream(jobs, Sampling(max_new_tokens=n_tokens), threads_per_stream=threads).start()
    first_text: dict[int, float] = {}
    for ev in ds.events():
        if ev.kind == "text" and ev.column not in first_text:
            first_text[ev.column] = ev.elapsed_s
    ds.close()
    cpu_ms = (
        1000 * (time.process_time() - cpu0) / max(1, sum(r.n_tokens for r in ds.results.values()))
    )
    return {
        c: (
            r.first_token_s or float("nan"),
            first_text.get(c, float("nan")),
            r.tokens_per_s,
            cpu_ms,
        )
        for c, r in ds.results.items()
    }


def _click(n_tokens: int):
    """Seconds from calling the tab's handler to each column's first non-empty text output."""
    from llmviz.streams import StreamSlot
    from llmviz.ui import compare_tab

    p = compare.PRESETS["capital_en"]
    args = (p.prompt, "gemma-3-270m", "smollm2-135m-instruct", True, "zero", p.examples_text,
            "", "off", n_tokens, 0.0, 1.0, 0, StreamSlot(), None, None)  # fmt: skip
    t0 = time.perf_counter()
    seen: dict[int, float] = {}
    for out in compare_tab._on_run(*args):
        for c in (0, 1):
            if c not in seen and isinstance(out[c], str) and out[c].strip():
                seen[c] = time.perf_counter() - t0
    return seen


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokens", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    jobs, precision = _jobs()
    names = ["Gemma 3 270M (base)", "SmolLM2 135M Instruct"]
    for job in jobs:  # warm-up: the first generate after a load is slow once
        DualStream([job], Sampling(max_new_tokens=4)).run()
    default_threads = torch.get_num_threads()

    rows = []
    scenarios = [
        ("alone", None, [[0], [1]]),
        (f"together, torch default ({default_threads} threads each)", None, [[0, 1]]),
        ("together, 1 thread each", 1, [[0, 1]]),
    ]
    for label, threads, groups in scenarios:
        per_col: dict[int, list[tuple[float, ...]]] = {0: [], 1: []}
        for _ in range(args.repeats):
            for group in groups:
                res = _measure([jobs[i] for i in group], args.tokens, threads)
                for local, value in res.items():
                    per_col[group[local]].append(value)
        for c in (0, 1):
            vals = per_col[c]
            rows.append(
                (label, names[c], *(statistics.median(v[i] for v in vals) for i in range(4)))
            )
    clicks = [_click(args.tokens) for _ in range(args.repeats)]

    load = os.getloadavg()
    print(f"\n### Base vs instruct: two streams ({precision}, {args.tokens} new "
          f"tokens, median of {args.repeats}; {os.cpu_count()} cores, load average "
          f"{load[0]:.1f} / {load[1]:.1f})\n")  # fmt: skip
    print("| scenario | model | first token (s) | first text (s) | tokens/s | CPU ms/token |")
    print("|---|---|---:|---:|---:|---:|")
    for label, name, ft, ftext, tps, cpu in rows:
        print(f"| {label} | {name} | {ft:.2f} | {ftext:.2f} | {tps:.1f} | {cpu:.0f} |")
    print(
        "\n| click -> first text in the output (tab handler, warm) | left (Gemma) | right (SmolLM2) |"
    )
    print("|---|---:|---:|")
    for i, seen in enumerate(clicks, 1):
        print(
            f"| run {i} | {seen.get(0, float('nan')):.2f} s | {seen.get(1, float('nan')):.2f} s |"
        )
    print(f"\nTarget: both <= 1.0 s. torch threads after the run: {torch.get_num_threads()}.")


if __name__ == "__main__":
    main()
