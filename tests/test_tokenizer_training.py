"""Training with the library (llmviz.tokenizer_training): the three algorithms, limits, uploads,
and the child process every training runs in (its time budget, and nothing left running)."""

from __future__ import annotations

import random
import time

import psutil
import pytest

from llmviz import bpe, config
from llmviz import tokenizer_training as tt
from llmviz.errors import UserError
from llmviz.tokens import token_labels, token_pieces

SENTENCE = "今日は天気がいいので、公園を散歩しましょう。 The tokenizer learns pieces."


@pytest.fixture(scope="module")
def corpus():
    return tt.builtin_corpus()


@pytest.mark.parametrize("algorithm", tt.ALGORITHMS)
def test_each_algorithm_trains_and_tokenizes(corpus, algorithm):
    trained = tt.train(corpus, algorithm, 1000)
    assert trained.vocab_size <= 1000 and trained.vocab_size > 300
    adapter = tt.TrainedAdapter(trained)
    ids = adapter.encode(SENTENCE)
    assert ids and all(0 <= i < adapter.vocab_size for i in ids)
    labels = token_labels(adapter, ids)
    assert all("\ufffd" not in label for label in labels)
    if algorithm != "wordpiece":  # WordPiece (BERT) does not keep spaces: not lossless
        assert adapter.decode(ids) == SENTENCE
        # SentencePiece-style Unigram adds a "dummy prefix" space (▁) that the decoder removes
        prefix = " " if algorithm == "unigram" else ""
        raw = b"".join(p.raw for p in token_pieces(adapter, ids))
        assert raw == (prefix + SENTENCE).encode()


def test_byte_level_bpe_splits_rare_kanji_into_grouped_bytes(corpus):
    adapter = tt.TrainedAdapter(tt.train(corpus, "bpe", 300))
    pieces = token_pieces(adapter, adapter.encode("鬱"))  # not in the corpus: 3 raw bytes
    assert [p.raw for p in pieces] == [b"\xe9", b"\xac", b"\xb1"]
    assert {p.group for p in pieces} == {0} and all(p.partial and p.text == "鬱" for p in pieces)


def test_first_merges_are_the_library_merges_with_their_counts(corpus):
    trained = tt.train(corpus, "bpe", 400)
    learned = tt.first_merges(trained, corpus, 20)
    assert len(learned) == 20
    lib = tt.merges_of(trained)[:20]
    from llmviz.tokens import bytes_to_unicode

    table = bytes_to_unicode()
    assert [
        ("".join(table[b] for b in m.left), "".join(table[b] for b in m.right)) for m in learned
    ] == lib
    counts = [m.count for m in learned]
    assert counts[0] == max(counts) and all(c > 0 for c in counts)
    # the hand-written BPE on the same words agrees on the counts too
    lines = [line for line in corpus.splitlines() if line.strip()]
    from tokenizers import pre_tokenizers

    mine = bpe.train(
        bpe.word_counts(pre_tokenizers.ByteLevel(add_prefix_space=False), lines), 257 + 20,
        ["<unk>"], pre_tokenizers.ByteLevel.alphabet(),
    )  # fmt: skip
    assert [m.count for m in mine.merges] == counts


def test_unigram_and_wordpiece_have_no_merge_table(corpus):
    assert tt.first_merges(tt.train(corpus, "unigram", 1200), corpus) == []


def test_sweep_bigger_vocabulary_fewer_tokens(corpus):
    seen = []
    points = tt.vocab_sweep(corpus, "bpe", [300, 1000, 2000], SENTENCE, lambda f, m: seen.append(f))
    counts = [p.n_tokens for p in points]
    assert counts == sorted(counts, reverse=True) and counts[0] > counts[-1]
    assert [p.requested_size for p in points] == [300, 1000, 2000]
    assert seen[-1] == 1.0


def test_unigram_sweep_skips_sizes_below_the_alphabet(corpus):
    low = tt.min_unigram_size(corpus)
    points = tt.vocab_sweep(corpus, "unigram", [300, low + 100], SENTENCE)
    assert [p.requested_size for p in points] == [low + 100]
    with pytest.raises(UserError, match="different characters"):
        tt.train(corpus, "unigram", 300)


def test_step_by_step_shows_runners_up():
    r = tt.step_by_step("low low low lower newest newest widest", 5)
    assert [m.token for m in r.merges[:2]] == ["lo", "low"]
    assert r.merges[0].runners_up[0] == ("o", "w", 4)


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (("", "bpe", 1000), "corpus is empty"),
        (("   \n ", "bpe", 1000), "corpus is empty"),
        (("x" * (config.MAX_CORPUS_CHARS + 1), "bpe", 1000), "limit"),
        (("abc", "bpe", 100), "between"),
        (("abc", "bpe", config.MAX_VOCAB_SIZE + 1), "between"),
        (("abc", "bpe", "many"), "between"),
        (("abc", "bpe", 1000.5), "between"),
        (("abc", "bpe", float("nan")), "between"),
        (("abc", "sentencepiece", 1000), "Unknown algorithm"),
        (("abc", None, 1000), "Unknown algorithm"),
        (("a\ud800b", "bpe", 1000), "surrogate"),
    ],
)
def test_bad_training_input(args, match):
    with pytest.raises(UserError, match=match):
        tt.train(*args)


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"", "empty"),
        (b"   \n", "empty"),
        (b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4, "not UTF-8"),
        (b"text\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00 with NULs", "not UTF-8"),
        (b"x" * (config.TOK_MAX_UPLOAD_BYTES + 1), "limit"),
        ("caf\u00e9".encode("latin-1") * 50, "not UTF-8"),
    ],
)
def test_bad_uploads(data, match):
    with pytest.raises(UserError, match=match):
        tt.read_upload(data)


def test_a_lone_surrogate_in_pasted_text_is_not_called_an_upload():
    with pytest.raises(UserError) as err:
        tt.read_corpus("pasted text \ud83d with half an emoji")
    assert err.value.key == "text_surrogate" and "U+D83D" in err.value.message
    with pytest.raises(UserError) as err:  # only a real upload gets the upload message
        tt.read_upload(b"\xed\xa0\xbd surrogate bytes are not UTF-8")
    assert err.value.key == "tok_corpus_binary"


@pytest.mark.parametrize(
    ("size", "shown"),
    [
        (9_100_000, "The uploaded file is 9.1 MB; the limit is 8.0 MB."),
        (8_000_001, "The uploaded file is 8.000001 MB; the limit is 8.000000 MB."),
        (80_000_000, "The uploaded file is 80.0 MB; the limit is 8.0 MB."),
    ],
)
def test_upload_size_message_shows_two_different_sizes(tmp_path, size, shown):
    assert config.TOK_MAX_UPLOAD_BYTES == 8_000_000
    path = tmp_path / "big.txt"
    with open(path, "wb") as f:
        f.truncate(size)  # sparse: the size is checked before a byte is read
    with pytest.raises(UserError) as err:
        tt.read_upload_file(path)
    assert err.value.message == shown and err.value.key == "tok_upload_too_big"
    assert err.value.params["mb"] != err.value.params["limit"]


def test_good_upload_file(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_bytes("猫がいる\n".encode())
    assert tt.read_upload_file(path) == "猫がいる\n"


def test_good_upload_with_bom():
    assert tt.read_upload("\ufeff日本語のテキスト\n".encode()) == "日本語のテキスト\n"


def test_step_by_step_limit():
    with pytest.raises(UserError, match="at most"):
        tt.step_by_step("a" * (config.TOK_STEP_MAX_CHARS + 1), 5)


@pytest.mark.parametrize(
    ("merges", "ok"),
    [(1, True), (12.0, True), (0, False), (12.5, False), (201, False), ("x", False)],
)
def test_step_merges_must_be_a_whole_number_in_range(merges, ok):
    if ok:
        assert len(tt.step_by_step("low low lower lowest newest", merges).merges) <= int(merges)
    else:
        with pytest.raises(UserError, match="whole number from 1 to 200"):
            tt.step_by_step("low low lower", merges)


# --- the child process and its bounds ----------------------------------------------------------
def _gone(pid, within=10.0):
    """True once ``pid`` (a child this test's code started) has exited and been reaped."""
    end = time.monotonic() + within
    while time.monotonic() < end:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return False  # exited but never reaped: a leak of its own kind
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.05)
    return False


def _slow_corpus():
    """~1 MB of random letters in 2,000-character words: under the word cap, but training it to
    32,000 tokens took 11 s here, far longer than the budgets below."""
    rng = random.Random(0)  # a local generator: nothing seeded globally
    letters = "abcdefghijklmnopqrstuvwxyz"
    return "\n".join(
        " ".join("".join(rng.choices(letters, k=2000)) for _ in range(2)) for _ in range(250)
    )


@pytest.mark.parametrize("algorithm", tt.ALGORITHMS)
def test_training_in_the_child_gives_the_same_tokenizer_as_in_process(corpus, algorithm):
    with tt.TrainingJob(corpus, algorithm, [1200]) as job:
        assert job.pid is not None and job.pid in tt.TrainingJob.live_pids()
        pid = job.pid
        assert job.wait() is True
        child = job.results()[0]
    tok, trainer = tt._fresh(algorithm, 1200)  # the library, here, exactly as before the child
    tok.train_from_iterator(tt._lines(corpus), trainer)
    mine, here = child.load().get_vocab(), tok.get_vocab()
    assert child.vocab_size == tok.get_vocab_size() and child.name.endswith(" 1200")
    if algorithm == "bpe":  # deterministic: the very same tokenizer, merges and ids
        assert child.json == tok.to_str()
    elif algorithm == "unigram":  # the same pieces; the library numbers them differently each run
        assert set(mine) == set(here)
    else:  # WordPiece breaks ties differently each run, even in one process (34-42 of 1,200
        # tokens differed between two runs here), so only nearly the same tokens
        assert len(set(mine) ^ set(here)) < 0.1 * len(here)
    assert _gone(pid) and pid not in tt.TrainingJob.live_pids()


def test_the_child_also_reports_the_first_merges(corpus):
    with tt.TrainingJob(corpus, "bpe", [300, 500], merges=10) as job:
        job.wait()
    learned = job.first_merges()
    assert learned == tt.first_merges(job.results()[-1], corpus, 10)
    assert [t.requested_size for t in job.results()] == [300, 500]


@pytest.mark.parametrize("algorithm", tt.ALGORITHMS)
def test_a_giant_word_is_refused_quickly_naming_the_limit(algorithm):
    start = time.monotonic()
    with pytest.raises(UserError) as err:
        tt.train("x" * 1_000_000, algorithm, 1000)
    assert time.monotonic() - start < 10
    assert err.value.key == "tok_word_too_long"
    assert (
        "1,000,000 characters" in err.value.message and "the limit is 10,000" in err.value.message
    )
    assert tt.TrainingJob.live_pids() == []


def test_word_cap_counts_characters_per_piece():
    limit = config.TOK_MAX_WORD_CHARS
    tt.check_words("猫" * limit, "bpe")  # characters, not UTF-8 bytes (3 per kanji)
    tt.check_words(" ".join(["word"] * 100_000), "unigram")  # a long line of short words
    for algorithm in tt.ALGORITHMS:
        with pytest.raises(UserError, match="no space or line break"):
            tt.check_words("ok\n" + "a" * (limit + 1), algorithm)


def test_the_budget_kills_a_long_training_and_says_so():
    start = time.monotonic()
    with pytest.raises(UserError) as err:
        with tt.TrainingJob(_slow_corpus(), "bpe", [32_000], budget=1.5) as job:
            pid = job.pid
            job.wait()
    assert err.value.key == "tok_train_timeout" and "1.5 s" in err.value.message
    assert time.monotonic() - start < 8
    assert _gone(pid, within=2) and tt.TrainingJob.live_pids() == []


def test_leaving_the_block_early_kills_the_child():
    """What a Stop does: the UI's generator is closed while it waits, and the ``with`` ends."""

    def waiting():
        with tt.TrainingJob(_slow_corpus(), "bpe", [32_000]) as job:
            while not job.wait(0.2):
                yield job.pid

    steps = waiting()
    pid = next(steps)
    assert psutil.Process(pid).is_running()
    closed = time.monotonic()
    steps.close()
    assert _gone(pid, within=10) and time.monotonic() - closed < 10
    assert tt.TrainingJob.live_pids() == []
