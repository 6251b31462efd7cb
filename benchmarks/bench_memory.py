"""Benchmark of the quantization & memory tab. Prints markdown tables.

1. Predicted vs measured footprint of both default models at fp32 / bf16 / int8 / nf4 (goal:
   within 1 % on CPU), with load times, ``get_memory_footprint()`` and the process RSS.
2. Speed of each endpoint's core work: the calculator, config-only counting, the weight lab,
   the quality comparison and one greedy sample.

Run: ``.venv/bin/python benchmarks/bench_memory.py`` (loads 8 model variants; minutes on a small CPU).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from llmviz import config, measure, memory, quant_quality, quantize  # noqa: E402
from llmviz.memory_presets import PRESETS  # noqa: E402
from llmviz.models import hub_config, load_model  # noqa: E402

MODELS = ("smollm2-135m-instruct", "gemma-3-270m")
PRECISIONS = ("fp32", "bf16", "int8", "nf4")


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def timed(fn, repeat: int = 1):
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def footprint_table() -> None:
    print("## Predicted vs measured footprint (CPU)\n")
    print(
        "| model | precision | predicted MB | measured MB | error | get_memory_footprint MB | quant state MB | load s | RSS MB |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    worst = 0.0
    for key in MODELS:
        for precision in PRECISIONS:
            loaded = load_model(key, precision)
            c = measure.compare(key, loaded.model, precision, loaded.device)
            worst = max(worst, abs(c.error_pct))
            print(
                f"| {key} | {precision} | {c.predicted_bytes / 1e6:,.3f} | {c.measured.total / 1e6:,.3f} | "
                f"{c.error_pct:+.4f} % | {loaded.footprint_bytes / 1e6:,.3f} | {c.measured.quant_state / 1e6:,.3f} | "
                f"{loaded.load_seconds:.1f} | {rss_mb():,.0f} |",
                flush=True,
            )
    print(
        f"\nLargest |error|: {worst:.4f} % (goal: <= 1 %). Model budget: {config.MODEL_MEMORY_BUDGET / 2**30:.1f} GiB.\n"
    )


def speed_table() -> None:
    print("## Speed\n")
    print("| work | seconds |")
    print("|---|---:|")
    p = PRESETS["llama3-8b"]
    t, _ = timed(
        lambda: memory.size_model(
            "Llama 3 8B", list(memory.PRECISIONS), breakdown=p.breakdown, arch=p.arch, context=8192
        ),
        repeat=5,
    )
    print(f"| calculator: Llama 3 8B at all {len(memory.PRECISIONS)} precisions | {t:.4f} |")
    hub_config._cached_breakdown.cache_clear()
    t, _ = timed(lambda: hub_config.count_model("gemma-3-270m"))
    print(f"| config-only count on the meta device (Gemma 3 270M, cold) | {t:.2f} |")
    smol = load_model("smollm2-135m-instruct", "bf16")
    w = quantize.weight_matrix(smol.model, 3, "mlp.down_proj")
    t, _ = timed(lambda: quantize.quantize_all(w, 3), repeat=3)
    print(f"| lab: 5 methods on a {w.shape[0]}x{w.shape[1]} matrix | {t:.3f} |")
    gem = load_model("gemma-3-270m", "bf16")
    w = quantize.weight_matrix(gem.model, 3, "mlp.gate_proj")
    t, _ = timed(lambda: quantize.quantize_all(w, 3), repeat=3)
    print(f"| lab: 5 methods on a {w.shape[0]}x{w.shape[1]} matrix | {t:.3f} |")
    for key in MODELS:
        models = {pr: load_model(key, pr) for pr in ("fp32", "int8", "nf4")}
        tok = models["fp32"].tokenizer
        t, rows = timed(
            lambda models=models, tok=tok: quant_quality.compare_quality(
                {pr: m.model for pr, m in models.items()}, tok
            )
        )
        print(f"| quality: fp32 + int8 + nf4 on the fixed text, {key} | {t:.1f} |")
        for pr, m in models.items():
            t, sample = timed(lambda m=m, tok=tok: quant_quality.greedy_sample(m.model, tok))
            print(
                f"| greedy sample, {config.MEMORY_SAMPLE_NEW_TOKENS} tokens, {key} {pr} | {t:.1f} |"
            )
        quality_rows[key] = rows
    print()


quality_rows: dict[str, tuple] = {}


def quality_table() -> None:
    print("## Quality cost vs fp32 (fixed text)\n")
    print("| model | precision | perplexity | next-token agreement | KL (nats) |")
    print("|---|---|---:|---:|---:|")
    for key, rows in quality_rows.items():
        for r in rows:
            print(
                f"| {key} | {r.precision} | {r.perplexity:.2f} | {r.agreement:.1%} | {r.kl:.4f} |"
            )


if __name__ == "__main__":
    print(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores\n")
    footprint_table()
    speed_table()
    quality_table()
