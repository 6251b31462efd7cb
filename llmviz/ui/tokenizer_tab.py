"""The tokenizer tab: real tokenizers side by side, the decode round trip, the per-token table
(CSV), the language premium chart, and a training lab (library trainers + step-by-step BPE).

Handlers are thin: the maths is in ``llmviz.tokens``, ``llmviz.token_stats``, ``llmviz.bpe`` and
``llmviz.tokenizer_training``; drawing in ``llmviz.plots.tokens``. Trained tokenizers live in a
per-session ``gr.State`` (one student's training never reaches another's list). Training runs
in a child process (``training.TrainingJob``); its handler is a generator, so a Stop or a closed
tab closes it and the child is killed at once.
"""

from __future__ import annotations

import json
import os
import tempfile
from functools import lru_cache
from typing import Any

import gradio as gr

from llmviz import config, token_stats
from llmviz import tokenizer_training as training
from llmviz.errors import UserError
from llmviz.models.tokenizers import get_tokenizer, tokenizer_choices
from llmviz.plots import tokens as view
from llmviz.tokens import hex_bytes, visible
from llmviz.ui.common import LIGHT, MODEL, handler
from llmviz.ui.i18n import lang_of, t, text

DEFAULT_PICKS = ["gemma-3-270m", "smollm2-135m-instruct", "gpt2", "o200k_base"]
PRESETS = ("ja_en", "english", "japanese", "emoji", "code", "numbers")
TRAINED = "trained:"
STEP_CORPUS = (
    "low low low low low lower lower newest newest newest newest newest newest "
    "widest widest widest\n東京 東京都 東京都 京都 京都 京都府 京都府 京都府"
)
TEST_SENTENCE = "今日は天気がいいので、公園を散歩しましょう。 The tokenizer learns pieces."


@lru_cache(maxsize=1)
def _examples() -> dict[str, str]:
    return json.loads((config.ASSETS / "tokenizer" / "examples.json").read_text(encoding="utf-8"))


@lru_cache(maxsize=1)
def _parallel_text() -> str:
    data = json.loads((config.ASSETS / "tokenizer" / "parallel.json").read_text(encoding="utf-8"))
    return "\n".join(f"{k}: {v}" for k, v in data["sentences"].items())


def warm_up() -> None:
    """Load the default tokenizers, so the first keystroke does not wait (Gemma's takes seconds).

    Called by ``app.py`` once the server is up, on the main thread. Never from a background
    thread started at import or build time: a thread that imports transformers while another
    thread imports it too can hand one of them a half-initialised module (CPython's import
    deadlock avoidance), which is how CI once failed to collect a test module.
    """
    for key in DEFAULT_PICKS:
        try:
            get_tokenizer(key)
        except Exception:  # noqa: BLE001 - a missing one is reported when a student picks it
            pass


# --- resolving the picks -----------------------------------------------------------------------
def _yours(name: str, lang: str) -> str:
    return text("tok.yours", lang, name=name)


@lru_cache(maxsize=16)
def _trained_adapter(
    trained: training.TrainedTokenizer, lang: str = "en"
) -> training.TrainedAdapter:
    return training.TrainedAdapter(trained, _yours(trained.name, lang))


def _adapters(keys: Any, trained: dict | None, lang: str = "en") -> list[Any]:
    out = []
    for key in token_stats.check_picks(keys):
        if key.startswith(TRAINED):
            name = key.removeprefix(TRAINED)
            if not trained or name not in trained:
                raise UserError(
                    f"The trained tokenizer '{name[:40]}' is no longer in this session (page "
                    "reloaded?). Train it again.",
                    key="tok_trained_missing",
                    name=name[:40],
                )
            out.append(_trained_adapter(trained[name], lang))
        else:
            out.append(get_tokenizer(key))
    return out


def _labels(lang: str) -> dict[str, str]:
    keys = ("tokens", "chars_per_token", "bytes_per_token", "split", "truncated", "no_ids", "vocab")
    return {k: text(f"tok.{k}", lang) for k in keys}


def _frame(rows: list[list[Any]], columns: tuple[str, ...], lang: str) -> Any:
    """A table with headers in the reader's language (gr.Dataframe cannot translate them)."""
    import pandas as pd

    frame = pd.DataFrame(rows, columns=[text(f"tok.col.{c}", lang) for c in columns])
    return gr.update(value=frame, visible=True)


TABLE_COLS = ("index", "id", "token", "bytes", "group", "partial", "special")
MERGE_COLS = ("rank", "pair", "new", "count")
STEP_COLS = ("rank", "pair", "new", "count", "runners")


def _choices(trained: dict | None, lang: str) -> list[tuple[str, str]]:
    extra = [(_yours(name, lang), TRAINED + name) for name in (trained or {})]
    return tokenizer_choices() + extra


# --- handlers ----------------------------------------------------------------------------------
@handler
def _on_tokenize(
    txt: str, picks: list[str], show_ws: bool, add_special: bool, trained: dict,
    request: gr.Request,
) -> tuple[str, str]:  # fmt: skip
    """The API endpoint: every bad input, an empty text included, gets its message."""
    lang = lang_of(request)
    notes = token_stats.check_text(txt)
    adapters = _adapters(picks, trained, lang)
    results = token_stats.tokenize_many(adapters, txt, bool(add_special))
    html = view.tokenized_html(results, _labels(lang), bool(show_ws), config.TOK_DISPLAY_MAX_TOKENS)
    return html, "\n\n".join(text(n, lang) for n in notes)


def _on_tokenize_live(
    txt: str, picks: list[str], show_ws: bool, add_special: bool, trained: dict,
    request: gr.Request,
) -> tuple[str, str]:  # fmt: skip
    """As you type: an emptied box clears the view quietly (an error toast for every key a
    student deletes would stack up); anything else is ``_on_tokenize``."""
    if txt == "" or txt is None:
        return "", ""
    return _on_tokenize(txt, picks, show_ws, add_special, trained, request)


@handler
def _on_preset(name: str) -> str:
    if name not in PRESETS:
        raise UserError(
            f"Unknown example '{str(name)[:30]}'.", key="tok_unknown", name=str(name)[:30]
        )
    return _examples()[name]


@handler
def _on_table(
    txt: str, picks: list[str], add_special: bool, table_pick: str | None, trained: dict,
    request: gr.Request,
) -> tuple[Any, str]:  # fmt: skip
    lang = lang_of(request)
    token_stats.check_text(txt)
    picks = token_stats.check_picks(picks)
    chosen = token_stats.table_index(picks, table_pick)
    adapters = _adapters(picks, trained, lang)
    pairs = []
    for a in adapters:
        r = token_stats.tokenize_one(a, txt, bool(add_special))
        pairs.append((a.key, token_stats.all_pieces(a, r)))
    rows = _frame(token_stats.table_rows(pairs[chosen][1]), TABLE_COLS, lang)
    folder = tempfile.mkdtemp(prefix="llmviz-tokens-")
    path = os.path.join(folder, "tokens.csv")
    with open(path, "w", encoding="utf-8-sig", newline="") as f:  # BOM: Excel reads Japanese
        f.write(token_stats.table_csv(pairs))
    return rows, path


@handler
def _on_table_choices(picks: list[str], trained: dict, request: gr.Request) -> Any:
    picks = [p for p in (picks or []) if isinstance(p, str)]
    names = dict(_choices(trained, lang_of(request)))
    labels = {v: k for k, v in names.items()}
    choices = [(labels.get(p, p), p) for p in picks]
    return gr.update(choices=choices, value=picks[0] if picks else None)


@handler
def _on_decode(ids_text: str, key: str, trained: dict, request: gr.Request) -> tuple[str, str, str]:
    lang = lang_of(request)
    adapter = _adapters([key], trained, lang)[0]
    if adapter.vocab_size is None:
        adapter.encode("")  # raises the "no ids" message
    ids = token_stats.parse_ids(ids_text)
    rt = token_stats.round_trip(adapter, ids)
    html = view.ids_html(rt.pieces, True)
    if rt.same:
        verdict = text("tok.roundtrip_same", lang, n=len(rt.reencoded))
    else:
        shown = ", ".join(map(str, rt.reencoded[:40])) + (" …" if len(rt.reencoded) > 40 else "")
        verdict = text("tok.roundtrip_diff", lang, ids=f"`[{shown}]`")
    notes = [text(n, lang) for n in rt.notes]
    return rt.text, html, "\n\n".join([verdict, *notes])


@handler
def _on_copy_ids(txt: str, picks: list[str], add_special: bool, trained: dict) -> tuple[str, str]:
    adapters = [a for a in _adapters(picks, trained) if a.vocab_size is not None]
    if not adapters:
        raise UserError("Choose at least one subword tokenizer.", key="tok_none")
    token_stats.check_text(txt)
    ids = adapters[0].encode(txt, bool(add_special))[: config.TOK_MAX_DECODE_IDS]
    return ", ".join(map(str, ids)), adapters[0].key


@handler
def _on_premium(sentences: str, picks: list[str], trained: dict, request: gr.Request) -> tuple:
    lang = lang_of(request)
    parsed = token_stats.parse_parallel(sentences)
    premium = token_stats.language_premium(_adapters(picks, trained, lang), parsed)
    fig = view.premium_figure(
        premium, text("tok.premium_title", lang), text("tok.premium_ratio", lang),
        text("tok.curve_y", lang),
    )  # fmt: skip
    ratios = premium.ratios()
    head = text("tok.premium_table", lang, names=" | ".join(premium.tokenizers))
    lines = [head, "|" + "---|" * (len(premium.tokenizers) + 1)]
    for lang_name, row, rrow in zip(premium.langs, premium.counts, ratios, strict=True):
        cells = " | ".join(f"{c} (×{r:.1f})" for c, r in zip(row, rrow, strict=True))
        lines.append(f"| {lang_name} | {cells} |")
    return fig, "\n".join(lines)


def _corpus(source: str, pasted: str, upload: Any) -> str:
    if source == "paste":
        return training.read_corpus(pasted)
    if source == "upload":
        if not upload:
            raise UserError("Upload a .txt file first.", key="tok_upload_missing")
        path = (
            upload if isinstance(upload, str) else getattr(upload, "name", None) or upload["path"]
        )
        return training.read_upload_file(path)
    return training.builtin_corpus()


def _sizes(vocab: int, algorithm: str) -> list[int]:
    low = training.BYTE_ALPHABET + 4 if algorithm == "bpe" else config.MIN_VOCAB_SIZE
    return sorted({s for s in config.TOK_TRAIN_SIZES if low <= s < vocab} | {vocab})


def _byte_label(raw: bytes) -> str:
    try:
        return visible(raw.decode("utf-8"))
    except UnicodeDecodeError:
        return f"<{hex_bytes(raw)}>"


TRAIN_OUTPUTS = 7  # summary, merges, seg, curve, trained, picks, dec_pick
POLL_SECONDS = 0.5  # how often the training handler yields: how soon a Stop is noticed


@handler
def _on_train(
    source: str, pasted: str, upload: Any, algorithm: str, vocab: float, sentence: str,
    trained: dict, request: gr.Request, progress: gr.Progress = gr.Progress(),
) -> Any:  # fmt: skip
    lang = lang_of(request)
    corpus = _corpus(source, pasted, upload)
    size = training.check_vocab_size(algorithm, vocab)
    token_stats.check_text(sentence, config.TOK_MAX_SENTENCE_CHARS)
    with training.TrainingJob(corpus, algorithm, _sizes(size, algorithm), merges=30) as job:
        # leaving this block in any way (done, an error, the generator closed by Stop) kills it
        while not job.wait(POLL_SECONDS):
            progress(job.fraction, desc=f"{algorithm} {job.size:,}")
            status = text(
                "tok.training_now", lang, name=training.trained_name(algorithm, job.size),
                seconds=f"{job.elapsed:.0f}", limit=f"{job.budget:g}",
            )  # fmt: skip
            yield (status, *[gr.skip()] * (TRAIN_OUTPUTS - 1))
        points = training.sweep_points(job.results(), sentence)
        learned = job.first_merges()
    yield _trained_outputs(points, learned, algorithm, sentence, trained, lang)


def _trained_outputs(
    points: list[training.SweepPoint], learned: list[training.LearnedMerge], algorithm: str,
    sentence: str, trained: dict | None, lang: str,
) -> tuple:  # fmt: skip
    final = points[-1].trained
    trained = dict(trained or {})
    trained[final.name] = final
    while len(trained) > config.TOK_MAX_TRAINED:
        trained.pop(next(iter(trained)))
    summary = text(
        "tok.trained_summary", lang, name=final.name, vocab=f"{final.vocab_size:,}",
        asked=f"{final.requested_size:,}", chars=f"{final.corpus_chars:,}",
        seconds=f"{final.seconds:.2f}",
    )  # fmt: skip
    merges = [
        [
            m.rank + 1,
            f"{_byte_label(m.left)} + {_byte_label(m.right)}",
            _byte_label(m.token),
            m.count,
        ]
        for m in learned
    ]
    n = len(points)
    shown = [points[i] for i in sorted({0, n // 3, (2 * n) // 3, n - 1})]
    rows = [
        (text("tok.vocab_label", lang, size=f"{p.vocab_size:,}"),
         token_stats.tokenize_one(_trained_adapter(p.trained, lang), sentence, False).pieces)
        for p in shown
    ]  # fmt: skip
    fig = view.vocab_curve_figure(
        [p.vocab_size for p in points], [p.n_tokens for p in points],
        text("tok.curve_title", lang), text("tok.curve_x", lang), text("tok.curve_y", lang),
    )  # fmt: skip
    note = "" if algorithm == "bpe" else text("tok.merges_none", lang)
    choices = _choices(trained, lang)
    return (
        summary + ("\n\n" + note if note else ""),
        _frame(merges, MERGE_COLS, lang),
        view.rows_html(rows),
        fig,
        trained,
        gr.update(choices=choices),
        gr.update(choices=choices),
    )


@handler
def _on_step(corpus: str, merges: float, request: gr.Request) -> Any:
    result = training.step_by_step(corpus, merges)
    from llmviz.tokens import bytes_to_unicode

    back = {ch: b for b, ch in bytes_to_unicode().items()}

    def label(symbol: str) -> str:
        return _byte_label(bytes(back.get(c, 0x3F) for c in symbol))

    rows = [
        [
            m.rank + 1,
            f"{label(m.left)} + {label(m.right)}",
            label(m.token),
            m.count,
            ", ".join(f"{label(a)}+{label(b)} ({c})" for a, b, c in m.runners_up),
        ]
        for m in result.merges
    ]
    return _frame(rows, STEP_COLS, lang_of(request))


# --- layout ------------------------------------------------------------------------------------
def build() -> None:
    trained = gr.State({})
    gr.Markdown(t("tok.intro"))
    with gr.Tabs(overflow_behavior="wrap"):  # at 800 px a "…" menu hid sub-tabs
        with gr.Tab(t("tok.sub.compare"), id="tok-compare", elem_id="tok-compare"):
            compare = _build_compare(trained)
        with gr.Tab(t("tok.sub.premium"), id="tok-premium", elem_id="tok-premium"):
            _build_premium(trained, compare["picks"])
        with gr.Tab(t("tok.sub.train"), id="tok-train", elem_id="tok-train"):
            _build_training(trained, compare)


def _build_compare(trained: gr.State) -> dict[str, Any]:
    with gr.Row():
        with gr.Column(scale=3):
            txt = gr.Textbox(
                value=_examples()["ja_en"], lines=5, max_lines=14, label=t("tok.text"),
                info=t("tok.text_info"), elem_id="tok-text",
            )  # fmt: skip
        with gr.Column(scale=2):
            preset = gr.Dropdown(
                choices=[(t(f"tok.preset.{k}"), k) for k in PRESETS], value=None,
                label=t("tok.preset"), elem_id="tok-preset",
            )  # fmt: skip
            picks = gr.Dropdown(
                choices=tokenizer_choices(), value=DEFAULT_PICKS, multiselect=True,
                allow_custom_value=True, max_choices=config.TOK_MAX_SELECTED,
                label=t("tok.tokenizers"), info=t("tok.tokenizers_info"), elem_id="tok-picks",
            )  # fmt: skip
            show_ws = gr.Checkbox(value=True, label=t("tok.show_ws"), elem_id="tok-ws")
            add_special = gr.Checkbox(value=True, label=t("tok.add_special"))
    notes = gr.Markdown(elem_id="tok-notes")
    out = gr.HTML(css_template=view.TOKEN_CSS, js_on_load=None, elem_id="tok-view")
    gr.Markdown(t("tok.legend"))

    with gr.Accordion(t("tok.decode"), open=True):
        with gr.Row():
            ids = gr.Textbox(
                value="31373, 995", label=t("tok.decode_ids"), info=t("tok.decode_info"),
                scale=3, elem_id="tok-ids",
            )  # fmt: skip
            dec_pick = gr.Dropdown(
                choices=tokenizer_choices(), value="gpt2", label=t("tok.decode_pick"), scale=2,
                allow_custom_value=True,
            )  # fmt: skip
        with gr.Row():
            dec_btn = gr.Button(t("tok.decode_btn"), variant="primary")
            copy_btn = gr.Button(t("tok.use_ids"))
        decoded = gr.Textbox(label=t("tok.decoded"), interactive=False, elem_id="tok-decoded")
        dec_view = gr.HTML(css_template=view.TOKEN_CSS, js_on_load=None)
        verdict = gr.Markdown(elem_id="tok-roundtrip")

    with gr.Accordion(t("tok.table"), open=False):
        with gr.Row():
            table_pick = gr.Dropdown(
                choices=[], label=t("tok.table_pick"), scale=2, allow_custom_value=True
            )
            table_btn = gr.Button(t("tok.table_show"), scale=1)
            csv = gr.DownloadButton(t("tok.csv"), value=None, scale=1, elem_id="tok-csv")
        table = gr.Dataframe(interactive=False, max_height=420, wrap=True, visible=False)

    inputs = [txt, picks, show_ws, add_special, trained]
    gr.on(
        [txt.change, picks.change, show_ws.change, add_special.change],
        _on_tokenize_live, inputs, [out, notes], api_name=False,
        trigger_mode="always_last", show_progress="hidden", **LIGHT,
    )  # fmt: skip
    # the named API endpoint, never triggered by typing: an empty text gets its message there
    api_only = gr.Button(visible=False, elem_id="tok-api")
    api_only.click(_on_tokenize, inputs, [out, notes], api_name="tokenizer_tokenize", **LIGHT)
    preset.input(_on_preset, preset, txt, api_name="tokenizer_preset", **LIGHT)
    picks.change(
        _on_table_choices, [picks, trained], table_pick, api_name=False, show_progress="hidden"
    )
    table_btn.click(
        _on_table, [txt, picks, add_special, table_pick, trained], [table, csv],
        api_name="tokenizer_table", **LIGHT,
    )  # fmt: skip
    dec_inputs = [ids, dec_pick, trained]
    dec_btn.click(
        _on_decode, dec_inputs, [decoded, dec_view, verdict], api_name="tokenizer_decode", **LIGHT
    )
    ids.submit(_on_decode, dec_inputs, [decoded, dec_view, verdict], api_name=False, **LIGHT)
    copy_btn.click(
        _on_copy_ids, [txt, picks, add_special, trained], [ids, dec_pick],
        api_name="tokenizer_copy_ids", **LIGHT,
    ).then(_on_decode, dec_inputs, [decoded, dec_view, verdict], api_name=False, **LIGHT)  # fmt: skip

    root = gr.context.Context.root_block
    if root is not None:  # first paint: the example text, tokenized, in the visitor's language
        root.load(_on_tokenize_live, inputs, [out, notes], api_name=False, **LIGHT)
        root.load(_on_table_choices, [picks, trained], table_pick, api_name=False, **LIGHT)
        root.load(_on_decode, dec_inputs, [decoded, dec_view, verdict], api_name=False, **LIGHT)
    return {"picks": picks, "dec_pick": dec_pick}


def _build_premium(trained: gr.State, picks: gr.Dropdown) -> None:
    gr.Markdown(t("tok.premium_intro"))
    with gr.Row():
        sentences = gr.Textbox(
            value=_parallel_text(), lines=9, max_lines=14, label=t("tok.premium_text"),
            info=t("tok.premium_info"), scale=3, elem_id="tok-parallel",
        )  # fmt: skip
        with gr.Column(scale=1):
            run = gr.Button(t("tok.premium_btn"), variant="primary", elem_id="tok-premium-btn")
    plot = gr.Plot(elem_id="tok-premium-plot")
    table = gr.Markdown()
    run.click(
        _on_premium,
        [sentences, picks, trained],
        [plot, table],
        api_name="tokenizer_premium",
        **LIGHT,
    )
    root = gr.context.Context.root_block
    if root is not None:
        root.load(_on_premium, [sentences, picks, trained], [plot, table], api_name=False, **LIGHT)


def _build_training(trained: gr.State, compare: dict[str, Any]) -> None:
    gr.Markdown(t("tok.train_intro"))
    with gr.Row():
        with gr.Column(scale=3):
            source = gr.Radio(
                choices=[(t(f"tok.corpus.{k}"), k) for k in ("builtin", "paste", "upload")],
                value="builtin", label=t("tok.corpus_source"),
            )  # fmt: skip
            pasted = gr.Textbox(
                lines=4, max_lines=10, label=t("tok.corpus_text"), info=t("tok.corpus_info")
            )
            upload = gr.File(label=t("tok.upload"), file_types=[".txt"], type="filepath")
        with gr.Column(scale=2):
            algorithm = gr.Radio(
                choices=[("BPE", "bpe"), ("Unigram", "unigram"), ("WordPiece", "wordpiece")],
                value="bpe", label=t("tok.algorithm"),
            )  # fmt: skip
            vocab = gr.Slider(
                300, config.MAX_VOCAB_SIZE, value=2000, step=100, label=t("tok.vocab_size"),
                info=t("tok.vocab_info"),
            )  # fmt: skip
            sentence = gr.Textbox(value=TEST_SENTENCE, label=t("tok.test_sentence"))
            with gr.Row():
                train_btn = gr.Button(
                    t("tok.train_btn"), variant="primary", elem_id="tok-train-btn"
                )
                stop_btn = gr.Button(t("common.stop"), elem_id="tok-train-stop")
    summary = gr.Markdown(elem_id="tok-train-summary")
    with gr.Row():
        with gr.Column():
            gr.Markdown(t("tok.seg_title"))
            seg = gr.HTML(css_template=view.TOKEN_CSS, js_on_load=None, elem_id="tok-seg")
            curve = gr.Plot(elem_id="tok-curve")
        with gr.Column():
            gr.Markdown(t("tok.merges_title"))
            merges = gr.Dataframe(interactive=False, max_height=520, visible=False)
    training_run = train_btn.click(
        _on_train, [source, pasted, upload, algorithm, vocab, sentence, trained],
        [summary, merges, seg, curve, trained, compare["picks"], compare["dec_pick"]],
        api_name="tokenizer_train", **MODEL,
    )  # fmt: skip
    # Stop closes the training generator: its TrainingJob kills the child process at once
    stop_btn.click(None, None, None, cancels=[training_run], api_name=False)

    gr.Markdown(t("tok.step_intro"))
    with gr.Row():
        step_corpus = gr.Textbox(
            value=STEP_CORPUS, lines=3, label=t("tok.step_corpus"), info=t("tok.step_info"), scale=3
        )
        with gr.Column(scale=1):
            step_n = gr.Slider(
                1, config.TOK_STEP_MAX_MERGES, value=12, step=1, label=t("tok.step_merges")
            )
            step_btn = gr.Button(t("tok.step_btn"), elem_id="tok-step-btn")
    steps = gr.Dataframe(
        interactive=False, max_height=480, wrap=True, visible=False, elem_id="tok-steps"
    )
    step_btn.click(_on_step, [step_corpus, step_n], steps, api_name="tokenizer_bpe_steps", **LIGHT)
