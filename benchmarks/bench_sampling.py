"""Sampling tab speed: next-token view on a 100-token prompt, and streaming vs ``model.generate``.

Run: ``.venv/bin/python benchmarks/bench_sampling.py [--precision fp32] [--tokens 40] [--repeats 3]``
Prints a markdown table. Targets (issue 5): next-token view <= 250 ms warm (server time);
streaming tokens/s >= plain ``model.generate`` with the same model, precision and settings,
measured in this same run (interleaved, median of the repeats; identical tokens in float32).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from llmviz import config, lane  # noqa: E402
from llmviz.generation import Decoder, Session, encode_prompt, stream  # noqa: E402
from llmviz.models import load_model  # noqa: E402
from llmviz.sampling import SamplingSettings, sample_next  # noqa: E402

TEXT = (
    "吾輩は猫である。名前はまだ無い。どこで生れたかとんと見当がつかぬ。何でも薄暗いじめじめした所で"
    "ニャーニャー泣いていた事だけは記憶している。吾輩はここで始めて人間というものを見た。"
    "The animal didn't cross the street because it was too tired. Large language models predict "
    "the next token, one token at a time, from a probability distribution over their vocabulary. "
) * 4


def prompt_of(tokenizer, n_tokens: int) -> str:
    """A text that encodes to exactly ``n_tokens`` ids (special tokens included) or close."""
    ids = tokenizer(TEXT, add_special_tokens=False)["input_ids"]
    special = len(encode_prompt(tokenizer, "a")) - len(
        tokenizer("a", add_special_tokens=False)["input_ids"]
    )
    return tokenizer.decode(ids[: n_tokens - special])


def timed(fn, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default=config.DEFAULT_BASE)
    parser.add_argument("--precision", default=config.SAMPLING_PRECISION)
    parser.add_argument("--tokens", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-experiment", action="store_true", help="skip the 15-row table")
    parser.add_argument(
        "--threads",
        type=int,
        default=0,
        help="torch threads (0 = torch's default). On a shared, oversubscribed CPU 1 thread is "
        "several times faster than 2: OpenMP workers wait for each other at every barrier.",
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    loaded = load_model(args.model, args.precision)
    model, tok = loaded.model, loaded.tokenizer
    prompt = prompt_of(tok, 100)
    n_prompt = len(encode_prompt(tok, prompt))
    settings = SamplingSettings(temperature=0.8, top_k=50, top_p=0.95)

    # warm up both paths once (first calls allocate and pick kernels)
    sample_next(Decoder(model, tok, prompt).logits, settings, draw_token=False)
    ids = torch.tensor([encode_prompt(tok, prompt)])
    model.generate(
        ids, attention_mask=torch.ones_like(ids), max_new_tokens=3, **settings.generate_kwargs()
    )

    # 1) next-token view: prompt forward + the full sampler (every intermediate). Views are
    # shared between sessions (llmviz.lane): forget them first, so each forward is computed.
    shelf = lane.batcher(model, tok)

    def computed(fn):
        def run():
            shelf.forget()
            return fn()

        return run

    core = timed(
        computed(
            lambda: sample_next(Decoder(model, tok, prompt).logits, settings, draw_token=False)
        ),
        args.repeats,
    )
    forward = timed(computed(lambda: Decoder(model, tok, prompt)), args.repeats)
    shared = timed(lambda: Decoder(model, tok, prompt), args.repeats)

    # ... and 8 students asking for 8 different views at the same moment (one batched pass)
    def together(n: int, base: str) -> float:
        import threading

        shelf.forget()
        prompts = [f"{base} {i}" for i in range(n)]
        threads = [threading.Thread(target=Decoder, args=(model, tok, p)) for p in prompts]
        start = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return time.perf_counter() - start

    short = "The capital of France is"  # the length of the tab's presets
    batched = {}
    for label, base in (("short prompts (presets)", short), (f"{n_prompt}-token prompts", prompt)):
        one = [together(1, base) for _ in range(args.repeats)]
        eight = [together(8, base) for _ in range(args.repeats)]
        batched[label] = (statistics.median(one), statistics.median(eight))

    # ... and what the tab's handler does on top (labels, figures, cards, colored text, history)
    from llmviz.ui import sampling_tab

    def handler_path() -> None:
        session = Session.start(model, tok, prompt, 42, model_key=args.model)
        sampling_tab._screen(session, settings, config.SAMPLING_TOP_N, "en")

    handler = timed(computed(handler_path), args.repeats)

    # 2) streaming vs model.generate, same settings and seed (identical tokens), interleaved
    ours_tps, lib_tps, counts, same = [], [], [], []

    def ours(seed: int) -> tuple[list[int], float]:
        start = time.perf_counter()
        dec = Decoder(model, tok, prompt)  # the prefill is counted, as generate counts its own
        rng = torch.Generator(device=dec.logits.device).manual_seed(seed)
        got = [t.token_id for t in stream(dec, settings, args.tokens, rng)]
        return got, time.perf_counter() - start

    def library(seed: int) -> tuple[list[int], float]:
        torch.manual_seed(seed)
        start = time.perf_counter()
        out = model.generate(
            ids,
            attention_mask=torch.ones_like(ids),
            max_new_tokens=args.tokens,
            **settings.generate_kwargs(),
        )
        return out[0, ids.shape[1] :].tolist(), time.perf_counter() - start

    for r in range(args.repeats):
        seed = 1000 + r
        if r % 2 == 0:  # alternate who goes first, so neither always runs on a warmer cache
            (got, ours_s), (lib, lib_s) = ours(seed), library(seed)
        else:
            (lib, lib_s), (got, ours_s) = library(seed), ours(seed)
        # float32: the same tokens; bf16: generate's one-row steps round differently from our
        # batched ones (llmviz.lane._batched_step), so the texts may part after a few dozen
        same.append(got == lib)
        counts.append(len(got))
        ours_tps.append(len(got) / ours_s)
        lib_tps.append(len(lib) / lib_s)

    # 3) the textbook experiment (15 rows x 20 tokens, batched)
    from llmviz.generation import temperature_experiment

    exp = [float("nan")]
    if not args.no_experiment:
        exp = timed(lambda: temperature_experiment(model, tok, "こんにちは、", seed=0), 1)

    med = statistics.median
    ratio = med(ours_tps) / med(lib_tps)
    paired = med([a / b for a, b in zip(ours_tps, lib_tps, strict=True)])
    print(
        f"\n### Sampling tab — {loaded.spec.display}, {loaded.precision}, {torch.get_num_threads()} threads\n"
    )
    print("| measurement | result | target |")
    print("|---|---|---|")
    print(f"| prompt forward, {n_prompt} tokens (median) | {med(forward) * 1000:.0f} ms | |")
    print(f"| next-token view already asked by another session (shared) | "
          f"{med(shared) * 1000:.1f} ms | |")  # fmt: skip
    for label, (one, eight) in batched.items():
        print(f"| 8 different views at once, {label}: wall time / one view | "
              f"{eight / one:.2f}× ({eight * 1000:.0f} / {one * 1000:.0f} ms) | ≤ 2.5× |")  # fmt: skip
    print(
        f"| next-token view, core (forward + full sampler) | {med(core) * 1000:.0f} ms | ≤ 250 ms |"
    )
    print(
        f"| next-token view, tab handler (+ labels, figures) | {med(handler) * 1000:.0f} ms | ≤ 250 ms |"
    )
    print(
        f"| streaming ({counts[0]} tokens, T=0.8, top-k 50, top-p 0.95) | {med(ours_tps):.1f} tok/s | |"
    )
    print(f"| model.generate, same settings and seed | {med(lib_tps):.1f} tok/s | |")
    print(
        f"| ratio streaming / generate (of medians; median of paired runs) | {ratio:.2f}; {paired:.2f} | ≥ 1.0 |"
    )
    print(f"| same tokens as generate (runs) | {sum(same)} of {len(same)} | |")
    print(f"| textbook experiment (15 rows x 20 tokens, batched) | {exp[0]:.1f} s | |")
    print(
        f"\nrepeats: {args.repeats}; view ms: {[round(x * 1000) for x in core]}; "
        f"stream tok/s: {[round(x, 1) for x in ours_tps]}; "
        f"generate tok/s: {[round(x, 1) for x in lib_tps]}; "
        f"load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )


if __name__ == "__main__":
    main()
