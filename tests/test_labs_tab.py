"""The labs tab through the running app's API (gradio_client), plus its strings and presets."""

from __future__ import annotations

import json
import math

import pytest

from llmviz import config, scaling
from llmviz.config import ASSETS
from llmviz.perplexity import score_text
from llmviz.ui import labs_tab

SCALING = "/labs_scaling"
PPL = "/labs_perplexity"


def chinchilla_args(**over):
    args = {"n": 70e9, "d": 1.4e12, "budget": 5.88e23, "gpu": "h100", "n_gpus": 1024, "util": 0.4}
    args.update(over)
    return list(args.values())


# --- strings and presets -------------------------------------------------------------------------
def test_i18n_files_have_the_same_keys_and_placeholders():
    data = json.loads((ASSETS / "i18n" / "labs.json").read_text(encoding="utf-8"))
    assert set(data["en"]) == set(data["ja"])
    for key, en in data["en"].items():
        assert key.startswith(("labs.", "errors.")), key
        fields = lambda s: {p.split("}")[0] for p in s.split("{")[1:]}  # noqa: E731
        assert fields(en) == fields(data["ja"][key]), key


def test_limits_stated_in_the_ui_match_config():
    data = json.loads((ASSETS / "i18n" / "labs.json").read_text(encoding="utf-8"))
    info = data["en"]["labs.ppl.text_info"]
    for number in (
        config.PPL_MAX_TOKENS,
        config.PPL_MAX_CHARS,
        config.PPL_WINDOW,
        config.PPL_STRIDE,
    ):
        assert f"{number:,}" in info
    assert f"{config.SCALING_MAX_PARAMS:.0e}".replace("+", "") in data["en"]["labs.sc.n_info"]
    assert f"{config.SCALING_MAX_TOKENS:.0e}".replace("+", "") in data["en"]["labs.sc.d_info"]


def test_every_text_preset_resolves():
    for key in labs_tab.TEXT_PRESETS:
        assert labs_tab.preset_text(key).strip(), key
    assert labs_tab.preset_text("repeat").count(labs_tab.preset_text("lm-en")) == 2
    assert labs_tab.preset_text("lm-ja") in labs_tab.preset_text("long")
    with pytest.raises(ValueError, match="Unknown example text"):
        labs_tab.preset_text("nope")


# --- scaling through the API ---------------------------------------------------------------------
def test_scaling_api_chinchilla(client):
    md, landscape, profiles, table = client.predict(*chinchilla_args(), api_name=SCALING)
    days = 5.88e23 / (1024 * 989.5e12 * 0.4) / 86400
    assert "5.88×10²³ FLOPs" in md
    assert f"{days:,.1f} days" in md
    assert f"**{scaling.loss(70e9, 1.4e12):.3f}**" in md
    opt = scaling.compute_optimal(5.88e23)
    assert f"{opt.loss:.3f}" in md
    assert "Chinchilla beats Gopher" in table and "**1.993**" in table and "**1.937**" in table
    assert landscape is not None and profiles is not None


def test_scaling_api_preset(client):
    n, d, c = client.predict("gopher", api_name="/labs_scaling_preset")
    assert (n, d) == (280e9, 300e9)
    assert c == pytest.approx(6 * 280e9 * 300e9)


@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"n": -1}, "must be a positive number"),
        ({"n": 0}, "must be a positive number"),
        ({"n": 1e20}, "outside the range"),
        ({"d": 0}, "must be a positive number"),
        ({"d": 1e30}, "outside the range"),
        ({"budget": -5}, "compute budget C must be a positive"),
        ({"util": 0}, "less than minimum value 0.05"),  # the slider's own bounds check
        ({"n_gpus": 0}, "GPU count must be a whole number"),
        ({"gpu": "tpu-v9"}, "not in the list of choices"),  # the dropdown checks first
    ],
)
def test_scaling_api_bad_input(client, over, message):
    with pytest.raises(Exception, match=message):
        client.predict(*chinchilla_args(**over), api_name=SCALING)
    md, *_ = client.predict(*chinchilla_args(), api_name=SCALING)  # the next request still works
    assert "5.88×10²³" in md


# --- perplexity through the API (real packaged models) -------------------------------------------
EN = labs_tab.preset_text("lm-en")


@pytest.mark.slow
def test_perplexity_api_matches_the_core(client, gemma):
    summary, html_a, html_b, fig = client.predict(
        EN, "gemma-3-270m", "bf16", "none", "bf16", api_name=PPL
    )
    s = score_text(gemma.model, gemma.tokenizer, EN)
    assert f"**{s.perplexity:,.2f}**" in summary
    assert f"{s.bits_per_char:.3f}" in summary
    assert "exp(" in summary and "`<bos>`" in summary
    assert html_a.count('class="labs-tok"') == s.n_tokens  # Gemma: one span per token here
    assert not (html_b.get("value") if isinstance(html_b, dict) else html_b)  # panel B hidden
    assert fig is not None


@pytest.mark.slow
@pytest.mark.parametrize(
    ("txt", "model", "message"),
    [
        ("", "gemma-3-270m", "the text is empty"),
        ("   ", "gemma-3-270m", "the text is empty"),
        ("x" * (config.PPL_MAX_CHARS + 1), "gemma-3-270m", "the limit is 20,000"),
        ("word, " * 2200, "gemma-3-270m", "the limit is 2,048 tokens"),
        (EN, "no-such-model", "Unknown model"),
        (EN, "../etc/passwd", "looks like a file path"),
    ],
)
def test_perplexity_api_bad_input(client, gemma, txt, model, message):
    with pytest.raises(Exception, match=message):
        client.predict(txt, model, "bf16", "none", "bf16", api_name=PPL)
    summary, *_ = client.predict(
        "Hello world.", "gemma-3-270m", "bf16", "none", "bf16", api_name=PPL
    )
    assert "perplexity" in summary


@pytest.mark.slow
def test_perplexity_api_same_model_twice_is_refused(client, gemma):
    with pytest.raises(Exception, match="same model at the same precision"):
        client.predict(EN, "gemma-3-270m", "bf16", "gemma-3-270m", "bf16", api_name=PPL)


@pytest.mark.slow
def test_perplexity_api_two_models(client, gemma, smollm):
    summary, html_a, html_b, _ = client.predict(
        EN, "gemma-3-270m", "bf16", "smollm2-135m-instruct", "bf16", api_name=PPL
    )
    rows = [line for line in summary.splitlines() if line.startswith(("| Gemma", "| SmolLM2"))]
    assert len(rows) == 2
    b = score_text(smollm.model, smollm.tokenizer, EN)
    assert f"**{b.perplexity:,.2f}**" in rows[1]
    assert "<|im_start|>" in summary  # SmolLM2's BOS is the context token
    assert html_a and html_b


def test_summary_is_one_table_then_notes(tiny_llama, tiny_tokenizer):
    a = score_text(tiny_llama, tiny_tokenizer, "The animal didn't cross the street.")
    b = score_text(tiny_llama, tiny_tokenizer, "吾輩は猫である。")
    md = labs_tab._summary([("A", a, tiny_tokenizer), ("B", b, tiny_tokenizer)], "en")
    block = md.split("\n\n")[0].splitlines()
    assert len(block) == 4 and all(line.startswith("|") for line in block)  # head, rule, 2 rows
    assert block[2].startswith("| A |") and f"**{a.perplexity:,.2f}**" in block[2]
    assert block[3].startswith("| B |") and f"{b.total_bits:,.0f} |" in block[3]
    assert "`<bos>`" in md  # as code: a bare <bos> would be swallowed as an HTML tag
    assert f"exp({a.nll_mean:.3f}) = **{a.perplexity:,.2f}**" in md


def test_summary_states_the_sliding_window(tiny_llama, tiny_tokenizer):
    s = score_text(tiny_llama, tiny_tokenizer, labs_tab.preset_text("repeat"), window=64, stride=32)
    md = labs_tab._summary([("tiny", s, tiny_tokenizer)], "en")
    assert f"{s.n_tokens:,} tokens do not fit in one window of 64" in md
    assert f"stride 32, {s.n_windows} windows" in md and "at least 32 tokens of context" in md
    md_ja = labs_tab._summary([("tiny", s, tiny_tokenizer)], "ja")
    assert "スライディングウィンドウ" in md_ja


@pytest.mark.slow
def test_perplexity_api_english_vs_japanese(client, gemma):
    summary, html_a, html_b, _ = client.predict(
        "lm", "gemma-3-270m", "bf16", api_name="/labs_perplexity_languages"
    )
    lines = [
        line
        for line in summary.splitlines()
        if line.startswith("| English") or line.startswith("| Japanese")
    ]
    assert len(lines) == 2
    en = score_text(gemma.model, gemma.tokenizer, labs_tab.preset_text("lm-en"))
    ja = score_text(gemma.model, gemma.tokenizer, labs_tab.preset_text("lm-ja"))
    assert f"{en.total_bits:,.0f}" in lines[0] and f"{ja.total_bits:,.0f}" in lines[1]
    assert ja.n_chars < en.n_chars and ja.bits_per_char > en.bits_per_char
    assert math.isfinite(ja.perplexity)


def test_counts_follow_the_language():
    r = scaling.report(70e9, 1.4e12, 5.88e23, "h100", 1024, 0.4)
    ja = labs_tab._scaling_markdown(r, "ja")
    assert "6 × 700 億 × 1.4 兆" in ja and "70B" not in ja
    assert "6 × 70B × 1.4T" in labs_tab._scaling_markdown(r, "en")
    table = labs_tab._presets_markdown("ja")
    assert "| 1,750 億 | 3,000 億 |" in table  # GPT-3: N and D
    landscape, _ = labs_tab._scaling_figures(70e9, 1.4e12, 5.88e23, "ja")
    assert "10 兆" in landscape.layout.xaxis.ticktext and "1 億" in landscape.layout.yaxis.ticktext
    assert len(landscape.layout.xaxis.ticktext) <= 4 and landscape.layout.xaxis.tickangle == 0


# --- infinities, a missing model and broken text (plain HTTP, as a script may send) ------------

INF = float("inf")


@pytest.mark.parametrize("value", [INF, -INF])
@pytest.mark.parametrize(
    ("index", "message"),
    [
        (0, "The number of parameters N must be a positive number"),
        (1, "The number of training tokens D must be a positive number"),
        (2, "The compute budget C must be a positive number"),
        (4, "The GPU count must be a whole number from 1 to 1,000,000"),  # was OverflowError
        (5, "maximum value 1.0"),  # utilization: the slider states its range (+inf)
    ],
)
def test_scaling_infinities_get_the_teaching_message(app_url, index, value, message):
    from benchmarks import harness

    args = chinchilla_args()
    args[index] = value
    result = harness.call(app_url, "labs_scaling", args)
    shown = result.message or ""
    assert result.status == "error"
    if index == 5 and value < 0:
        message = "minimum value 0.05"
    assert message in shown, shown
    assert "Something went wrong" not in shown and "cannot use the value" not in shown


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["Hello.", None, "bf16", "none", "bf16"], "Choose a model"),  # was AttributeError
        (["Hello.", "", "bf16", "none", "bf16"], "Choose a model"),
        (["half \ud83d emoji", "gemma-3-270m", "bf16", "none", "bf16"], "lone UTF-16 surrogate"),
    ],
)
def test_perplexity_missing_model_and_broken_text_are_explained(app_url, args, message):
    from benchmarks import harness

    result = harness.call(app_url, PPL, args)  # refused before any model loads
    shown = result.message or ""
    assert result.status == "error" and message in shown, shown
    assert "Something went wrong" not in shown


def test_perplexity_languages_without_a_model(app_url):
    from benchmarks import harness

    result = harness.call(app_url, "labs_perplexity_languages", ["lm", None, "bf16"])
    assert result.status == "error" and "Choose a model" in (result.message or "")


def test_the_tab_module_does_no_maths():
    # the arithmetic lives in llmviz.scaling / perplexity, with doctests (ARCHITECTURE.md)
    src = (config.ROOT / "llmviz" / "ui" / "labs_tab.py").read_text()
    for sign in (
        "math.log(",
        "math.exp(",
        "/ 365",
        "* 24",
        "/ 1e9",
        "/ 1e12",
        "6 * ",
        "3 * d",
        "sum(",
    ):
        assert sign not in src, sign


# --- the Japanese page ----------------------------------------------------------------------------


class _Request:
    def __init__(self, language):
        self.headers = {"accept-language": language}


def test_japanese_page_opens_with_the_japanese_example():
    key, txt = labs_tab._on_open(_Request("ja-JP,ja;q=0.9"))
    assert key == "lm-ja" and txt == labs_tab.preset_text("lm-ja")
    assert labs_tab._on_open(_Request("en-US"))[0] == "lm-en"


def test_no_english_left_in_the_japanese_strings():
    import re

    data = json.loads((ASSETS / "i18n" / "labs.json").read_text(encoding="utf-8"))
    for key, ja in data["ja"].items():
        if ja == data["en"][key]:  # names and symbols only ("GPU", "C = {c} FLOPs")
            assert not re.search(r"\b[a-z]{3,}\b", ja), (key, ja)
    assert data["ja"]["labs.ppl.preset.lm-en"].startswith("英語")


def test_japanese_axis_titles_are_horizontal(tiny_llama, tiny_tokenizer):
    from llmviz.plots import labs as plots
    from llmviz.ui.i18n import text

    landscape, profiles = labs_tab._scaling_figures(70e9, 1.4e12, 5.88e23, "ja")
    for fig, label in ((landscape, "labs.plot.d_axis"), (profiles, "labs.plot.loss")):
        label = text(label, "ja")
        assert not (fig.layout.yaxis.title.text or "")
        notes = [a for a in fig.layout.annotations if a.text == label]
        assert len(notes) == 1 and notes[0].textangle == 0
    assert landscape.data[0].colorbar.title.side == "top"  # not turned 90°
    s = score_text(tiny_llama, tiny_tokenizer, "吾輩は猫である。")
    rows, x, y = labs_tab._span_rows(s, tiny_tokenizer, "ja")
    words = labs_tab._words("ja", "labs.plot", ("chars_axis", "bits_axis", "cum_title"))
    fig = plots.cumulative_bits_figure([("A", x, y, [r[2] for r in rows])], words)
    assert not (fig.layout.yaxis.title.text or "")
    assert [a.text for a in fig.layout.annotations] == [words["bits_axis"]]
    assert "ビット" in rows[0][2]  # the hover text is Japanese too
