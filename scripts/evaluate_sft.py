"""Evaluate the shipped tuning on the held-out set: base vs base + our LoRA adapter.

    .venv/bin/python scripts/evaluate_sft.py                 # writes assets/finetune/eval.json
    .venv/bin/python scripts/evaluate_sft.py --limit 4 --out /tmp/eval.json

Three rows, each over every held-out question (greedy, at most 64 new tokens):

* ``base_raw``: the base model given the question as plain text (what the Base vs instruct tab
  sends a base model);
* ``base_turn``: the base model in the same turn format as the tuned one (the format alone);
* ``tuned``: ``gemma-3-270m-sft`` (base + shipped adapter) in the turn format.

Scores (``llmviz.finetune.EvalSummary``): share that stops by itself with end-of-turn, share in
the reference answer's language, share of scorable questions answered correctly, mean length.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from llmviz import finetune  # noqa: E402
from llmviz.models import loading  # noqa: E402


def _row(key: str, summary: finetune.EvalSummary, seconds: float) -> dict:
    return {
        "key": key,
        "summary": summary.as_dict(),
        "seconds": round(seconds, 1),
        "answers": [
            {"id": r.pair.id, "q": r.pair.instruction, "a": r.answer, "stopped": r.stopped,
             "language_ok": r.language_ok, "correct": r.correct}
            for r in summary.rows
        ],
    }  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=finetune.EVAL_FILE)
    parser.add_argument("--limit", type=int, default=0, help="only the first N questions")
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--precision", default="auto")
    args = parser.parse_args()

    items = finetune.read_pairs(finetune.HELDOUT_FILE)
    if args.limit:
        items = items[: args.limit]
    rows = []
    for key, model_key, raw in (
        ("base_raw", "gemma-3-270m", True),
        ("base_turn", "gemma-3-270m", False),
        ("tuned", "gemma-3-270m-sft", False),
    ):
        loaded = loading.load_model(model_key, args.precision)
        start = time.perf_counter()
        summary = finetune.evaluate(
            loaded.model, loaded.tokenizer, items, args.max_new_tokens, raw=raw
        )
        rows.append(_row(key, summary, time.perf_counter() - start))
        print(f"[eval] {key:9s} {json.dumps(summary.as_dict())} ({rows[-1]['seconds']} s)",
              flush=True)  # fmt: skip
    adapter_info = json.loads((finetune.ADAPTER_DIR / "training.json").read_text("utf-8"))
    result = {
        "n": len(items),
        "max_new_tokens": args.max_new_tokens,
        "precision": loaded.precision,
        "heldout_sha256": finetune.file_sha256(finetune.HELDOUT_FILE),
        "adapter_data_sha256": adapter_info.get("data_sha256"),
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_name(f".{args.out.name}.tmp")
    tmp.write_text(json.dumps(result, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    tmp.replace(args.out)  # atomic: the UI never reads half a file
    print(f"[eval] wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
