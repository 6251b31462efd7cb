"""The benchmark's server process: the app exactly as ``python app.py`` starts it (page served,
then ``app.warm_up``), on 127.0.0.1.

    python -m benchmarks.launch_app GROUPS_JSON PORT        # from the repository root

``benchmarks/server.py`` runs this as a child process; it is not meant to be run by hand. Before
launching it writes the app's own queues (``{endpoint: concurrency id}``) and torch's intra-op
thread count to ``GROUPS_JSON``, so the benchmark can tell light requests from model work.

``LLMVIZ_BENCH_LIMITS`` (the benchmark's ``--limit``, experiments only) is applied after that
file is written and before launch: ``ID=N`` sets queue ID's concurrency limit to N, ``ID:OTHER``
moves ID's events into queue OTHER, in order. It changes nothing in ``app.py``; without the
variable the app runs as it ships. Not here: waiting for the page, ports, memory (``server.py``).
"""

from __future__ import annotations

import json
import os
import sys


def apply_limits(demo, spec: str) -> None:
    """``"ID=N"`` sets a queue's concurrency limit; ``"ID:OTHER"`` moves ID's events into OTHER."""
    for item in filter(None, spec.split(",")):
        cid, sep, value = item.partition("=") if "=" in item else item.partition(":")
        for fn in demo.fns.values():
            if fn.concurrency_id == cid:
                if sep == "=":
                    fn.concurrency_limit = int(value)
                else:
                    fn.concurrency_id = value


def main(argv: list[str]) -> None:
    import app  # isort: skip - the app first, before torch, as in ``python app.py``
    import torch

    from benchmarks.harness import groups_of

    with open(argv[0], "w") as f:  # the app's own queues, before any experiment below
        json.dump({"groups": groups_of(app.demo), "torch_threads": torch.get_num_threads()}, f)
    apply_limits(app.demo, os.environ.get("LLMVIZ_BENCH_LIMITS", ""))
    app.serve("127.0.0.1", int(argv[1]), quiet=True)  # page, then warm-up, as app.py runs


if __name__ == "__main__":
    main(sys.argv[1:])
