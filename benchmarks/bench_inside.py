"""Inside-the-model tab speed and payload (issue 15), in-process, both packaged models.

Run: ``.venv/bin/python benchmarks/bench_inside.py [--repeats 5]``. Prints a markdown table.
Targets (2-core CPU, Gemma 3 270M): logit lens for 64 tokens, all layers, <= 1 s server time and
<= 1 MB payload; neighbours over the full vocabulary <= 200 ms; the KV meter adds <= 5 % to
generation time.

* "lens": ``inside.logit_lens`` (one forward with hooks + the final norm and LM head on every
  layer's states), median of the repeats after one warm-up; "lens, click to screen": the tab's
  handler work without the shared-result cache (lens, grid table, top-10 table, target curve),
  and the bytes of what gradio sends for it (the grid's Styler rendered as gradio's JSON, the
  figure's ``to_json()``).
* "neighbours": one search over every embedding row (the float32 chunks, norms cached).
* "KV meter": greedy generation of N tokens with and without measuring the cache after each
  token, in one run, alternating, so their ratio is fair on a shared machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr  # noqa: E402

from llmviz import config, generation, inside  # noqa: E402
from llmviz.models import load_model  # noqa: E402
from llmviz.sampling import SamplingSettings  # noqa: E402
from llmviz.ui import inside_tab  # noqa: E402

TEXT = (
    "富士山の高さは 3776 メートルで、日本でいちばん高い山です。The capital of France is Paris, "
    "and the capital of Japan is Tokyo. 吾輩は猫である。名前はまだ無い。"
) * 4


def prompt_of(tokenizer, n_tokens: int) -> str:
    ids = tokenizer(TEXT, add_special_tokens=False)["input_ids"][: n_tokens - 1]
    text = tokenizer.decode(ids)
    while len(tokenizer(text)["input_ids"]) > n_tokens:
        text = text[:-1]
    return text


def timed(fn, repeats: int) -> float:
    fn()  # warm-up
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t0)
    return statistics.median(runs)


def payload(lens: inside.Lens, loaded, lang: str = "en") -> int:
    grid = gr.Dataframe(interactive=False).postprocess(inside_tab._grid(lens, lang))
    cell = gr.Dataframe(interactive=False).postprocess(inside_tab._cell_table(lens, lens.n_layers, lens.n_tokens - 1, lang))
    a = inside_tab._Lens(lens, loaded.spec.key, loaded.precision, loaded.spec.display)
    tid = int(lens.top_ids[-1, -1, 0])
    fig = inside_tab._curve(loaded.model, loaded.tokenizer, a, tid, lens.n_tokens - 1, lang)
    return len(grid.model_dump_json()) + len(cell.model_dump_json()) + len(fig.to_json())


def kv_runs(loaded, n: int, measure: bool) -> float:
    decoder = generation.Decoder(loaded.model, loaded.tokenizer, inside_tab.KV_PRESET)
    t0 = time.perf_counter()
    for _ in generation.stream(decoder, SamplingSettings(temperature=0.0), n, rng=None):
        if measure:
            inside.cache_bytes(decoder.cache)
            inside.cache_tokens(decoder.cache)
    return time.perf_counter() - t0


def measure(key: str, args: argparse.Namespace) -> tuple:
    """One model's row: lens, lens + screen, payload, neighbours, KV meter / plain generation."""
    loaded = load_model(key, config.INSIDE_PRECISION)
    ids = tuple(inside.encode_prompt(loaded.tokenizer, prompt_of(loaded.tokenizer, 64)))
    lens_s = timed(lambda: inside.logit_lens(loaded.model, loaded.tokenizer, ids), args.repeats)
    lens = inside.logit_lens(loaded.model, loaded.tokenizer, ids)

    def click():
        payload(inside.logit_lens(loaded.model, loaded.tokenizer, ids), loaded)

    click_s = timed(click, args.repeats)
    size = payload(lens, loaded)
    word = inside.encode_word(loaded.tokenizer, "猫")
    nb_s = timed(lambda: inside.neighbours(loaded.model, loaded.tokenizer, word, 15), args.repeats)
    plain, metered = [], []
    for _ in range(3):
        plain.append(kv_runs(loaded, args.kv_tokens, False))
        metered.append(kv_runs(loaded, args.kv_tokens, True))
    ratio = statistics.median(metered) / statistics.median(plain)
    return (loaded.spec.display, loaded.precision, len(ids), lens.n_layers, lens_s, click_s, size, nb_s, ratio)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--kv-tokens", type=int, default=60)
    args = ap.parse_args()
    rows = [measure(key, args) for key in (config.DEFAULT_BASE, config.DEFAULT_INSTRUCT)]
    print("| model | precision | tokens | layers | lens | lens, click to screen | payload | neighbours (full vocabulary) | KV meter / plain generation |")
    print("|---|---|---|---|---|---|---|---|---|")
    for m, p, n, layers, lens_s, click_s, size, nb_s, ratio in rows:
        print(f"| {m} | {p} | {n} | {layers} | {lens_s * 1000:.0f} ms | {click_s * 1000:.0f} ms | {size / 1024:.0f} kB | {nb_s * 1000:.0f} ms | {ratio:.3f}× |")
    print(json.dumps({"rows": rows}, default=str))


if __name__ == "__main__":
    main()
