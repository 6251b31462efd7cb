"""The memory tab through the API (gradio_client on the whole app): normal requests, every bad
input with its message, the app still answering afterwards, and the translations."""

from __future__ import annotations

import json
import re

import pytest

from llmviz.config import ASSETS, ROOT

CALC = "/memory_calculate"


def calc(
    client,
    source="preset",
    preset="llama3-8b",
    params="1.5B",
    hub="",
    precisions=None,
    context=8192,
    batch=1,
    kv="fp16",
    rest="fp16",
    scope="auto",
):
    precisions = ["fp32", "bf16", "int8", "nf4", "q4_k_m"] if precisions is None else precisions
    return client.predict(
        source, preset, params, hub, precisions, context, batch, kv, rest, scope, api_name=CALC
    )


def _headers(df):
    return df["headers"]


def test_calculator_preset(client):
    summary, plot, breakdown, fit, textbook = calc(client)
    assert "8,030,261,248" in summary and "8 KV heads" in summary
    assert "1.07 GB" in summary  # KV cache at 8k tokens, fp16: 2^30 bytes
    assert _headers(breakdown)[1:] == [
        "fp32",
        "bf16",
        "int8 (bitsandbytes)",
        "nf4 (bitsandbytes)",
        "GGUF Q4_K_M",
    ]
    rows = {r[0]: r[1:] for r in breakdown["data"]}
    assert rows["quantization constants"][:2] == ["", ""]  # floats have none
    assert rows["embeddings"][3].endswith(
        "(fp16)"
    )  # bitsandbytes keeps embeddings in the load dtype
    assert plot is not None
    gpt2 = next(r for r in textbook["data"] if r[0].startswith("GPT-2"))
    assert gpt2[2:6] == ["6 GB", "3 GB", "1.5 GB", "0.75 GB"]
    gpt3 = next(r for r in textbook["data"] if r[0].startswith("GPT-3 "))
    assert gpt3[6] == 15
    fp32 = next(r for r in fit["data"] if r[0] == "fp32")
    columns = _headers(fit)
    assert fp32[columns.index("24 GB (RTX 4090)")] == "2"  # 33.7 GB on 24 GB cards
    assert "80 GB (A100 / H100)" in columns and "32 GB (V100)" in columns  # the one GPU table


def test_textbook_preset_gives_the_textbook_card_count_by_default(client):
    # the calculator's defaults (8,192 tokens, bf16, 0.5 GB overhead) once gave 17 RTX 4090s
    summary, _, _, fit, textbook = calc(client, preset="gpt3-175b", precisions=["bf16"])
    col = _headers(fit).index("24 GB (RTX 4090)")
    gpt3 = next(r for r in textbook["data"] if r[0].startswith("GPT-3 "))
    assert fit["data"][0][col] == str(gpt3[6]) == "15"
    assert "the weights only" in summary
    # ...and the page says why running it needs more: the KV cache, then the overhead per card
    assert "**15** (the textbook's count)" in summary and "38.7 GB for 8,192 tokens" in summary
    assert "**17**" in summary and "longer context" in summary
    summary, _, _, fit, _ = calc(client, preset="gpt3-175b", precisions=["bf16"], scope="serving")
    assert fit["data"][0][col] == "17" and "KV cache + runtime overhead**" in summary
    _, _, _, fit, _ = calc(client, preset="gpt3-175b", precisions=["bf16"], context=1)
    assert fit["data"][0][col] == "15"  # auto: a textbook preset counts the weights only


def test_calculator_params_and_moe(client):
    summary, _, breakdown, _, textbook = calc(
        client, source="params", params="175B", precisions=["fp16"]
    )
    assert "175,000,000,000" in summary and "textbook formula" in summary
    assert breakdown["data"][0][1].startswith("350 (fp16)")
    summary, *_ = calc(client, preset="mixtral-8x7b", precisions=["nf4"])
    assert "MoE experts" in summary and "8 experts" in summary


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(source="params", params="0"), "at least 1"),
        (dict(source="params", params="-7"), "is not a parameter count"),
        (dict(source="params", params="lots"), "is not a parameter count"),
        (dict(source="params", params="1e15"), "far beyond any model"),
        (dict(context=0), "Context length must be between 1 and 10,000,000"),
        (dict(context=1e9), "Context length must be between 1 and 10,000,000"),
        (dict(batch=0), "Batch size must be between 1 and 4096"),
        (dict(precisions=[]), "at least one precision"),
        (dict(source="hub", hub="nobody/no-such-model"), "cannot reach the Hugging Face Hub"),
        (dict(source="hub", hub=""), "Type a Hugging Face model id"),
        (dict(source="hub", hub="../../etc/passwd"), "looks like a file path"),
        (dict(preset="gpt-9"), "gpt-9"),  # gradio checks dropdown choices before the handler
        (dict(scope="everything"), "everything"),
    ],
)
def test_calculator_bad_input_then_still_works(client, kwargs, message):
    with pytest.raises(Exception) as err:  # gradio_client raises AppError with the message
        calc(client, **kwargs)
    assert message in str(err.value)
    summary, *_ = calc(client, preset="smollm2-135m", precisions=["bf16"])
    assert "134,515,008" in summary


def test_source_switch(client):
    preset, params, hub = client.predict("hub", api_name="/memory_source")
    assert preset["visible"] is False and hub["visible"] is True and params["visible"] is False


def test_lab_bad_bits_before_any_load(client):
    # gradio's slider refuses values outside 2-8 itself; the core check is in tests/test_quantize.py
    with pytest.raises(Exception, match="maximum value 8"):
        client.predict(
            "smollm2-135m-instruct", 3, "mlp.down_proj", 9, "tensor", api_name="/memory_lab"
        )
    with pytest.raises(Exception, match="minimum value 2"):
        client.predict(
            "smollm2-135m-instruct", 3, "mlp.down_proj", 1, "tensor", api_name="/memory_lab"
        )


@pytest.mark.slow
def test_lab_on_the_real_model(client):
    summary, table, hist, heat = client.predict(
        "smollm2-135m-instruct", 3, "mlp.down_proj", 3, "tensor", api_name="/memory_lab"
    )
    assert "576 × 1,536" in summary
    rows = {r[0]: r for r in table["data"]}
    naive = float(rows["naive rounding (no scale)"][4].rstrip("%"))
    block = float(rows["absmax per block of 64"][4].rstrip("%"))
    assert naive > 90 > block  # 3-bit rounding without a scale zeroes almost everything
    assert hist is not None and heat is not None
    with pytest.raises(Exception, match="maximum value 29"):  # the slider's own limit
        client.predict(
            "smollm2-135m-instruct", 30, "mlp.down_proj", 3, "tensor", api_name="/memory_lab"
        )
    with pytest.raises(Exception, match="not in the list of choices"):  # gradio checks first
        client.predict("smollm2-135m-instruct", 0, "mlp.nope", 3, "tensor", api_name="/memory_lab")
    layer = client.predict("gemma-3-270m", api_name="/memory_lab_model")
    assert layer["maximum"] == 17


@pytest.mark.slow
def test_measure_and_quality_through_the_api(client):
    table, plot, note = client.predict(
        "smollm2-135m-instruct", ["bf16", "nf4"], api_name="/memory_measure"
    )
    assert [r[1] for r in table["data"]] == ["bf16", "nf4"]
    for row in table["data"]:
        assert abs(float(row[4].rstrip(" %"))) <= 1.0
    assert "Largest error" in note
    with pytest.raises(Exception, match="at least one precision"):
        client.predict("smollm2-135m-instruct", [], api_name="/memory_measure")
    note, quality, samples = client.predict("smollm2-135m-instruct", api_name="/memory_quality")
    assert [r[0] for r in quality["data"]] == ["fp32", "int8", "nf4"]
    assert quality["data"][0][2] == "100.0%"
    assert [r[0] for r in samples["data"]] == ["fp32", "int8", "nf4"] and all(
        r[1] for r in samples["data"]
    )


# --- translations -------------------------------------------------------------------------------


def test_i18n_keys_match_and_every_error_key_is_translated():
    data = json.loads((ASSETS / "i18n" / "memory.json").read_text(encoding="utf-8"))
    assert set(data["en"]) == set(data["ja"])
    sources = [ROOT / "llmviz" / f for f in ("memory.py", "memory_presets.py", "quantize.py")]
    sources += [ROOT / "llmviz" / "models" / "hub_config.py"]
    keys = {k for src in sources for k in re.findall(r'key=f?"(mem_[a-z_{}]+)"', src.read_text())}
    keys = {k for k in keys if "{" not in k} | {"mem_context_not_number", "mem_batch_not_number"}
    assert keys, "no error keys found"
    for k in keys:
        assert f"errors.{k}" in data["en"] and f"errors.{k}" in data["ja"], k
    for key, value in data["ja"].items():  # same placeholders in both languages
        assert set(re.findall(r"{(\w+)}", value)) == set(re.findall(r"{(\w+)}", data["en"][key])), (
            key
        )


def test_ui_text_keys_exist():
    from llmviz.ui.i18n import STRINGS

    src = (ROOT / "llmviz" / "ui" / "memory_tab.py").read_text()
    for key in set(re.findall(r'(?:t|text)\("(mem\.[a-z_.]+)"', src)):
        assert key in STRINGS["en"] and key in STRINGS["ja"], key


# --- infinities over plain HTTP (gradio_client refuses to send them; a script can) -------------

INF = float("inf")
CALC_ARGS = ["preset", "llama3-8b", "1.5B", "", ["bf16"], 8192, 1, "fp16", "fp16", "auto"]


@pytest.mark.parametrize("value", [INF, -INF])
@pytest.mark.parametrize(
    ("index", "message"),
    [
        (5, "The context length must be a whole number (got 'inf')"),  # was OverflowError
        (6, "The batch size must be a whole number (got 'inf')"),
    ],
)
def test_infinite_numbers_get_the_teaching_message(app_url, index, value, message):
    from benchmarks import harness

    args = list(CALC_ARGS)
    args[index] = value
    result = harness.call(app_url, "memory_calculate", args)
    assert result.status == "error"
    shown = result.message or ""
    assert message.replace("inf", str(value)) in shown, shown
    assert "Something went wrong" not in shown and "cannot use the value" not in shown
    assert harness.call(app_url, "memory_calculate", CALC_ARGS).ok  # and the next one works


@pytest.mark.parametrize("value", [INF, -INF])
@pytest.mark.parametrize(("index", "limit"), [(1, "29"), (3, "8")])  # layer, bits: sliders
def test_infinite_lab_sliders_state_their_range(app_url, index, value, limit):
    from benchmarks import harness

    args = ["smollm2-135m-instruct", 3, "mlp.down_proj", 3, "tensor"]
    args[index] = value
    result = harness.call(app_url, "memory_lab", args)
    shown = result.message or ""
    assert result.status == "error" and ("maximum value" in shown or "minimum value" in shown)
    assert limit in shown or "minimum value" in shown


def test_the_tab_module_does_no_maths():
    # the arithmetic lives in llmviz.memory / quantize / measure, with doctests (ARCHITECTURE.md)
    src = (ROOT / "llmviz" / "ui" / "memory_tab.py").read_text()
    for sign in (
        "np.linspace",
        "np.median",
        "np.abs",
        "/ 1e6",
        "/ memory.GB",
        "removeprefix",
        "sum(",
    ):
        assert sign not in src, sign


# --- the Japanese page ----------------------------------------------------------------------------


def test_no_english_left_in_the_japanese_strings():
    data = json.loads((ASSETS / "i18n" / "memory.json").read_text(encoding="utf-8"))
    for key, ja in data["ja"].items():
        if ja == data["en"][key]:  # allowed only for names and symbols: "Llama 3 8B", "lm_head"
            assert not re.search(r"\b[a-z]{3,}\b", ja), (key, ja)


def test_japanese_page_names_the_presets_in_japanese():
    from llmviz.ui import memory_tab

    what = memory_tab._resolve("preset", "gpt3-175b", "", "", "ja")
    assert what["name"] == "GPT-3 175B（教科書）" and what["textbook"]
    names = memory_tab._textbook_table(None, "ja").iloc[:, 0].tolist()
    assert names[0] == "GPT-2 1.5B（教科書）" and not any("textbook" in n for n in names)
    assert memory_tab._resolve("preset", "gpt3-175b", "", "", "en")["name"] == (
        "GPT-3 175B (textbook)"
    )


def test_quality_note_explains_the_english_text_in_japanese():
    from llmviz import quant_quality
    from llmviz.ui.i18n import text

    # the Japanese note translates this exact prompt: change both together
    assert (
        quant_quality.SAMPLE_PROMPT == "The three most important things to know about the ocean are"
    )
    note = text("mem.quality.note", "ja", tokens=90, new=24, prompt=quant_quality.SAMPLE_PROMPT)
    assert "海について知っておくべき最も大切な 3 つのことは" in note and "英語の文章" in note


def _horizontal_title(fig, label):
    """The y title is not plotly's rotated one but a horizontal annotation above the axis."""
    assert not (fig.layout.yaxis.title.text or "")
    notes = [a for a in fig.layout.annotations if a.text == label]
    assert len(notes) == 1 and notes[0].textangle == 0 and notes[0].yref == "paper"


def test_japanese_axis_titles_are_horizontal():
    import numpy as np

    from llmviz.plots import memory as plots
    from llmviz.ui.i18n import text

    y = text("mem.plot.y", "ja")
    fig = plots.memory_bars(["bf16"], [("linear", "線形層", [3.0])], [("24 GB", 24.0)], "t", y)
    _horizontal_title(fig, y)
    y = text("mem.plot.pvm_y", "ja")
    fig = plots.predicted_vs_measured(["a"], [2e6], [2.1e6], ("予測", "実測"), "t", y)
    _horizontal_title(fig, y)
    assert list(fig.data[0].y) == [2.0]  # bytes in, MB drawn
    edges = np.linspace(-1, 1, 5)
    counts = np.ones(4)
    y = text("mem.plot.hist_y", "ja")
    fig = plots.weight_histogram(edges, counts, counts, ("元", "後"), "t", "重みの値", y)
    _horizontal_title(fig, y)
