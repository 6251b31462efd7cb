"""Labs tab speed: the scaling calculator (light queue) and perplexity scoring (model queue).

Run: ``.venv/bin/python benchmarks/bench_labs.py [--precision bf16] [--repeats 3] [--long]``
Prints a markdown table. Issue 9 sets no numeric targets; what matters: the scaling handler
(maths + two plotly figures) stays well under a second, and ``score_text`` costs about the same
as transformers' own loss forward on the same tokens (ratio measured in this run, interleaved).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from llmviz.models import load_model  # noqa: E402
from llmviz.perplexity import prefix_token_id, score_text  # noqa: E402
from llmviz.ui import labs_tab  # noqa: E402


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="gemma-3-270m")
    ap.add_argument("--precision", default="bf16")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--long", action="store_true", help="also score the >512-token preset")
    args = ap.parse_args()

    scaling_call = lambda: labs_tab._on_scaling.__wrapped__(  # noqa: E731
        70e9, 1.4e12, 5.88e23, "h100", 1024, 0.4, None
    )
    scaling_call()  # warm up plotly
    sc = [timed(scaling_call) for _ in range(args.repeats)]

    lm = load_model(args.model, args.precision)
    rows = [("scaling handler (maths + 2 figures)", "-", statistics.median(sc), None)]
    presets = ["lm-en", "lm-ja"] + (["long"] if args.long else [])
    for key in presets:
        txt = labs_tab.preset_text(key)
        ids = lm.tokenizer(txt, add_special_tokens=False)["input_ids"]
        full = torch.tensor([[prefix_token_id(lm.tokenizer), *ids]])

        def hf_loss(full=full):
            with torch.inference_mode():
                lm.model(full, labels=full)

        score_text(lm.model, lm.tokenizer, txt)  # warm up
        ours, theirs = [], []
        for _ in range(args.repeats):  # interleaved so load changes hit both
            ours.append(timed(lambda txt=txt: score_text(lm.model, lm.tokenizer, txt)))
            theirs.append(timed(hf_loss))
        s = score_text(lm.model, lm.tokenizer, txt)
        label = f"score_text '{key}' ({len(ids)} tokens, {s.n_windows} window(s))"
        rows.append(
            (
                label,
                f"{len(ids) / statistics.median(ours):,.0f}",
                statistics.median(ours),
                statistics.median(theirs),
            )
        )

    print(
        f"\n{args.model} · {args.precision} · torch threads {torch.get_num_threads()} · median of {args.repeats}\n"
    )
    print("| what | tokens/s | seconds | transformers loss forward (s) | ratio |")
    print("|---|---|---|---|---|")
    for what, tps, ours, theirs in rows:
        ratio = f"{ours / theirs:.2f}" if theirs else "-"
        theirs_s = f"{theirs:.3f}" if theirs else "-"
        print(f"| {what} | {tps} | {ours:.3f} | {theirs_s} | {ratio} |")


if __name__ == "__main__":
    main()
