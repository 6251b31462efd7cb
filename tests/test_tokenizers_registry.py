"""The offline tokenizer registry and the comparison core (llmviz.models.tokenizers, token_stats)."""

from __future__ import annotations

import pytest

from llmviz import config, token_stats
from llmviz.errors import UserError
from llmviz.models.tokenizers import TOKENIZER_KEYS, get_tokenizer

TIKTOKEN_KEYS = ["gpt2", "cl100k_base", "o200k_base", "llama3", "qwen2.5"]


# Published ids: tiktoken's README / OpenAI cookbook ("tiktoken is great!"), GPT-2's
# "hello world" -> [31373, 995]; Llama 3 shares cl100k's first 100k ranks; Qwen 2.5 from its
# tokenizer.json.
@pytest.mark.parametrize(
    ("key", "text", "ids"),
    [
        ("gpt2", "hello world", [31373, 995]),
        ("gpt2", "tiktoken is great!", [83, 1134, 30001, 318, 1049, 0]),
        ("cl100k_base", "hello world", [15339, 1917]),
        ("cl100k_base", "tiktoken is great!", [83, 1609, 5963, 374, 2294, 0]),
        ("o200k_base", "hello world", [24912, 2375]),
        ("o200k_base", "tiktoken is great!", [83, 8251, 2488, 382, 2212, 0]),
        ("llama3", "hello world", [15339, 1917]),
        ("qwen2.5", "hello world", [14990, 1879]),
        ("smollm2-135m-instruct", "hello world", [28120, 905]),
        ("gemma-3-270m", "hello world", [23391, 1902]),
    ],
)
def test_known_ids(key, text, ids):
    assert get_tokenizer(key).encode(text, add_special=False) == ids


TEXTS = [
    "吾輩は猫である。名前はまだ無い。",
    "👨\u200d👩\u200d👧 e\u0301 1234567  x\n\n y",
    "def f(x):\n\treturn x**2",
]


@pytest.mark.parametrize("key", ["cl100k_base", "o200k_base", "llama3", "qwen2.5"])
def test_same_ids_as_quicktok(key):
    quicktok = pytest.importorskip("quicktok")
    name = {"qwen2.5": "qwen3", "llama3": "llama3"}.get(key, key)
    reference = quicktok.get_encoding(name)
    adapter = get_tokenizer(key)
    for text in TEXTS:
        assert adapter.encode(text, add_special=False) == list(reference.encode(text))


@pytest.mark.parametrize("key", TIKTOKEN_KEYS + ["smollm2-135m-instruct", "gemma-3-270m"])
@pytest.mark.parametrize("text", TEXTS)
def test_lossless_bytes(key, text):
    adapter = get_tokenizer(key)
    ids = adapter.encode(text, add_special=False)
    expected = text if key != "qwen2.5" else __import__("unicodedata").normalize("NFC", text)
    assert b"".join(adapter.token_bytes(ids)) == expected.encode()
    assert adapter.decode(ids) == expected


def test_special_tokens_are_known():
    assert 50256 in get_tokenizer("gpt2").special_ids
    assert 2 in get_tokenizer("gemma-3-270m").special_ids  # <bos>
    assert get_tokenizer("gemma-3-270m").encode("hi")[0] == 2
    assert get_tokenizer("llama3").encode("<|begin_of_text|>hi") == [128000, 6151]


def test_janome_words_without_ids():
    janome = get_tokenizer("janome")
    pieces = janome.pieces("吾輩は猫である")
    assert [p.text for p in pieces] == ["吾輩", "は", "猫", "で", "ある"]
    assert all(p.id == -1 for p in pieces)
    assert janome.annotations("吾輩は猫である")[1] == "助詞"
    with pytest.raises(UserError, match="no token ids"):
        janome.decode([1])


def test_registry_errors():
    with pytest.raises(UserError, match="Unknown tokenizer"):
        get_tokenizer("no-such-tokenizer")
    with pytest.raises(UserError, match="at least one"):
        get_tokenizer("  ")
    with pytest.raises(UserError, match="file path"):
        get_tokenizer("hub:../../etc/passwd")
    with pytest.raises(UserError, match="Hub"):  # HF_HUB_OFFLINE=1 in the test session
        get_tokenizer("hub:Qwen/Qwen2.5-0.5B")
    assert "janome" in TOKENIZER_KEYS


def test_ids_outside_the_vocabulary():
    gpt2 = get_tokenizer("gpt2")
    with pytest.raises(UserError, match="not in GPT-2"):
        gpt2.decode([50257])
    with pytest.raises(UserError, match="not in"):
        gpt2.token_bytes([-5])
    with pytest.raises(UserError, match="unused"):
        get_tokenizer("cl100k_base").token_bytes([100261])
    with pytest.raises(UserError, match="not in"):
        get_tokenizer("gemma-3-270m").decode([262144])


# --- token_stats ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("", "Type or paste"),
        ("x" * (config.MAX_TEXT_CHARS + 1), "limit"),
        ("x" * 1_000_000, "limit"),
        ("ok\ud83dbad", "surrogate"),
        (None, "string"),
    ],
)
def test_check_text_refuses(text, match):
    with pytest.raises(UserError, match=match):
        token_stats.check_text(text)


def test_check_text_notes():
    assert token_stats.check_text("bell\x07 nul\x00") == ["tok.note.control"]
    assert token_stats.check_text("👨\u200d👩\u200d👧") == ["tok.note.zwj"]
    assert token_stats.check_text("e\u0301") == ["tok.note.combining"]
    assert token_stats.check_text("plain\ttext\n") == []


def test_tokenize_many_counts_and_truncation():
    adapters = [get_tokenizer(k) for k in ("gpt2", "gemma-3-270m", "janome")]
    text = "吾輩は猫である。" * 300
    results = token_stats.tokenize_many(adapters, text, add_special=True, display_max=50)
    gpt2, gemma, janome = results
    assert gpt2.n_tokens == len(get_tokenizer("gpt2").encode(text)) and gpt2.truncated
    assert 50 <= len(gpt2.pieces) <= 53  # extended to finish a split character
    assert gemma.n_special == 1 and gemma.n_tokens == gemma.n_pieces - 1
    assert gpt2.n_split_tokens > 0 and gemma.n_split_tokens == 0
    assert janome.has_ids is False and janome.n_tokens == 300 * 6
    assert gpt2.chars_per_token == pytest.approx(len(text) / gpt2.n_tokens)
    assert gpt2.bytes_per_token == pytest.approx(len(text.encode()) / gpt2.n_tokens)
    assert len(token_stats.all_pieces(adapters[0], gpt2)) == gpt2.n_pieces


def test_tokenize_many_refuses_bad_selections():
    with pytest.raises(UserError, match="at least one"):
        token_stats.tokenize_many([], "hi")
    with pytest.raises(UserError, match="at most"):
        token_stats.tokenize_many([get_tokenizer("gpt2")] * 9, "hi")
    with pytest.raises(UserError, match="at most"):
        token_stats.tokenize_one(get_tokenizer("janome"), "あ" * (config.TOK_JANOME_MAX_CHARS + 1))


@pytest.mark.parametrize(
    ("text", "ids"),
    [("[31373, 995]", [31373, 995]), ("31373 995", [31373, 995]), ("1,2;3 (4)", [1, 2, 3, 4])],
)
def test_parse_ids(text, ids):
    assert token_stats.parse_ids(text) == ids


@pytest.mark.parametrize(
    ("text", "match"),
    [("", "Type token ids"), ("12, abc", "'abc' is not a token id"), ("1.5", "not a token id"),
     ("9" * 20, "not a token id"), (" ".join(["1"] * 5000), "too many"), ("[]", "Type token ids")],
)  # fmt: skip
def test_parse_ids_refuses(text, match):
    with pytest.raises(UserError, match=match):
        token_stats.parse_ids(text)


def test_round_trip():
    gpt2 = get_tokenizer("gpt2")
    rt = token_stats.round_trip(gpt2, [31373, 995])
    assert rt.text == "hello world" and rt.same and rt.lossless
    rt = token_stats.round_trip(gpt2, [71, 68, 75, 75, 78])  # h e l l o, letter by letter
    assert rt.text == "hello" and not rt.same and rt.reencoded == [31373]
    cat = gpt2.encode("猫")
    rt = token_stats.round_trip(gpt2, cat[:-1])  # stops inside 猫
    assert not rt.lossless and rt.notes == ["tok.note.broken_char"] and "\ufffd" in rt.text


def test_language_premium_and_csv():
    adapters = [get_tokenizer(k) for k in ("gpt2", "o200k_base", "janome")]
    sentences = token_stats.parse_parallel("# comment\nen: The cat sleeps.\n\nja: 猫が寝ている。")
    p = token_stats.language_premium(adapters, sentences)
    assert p.langs == ["en", "ja"] and len(p.tokenizers) == 2  # janome has no ids: left out
    assert p.counts[0][0] == len(adapters[0].encode("The cat sleeps.", add_special=False))
    assert p.ratios()[0] == [1.0, 1.0] and p.ratios()[1][0] > 1.5
    results = token_stats.tokenize_many(adapters[:1], "猫 cat")
    csv = token_stats.table_csv([(r.key, r.pieces) for r in results])
    lines = csv.splitlines()
    assert lines[0].startswith("tokenizer,index,id,token,text,bytes")
    assert lines[1] == "gpt2,0,163,猫(1/3),猫,E7,0,True,False"  # GPT-2 cuts 猫 into 3 bytes


@pytest.mark.parametrize(
    ("text", "match"),
    [("en The cat", "Line 1"), ("", "at least one"), ("ja: 猫", "Include the 'en'"),
     ("\n".join(f"l{i}: x" for i in range(13)) + "\nen: x", "at most"),
     ("en: " + "x" * 600, "longer than")],
)  # fmt: skip
def test_parallel_refuses(text, match):
    with pytest.raises(UserError, match=match):
        token_stats.language_premium([get_tokenizer("gpt2")], token_stats.parse_parallel(text))
