import json
import string

import pytest

from llmviz.config import ASSETS
from llmviz.ui.i18n import STRINGS, lang_of, t, text

FILES = sorted((ASSETS / "i18n").glob("*.json"))


def _fields(s: str) -> set[str]:
    return {f for _, f, _, _ in string.Formatter().parse(s) if f}


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_every_string_exists_in_english_and_japanese(path):
    data = json.loads(path.read_text(encoding="utf-8"))
    assert set(data) == {"en", "ja"}
    assert set(data["en"]) == set(data["ja"]), set(data["en"]) ^ set(data["ja"])
    for key, en in data["en"].items():
        ja = data["ja"][key]
        assert en.strip() and ja.strip(), key
        assert _fields(en) == _fields(ja), f"{key}: placeholders differ"


def test_japanese_strings_are_japanese():
    ja = STRINGS["ja"]
    japanese = [k for k, v in ja.items() if any("\u3040" <= c <= "\u30ff" or "\u4e00" <= c <= "\u9fff" for c in v)]
    assert len(japanese) > 0.6 * len(ja)


def test_text_formats_and_falls_back():
    assert "{" not in text("models.loaded", "ja", model="m", precision="bf16", device="cpu", mib=1, seconds=2)
    assert text("no.such.key", "ja") == "no.such.key"
    with pytest.raises(KeyError):
        t("no.such.key")


class _Req:
    def __init__(self, header):
        self.headers = {"accept-language": header}


@pytest.mark.parametrize(
    "header,lang",
    [
        ("ja-JP,ja;q=0.9,en;q=0.8", "ja"),
        ("en-US,en;q=0.9,ja;q=0.8", "en"),
        ("fr-FR,ja;q=0.5", "ja"),
        ("de", "en"),
        ("", "en"),
        ("ja;q=abc", "ja"),
    ],
)
def test_lang_of_follows_accept_language(header, lang):
    assert lang_of(_Req(header)) == lang


def test_lang_of_without_request():
    assert lang_of(None) == "en"


def test_no_ui_string_shows_the_replacement_character():
    """The app never shows "\ufffd"; texts that explain it name it (U+FFFD) instead."""
    bad = [(lang, k) for lang in STRINGS for k, v in STRINGS[lang].items() if "\ufffd" in v]
    assert bad == []
