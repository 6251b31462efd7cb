"""The benchmark's report: a result dict (as ``benchmarks/run.py`` builds it) turned into text.

* ``fmt_s`` / ``fmt_bytes``: seconds and bytes as the tables show them ("–" for nothing);
* ``targets_table()``: each of issue 8's targets (``TARGETS``), the value shown and met / missed
  (``None``, no verdict, where the run did not measure it);
* ``markdown()``: the generated block of ``BENCHMARKS.md``, from ``START`` to ``END``;
* ``write_markdown()``: puts that block into ``BENCHMARKS.md``, keeping every hand-written line
  outside the markers.

Pure functions of the result, apart from ``write_markdown``: nothing here starts, calls or times
anything (that is ``server.py``, ``measure.py`` and ``classroom.py``).
"""

from __future__ import annotations

from typing import Any

from benchmarks.server import ROOT

BENCHMARKS_MD = ROOT / "BENCHMARKS.md"
START, END = "<!-- bench:start -->", "<!-- bench:end -->"

#: Issue 8's targets: upper limits, except the two ratios (generate_vs_plain, bandwidth_share).
TARGETS = {
    "page_served_s": 5.0,
    "cached_model_load_s": 3.0,
    "tokenize_s": 0.100,
    "attention_s": 1.0,
    "next_token_s": 0.250,
    "model_p95_s": 10.0,
    "generate_vs_plain": 1.0,
    "bandwidth_share": 0.5,
    "light_p95_during_generation_s": 0.5,
    "rss_gb": 2.5,  # issue 14 (issue 8 had 3 GB)
    "concurrent_ratio": 2.5,  # issue 14: what it asks of 8 views at once, asked of generations
}


def fmt_s(x: Any) -> str:
    if x is None or (isinstance(x, float) and x != x):
        return "–"
    return f"{x * 1000:.0f} ms" if x < 1 else f"{x:.2f} s"


def fmt_bytes(n: Any) -> str:
    if not n:
        return "–"
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"


def verdict(ok: bool | None) -> str:
    return "–" if ok is None else ("✅ met" if ok else "❌ missed")


# --- targets -------------------------------------------------------------------------------------
def targets_table(r: dict[str, Any]) -> list[tuple[str, str, str, bool | None]]:
    """(metric, target, measured as shown, met?) for each target."""
    t = TARGETS
    lat = {row["label"]: row for row in r.get("latency", [])}
    gen = r.get("generation", {})
    cls = r.get("classroom", {})
    bound = gen.get("bound_tokens_per_s")

    def med(label: str) -> float | None:
        row = lat.get(label)
        return row.get("median_s") if row else None

    rows: list[tuple[str, str, str, bool | None]] = []

    def add(
        name: str, target: str, value: float | None, shown: str, better_low: bool, limit: float
    ) -> None:
        ok = (
            None
            if value is None or value != value
            else (value <= limit if better_low else value >= limit)
        )
        rows.append((name, target, shown, ok))

    served = r.get("page_served_s")
    add("page served after start", "≤ 5 s", served, fmt_s(served), True, t["page_served_s"])
    load = r.get("first_model_use", {}).get("gemma-3-270m", {}).get("seconds")
    if not r.get("cache_had", {}).get("gemma-3-270m", True):
        load = None  # converted from GGUF in this run: not a cached load (see Start-up)
    add("cached model load (Gemma 270M, first use)", "≤ 3 s", load, fmt_s(load), True,
        t["cached_model_load_s"])  # fmt: skip
    for label, target, limit in (
        ("tokenize", "≤ 100 ms", t["tokenize_s"]),
        ("attention (128 tokens)", "≤ 1 s", t["attention_s"]),
        ("next-token view", "≤ 250 ms", t["next_token_s"]),
        ("next-token view, shared (same prompt)", "≤ 250 ms", t["next_token_s"]),
    ):
        add(f"{label}, median", target, med(label), fmt_s(med(label)), True, limit)
    ep, plain = gen.get("endpoint_tokens_per_s"), gen.get("plain_generate_tokens_per_s")
    ratio = ep / plain if ep and plain else None
    add("generation vs plain generate", "≥ 1.0×", ratio, f"{ratio:.2f}×" if ratio else "–",
        False, t["generate_vs_plain"])  # fmt: skip
    both = gen.get("concurrent_ratio")
    add(f"{gen.get('concurrent_streams', 8)} generations at once, wall time / one", "≤ 2.5×", both,
        f"{both:.2f}×" if both else "–", True, t["concurrent_ratio"])  # fmt: skip
    share = ep / bound if ep and bound else None
    add("generation vs bandwidth bound", "≥ 50 %", share, f"{share:.0%}" if share else "–",
        False, t["bandwidth_share"])  # fmt: skip
    if cls:
        light = t["light_p95_during_generation_s"]
        add("classroom errors", "0", cls.get("errors"), str(cls.get("errors")), True, 0)
        mp95 = cls.get("model_p95_s")
        add("classroom model endpoints p95", "≤ 10 s", mp95, fmt_s(mp95), True,
            t["model_p95_s"])  # fmt: skip
        p95 = cls.get("light_p95_during_generation_s")
        add("light p95 while generation runs", "≤ 500 ms", p95, fmt_s(p95), True, light)
        p95s = cls.get("light_p95_steady_during_generation_s")
        if p95s is not None:
            add("  same, after the opening burst", "≤ 500 ms", p95s, fmt_s(p95s), True, light)
    rss = r.get("rss_peak_bytes")
    add("server peak RSS", "≤ 2.5 GB", rss / 1e9 if rss else None, fmt_bytes(rss), True,
        t["rss_gb"])  # fmt: skip
    return rows


# --- the markdown block --------------------------------------------------------------------------
def markdown(r: dict[str, Any]) -> str:
    """The generated block of BENCHMARKS.md, markers included."""
    lines = _preamble(r) + _targets(r) + _latency(r) + _generation(r) + _classroom(r)
    lines += _payloads(r) + _startup(r) + [END]
    return "\n".join(lines)


def _preamble(r: dict[str, Any]) -> list[str]:
    m = r["machine"]
    return [
        START,
        f"Measured {m['date']} with `python -m benchmarks.run{' --quick' if r['quick'] else ''}"
        f"{' --cold-cache' if r.get('cold_cache') else ''}` on {m['cpu']}, {m['cores']} cores, "
        f"{m['memory_gb']} GB RAM, no GPU; Python {m['python']}, torch {m['versions']['torch']}, "
        f"transformers {m['versions']['transformers']}, gradio {m['versions']['gradio']}.",
        "",
        f"Load average (1 min) before / after: {r['load_before']:.1f} / {r['load_after']:.1f} on "
        f"{m['cores']} cores."
        + (
            " **Measured under load**: other processes shared the CPU, so latencies are pessimistic."
            if max(r["load_before"], r["load_after"]) > 0.5 * (m["cores"] or 1)
            else ""
        ),
        "",
        f"Server: torch {r.get('server_torch_threads', '?')} intra-op threads"
        + (f", environment {r['server_env']}" if r.get("server_env") else "")
        + ".",
        "",
    ]


def _targets(r: dict[str, Any]) -> list[str]:
    lines = ["### Targets (issue 8)", "", "| metric | target | measured | |", "|---|---|---|---|"]
    return lines + [f"| {a} | {b} | {c} | {verdict(d)} |" for a, b, c, d in targets_table(r)]


def _latency(r: dict[str, Any]) -> list[str]:
    lines = ["", "### Warm latency of each tab's main endpoint", "",
             "| what | endpoint | queue | first call | median | p95 | n | response |",
             "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for row in r.get("latency", []):
        lines.append(
            f"| {row['label']} | `{row['endpoint']}` | {row['group']} | {fmt_s(row['first_s'])} | "
            f"{fmt_s(row['median_s'])} | {fmt_s(row['p95_s'])} | {row['n']} | {fmt_bytes(row['payload_bytes'])} |"
            + (f" errors: {len(row['errors'])}" if row["errors"] else "")
        )
    return lines


def _generation(r: dict[str, Any]) -> list[str]:
    g = r.get("generation", {})
    if not g:
        return []
    bw = r.get("bandwidth", {})
    lines = [
        "", "### Generation speed", "",
        f"{g.get('model')}, {g.get('precision', 'bf16')}, {g.get('tokens')} new tokens, temperature 1, top-k 50, same prompt. "
        f"Weights read per token: {fmt_bytes(g.get('weight_bytes'))}; read bandwidth "
        f"{bw.get('torch_sum_read_GBps', 0):.1f} GB/s (torch sum over 512 MB, "
        f"{bw.get('threads')} threads; numpy copy {bw.get('numpy_copy_read_write_GBps', 0):.1f} GB/s "
        f"read+write) → bound {g.get('bound_tokens_per_s', 0):.0f} tokens/s.",
        "",
        "| path | tokens/s | vs plain generate | vs bandwidth bound |",
        "|---|---|---|---|",
    ]  # fmt: skip
    plain = g.get("plain_generate_tokens_per_s")
    bound = g.get("bound_tokens_per_s")
    for label, key in (("`model.generate` (plain transformers)", "plain_generate_tokens_per_s"),
                       ("llmviz sampling loop, in-process", "llmviz_loop_tokens_per_s"),
                       ("app endpoint `sampling_generate` (streamed, charts at the end)", "endpoint_tokens_per_s")):  # fmt: skip
        v = g.get(key)
        lines.append(
            f"| {label} | {v:.1f} | {v / plain:.2f}× | {v / bound:.0%} |"
            if v and plain and bound
            else f"| {label} | – | – | – |"
        )
    n, one, both = g.get("concurrent_streams"), g.get("concurrent_one_s"), g.get("concurrent_all_s")
    if n and one and both:
        per_pass = g.get("concurrent_rows_per_pass") or 0
        lines += ["", f"{n} students generating {g['tokens']} tokens each at once, in-process (their "
                  f"decoding steps batched, {per_pass:.1f} rows per forward pass on average): "
                  f"{fmt_s(both)} for all of them against {fmt_s(one)} for one alone "
                  f"({both / one:.2f}×; one after the other would be {n}×)."]  # fmt: skip
    return lines


def _classroom(r: dict[str, Any]) -> list[str]:
    c = r.get("classroom")
    if not c:
        return []
    lines = [
        "", f"### Classroom: {c['students']} students, {c['duration_s']:.0f} s", "",
        f"{c['calls']} calls, {c['errors']} errors, {c['unfinished_students']} students still "
        f"waiting at the end. Light endpoints: p95 {fmt_s(c['light_p95_s'])} overall, "
        f"{fmt_s(c['light_p95_during_generation_s'])} while a generation was running "
        f"({c['light_calls_during_generation']} calls). After the opening burst (calls "
        f"starting ≥ {c.get('steady_after_s', 0):.0f} s): light p50 "
        f"{fmt_s(c.get('light_p50_steady_s'))}, p95 {fmt_s(c.get('light_p95_steady_s'))}, "
        f"p95 while generating {fmt_s(c.get('light_p95_steady_during_generation_s'))} "
        f"({c.get('light_calls_steady_during_generation', 0)} calls). Peak server RSS during "
        f"the test {fmt_bytes(c['peak_rss_bytes_sampled'])}.",
        "",
        "| endpoint | queue | calls | errors | p50 | p95 | max | p95 while generating (n) |",
        "|---|---|---|---|---|---|---|---|",
    ]  # fmt: skip
    for name, e in c["endpoints"].items():
        lines.append(
            f"| `{name}` | {e['group']} | {e['calls']} | {e['errors']} | {fmt_s(e['p50_s'])} | "
            f"{fmt_s(e['p95_s'])} | {fmt_s(e['max_s'])} | "
            f"{fmt_s(e['during_generation_p95_s'])} ({e['during_generation_n']}) |"
        )
    return lines


def _payloads(r: dict[str, Any]) -> list[str]:
    if not r.get("payloads"):
        return []
    lines = ["", "### Every endpoint once (normal request): time and response size", "",
             "| endpoint | queue | status | time | response | events |", "|---|---|---|---|---|---|"]  # fmt: skip
    for p in r["payloads"]:
        if p.get("skipped"):
            lines.append(f"| `{p['endpoint']}` | {p['group']} | skipped: {p['skipped']} | | | |")
        else:
            lines.append(
                f"| `{p['endpoint']}` | {p['group']} | {p['status']} | {fmt_s(p['seconds'])} | "
                f"{fmt_bytes(p['payload_bytes'])} | {p['events']} |"
            )
    return lines


def _startup(r: dict[str, Any]) -> list[str]:
    lines = ["", "### Start-up", "",
             f"- process start → first page served: {fmt_s(r.get('page_served_s'))}"]  # fmt: skip
    for key, v in r.get("first_model_use", {}).items():
        how = ("from the on-disk cache" if r.get("cache_had", {}).get(key, True)
               else "NOT in the cache at start: this includes its GGUF conversion")  # fmt: skip
        lines.append(f"- first use of `{key}` {how} (`/models_load` right after the page is "
                     f"served, while `app.warm_up` runs): {fmt_s(v['seconds'])}")  # fmt: skip
    cc = r.get("cold_cache")
    if cc:
        for key, v in cc.items():
            lines.append(
                f"- first-ever GGUF conversion of `{key}` (empty cache): {fmt_s(v['seconds'])}"
            )
    else:
        lines.append("- first-ever GGUF conversion: not measured in this run (`--cold-cache`)")
    lines.append(f"- server peak RSS (VmHWM): {fmt_bytes(r.get('rss_peak_bytes'))}")
    return lines


def write_markdown(block: str) -> None:
    """Replace the block between the markers of BENCHMARKS.md (or start the file with it)."""
    if BENCHMARKS_MD.exists():
        text = BENCHMARKS_MD.read_text(encoding="utf-8")
        if START in text and END in text:
            head, rest = text.split(START, 1)
            _, tail = rest.split(END, 1)
            BENCHMARKS_MD.write_text(head + block + tail, encoding="utf-8")
            return
    BENCHMARKS_MD.write_text("# llmviz benchmarks\n\n" + block + "\n", encoding="utf-8")
