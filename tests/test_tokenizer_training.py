"""Training with the library (llmviz.tokenizer_training): the three algorithms, limits, uploads."""

from __future__ import annotations

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
