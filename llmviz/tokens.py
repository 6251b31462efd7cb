"""The exact bytes behind each token, and a display of them that never shows "�".

Every tab that draws tokens (tokenizer playground, attention axes, sampling candidates) uses this
module, so a Japanese character split across two byte-level tokens looks the same everywhere.

* ``token_bytes(tokenizer, ids)``: the bytes each token stands for. Works for transformers
  tokenizers (byte-level BPE such as GPT-2 / SmolLM2 / Qwen / Llama 3, where each byte is written
  as a printable character by GPT-2's ``bytes_to_unicode`` table; SentencePiece-style such as
  Gemma, where ``▁`` is a space and ``<0xNN>`` is a byte-fallback token; WordPiece ``##``), for a
  bare ``tokenizers.Tokenizer``, and for any object with its own ``token_bytes(ids)`` method
  (the adapters in ``llmviz.models.tokenizers``, e.g. tiktoken's ``decode_single_token_bytes``).
  Special tokens (``<bos>``, ``<|im_start|>``) give their text.
* ``token_pieces(tokenizer, ids)``: walks those bytes across tokens, decoding UTF-8. A token that
  holds only part of a character is ``partial`` and shares a ``group`` with the neighbours that
  complete it: ``猫`` = ``E7 8C AB`` may arrive as ``E7`` + ``8C AB``.
* ``token_labels(tokenizer, ids)``: one short readable label per token for plot axes
  (``猫(1/2)``, ``␣the``, ``↵``), never "\\ufffd".

It deliberately does not load tokenizers (``llmviz.models`` does) or draw anything.
"""

from __future__ import annotations

import unicodedata
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "TokenPiece",
    "bytes_to_unicode",
    "hex_bytes",
    "token_bytes",
    "token_labels",
    "token_pieces",
    "visible",
]


# --- byte-level BPE alphabet -------------------------------------------------------------------
def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's table from the 256 byte values to printable characters.

    Printable Latin-1 bytes stand for themselves; the others are shifted past U+0100, so the
    space byte 0x20 is written ``Ġ`` (U+0120) and newline 0x0A is ``Ċ``:

    >>> table = bytes_to_unicode()
    >>> table[ord("A")], table[0x20], table[0x0A]
    ('A', 'Ġ', 'Ċ')
    """
    keep = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    chars = keep[:]
    n = 0
    for b in range(256):
        if b not in keep:
            keep.append(b)
            chars.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(keep, chars, strict=True)}


# str.translate table: printable stand-in -> the Latin-1 character of the real byte, so that
# ``token.translate(_BYTE_LEVEL).encode("latin-1")`` recovers the bytes at C speed.
_BYTE_LEVEL = {ord(ch): chr(b) for b, ch in bytes_to_unicode().items()}


def hex_bytes(raw: bytes) -> str:
    """``b"\\xe7\\x8c"`` -> ``"E7 8C"``."""
    return raw.hex(" ").upper()


# --- which kind of tokenizer is this? ----------------------------------------------------------
@dataclass
class _Style:
    kind: str  # "byte_level" | "sentencepiece" | "wordpiece" | "plain"
    special: frozenset[int]
    added: dict[int, str]  # added (non-vocabulary) tokens, written as plain text
    cache: dict[int, bytes]  # id -> bytes, for styles where a token's bytes never depend on context
    wordpiece_prefix: str = "##"


_styles: weakref.WeakKeyDictionary[Any, _Style] = weakref.WeakKeyDictionary()


def _backend(tokenizer: Any) -> Any:
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        return backend
    if type(tokenizer).__module__.startswith("tokenizers"):
        return tokenizer
    return None


def _decoder_json(backend: Any) -> str:
    decoder = getattr(backend, "decoder", None) if backend is not None else None
    if decoder is None:
        return ""
    try:
        return decoder.__getstate__().decode("utf-8")
    except Exception:  # noqa: BLE001 - an unusual decoder only loses the fast path
        return repr(decoder)


def _style(tokenizer: Any) -> _Style:
    try:
        return _styles[tokenizer]
    except (KeyError, TypeError):
        pass
    backend = _backend(tokenizer)
    decoder = _decoder_json(backend)
    if "ByteLevel" in decoder:
        kind = "byte_level"
    elif "WordPiece" in decoder:
        kind = "wordpiece"
    elif "\u2581" in decoder or "ByteFallback" in decoder or "Metaspace" in decoder:
        kind = "sentencepiece"
    else:
        kind = "plain"
    special: set[int] = set(getattr(tokenizer, "all_special_ids", []) or [])
    added: dict[int, str] = {}
    decoder_map = getattr(tokenizer, "added_tokens_decoder", None)
    if decoder_map is None and backend is not None:
        decoder_map = backend.get_added_tokens_decoder()
    for idx, tok in (decoder_map or {}).items():
        added[int(idx)] = str(tok.content)
        if getattr(tok, "special", False):
            special.add(int(idx))
    prefix = "##"
    if kind == "wordpiece":
        prefix = getattr(getattr(backend, "decoder", None), "prefix", "##") or "##"
    style = _Style(kind, frozenset(special), added, {}, prefix)
    try:
        _styles[tokenizer] = style
    except TypeError:  # not weak-referenceable: recompute next time
        pass
    return style


def _id_to_token(tokenizer: Any, backend: Any, idx: int) -> str | None:
    if backend is not None:
        return backend.id_to_token(idx)
    return tokenizer.convert_ids_to_tokens(idx)


def _one(tokenizer: Any, style: _Style, backend: Any, idx: int) -> bytes:
    """The bytes of token ``idx`` (context-free styles only)."""
    if idx in style.added:
        return style.added[idx].encode("utf-8")
    tok = _id_to_token(tokenizer, backend, idx)
    if tok is None:
        raise ValueError(f"token id {idx} is outside the vocabulary")
    if style.kind == "byte_level":
        try:
            return tok.translate(_BYTE_LEVEL).encode("latin-1")
        except UnicodeEncodeError:  # a vocabulary entry outside the byte alphabet
            return tok.encode("utf-8")
    if style.kind == "sentencepiece":
        if len(tok) == 6 and tok.startswith("<0x") and tok.endswith(">"):
            try:
                return bytes([int(tok[3:5], 16)])
            except ValueError:
                pass
        return tok.replace("\u2581", " ").encode("utf-8")
    if style.kind == "plain":
        decode = getattr(tokenizer, "decode", None)
        if decode is not None and backend is None:
            return decode([idx]).encode("utf-8")
    return tok.encode("utf-8")


def token_bytes(tokenizer: Any, ids: Sequence[int]) -> list[bytes]:
    """The exact bytes each token id stands for.

    For a lossless tokenizer ``b"".join(token_bytes(tok, tok.encode(text)))`` is
    ``text.encode("utf-8")`` (plus the text of any special tokens the encoder added).
    Raises ``ValueError`` for an id outside the vocabulary.

    >>> # with GPT-2: token_bytes(gpt2, [31373, 995]) == [b"hello", b" world"]
    """
    own = getattr(tokenizer, "token_bytes", None)
    if callable(own):
        return list(own(list(ids)))
    single = getattr(tokenizer, "decode_single_token_bytes", None)  # a bare tiktoken.Encoding
    if callable(single):
        try:
            return [single(int(i)) for i in ids]
        except KeyError as err:
            raise ValueError(f"token id {err} is outside the vocabulary") from None
    style = _style(tokenizer)
    backend = _backend(tokenizer)
    out: list[bytes] = []
    if style.kind == "wordpiece":
        prefix = style.wordpiece_prefix
        for i, idx in enumerate(ids):
            idx = int(idx)
            if idx in style.added:
                out.append(style.added[idx].encode("utf-8"))
                continue
            tok = _id_to_token(tokenizer, backend, idx)
            if tok is None:
                raise ValueError(f"token id {idx} is outside the vocabulary")
            if tok.startswith(prefix):
                out.append(tok[len(prefix) :].encode("utf-8"))
            else:  # a new word: WordPiece's decoder puts a space before it
                out.append((" " + tok if i else tok).encode("utf-8"))
        return out
    cache = style.cache
    for idx in ids:
        idx = int(idx)
        raw = cache.get(idx)
        if raw is None:
            if idx < 0:
                raise ValueError(f"token id {idx} is outside the vocabulary")
            raw = _one(tokenizer, style, backend, idx)
            cache[idx] = raw
        out.append(raw)
    return out


def special_ids(tokenizer: Any) -> frozenset[int]:
    """Ids of special tokens (BOS/EOS, chat markers) of any supported tokenizer."""
    own = getattr(tokenizer, "special_ids", None)
    if own is not None and not callable(own):
        return frozenset(own)
    specials = getattr(tokenizer, "_special_tokens", None)  # a bare tiktoken.Encoding
    if isinstance(specials, dict) and hasattr(tokenizer, "decode_single_token_bytes"):
        return frozenset(specials.values())
    return _style(tokenizer).special


# --- walking bytes across tokens ---------------------------------------------------------------
@dataclass(frozen=True)
class TokenPiece:
    """One token as the display needs it.

    ``raw`` is the token's bytes; ``text`` the characters it belongs to (for a ``partial`` piece:
    the whole characters its bytes are part of, so ``E7`` of ``猫`` has text ``"猫"``; bytes that
    never form a character contribute nothing). Pieces with the same ``group`` must be read
    together to get whole characters; a group of one token is an ordinary token.
    """

    index: int
    id: int
    raw: bytes
    text: str
    group: int
    partial: bool
    special: bool


def _utf8_len(lead: int) -> int:
    if lead < 0x80:
        return 1
    if 0xC2 <= lead <= 0xDF:
        return 2
    if 0xE0 <= lead <= 0xEF:
        return 3
    if 0xF0 <= lead <= 0xF4:
        return 4
    return 0  # a continuation byte or a byte UTF-8 never uses


def _chars(buf: bytes) -> list[tuple[int, int, str | None]]:
    """Split ``buf`` into (start, end, character or None for an undecodable byte)."""
    out: list[tuple[int, int, str | None]] = []
    p = 0
    while p < len(buf):
        n = _utf8_len(buf[p])
        ch: str | None = None
        if n and p + n <= len(buf):
            try:
                ch = buf[p : p + n].decode("utf-8")
            except UnicodeDecodeError:
                ch = None
        if ch is None:
            n = 1
        out.append((p, p + n, ch))
        p += n
    return out


def _run_pieces(
    start_index: int, ids: Sequence[int], raws: Sequence[bytes], first_group: int
) -> tuple[list[TokenPiece], int]:
    """Pieces for a run of tokens that do not decode one by one (split characters)."""
    buf = b"".join(raws)
    chars = _chars(buf)
    bounds = []
    pos = 0
    for raw in raws:
        bounds.append((pos, pos + len(raw)))
        pos += len(raw)
    char_starts = {c[0] for c in chars} | {len(buf)}
    pieces: list[TokenPiece] = []
    group = first_group - 1
    ci = 0  # first character that may overlap the current token (both lists are in order)
    for k, ((s, e), idx, raw) in enumerate(zip(bounds, ids, raws, strict=True)):
        if s in char_starts:
            group += 1
        while ci < len(chars) and chars[ci][1] <= s:
            ci += 1
        cj = ci
        while cj < len(chars) and chars[cj][0] < e:
            cj += 1
        touched = "".join(ch for _, _, ch in chars[ci:cj] if ch is not None)
        pieces.append(
            TokenPiece(
                index=start_index + k,
                id=int(idx),
                raw=raw,
                text=touched,
                group=group,
                partial=True,
                special=False,
            )
        )
    # every token of the run fails to decode alone, so each is partial (even one that is a
    # lone invalid byte: it is shown as hex)
    return pieces, group + 1


def token_pieces(tokenizer: Any, ids: Sequence[int]) -> list[TokenPiece]:
    """The tokens ``ids`` as ``TokenPiece``s, with split UTF-8 characters grouped.

    Example (a byte-level BPE that cuts 猫 = E7 8C AB after the first byte)::

        ids -> raw [b"\\xe7", b"\\x8c\\xab", b"!"]
            -> pieces (text "猫", group 0, partial), (text "猫", group 0, partial),
                      (text "!", group 1, whole)
    """
    ids = [int(i) for i in ids]
    raws = token_bytes(tokenizer, ids)
    specials = special_ids(tokenizer)
    pieces: list[TokenPiece] = []
    group = 0
    i = 0
    n = len(ids)
    while i < n:
        idx, raw = ids[i], raws[i]
        if idx in specials:
            pieces.append(TokenPiece(i, idx, raw, raw.decode("utf-8", "replace"), group, False, True))
            group += 1
            i += 1
            continue
        try:
            pieces.append(TokenPiece(i, idx, raw, raw.decode("utf-8"), group, False, False))
            group += 1
            i += 1
            continue
        except UnicodeDecodeError:
            pass
        # A run of tokens that fail to decode alone. A token that does decode alone cannot carry
        # the rest of a character (valid UTF-8 never starts with a continuation byte), so the run
        # ends at the first such token.
        j = i + 1
        while j < n and ids[j] not in specials:
            try:
                raws[j].decode("utf-8")
                break
            except UnicodeDecodeError:
                j += 1
        run, group = _run_pieces(i, ids[i:j], raws[i:j], group)
        pieces.extend(run)
        i = j
    return pieces


# --- labels ------------------------------------------------------------------------------------
_VISIBLE = {" ": "␣", "\n": "↵", "\t": "⇥", "\r": "␍", "\u3000": "□", "\u00a0": "⍽"}
_NAMED = {"\u200d": "ZWJ", "\u200c": "ZWNJ", "\ufe0f": "VS16", "\ufe0e": "VS15", "\ufeff": "BOM"}


def visible(text: str) -> str:
    """Whitespace and invisible characters made visible for a label.

    >>> visible(" the\\n")
    '␣the↵'
    >>> visible("\\u0301")  # a lone combining accent sits on a dotted circle
    '◌́'
    """
    out = []
    for ch in text:
        if ch in _VISIBLE:
            out.append(_VISIBLE[ch])
        elif ch in _NAMED:
            out.append(f"[{_NAMED[ch]}]")
        elif ch == "\ufffd":
            out.append("[U+FFFD]")  # a literal replacement character typed by the user
        else:
            cat = unicodedata.category(ch)
            if cat == "Cc":
                out.append(chr(0x2400 + ord(ch)) if ord(ch) < 0x20 else f"[{ord(ch):02X}]")
            elif cat in ("Cf", "Cs", "Co", "Cn", "Zl", "Zp", "Zs"):
                out.append(f"[U+{ord(ch):04X}]")
            elif cat.startswith("M") and not out:
                out.append("◌" + ch)
            else:
                out.append(ch)
    return "".join(out)


def _shorten(label: str, limit: int) -> str:
    return label if len(label) <= limit else label[: limit - 1] + "…"


def piece_label(piece: TokenPiece, position: int = 0, size: int = 1, limit: int = 16) -> str:
    """The label of one piece; ``position``/``size`` place it inside its group of pieces."""
    if piece.special:
        return _shorten(piece.text, limit)
    if not piece.partial:
        return _shorten(visible(piece.text), limit) or "∅"
    if not piece.text:  # bytes that never complete a character
        return "<" + hex_bytes(piece.raw) + ">"
    return _shorten(visible(piece.text), limit - 5) + f"({position}/{size})"


def labels_of(pieces: Sequence[TokenPiece], limit: int = 16) -> list[str]:
    """Labels for pieces already computed (see ``token_labels``)."""
    sizes: dict[int, int] = {}
    for p in pieces:
        sizes[p.group] = sizes.get(p.group, 0) + 1
    seen: dict[int, int] = {}
    out = []
    for p in pieces:
        seen[p.group] = seen.get(p.group, 0) + 1
        out.append(piece_label(p, seen[p.group], sizes[p.group], limit))
    return out


def token_labels(tokenizer: Any, ids: Sequence[int], limit: int = 16) -> list[str]:
    """One short readable label per token, for plot axes and candidate lists.

    Whitespace is visible (``␣``, ``↵``); a piece of a split character shows the character and
    its place in the group (``猫(1/2)``, ``猫(2/2)``); bytes that never complete a character show
    as hex (``<E7>``). Labels are not unique: plot on positions.
    """
    return labels_of(token_pieces(tokenizer, ids), limit)


# --- generated text for display (never "\ufffd") -----------------------------------------------
def readable_bytes(buf: bytes) -> str:
    """``buf`` as UTF-8 text; bytes that form no character are shown as hex in angle brackets.

    >>> readable_bytes("猫".encode() + "犬".encode()[:2])
    '猫<E7 8A>'
    >>> readable_bytes(b"ok")
    'ok'
    """
    out: list[str] = []
    loose = bytearray()
    for start, end, ch in _chars(buf):
        if ch is None or ch == "\ufffd":  # a literal U+FFFD would look like the same failure
            loose += buf[start:end]
            continue
        if loose:
            out.append("<" + hex_bytes(bytes(loose)) + ">")
            loose.clear()
        out.append(ch)
    if loose:
        out.append("<" + hex_bytes(bytes(loose)) + ">")
    return "".join(out)


def readable_decode(tokenizer: Any, ids: Sequence[int], skip_special_tokens: bool = True) -> str:
    """``tokenizer.decode(ids)``, except that an incomplete UTF-8 character (a generation that
    stopped between the bytes of 猫, or a window that starts inside one) is shown as its bytes
    (``<E7 8C>``), the way the tokenizer tab shows a split piece, instead of as "\ufffd"."""
    ids = [int(i) for i in ids]
    text = tokenizer.decode(ids, skip_special_tokens=skip_special_tokens)
    if "\ufffd" not in text:
        return text
    specials = special_ids(tokenizer) if skip_special_tokens else frozenset()
    return readable_bytes(b"".join(token_bytes(tokenizer, [i for i in ids if i not in specials])))


def tail_ids(tokenizer: Any, ids: Sequence[int], n: int) -> list[int]:
    """The last ``n`` ids or a few fewer: never starting inside a character (a token whose bytes
    begin with a UTF-8 continuation byte belongs to the character before it)."""
    ids = [int(i) for i in ids]
    start = max(0, len(ids) - n)
    raws = token_bytes(tokenizer, ids[start:])
    k = 0
    while k < len(raws) - 1 and raws[k][:1] and 0x80 <= raws[k][0] <= 0xBF:
        k += 1
    return ids[start + k :]


# --- where a generation ends --------------------------------------------------------------------
#: Strings that end a turn or a document in the model families llmviz knows.
END_TOKENS = ("<|im_end|>", "<|endoftext|>", "<end_of_turn>", "<eos>", "</s>", "<|eot_id|>")


def stop_token_ids(tokenizer: Any, model: Any | None = None) -> tuple[int, ...]:
    """The ids that end a generation: the model's ``eos_token_id`` (int or list), the
    tokenizer's EOS, and every end-of-turn token in ``END_TOKENS`` the vocabulary has."""
    ids: set[int] = set()
    gen_cfg = getattr(model, "generation_config", None)
    eos = getattr(gen_cfg, "eos_token_id", None)
    for value in eos if isinstance(eos, (list, tuple)) else [eos]:
        if value is not None:
            ids.add(int(value))
    if getattr(tokenizer, "eos_token_id", None) is not None:
        ids.add(int(tokenizer.eos_token_id))
    # One lookup per name, not get_vocab(): building Gemma's 262k-entry dict costs ~0.1 s.
    for name in END_TOKENS:
        idx = tokenizer.convert_tokens_to_ids(name)
        # an unknown name maps to the unk id, whose token is another name
        if isinstance(idx, int) and tokenizer.convert_ids_to_tokens(idx) == name:
            ids.add(idx)
    return tuple(sorted(ids))
