"""Training tokenizers with the ``tokenizers`` library: BPE, Unigram and WordPiece.

* ``read_corpus`` / ``read_upload`` / ``read_upload_file`` / ``builtin_corpus``: the text to
  train on, checked (empty, too large, binary, not UTF-8; a file's size before it is read).
* ``train``: one trained tokenizer (a ``TrainedTokenizer``: JSON string + facts), small enough
  to keep in a browser session's ``gr.State``.
* ``first_merges``: the first merges BPE learned, in order, with how often each pair occurred.
* ``vocab_sweep``: the same corpus trained at several vocabulary sizes; how a test sentence is
  cut at each size, and its token count (the curve of tokens vs vocabulary size).
* ``TrainedAdapter``: a trained tokenizer behind the playground's adapter interface.

Pre-tokenization per algorithm, as the well-known models do it: BPE is byte-level (GPT-2 style,
so Japanese characters can be split into bytes), Unigram is SentencePiece-style (``▁`` for
spaces), WordPiece is BERT-style (``##`` marks a word's continuation).
"""

from __future__ import annotations

import json
import os
import time
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from llmviz import bpe, checks, config
from llmviz.errors import UserError
from llmviz.models.tokenizers import TokenizerAdapter, TokenizerInfo

ALGORITHMS = ("bpe", "unigram", "wordpiece")
SPECIALS = {"bpe": ["<unk>"], "unigram": ["<unk>"], "wordpiece": ["[UNK]"]}
BYTE_ALPHABET = 256

Progress = Callable[[float, str], None]


# --- the corpus --------------------------------------------------------------------------------
def builtin_corpus() -> str:
    """The app's own small Japanese + English corpus (written for llmviz)."""
    folder = config.ASSETS / "tokenizer"
    return "\n".join(
        (folder / name).read_text(encoding="utf-8") for name in ("corpus_en.txt", "corpus_ja.txt")
    )


def read_corpus(text: Any) -> str:
    """Check pasted corpus text: not empty, not over ``config.MAX_CORPUS_CHARS``, valid UTF-8
    (a lone surrogate gets the same message as in every other text box)."""
    return checks.text(
        text,
        config.MAX_CORPUS_CHARS,
        empty_key="tok_corpus_empty",
        empty_message="The corpus is empty: paste some text, upload a .txt file, or use the "
        "built-in corpus.",
        long_key="tok_corpus_too_long",
        long_message="The corpus has {n} characters; the limit is {limit}. Use a shorter text.",
    )


def _megabytes(n: int, limit: int) -> tuple[str, str]:
    """``n`` and ``limit`` bytes in MB with as many decimals as it takes to tell them apart.

    >>> _megabytes(9_100_000, 8_000_000)
    ('9.1', '8.0')
    >>> _megabytes(8_000_001, 8_000_000)
    ('8.000001', '8.000000')
    """
    for decimals in range(1, 7):
        a, b = f"{n / 1e6:.{decimals}f}", f"{limit / 1e6:.{decimals}f}"
        if a != b:
            return a, b
    return a, b


def check_upload_size(n_bytes: int) -> None:
    """Refuse an upload over ``config.TOK_MAX_UPLOAD_BYTES``, saying both sizes in MB."""
    if n_bytes > config.TOK_MAX_UPLOAD_BYTES:
        mb, limit = _megabytes(n_bytes, config.TOK_MAX_UPLOAD_BYTES)
        raise UserError(
            f"The uploaded file is {mb} MB; the limit is {limit} MB.",
            key="tok_upload_too_big",
            mb=mb,
            limit=limit,
        )


def _not_text() -> UserError:
    return UserError(
        "The uploaded file is not UTF-8 text (it looks binary). Upload a plain .txt file "
        "saved as UTF-8.",
        key="tok_corpus_binary",
    )


def read_upload(data: bytes) -> str:
    """Decode an uploaded .txt file: UTF-8 text only (binary files are refused)."""
    if not data or not data.strip():
        raise UserError("The uploaded file is empty.", key="tok_upload_empty")
    check_upload_size(len(data))
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise _not_text() from None
    controls = sum(unicodedata.category(c) == "Cc" and c not in "\n\r\t" for c in text[:100_000])
    if controls > max(8, len(text[:100_000]) // 100):  # NUL-ridden "text" is a binary file
        raise _not_text()
    return read_corpus(text)


def read_upload_file(path: str | os.PathLike[str]) -> str:
    """``read_upload`` of a file on disk; its size is checked before a byte is read."""
    check_upload_size(os.path.getsize(path))
    with open(path, "rb") as f:
        return read_upload(f.read())


def _lines(corpus: str) -> list[str]:
    return [line for line in corpus.splitlines() if line.strip()]


# --- training ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class TrainedTokenizer:
    name: str  # e.g. "BPE 2000"
    algorithm: str
    requested_size: int
    vocab_size: int  # what the trainer reached (less when the corpus runs out of pairs)
    corpus_chars: int
    seconds: float
    json: str  # tokenizers.Tokenizer.to_str()

    def load(self) -> Any:
        from tokenizers import Tokenizer

        return Tokenizer.from_str(self.json)


def _low(algorithm: str) -> int:
    return BYTE_ALPHABET + 4 if algorithm == "bpe" else config.MIN_VOCAB_SIZE


def check_vocab_size(algorithm: Any, vocab_size: Any) -> int:
    """A known algorithm and a whole vocabulary size it can be trained to.

    >>> check_vocab_size("bpe", 2000.0)
    2000
    """
    checks.one_of(
        algorithm,
        ALGORITHMS,
        key="tok_algorithm",
        message="Unknown algorithm '{value}'; choose BPE, Unigram or WordPiece.",
    )
    low = _low(algorithm)
    return checks.whole(
        vocab_size,
        low,
        config.MAX_VOCAB_SIZE,
        key="tok_vocab_range",
        message="Vocabulary size must be between {low} and {high} for {algorithm} (byte-level "
        "BPE starts with all 256 bytes).",
        low=f"{low:,}",
        high=f"{config.MAX_VOCAB_SIZE:,}",
        algorithm=algorithm,
    )


def _fresh(algorithm: str, vocab_size: int) -> tuple[Any, Any]:
    """An untrained tokenizer and its trainer, set up like the well-known models."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    specials = SPECIALS[algorithm]
    if algorithm == "bpe":
        tok = Tokenizer(models.BPE(unk_token=None))
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size,
            special_tokens=specials,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        )
    elif algorithm == "unigram":
        tok = Tokenizer(models.Unigram())
        tok.pre_tokenizer = pre_tokenizers.Metaspace()
        tok.decoder = decoders.Metaspace()
        trainer = trainers.UnigramTrainer(
            vocab_size=vocab_size, special_tokens=specials, unk_token="<unk>", show_progress=False
        )
    else:
        tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
        tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        tok.decoder = decoders.WordPiece()
        trainer = trainers.WordPieceTrainer(
            vocab_size=vocab_size, special_tokens=specials, show_progress=False
        )
    return tok, trainer


def train(corpus: str, algorithm: str, vocab_size: int) -> TrainedTokenizer:
    """Train one tokenizer on ``corpus`` (each non-empty line is one training sequence)."""
    size = check_vocab_size(algorithm, vocab_size)
    corpus = read_corpus(corpus)
    if algorithm == "unigram" and size < min_unigram_size(corpus):
        raise UserError(
            f"Unigram keeps every character of the corpus as a token: this corpus has "
            f"{min_unigram_size(corpus) - 1:,} different characters, so choose a vocabulary of at "
            f"least {min_unigram_size(corpus):,}.",
            key="tok_vocab_small_chars",
            chars=f"{min_unigram_size(corpus) - 1:,}",
            low=f"{min_unigram_size(corpus):,}",
        )
    tok, trainer = _fresh(algorithm, size)
    start = time.perf_counter()
    try:
        tok.train_from_iterator(_lines(corpus), trainer)
    except Exception as err:  # noqa: BLE001 - the library's messages are not for students
        raise UserError(
            f"{algorithm} training failed on this corpus ({str(err)[:120]}). Try a larger corpus "
            "or a smaller vocabulary.",
            key="tok_train_failed",
            algorithm=algorithm,
            detail=str(err)[:120],
        ) from err
    seconds = time.perf_counter() - start
    return TrainedTokenizer(
        name=f"{algorithm.upper() if algorithm == 'bpe' else algorithm.capitalize()} {size}",
        algorithm=algorithm,
        requested_size=size,
        vocab_size=tok.get_vocab_size(),
        corpus_chars=len(corpus),
        seconds=seconds,
        json=tok.to_str(),
    )


def min_unigram_size(corpus: str) -> int:
    """Unigram's smallest vocabulary: every distinct character plus ``<unk>``."""
    from tokenizers import pre_tokenizers

    chars = set()
    for line in _lines(corpus):
        for word, _ in pre_tokenizers.Metaspace().pre_tokenize_str(line):
            chars.update(word)
    return len(chars) + len(SPECIALS["unigram"])


# --- what BPE learned --------------------------------------------------------------------------
def merges_of(trained: TrainedTokenizer) -> list[tuple[str, str]]:
    """The BPE merge list in order (``[]`` for Unigram / WordPiece, which have no merges)."""
    model = json.loads(trained.json)["model"]
    merges = model.get("merges") or []
    return [tuple(m.split(" ", 1)) if isinstance(m, str) else (m[0], m[1]) for m in merges]


@dataclass(frozen=True)
class LearnedMerge:
    rank: int
    left: bytes
    right: bytes
    count: int  # occurrences of the pair in the corpus when it was merged

    @property
    def token(self) -> bytes:
        return self.left + self.right


def first_merges(trained: TrainedTokenizer, corpus: str, n: int = 30) -> list[LearnedMerge]:
    """The first ``n`` merges of a byte-level BPE, as bytes, with their pair counts."""
    from llmviz.tokens import bytes_to_unicode

    if trained.algorithm != "bpe":
        return []
    merges = merges_of(trained)[:n]
    tok = trained.load()
    counts = bpe.replay(bpe.word_counts(tok.pre_tokenizer, _lines(corpus)), merges)
    back = {ch: b for b, ch in bytes_to_unicode().items()}
    raw = lambda s: bytes(back[c] for c in s)  # noqa: E731
    return [
        LearnedMerge(i, raw(a), raw(b), c)
        for i, ((a, b), c) in enumerate(zip(merges, counts, strict=True))
    ]


def step_by_step(corpus: str, merges: Any = 20) -> bpe.BPEResult:
    """The hand-written BPE on a small corpus, with runner-up pairs at each step."""
    merges = checks.whole(
        merges,
        1,
        config.TOK_STEP_MAX_MERGES,
        key="tok_step_merges",
        message="The number of merges must be a whole number from 1 to {limit}.",
        limit=config.TOK_STEP_MAX_MERGES,
    )
    corpus = read_corpus(corpus)
    if len(corpus) > config.TOK_STEP_MAX_CHARS:
        raise UserError(
            f"The step-by-step view runs the slow, hand-written BPE: at most "
            f"{config.TOK_STEP_MAX_CHARS:,} characters (this corpus has {len(corpus):,}). "
            "Train with the library instead, or shorten the corpus.",
            key="tok_step_long",
            limit=f"{config.TOK_STEP_MAX_CHARS:,}",
            n=f"{len(corpus):,}",
        )
    from tokenizers import pre_tokenizers

    pre = pre_tokenizers.ByteLevel(add_prefix_space=False)
    words = bpe.word_counts(pre, _lines(corpus))
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    size = len(SPECIALS["bpe"]) + BYTE_ALPHABET + merges
    return bpe.train(words, size, SPECIALS["bpe"], alphabet, runners_up=4)


# --- several vocabulary sizes ------------------------------------------------------------------
@dataclass(frozen=True)
class SweepPoint:
    requested_size: int
    vocab_size: int
    n_tokens: int
    trained: TrainedTokenizer


def vocab_sweep(
    corpus: str,
    algorithm: str,
    sizes: Sequence[int],
    sentence: str,
    progress: Progress | None = None,
) -> list[SweepPoint]:
    """Train at each size and count the tokens of ``sentence``."""
    corpus = read_corpus(corpus)
    sizes = sorted({check_vocab_size(algorithm, s) for s in sizes})
    if algorithm == "unigram":  # sizes below the character count cannot be trained
        low = min_unigram_size(corpus)
        sizes = [s for s in sizes if s >= low] or sizes[-1:]  # train() explains
    out = []
    for k, size in enumerate(sizes):
        if progress:
            progress(k / len(sizes), f"{algorithm} {size:,}")
        trained = train(corpus, algorithm, size)
        n = len(trained.load().encode(sentence, add_special_tokens=False).ids)
        out.append(SweepPoint(size, trained.vocab_size, n, trained))
    if progress:
        progress(1.0, "done")
    return out


# --- a trained tokenizer in the playground -----------------------------------------------------
class TrainedAdapter(TokenizerAdapter):
    """``label`` is the name shown in the playground (the UI passes it in the reader's language)."""

    def __init__(self, trained: TrainedTokenizer, label: str | None = None) -> None:
        kind = {"bpe": "byte-level BPE", "unigram": "Unigram", "wordpiece": "WordPiece"}
        self.info = TokenizerInfo(
            f"trained:{trained.name}",
            label or f"{trained.name} (yours)",
            kind[trained.algorithm],
            f"trained here on {trained.corpus_chars:,} characters",
        )
        self.tokenizer = trained.load()
        specials = set()
        for tok in SPECIALS[trained.algorithm]:
            idx = self.tokenizer.token_to_id(tok)
            if idx is not None:
                specials.add(idx)
        self.special_ids = frozenset(specials)

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.get_vocab_size()

    def encode(self, text: str, add_special: bool = True) -> list[int]:
        return self.tokenizer.encode(text, add_special_tokens=add_special).ids

    def decode(self, ids: Sequence[int]) -> str:
        self.check_ids(ids)
        return self.tokenizer.decode(list(ids), skip_special_tokens=False)

    def token_bytes(self, ids: Sequence[int]) -> list[bytes]:
        from llmviz.tokens import token_bytes

        self.check_ids(ids)
        return token_bytes(self.tokenizer, ids)
