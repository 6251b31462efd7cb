"""The benchmark's arithmetic and bookkeeping, without starting anything or timing anything:
percentiles (numpy's definition), which light calls overlapped a generation, endpoint discovery
from API info, the targets verdicts and the BENCHMARKS.md block that keeps hand-written notes."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest

from benchmarks import classroom, harness, report, server
from benchmarks.harness import Endpoint, Param


@pytest.mark.parametrize(
    "values",
    [[1.0], [3.0, 1.0], [0.3, 0.1, 5.0, 2.0, 2.0, 9.5, 0.0], list(np.linspace(0.01, 2.0, 41))],
)
@pytest.mark.parametrize("q", [0, 5, 50, 90, 95, 99, 100])
def test_percentile_is_numpy_linear(values, q):
    assert math.isclose(harness.percentile(values, q), float(np.percentile(values, q)))


def test_percentile_worked_examples_and_edges():
    assert harness.percentile([1, 2, 3, 4], 50) == 2.5
    assert harness.percentile([10, 20], 95) == pytest.approx(19.5)
    assert math.isnan(harness.percentile([], 50))
    with pytest.raises(ValueError):
        harness.percentile([1.0], 101)


def test_summary_of_latencies():
    s = harness.summary([0.2, 0.1, 0.4, 0.3, 10.0])
    assert s["n"] == 5 and s["median"] == 0.3 and s["min"] == 0.1 and s["max"] == 10.0
    assert s["p95"] == pytest.approx(float(np.percentile([0.2, 0.1, 0.4, 0.3, 10.0], 95)))
    assert math.isnan(harness.summary([])["median"])


def test_overlapping_intervals():
    spans = [(0.0, 1.0), (2.0, 3.0), (5.0, 6.0), (2.5, 2.6)]
    gens = [(0.5, 2.1)]
    assert harness.overlapping(spans, gens) == [0, 1]
    assert harness.overlapping(spans, []) == []
    # touching ends do not overlap
    assert harness.overlapping([(2.1, 3.0)], gens) == []


def _info():
    return {
        "named_endpoints": {
            "/tok_run": {
                "parameters": [
                    {"parameter_name": "txt", "component": "Textbox", "python_type": {"type": "str"},
                     "parameter_default": "hi", "parameter_has_default": True},
                    {"parameter_name": "model", "component": "Dropdown",
                     "python_type": {"type": "Literal['gemma-3-270m', 'smollm2-135m-instruct']"},
                     "parameter_default": "gemma-3-270m"},
                    {"parameter_name": "n", "component": "Slider", "python_type": {"type": "float"}},
                    {"parameter_name": "picks", "component": "Dropdown",
                     "python_type": {"type": "list[Literal['a', 'b']]"}},
                    {"parameter_name": "up", "component": "File", "python_type": {"type": "filepath"}},
                    {"parameter_name": "ok", "component": "Checkbox", "python_type": {"type": "bool"}},
                ],
                "returns": [{"component": "Html"}, {"component": "Plot"}],
            },
            "/empty": {"parameters": [], "returns": []},
        }
    }  # fmt: skip


def test_endpoints_from_api_info():
    eps = {e.name: e for e in harness.endpoints_from_info(_info(), {"tok_run": "light"})}
    ep = eps["tok_run"]
    assert ep.group == "light" and eps["empty"].group == "?"
    assert [p.kind for p in ep.params] == ["text", "choice", "number", "list", "file", "bool"]
    assert ep.params[1].choices == ("gemma-3-270m", "smollm2-135m-instruct")
    assert ep.params[2].choices is None
    assert ep.returns == ("Html", "Plot")
    assert ep.defaults == {
        "txt": "hi",
        "model": "gemma-3-270m",
        "n": None,
        "picks": None,
        "up": None,
        "ok": None,
    }


def test_normal_args_order_and_overrides(monkeypatch):
    ep = harness.endpoints_from_info(_info())[1]
    assert ep.name == "tok_run"
    monkeypatch.setitem(
        harness.NORMAL, "tok_run", harness.Normal({"n": 3, "up": lambda outs: outs[0]})
    )
    assert harness.normal_args(ep, {"txt": "yo"}, ["file.txt"]) == [
        "yo",
        "gemma-3-270m",
        3,
        None,
        "file.txt",
        None,
    ]


def test_stale_normal_entries_are_reported(monkeypatch):
    eps = harness.endpoints_from_info(_info())
    monkeypatch.setattr(
        harness, "NORMAL", {"tok_run": harness.Normal({"nope": 1}), "gone": harness.Normal()}
    )
    assert harness.stale_normal_keys(eps) == ["tok_run.nope", "gone"]


def test_encode_sends_what_httpx_refuses():
    body = harness.encode({"data": [float("nan"), float("inf"), "\ud800"]})
    assert body == b'{"data": [NaN, Infinity, "\\ud800"]}'


def _result():
    return {
        "quick": True,
        "machine": {"date": "2026-01-01T10:00+09:00", "cpu": "Test CPU", "cores": 2, "memory_gb": 16,
                    "python": "3.11", "versions": {"torch": "t", "transformers": "x", "gradio": "g"}},
        "load_before": 0.2,
        "load_after": 3.5,
        "page_served_s": 4.0,
        "first_model_use": {"gemma-3-270m": {"seconds": 3.5}},
        "latency": [
            {"label": "tokenize", "endpoint": "tokenizer_tokenize", "group": "light", "first_s": 0.3,
             "median_s": 0.05, "p95_s": 0.08, "n": 5, "payload_bytes": 1234, "errors": []},
            {"label": "next-token view", "endpoint": "sampling_view", "group": "model", "first_s": 1.0,
             "median_s": 0.4, "p95_s": 0.5, "n": 5, "payload_bytes": 30_000, "errors": []},
        ],
        "generation": {"model": "m", "tokens": 32, "weight_bytes": 5e8, "endpoint_tokens_per_s": 20.0,
                       "plain_generate_tokens_per_s": 25.0, "llmviz_loop_tokens_per_s": 24.0,
                       "bound_tokens_per_s": 76.0},
        "bandwidth": {"torch_sum_read_GBps": 38.0, "numpy_copy_read_write_GBps": 20.0, "threads": 2},
        "classroom": classroom.analyse_classroom(
            [classroom.Record(0, "tokenizer_tokenize", "light", 0.0, 0.1, True),
             classroom.Record(1, "tokenizer_tokenize", "light", 1.0, 1.9, True),
             classroom.Record(2, "sampling_generate", "generate", 0.5, 2.5, True),
             classroom.Record(3, "sampling_view", "model", 3.0, 3.2, False, "AppError: boom")],
            students=4, duration=5.0, unfinished=0),
        "rss_peak_bytes": 2.5e9,
    }  # fmt: skip


def test_classroom_analysis():
    c = _result()["classroom"]
    assert c["calls"] == 4 and c["errors"] == 1
    tok = c["endpoints"]["tokenizer_tokenize"]
    assert tok["calls"] == 2 and tok["during_generation_n"] == 1
    assert tok["during_generation_p95_s"] == pytest.approx(0.9)
    assert c["light_calls_during_generation"] == 1
    assert c["light_p95_during_generation_s"] == pytest.approx(0.9)
    assert c["endpoints"]["sampling_view"]["error_examples"] == ["AppError: boom"]


def test_target_verdicts():
    rows = {name: (shown, ok) for name, _, shown, ok in report.targets_table(_result())}
    assert rows["page served after start"] == ("4.00 s", True)
    assert rows["cached model load (Gemma 270M, first use)"][1] is False
    assert rows["tokenize, median"] == ("50 ms", True)
    assert rows["next-token view, median"][1] is False
    assert rows["attention (128 tokens), median"] == ("–", None)  # not measured: no verdict
    assert rows["generation vs plain generate"] == ("0.80×", False)
    assert rows["generation vs bandwidth bound"] == ("26%", False)
    assert rows["classroom errors"] == ("1", False)
    assert rows["light p95 while generation runs"][1] is False  # 900 ms
    assert rows["server peak RSS"] == ("2.5 GB", True)


def test_markdown_block_replaces_only_the_generated_part(tmp_path, monkeypatch):
    md = tmp_path / "BENCHMARKS.md"
    monkeypatch.setattr(report, "BENCHMARKS_MD", md)
    block = report.markdown(_result())
    assert block.startswith(report.START) and block.endswith(report.END)
    assert "Measured under load" in block  # load 3.5 on 2 cores
    assert "| tokenize | `tokenizer_tokenize` | light |" in block
    report.write_markdown(block)
    text = md.read_text()
    md.write_text("# Title\n\nintro\n\n" + text[text.index(report.START) :] + "\n## Notes\nkept\n")
    report.write_markdown(block.replace("Test CPU", "Other CPU"))
    text = md.read_text()
    assert text.startswith("# Title\n\nintro\n\n") and text.endswith("## Notes\nkept\n")
    assert "Other CPU" in text and "Test CPU" not in text


def test_proc_memory_reads_this_process():
    rss, peak = server.proc_memory(os.getpid())
    assert 10e6 < rss <= peak


def test_param_kinds_cover_every_component():
    cases = {("Number", "float"): "number", ("Radio", "Literal['a']"): "choice",
             ("Checkboxgroup", "list[Literal['a']]"): "list", ("Dataframe", "dict"): "table",
             ("Image", "filepath"): "file", ("State", "Any"): "other", ("Code", "str"): "text"}  # fmt: skip
    for (component, pt), kind in cases.items():
        assert Param("x", component, pt).kind == kind, (component, pt)


def test_endpoint_is_hashable_for_parametrize_ids():
    ep = Endpoint("a", (), ())
    assert {ep: 1}[ep] == 1
