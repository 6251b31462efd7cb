"""Comparing tokenizers on one text: checks on the input, counts, the decode round trip, the
per-token table and the "language premium" (how many more tokens a language pays than English).

Takes tokenizer adapters (``llmviz.models.tokenizers``) as arguments and never loads one; draws
nothing (``llmviz.plots.tokens`` does).
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from llmviz import checks, config
from llmviz.errors import UserError
from llmviz.tokens import TokenPiece, hex_bytes, labels_of, visible

# --- checking the text -------------------------------------------------------------------------
_ZWJ = "\u200d"


def check_text(text: Any, max_chars: int = config.MAX_TEXT_CHARS) -> list[str]:
    """Validate user text; return notes (i18n keys) about things worth pointing out.

    Raises ``UserError`` for: not a string, empty, over ``max_chars``, lone surrogates (not
    encodable as UTF-8). Spaces alone are text (how is a space tokenized?). Notes:
    ``"tok.note.control"`` (control characters), ``"tok.note.zwj"`` (emoji joined with ZWJ: one
    picture, several code points), ``"tok.note.combining"``.

    >>> check_text("e\\u0301")
    ['tok.note.combining']
    """
    if not isinstance(text, str):  # an API caller's None or number: say what was expected
        raise UserError("The text must be a string.", key="tok_empty")
    text = checks.text(
        text,
        max_chars,
        empty_key="tok_empty",
        empty_message="Type or paste some text to tokenize.",
        long_key="tok_too_long",
        long_message="The text has {n} characters; the limit here is {limit}. Paste a shorter "
        "passage.",
        allow_blank=True,
    )
    notes = []
    if any(unicodedata.category(c) == "Cc" and c not in "\n\t\r" for c in text):
        notes.append("tok.note.control")
    if _ZWJ in text:
        notes.append("tok.note.zwj")
    if any(unicodedata.combining(c) for c in text):
        notes.append("tok.note.combining")
    return notes


# --- tokenizing with several tokenizers --------------------------------------------------------
def _check_count(n: int) -> None:
    if n == 0:
        raise UserError("Choose at least one tokenizer.", key="tok_none")
    if n > config.TOK_MAX_SELECTED:
        raise UserError(
            f"Compare at most {config.TOK_MAX_SELECTED} tokenizers at once.",
            key="tok_too_many",
            limit=config.TOK_MAX_SELECTED,
        )


def check_picks(picks: Any) -> list[str]:
    """The tokenizer keys a student (or an API caller) picked, checked before any is loaded: one
    to ``config.TOK_MAX_SELECTED`` strings. Every endpoint of the tab goes through here, so
    none accepts more than the side-by-side view does.

    >>> check_picks("gpt2")
    ['gpt2']
    """
    if picks is None:
        picks = []
    elif isinstance(picks, str):
        picks = [picks]
    elif not isinstance(picks, (list, tuple)):
        picks = [picks]
    _check_count(len(picks))
    for key in picks:
        if not isinstance(key, str) or not key.strip():
            shown = checks.show(key)
            raise UserError(
                f"Unknown tokenizer '{shown}'. Pick one from the list, or give a Hub id "
                "like 'Qwen/Qwen2.5-0.5B'.",
                key="tok_unknown",
                name=shown,
            )
    return list(picks)


def table_index(picks: Sequence[str], pick: Any) -> int:
    """Which of ``picks`` the per-token table shows: ``pick`` must be one of them (nothing
    chosen yet: the first).

    >>> table_index(["gpt2", "o200k_base"], "o200k_base")
    1
    """
    if pick is None or pick == "":
        return 0
    return list(picks).index(
        checks.one_of(
            pick,
            picks,
            key="tok_table_pick",
            message="'{value}' is not one of the selected tokenizers; choose one of: {choices}.",
        )
    )


@dataclass(frozen=True)
class Tokenized:
    """One tokenizer's view of the text.

    Counts cover the whole text; ``pieces`` only the first ``display_max`` tokens (drawing
    thousands of spans helps nobody; ``all_pieces`` rebuilds the rest for the CSV).
    """

    key: str
    display: str
    kind: str
    vocab_size: int | None
    pieces: list[TokenPiece]  # the first tokens, for display
    n_pieces: int  # all tokens, special ones included
    n_tokens: int  # all tokens, special ones excluded
    n_split_tokens: int  # tokens holding part of a character
    n_chars: int
    n_bytes: int
    ids: list[int] = field(default_factory=list)  # every id ([] for tokenizers without ids)
    annotations: list[str] | None = None  # e.g. part of speech per word (janome)
    has_ids: bool = True

    @property
    def n_special(self) -> int:
        return self.n_pieces - self.n_tokens

    @property
    def truncated(self) -> bool:
        return len(self.pieces) < self.n_pieces

    @property
    def chars_per_token(self) -> float:
        return self.n_chars / self.n_tokens if self.n_tokens else 0.0

    @property
    def bytes_per_token(self) -> float:
        return self.n_bytes / self.n_tokens if self.n_tokens else 0.0


def _count_split(raws: Sequence[bytes]) -> int:
    n = 0
    for raw in raws:
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            n += 1
    return n


def tokenize_one(
    adapter: Any,
    text: str,
    add_special: bool = True,
    display_max: int = config.TOK_DISPLAY_MAX_TOKENS,
) -> Tokenized:
    """``adapter``'s tokens of ``text``: counts over all of it, pieces for the first tokens."""
    from llmviz.tokens import token_pieces

    info = adapter.info
    if info.kind == "morphological analyzer" and len(text) > config.TOK_JANOME_MAX_CHARS:
        raise UserError(
            f"{info.display} handles at most {config.TOK_JANOME_MAX_CHARS:,} characters "
            "(it is a pure-Python dictionary search). Use a shorter text or deselect it.",
            key="tok_janome_long",
            name=info.display,
            limit=f"{config.TOK_JANOME_MAX_CHARS:,}",
        )
    common = dict(
        key=info.key,
        display=info.display,
        kind=info.kind,
        vocab_size=adapter.vocab_size,
        n_chars=len(text),
        n_bytes=len(text.encode("utf-8")),
    )
    if adapter.vocab_size is None:  # words without ids (janome)
        pieces = adapter.pieces(text, add_special)
        annotate = getattr(adapter, "annotations", None)
        notes = annotate(text) if callable(annotate) else None
        return Tokenized(
            pieces=pieces[:display_max],
            n_pieces=len(pieces),
            n_tokens=len(pieces),
            n_split_tokens=0,
            annotations=notes[:display_max] if notes else None,
            has_ids=False,
            **common,
        )
    ids = adapter.encode(text, add_special)
    specials = adapter.special_ids
    n_special = sum(1 for i in ids if i in specials)
    # extend the shown prefix to the end of a split character, never cut one in half
    cut = min(display_max, len(ids))
    raws = adapter.token_bytes(ids)
    while cut < len(ids) and raws[cut][:1] and 0x80 <= raws[cut][0] < 0xC0:
        cut += 1
    return Tokenized(
        pieces=token_pieces(adapter, ids[:cut]),
        n_pieces=len(ids),
        n_tokens=len(ids) - n_special,
        n_split_tokens=_count_split(raws),
        ids=ids,
        **common,
    )


def all_pieces(adapter: Any, result: Tokenized) -> list[TokenPiece]:
    """Every piece of a result (``result.pieces`` may hold only the first ones)."""
    from llmviz.tokens import token_pieces

    if not result.truncated or not result.has_ids:
        return list(result.pieces)
    return token_pieces(adapter, result.ids)


def tokenize_many(
    adapters: Sequence[Any],
    text: str,
    add_special: bool = True,
    display_max: int = config.TOK_DISPLAY_MAX_TOKENS,
) -> list[Tokenized]:
    """``tokenize_one`` for each adapter, after ``check_text``."""
    check_text(text)
    _check_count(len(adapters))
    return [tokenize_one(a, text, add_special, display_max) for a in adapters]


# --- the per-token table -----------------------------------------------------------------------
TABLE_HEADERS = ["index", "id", "token", "bytes", "group", "partial", "special"]


def table_rows(pieces: Sequence[TokenPiece]) -> list[list[Any]]:
    """One row per token: index, id, readable label, hex bytes, group, partial, special."""
    labels = labels_of(pieces, limit=40)
    return [
        [p.index, p.id, label, hex_bytes(p.raw), p.group, p.partial, p.special]
        for p, label in zip(pieces, labels, strict=True)
    ]


def table_csv(results: Sequence[tuple[str, Sequence[TokenPiece]]]) -> str:
    """CSV of every token of every tokenizer: ``(tokenizer key, pieces)`` pairs in.

    The ``text`` column holds the exact characters the token belongs to, so a spreadsheet shows
    Japanese correctly; ``bytes`` holds its hex bytes.
    """
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["tokenizer", *TABLE_HEADERS[:3], "text", *TABLE_HEADERS[3:]])
    for key, pieces in results:
        for p, row in zip(pieces, table_rows(pieces), strict=True):
            writer.writerow([key, *row[:3], p.text, *row[3:]])
    return out.getvalue()


# --- decoding ----------------------------------------------------------------------------------
_ID_SPLIT = re.compile(r"[\s,;\[\]()]+")


def parse_ids(text: Any, limit: int = config.TOK_MAX_DECODE_IDS) -> list[int]:
    """``"[31373, 995]"`` or ``"31373 995"`` -> ``[31373, 995]``.

    >>> parse_ids("[31373, 995]")
    [31373, 995]
    """
    if not isinstance(text, str) or not text.strip():
        raise UserError(
            "Type token ids to decode, separated by spaces or commas (e.g. 31373, 995).",
            key="tok_ids_empty",
        )
    parts = [p for p in _ID_SPLIT.split(text.strip()) if p]
    if len(parts) > limit:
        raise UserError(
            f"{len(parts):,} ids is too many to decode here; the limit is {limit:,}.",
            key="tok_ids_too_many",
            n=f"{len(parts):,}",
            limit=f"{limit:,}",
        )
    ids = []
    for p in parts:
        if not re.fullmatch(r"[+-]?\d{1,12}", p):
            shown = visible(p[:20])
            raise UserError(
                f"'{shown}' is not a token id: ids are whole numbers like 31373, separated by "
                "spaces or commas.",
                key="tok_id_not_number",
                item=shown,
            )
        ids.append(int(p))
    if not ids:
        raise UserError("Type token ids to decode (e.g. 31373, 995).", key="tok_ids_empty")
    return ids


@dataclass(frozen=True)
class RoundTrip:
    ids: list[int]
    text: str  # decoded by the tokenizer's own decoder (split characters appear as "�" there)
    pieces: list[TokenPiece]
    reencoded: list[int]  # the decoded text encoded again
    same: bool  # reencoded == ids (special tokens aside)
    lossless: bool  # bytes of the pieces form valid UTF-8 (no split character left open)
    notes: list[str] = field(default_factory=list)


def round_trip(adapter: Any, ids: Sequence[int]) -> RoundTrip:
    """Decode ``ids`` and encode the result again: do we get the same ids back?

    Often not: ``[1, 2]`` might decode to text the tokenizer would cut differently (the
    encoder always picks its own merges), and ids ending inside a character decode to "�".
    """
    from llmviz.tokens import token_pieces

    adapter.check_ids(ids)
    pieces = token_pieces(adapter, ids)
    text = adapter.decode(ids)
    specials = adapter.special_ids
    plain = [i for i in ids if i not in specials]
    raw = b"".join(p.raw for p in pieces if not p.special)
    try:
        clean = raw.decode("utf-8")
        lossless = True
    except UnicodeDecodeError:
        clean = raw.decode("utf-8", errors="replace")
        lossless = False
    reencoded = adapter.encode(clean, add_special=False) if clean else []
    notes = [] if lossless else ["tok.note.broken_char"]
    return RoundTrip(list(ids), text, pieces, reencoded, reencoded == plain, lossless, notes)


# --- language premium --------------------------------------------------------------------------
@dataclass(frozen=True)
class Premium:
    """Token counts of the same sentence in several languages, by several tokenizers."""

    langs: list[str]  # row labels
    tokenizers: list[str]  # column labels (display names)
    counts: list[list[int]]  # counts[lang][tokenizer]
    base: str  # the language ratios are relative to

    def ratios(self) -> list[list[float]]:
        """counts / counts of the base language, per tokenizer."""
        b = self.langs.index(self.base)
        return [
            [c / self.counts[b][j] if self.counts[b][j] else 0.0 for j, c in enumerate(row)]
            for row in self.counts
        ]


def parse_parallel(text: str) -> dict[str, str]:
    """Lines ``lang: sentence`` -> ``{lang: sentence}`` (blank lines and ``#`` comments skipped).

    >>> parse_parallel("en: Hello.\\nja: こんにちは。")
    {'en': 'Hello.', 'ja': 'こんにちは。'}
    """
    out: dict[str, str] = {}
    for n, line in enumerate((text or "").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        lang, sep, sentence = line.partition(":")
        lang, sentence = lang.strip(), sentence.strip()
        if not sep or not lang or not sentence or len(lang) > 24:
            raise UserError(
                f"Line {n} should look like 'ja: 今日は晴れです。' (a language name, a colon, "
                "then the sentence).",
                key="tok_parallel_format",
                line=n,
            )
        if len(sentence) > config.TOK_MAX_SENTENCE_CHARS:
            raise UserError(
                f"The sentence on line {n} is longer than {config.TOK_MAX_SENTENCE_CHARS} characters.",
                key="tok_parallel_long",
                line=n,
                limit=config.TOK_MAX_SENTENCE_CHARS,
            )
        check_text(sentence)
        out[lang] = sentence
    if len(out) > config.TOK_MAX_PARALLEL:
        raise UserError(
            f"Give at most {config.TOK_MAX_PARALLEL} sentences.",
            key="tok_parallel_many",
            limit=config.TOK_MAX_PARALLEL,
        )
    if not out:
        raise UserError(
            "Give at least one line 'en: ...' and one other language.", key="tok_parallel_empty"
        )
    return out


def language_premium(
    adapters: Sequence[Any], sentences: dict[str, str], base: str = "en"
) -> Premium:
    """Count the tokens of each sentence with each (subword) tokenizer.

    ``base`` must be one of the languages: ratios are measured against it.
    """
    if base not in sentences:
        raise UserError(
            f"Include the '{base}' sentence: the ratios are measured against it.",
            key="tok_parallel_no_base",
            base=base,
        )
    usable = [a for a in adapters if a.vocab_size is not None]
    if not usable:
        raise UserError("Choose at least one subword tokenizer.", key="tok_none")
    counts = [[len(a.encode(s, add_special=False)) for a in usable] for s in sentences.values()]
    return Premium(list(sentences), [a.info.display for a in usable], counts, base)
