"""Training tokenizers with the ``tokenizers`` library: BPE, Unigram and WordPiece.

* ``read_corpus`` / ``read_upload`` / ``read_upload_file`` / ``builtin_corpus``: the text to
  train on, checked (empty, too large, binary, not UTF-8; a file's size before it is read).
* ``train``: one trained tokenizer (a ``TrainedTokenizer``: JSON string + facts), small enough
  to keep in a browser session's ``gr.State``.
* ``TrainingJob``: where every library training runs: a child process with a time budget
  (``config.TOK_TRAIN_SECONDS``), killed when the budget runs out or the caller stops waiting.
* ``first_merges``: the first merges BPE learned, in order, with how often each pair occurred.
* ``vocab_sweep``: the same corpus trained at several vocabulary sizes; how a test sentence is
  cut at each size, and its token count (the curve of tokens vs vocabulary size).
* ``TrainedAdapter``: a trained tokenizer behind the playground's adapter interface.

Why a child process: the library's trainers run in Rust threads that nothing in Python can
interrupt, and their cost grows with the square of the longest word: one 1,000,000-character
"word" kept a core busy for 30+ minutes and grew the server to ~6 GB after the student had given
up. ``check_words`` refuses such words up front (``config.TOK_MAX_WORD_CHARS``); the child and its
budget bound everything else. What this module does not do: decide how long a student waits
(the UI polls ``TrainingJob.wait`` and may stop it at any time).

Pre-tokenization per algorithm, as the well-known models do it: BPE is byte-level (GPT-2 style,
so Japanese characters can be split into bytes), Unigram is SentencePiece-style (``▁`` for
spaces), WordPiece is BERT-style (``##`` marks a word's continuation).
"""

from __future__ import annotations

import json
import logging
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmviz import bpe, checks, config
from llmviz.errors import UserError
from llmviz.models.tokenizers import TokenizerAdapter, TokenizerInfo

log = logging.getLogger("llmviz.training")

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


def _pre_tokenizer(algorithm: str) -> Any:
    from tokenizers import pre_tokenizers

    if algorithm == "bpe":
        return pre_tokenizers.ByteLevel(add_prefix_space=False)
    if algorithm == "unigram":
        return pre_tokenizers.Metaspace()
    return pre_tokenizers.BertPreTokenizer()


def _fresh(algorithm: str, vocab_size: int) -> tuple[Any, Any]:
    """An untrained tokenizer and its trainer, set up like the well-known models."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    specials = SPECIALS[algorithm]
    if algorithm == "bpe":
        tok = Tokenizer(models.BPE(unk_token=None))
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size,
            special_tokens=specials,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        )
    elif algorithm == "unigram":
        tok = Tokenizer(models.Unigram())
        tok.decoder = decoders.Metaspace()
        trainer = trainers.UnigramTrainer(
            vocab_size=vocab_size, special_tokens=specials, unk_token="<unk>", show_progress=False
        )
    else:
        tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
        tok.decoder = decoders.WordPiece()
        trainer = trainers.WordPieceTrainer(
            vocab_size=vocab_size, special_tokens=specials, show_progress=False
        )
    tok.pre_tokenizer = _pre_tokenizer(algorithm)
    return tok, trainer


def longest_word(corpus: str, algorithm: str) -> tuple[int, str]:
    """The longest piece ``algorithm``'s trainer would see (its pre-tokenizer cuts each line at
    spaces, and BPE / WordPiece also at punctuation), in characters, with the piece itself.

    >>> longest_word("to be or not", "bpe")
    (4, ' not')
    """
    pre = _pre_tokenizer(algorithm)
    best, where = 0, ("", 0, 0)
    for line in _lines(corpus):
        if len(line) <= best:
            continue  # no piece of a shorter line can be longer
        for _, (start, end) in pre.pre_tokenize_str(line):
            if end - start > best:
                best, where = end - start, (line, start, end)
    line, start, end = where
    return best, line[start:end]


def check_words(corpus: str, algorithm: str) -> None:
    """Refuse a corpus with a word longer than ``config.TOK_MAX_WORD_CHARS``.

    Training time grows with the square of the longest word (each merge inside a word rewrites
    it): a 20,000-character word takes 0.6 s here, a 1,000,000-character one hours.
    """
    n, word = longest_word(corpus, algorithm)
    limit = config.TOK_MAX_WORD_CHARS
    if n > limit:
        shown = checks.show(word)
        raise UserError(
            f"The corpus has a word of {n:,} characters with no space or line break in it "
            f"(it starts “{shown}”); the limit is {limit:,}. Training time grows with the "
            "square of a word's length, so one giant word would keep the server busy for "
            "hours. Put spaces or line breaks into the text, or use another corpus.",
            key="tok_word_too_long",
            n=f"{n:,}",
            limit=f"{limit:,}",
            word=shown,
        )


def min_unigram_size(corpus: str) -> int:
    """Unigram's smallest vocabulary: every distinct character plus ``<unk>``."""
    pre = _pre_tokenizer("unigram")
    chars = set()
    for line in _lines(corpus):
        for word, _ in pre.pre_tokenize_str(line):
            chars.update(word)
    return len(chars) + len(SPECIALS["unigram"])


def _trainable_sizes(corpus: str, algorithm: str, sizes: list[int]) -> list[int]:
    """Unigram cannot train below its alphabet: drop such sizes, refuse when none is left."""
    if algorithm != "unigram":
        return sizes
    low = min_unigram_size(corpus)
    if sizes[-1] < low:
        raise UserError(
            f"Unigram keeps every character of the corpus as a token: this corpus has "
            f"{low - 1:,} different characters, so choose a vocabulary of at least {low:,}.",
            key="tok_vocab_small_chars",
            chars=f"{low - 1:,}",
            low=f"{low:,}",
        )
    return [s for s in sizes if s >= low]


def trained_name(algorithm: str, size: int) -> str:
    return f"{algorithm.upper() if algorithm == 'bpe' else algorithm.capitalize()} {size}"


def _train_here(corpus: str, algorithm: str, size: int) -> TrainedTokenizer:
    """The library's training, in this process: only ever called inside the child."""
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
    return TrainedTokenizer(
        name=trained_name(algorithm, size),
        algorithm=algorithm,
        requested_size=size,
        vocab_size=tok.get_vocab_size(),
        corpus_chars=len(corpus),
        seconds=time.perf_counter() - start,
        json=tok.to_str(),
    )


# --- the child process -------------------------------------------------------------------------
# Why subprocess and not multiprocessing: "fork" is unsafe in a server with threads, and the
# "spawn" and "forkserver" start methods re-run the server's __main__ in the child: under
# ``python app.py`` that builds the whole app (9.7 s and every tab's imports, measured here)
# before the training starts. A fresh interpreter that imports this module takes ~0.2 s.
_CHILD_CODE = (
    "import sys; sys.path.insert(0, sys.argv[1]); "
    "from llmviz.tokenizer_training import _child_main; _child_main(sys.argv[2])"
)


def _emit(**event: Any) -> None:
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()


def _child_main(request_path: str) -> None:
    """The child's side: check the words, train each size, report one JSON line per event."""
    request = json.loads(Path(request_path).read_text(encoding="utf-8"))
    # if the server dies or hangs, the kernel still ends this process (SIGALRM's default action)
    signal.alarm(int(request["budget"]) + 5)
    corpus, algorithm = request["corpus"], request["algorithm"]
    try:
        check_words(corpus, algorithm)
        sizes = _trainable_sizes(corpus, algorithm, request["sizes"])
        trained = None
        for k, size in enumerate(sizes):
            _emit(event="step", k=k, n=len(sizes), size=size)
            trained = _train_here(corpus, algorithm, size)
            _emit(event="trained", **trained.__dict__)
        if trained is not None and request["merges"]:
            learned = first_merges(trained, corpus, request["merges"])
            _emit(event="merges", merges=[[m.left.hex(), m.right.hex(), m.count] for m in learned])
    except UserError as err:
        _emit(event="error", message=err.message, key=err.key, params=err.params)
        sys.exit(1)
    _emit(event="done")


class TrainingJob:
    """One training request (every vocabulary size of a sweep) in a child process.

    Use it as a context manager: leaving the block, normally or not (an exception, a closed
    generator when a student presses Stop), kills the child. ``wait`` raises ``UserError`` when
    the budget runs out (the child is killed first) or the training fails.

    >>> with TrainingJob("low lower lowest " * 20, "bpe", [300]) as job:  # doctest: +SKIP
    ...     job.wait()
    ...     job.results()[0].name
    'BPE 300'
    """

    _live: dict[int, TrainingJob] = {}  # pid -> job, every child this module started
    _live_lock = threading.Lock()

    def __init__(
        self,
        corpus: str,
        algorithm: str,
        sizes: Sequence[Any],
        budget: float | None = None,
        merges: int = 0,
    ) -> None:
        self.corpus = read_corpus(corpus)
        self.algorithm = algorithm
        self.sizes = sorted({check_vocab_size(algorithm, s) for s in sizes})
        if not self.sizes:
            raise UserError(
                f"Vocabulary size must be between {_low(algorithm):,} and "
                f"{config.MAX_VOCAB_SIZE:,}.",
                key="tok_vocab_range",
                low=f"{_low(algorithm):,}",
                high=f"{config.MAX_VOCAB_SIZE:,}",
                algorithm=algorithm,
            )
        self.budget = float(config.TOK_TRAIN_SECONDS if budget is None else budget)
        self.merges = merges
        self.fraction = 0.0
        self.size = self.sizes[0]  # the size being trained now
        self._proc: subprocess.Popen[bytes] | None = None
        self._folder = ""
        self._buffer = b""
        self._trained: list[TrainedTokenizer] = []
        self._learned: list[LearnedMerge] = []
        self._error: UserError | None = None
        self._done = False
        self._started = 0.0

    # the child's life
    def __enter__(self) -> TrainingJob:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self._started if self._started else 0.0

    @classmethod
    def live_pids(cls) -> list[int]:
        """The children this module started that have not been stopped yet."""
        with cls._live_lock:
            return list(cls._live)

    def start(self) -> None:
        self._folder = tempfile.mkdtemp(prefix="llmviz-train-")
        request = Path(self._folder) / "request.json"
        request.write_text(
            json.dumps(
                {
                    "corpus": self.corpus,
                    "algorithm": self.algorithm,
                    "sizes": self.sizes,
                    "budget": self.budget,
                    "merges": self.merges,
                },
                ensure_ascii=False,
            ),
            encoding="utf-8",
        )
        with open(Path(self._folder) / "stderr.txt", "wb") as err:
            self._proc = subprocess.Popen(
                [sys.executable, "-c", _CHILD_CODE, str(config.ROOT), str(request)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=err,
            )
        self._started = time.monotonic()
        with self._live_lock:
            self._live[self._proc.pid] = self

    def stop(self) -> None:
        """Kill the child (if it still runs) and reap it; safe to call more than once."""
        proc, self._proc = self._proc, None
        if proc is not None:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()
            with self._live_lock:
                self._live.pop(proc.pid, None)
        if self._folder:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = ""

    # waiting for it
    def wait(self, timeout: float | None = None) -> bool:
        """Read the child's reports for up to ``timeout`` seconds (``None``: until it ends).

        True once every size is trained; False while it still runs. Raises ``UserError`` when
        the budget is spent or the training failed (the child is stopped either way).
        """
        if self._done:
            return True
        if self._proc is None:
            raise RuntimeError("TrainingJob.wait() before start()")
        until = time.monotonic() + (self.budget if timeout is None else timeout)
        try:
            while True:
                now = time.monotonic()
                if now - self._started >= self.budget:
                    raise self._timeout()
                if now >= until:
                    return False
                left = min(until, self._started + self.budget) - now
                ready, _, _ = select.select([self._proc.stdout], [], [], max(0.0, left))
                if ready and self._read():
                    return self._finish()
        except BaseException:
            self.stop()
            raise

    def _read(self) -> bool:
        """Take what the child wrote; True at the end of its output."""
        assert self._proc is not None and self._proc.stdout is not None
        chunk = os.read(self._proc.stdout.fileno(), 1 << 20)
        self._buffer += chunk
        *lines, self._buffer = self._buffer.split(b"\n")
        for line in lines:
            self._handle(json.loads(line))
        return not chunk

    def _handle(self, event: dict[str, Any]) -> None:
        kind = event.pop("event")
        if kind == "step":
            self.fraction, self.size = event["k"] / event["n"], event["size"]
        elif kind == "trained":
            self._trained.append(TrainedTokenizer(**event))
        elif kind == "merges":
            self._learned = [
                LearnedMerge(i, bytes.fromhex(a), bytes.fromhex(b), c)
                for i, (a, b, c) in enumerate(event["merges"])
            ]
        elif kind == "error":
            self._error = UserError(event["message"], key=event["key"], **event["params"])
        elif kind == "done":
            self.fraction = 1.0

    def _finish(self) -> bool:
        assert self._proc is not None
        code = self._proc.wait()
        if self._error is not None:
            raise self._error
        if code == -signal.SIGALRM:
            raise self._timeout()
        if code != 0 or self.fraction < 1.0:
            detail = (Path(self._folder) / "stderr.txt").read_text(errors="replace")[-2000:]
            log.warning("training child ended with code %s: %s", code, detail)
            raise UserError(
                f"The training process stopped unexpectedly (exit code {code}), perhaps out of "
                "memory. Try a shorter corpus or a smaller vocabulary size.",
                key="tok_train_crashed",
                code=code,
            )
        self._done = True
        self.stop()
        return True

    def _timeout(self) -> UserError:
        limit = f"{self.budget:g}"
        return UserError(
            f"Training took longer than {limit} s, the limit for one training on this server, "
            "and was stopped. Use a shorter corpus or a smaller vocabulary size.",
            key="tok_train_timeout",
            limit=limit,
        )

    # what it learned
    def results(self) -> list[TrainedTokenizer]:
        """One trained tokenizer per size (after ``wait`` returned True)."""
        if not self._done:
            raise RuntimeError("TrainingJob.results() before the training finished")
        return list(self._trained)

    def first_merges(self) -> list[LearnedMerge]:
        """The first ``merges`` merges of the largest BPE (``[]`` for the other algorithms)."""
        return list(self._learned)


def train(
    corpus: str, algorithm: str, vocab_size: Any, budget: float | None = None
) -> TrainedTokenizer:
    """Train one tokenizer on ``corpus`` (each non-empty line is one training sequence), in a
    child process stopped after ``budget`` seconds (``config.TOK_TRAIN_SECONDS``)."""
    size = check_vocab_size(algorithm, vocab_size)
    with TrainingJob(corpus, algorithm, [size], budget) as job:
        job.wait()
        return job.results()[0]


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

    words = bpe.word_counts(_pre_tokenizer("bpe"), _lines(corpus))
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


def sweep_points(trained: Sequence[TrainedTokenizer], sentence: str) -> list[SweepPoint]:
    """The token count of ``sentence`` for each trained size."""
    return [
        SweepPoint(
            t.requested_size,
            t.vocab_size,
            len(t.load().encode(sentence, add_special_tokens=False).ids),
            t,
        )
        for t in trained
    ]


def vocab_sweep(
    corpus: str,
    algorithm: str,
    sizes: Sequence[int],
    sentence: str,
    progress: Progress | None = None,
    budget: float | None = None,
) -> list[SweepPoint]:
    """Train at each size (one child, one budget for all) and count the tokens of ``sentence``.

    Unigram sizes below the corpus's character count are skipped (they cannot be trained).
    """
    with TrainingJob(corpus, algorithm, sizes, budget) as job:
        while not job.wait(0.25):
            if progress:
                progress(job.fraction, f"{algorithm} {job.size:,}")
        trained = job.results()
    if progress:
        progress(1.0, "done")
    return sweep_points(trained, sentence)


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
