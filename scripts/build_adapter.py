"""Build the shipped LoRA adapter: the packaged Gemma 3 270M base tuned on our instruction set.

    .venv/bin/python scripts/build_adapter.py            # writes assets/finetune/adapter/
    .venv/bin/python scripts/build_adapter.py --out /tmp/a --steps 20

Reproducible: the seed, the settings and the sha256 of the training file are written to
``training.json`` next to the weights, with the time it took. The adapter is saved atomically
(a crash mid-save leaves the old one). Runs on CPU (bf16 where native, else fp32) or, on CUDA,
over a 4-bit base (QLoRA).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from llmviz import finetune  # noqa: E402
from llmviz.models import device, loading  # noqa: E402

SETTINGS = finetune.TrainSettings(
    steps=120, learning_rate=5e-4, rank=8, alpha=16, batch_size=8, seed=0, probe_every=0
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=finetune.ADAPTER_DIR)
    parser.add_argument("--steps", type=int, default=SETTINGS.steps)
    parser.add_argument("--data", type=Path, default=finetune.TRAIN_FILE)
    args = parser.parse_args()
    settings = finetune.TrainSettings(**{**SETTINGS.__dict__, "steps": args.steps})

    import peft
    import torch
    import transformers

    start = time.perf_counter()
    pairs = finetune.read_pairs(args.data)
    precision = "nf4" if device.pick() == "cuda" else device.default_precision()
    loaded = loading.load_private("gemma-3-270m", precision)
    model = loaded.model
    if precision == "nf4":
        model = peft.prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    print(f"[build] {len(pairs)} pairs, base at {precision} loaded in {loaded.load_seconds:.1f} s")
    losses: list[float] = []
    with finetune.attached(model, settings) as tuned:
        for event in finetune.train(tuned, loaded.tokenizer, pairs, settings):
            if isinstance(event, finetune.StepEvent):
                losses.append(round(event.loss, 4))
                if event.step % 10 == 0 or event.step == 1:
                    print(f"[build] step {event.step}/{event.steps} loss {event.loss:.3f} "
                          f"({event.seconds:.0f} s)", flush=True)
        seconds = time.perf_counter() - start
        info = {
            "base": "gemma-3-270m (packaged GGUF Q4_K_M, dequantized)",
            "precision": precision,
            "settings": settings.__dict__,
            "data": str(args.data.relative_to(args.data.parents[2]) if args.data.is_absolute()
                        and len(args.data.parents) > 2 else args.data),
            "data_sha256": finetune.file_sha256(args.data),
            "pairs": len(pairs),
            "losses": losses,
            "seconds": round(seconds, 1),
            "machine": f"{platform.machine()}, {torch.get_num_threads()} torch threads, "
                       f"{'CUDA' if device.pick() == 'cuda' else 'CPU'}",
            "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                         "peft": peft.__version__},
        }
        finetune.save_adapter(tuned, args.out, info, base_name="google/gemma-3-270m")
    print(json.dumps({k: v for k, v in info.items() if k != "losses"}, ensure_ascii=False))
    print(f"[build] saved {args.out} in {seconds:.0f} s; loss {losses[0]:.3f} -> {losses[-1]:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
