"""Benchmark: the fine-tuning lesson (issue 13).

Targets: the live lesson's default run <= 3 min on a 2-core CPU with the first loss point on
screen within 15 s of the click; peak RSS during training <= 3 GB above the idle process; RSS
back within +200 MB after 5 runs; loading ``gemma-3-270m-sft`` (base + shipped adapter) no more
than 1 s slower than loading the base, at every precision.

Measured here, in one process (no server):

* **click**: the tab's own handler (``finetune_tab._on_run``) with the UI's defaults, from the
  call to the first loss point, the first answer, and the end (this includes loading the
  private copy of the base on the first run);
* **steps**: median step time and tokens/s of that run (from its ``StepEvent``s);
* **memory**: RSS (``/proc/self/status``) sampled every 20 ms: idle (imports done, nothing
  loaded), peak during the first run, and after each of ``--runs`` runs;
* **load**: ``load_private`` of base and sft at each precision, interleaved, median of
  ``--repeats``.

Prints a markdown table. Usage:
``python benchmarks/bench_finetune.py [--runs 5] [--leak-steps 10] [--repeats 3]``.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from llmviz import config, finetune  # noqa: E402
from llmviz.models.loading import load_private  # noqa: E402
from llmviz.ui import finetune_tab  # noqa: E402

GB = 1024**3


def rss() -> int:
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


class Sampler:
    """Peak RSS while the block runs."""

    def __enter__(self):
        self.peak = rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def _loop(self):
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, rss())

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss())


def click(steps: int, probe_every: int, lang: str = "en") -> dict[str, float]:
    """Run the tab's handler with the UI defaults; seconds to each milestone, and the run."""
    args = ("all", steps, 0.001, 8, 16, 4, 0, finetune_tab.default_probe(lang), probe_every,
            None, None)  # fmt: skip
    t0 = time.perf_counter()
    seen: dict[str, float] = {}
    run = None
    for out in finetune_tab._on_run(*args, request=None):
        now = time.perf_counter() - t0
        for value in out:
            if isinstance(value, finetune_tab.Run):
                run = value
        if run is not None:
            if run.losses and "first loss" not in seen:
                seen["first loss"] = now
            if run.probes and "first answer" not in seen:
                seen["first answer"] = now
    seen["done"] = time.perf_counter() - t0
    return {"times": seen, "run": run}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=config.FT_DEFAULT_STEPS)
    ap.add_argument("--runs", type=int, default=5, help="runs for the leak check")
    ap.add_argument("--leak-steps", type=int, default=10, help="steps of each leak-check run")
    ap.add_argument("--repeats", type=int, default=3, help="loads per model and precision")
    ap.add_argument("--precisions", default="fp32,bf16,int8,nf4")
    args = ap.parse_args()

    gc.collect()
    idle = rss()
    precision = finetune_tab._precision()
    with Sampler() as mem:
        first = click(args.steps, config.FT_DEFAULT_PROBE_EVERY)
    run = first["run"]

    loaded = finetune_tab.bench()
    settings = finetune.TrainSettings(steps=args.leak_steps, learning_rate=0.001, rank=8,
                                      alpha=16, batch_size=4, seed=0, probe_every=0)  # fmt: skip
    pairs = finetune_tab.train_pairs()
    with finetune.attached(loaded.model, settings) as model:
        evs = [e for e in finetune.train(model, loaded.tokenizer, pairs, settings)]
    times = [e.seconds for e in evs]
    per_step = [b - a for a, b in zip(times, times[1:], strict=False)]
    tokens = [e.tokens for e in evs[1:]]
    step_median = statistics.median(per_step)
    tok_rate = sum(tokens) / sum(per_step)

    after = []
    for _ in range(args.runs):
        click(args.leak_steps, 0)
        gc.collect()
        after.append(rss())

    loads: dict[tuple[str, str], list[float]] = {}
    for p in args.precisions.split(","):
        for _ in range(args.repeats):
            for key in ("gemma-3-270m", "gemma-3-270m-sft"):
                t = time.perf_counter()
                lm = load_private(key, p)
                loads.setdefault((key, p), []).append(time.perf_counter() - t)
                del lm
                gc.collect()

    t = first["times"]
    load = os.getloadavg()
    print(f"\n### Fine-tuning lesson ({precision}, {os.cpu_count()} cores, torch "
          f"{torch.get_num_threads()} threads, load average {load[0]:.1f} / {load[1]:.1f})\n")  # fmt: skip
    print("| metric | target | measured |")
    print("|---|---|---:|")
    print(f"| default run ({args.steps} steps, batch 4, probe every "
          f"{config.FT_DEFAULT_PROBE_EVERY}): click → done | ≤ 180 s | {t['done']:.1f} s |")  # fmt: skip
    print(f"| click → first answer (before training; includes the first load) | – | "
          f"{t.get('first answer', float('nan')):.1f} s |")  # fmt: skip
    print(f"| click → first loss point | ≤ 15 s | {t.get('first loss', float('nan')):.1f} s |")
    print(f"| training time of that run (steps + probes, from the run) | – | {run.seconds:.1f} s |")
    print(f"| step time, median (batch 4, no probes) | – | {1000 * step_median:.0f} ms |")
    print(f"| tokens/s in training (padding excluded) | – | {tok_rate:.0f} |")
    print(f"| RSS idle (imports only) | – | {idle / GB:.2f} GB |")
    print(f"| peak RSS above idle, first run (incl. loading the base) | ≤ 3 GB | "
          f"{(mem.peak - idle) / GB:.2f} GB |")  # fmt: skip
    print(f"| RSS after run 1 → after run {args.runs} ({args.leak_steps} steps each) | ≤ +200 MB | "
          f"{after[0] / GB:.2f} → {after[-1] / GB:.2f} GB "
          f"({(after[-1] - after[0]) / 2**20:+.0f} MB) |")  # fmt: skip
    print("\n| precision | load base (s) | load base + adapter (s) | difference | target ≤ +1 s |")
    print("|---|---:|---:|---:|---|")
    for p in args.precisions.split(","):
        b = statistics.median(loads[("gemma-3-270m", p)])
        s = statistics.median(loads[("gemma-3-270m-sft", p)])
        print(f"| {p} | {b:.2f} | {s:.2f} | {s - b:+.2f} | {'✅' if s - b <= 1 else '❌'} |")
    print(f"\nRSS after each run: {', '.join(f'{a / GB:.2f}' for a in after)} GB. "
          f"Losses of the default run: {run.losses[0]:.2f} → {run.losses[-1]:.2f}.")


if __name__ == "__main__":
    main()
