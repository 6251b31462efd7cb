"""Property-based tests (hypothesis) for the pure core: what must hold for EVERY input, not just
the worked examples in each module's own tests.

* sampler filters (``llmviz.sampling``): top-k keeps exactly the k best (ties aside), top-p keeps
  the smallest most-likely set reaching p, min-p keeps exactly the tokens above its threshold,
  the stages nest, greedy is one-hot, a seeded draw repeats, validation never crashes;
* memory arithmetic (``llmviz.memory``): parameter counts parse back, components add up to the
  total, precisions order the bytes, the card count is the smallest that fits, the KV cache is
  linear in tokens and batch and capped by the sliding window;
* byte grouping (``llmviz.tokens``): pieces give back the exact UTF-8 bytes, groups are whole
  characters, labels never show U+FFFD, ``visible`` leaves no invisible character;
* educational BPE (``llmviz.bpe``): a merge can be undone, merge counts never increase, a replay
  of the learned merges gives the same counts, the vocabulary is dense;
* scaling (``llmviz.scaling``): the compute-optimal point spends the budget and beats every other
  split on the same iso-compute curve, loss falls with N and D, times and GPU-hours agree.

Modules not in the tree yet are skipped with ``pytest.importorskip``.
"""

from __future__ import annotations

import math
import unicodedata

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from llmviz.errors import UserError

FAST = settings(max_examples=100, deadline=None)
SLOWER = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

finite = st.floats(-30, 30, allow_nan=False, allow_infinity=False)
anything = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.lists(st.integers(), max_size=2),
)


# --- sampler filters -----------------------------------------------------------------------------
def _sampling():
    return pytest.importorskip("llmviz.sampling")


def _torch():
    return pytest.importorskip("torch")


logit_lists = st.lists(finite, min_size=1, max_size=40)


@FAST
@given(logit_lists, st.integers(0, 50))
def test_top_k_keeps_the_k_best_and_only_ties_beyond(xs, k):
    torch, s = _torch(), _sampling()
    scores = torch.tensor(xs)
    keep = s.top_k_keep(scores, k)
    if k == 0 or k >= len(xs):
        assert keep.all()
        return
    kept, dropped = scores[keep], scores[~keep]
    assert int(keep.sum()) >= k
    if len(dropped):
        assert kept.min() > dropped.max()  # strictly: ties at the border all survive
    # more than k survivors only when the k-th score is tied
    if int(keep.sum()) > k:
        kth = torch.topk(scores, k)[0][-1]
        assert int((scores == kth).sum()) > 1


@FAST
@given(logit_lists, st.floats(0.01, 0.999))
def test_top_p_nucleus_reaches_p_and_is_minimal(xs, p):
    torch, s = _torch(), _sampling()
    scores = torch.tensor(xs)
    probs = scores.softmax(-1).double()
    keep = s.top_p_keep(scores, p)
    assert keep.any()
    mass = float(probs[keep].sum())
    assert mass >= p - 1e-5
    # every kept token is at least as likely as every dropped one
    if (~keep).any():
        assert probs[keep].min() >= probs[~keep].max() - 1e-7
        # minimal: without its least likely member the nucleus no longer reaches p
        assert mass - float(probs[keep].min()) < p + 1e-5


@FAST
@given(logit_lists, st.floats(0.0, 1.0))
def test_min_p_keeps_exactly_the_tokens_above_the_threshold(xs, m):
    torch, s = _torch(), _sampling()
    scores = torch.tensor(xs)
    probs = scores.softmax(-1)
    keep = s.min_p_keep(scores, m)
    expected = probs >= m * probs.max()
    expected[int(torch.argmax(probs))] = True  # the favourite always survives
    assert torch.equal(keep, expected)


@FAST
@given(
    logit_lists,
    st.floats(0.05, 5.0),
    st.integers(0, 50),
    st.floats(0.01, 1.0),
    st.floats(0.0, 1.0),
)
def test_stages_nest_and_the_final_distribution_lives_on_the_survivors(xs, t, k, p, m):
    torch, s = _torch(), _sampling()
    settings_ = s.SamplingSettings(temperature=t, top_k=k, top_p=p, min_p=m)
    st_ = s.filter_scores(torch.tensor(xs), settings_)
    after_k = torch.isfinite(st_.after_top_k)
    after_p = torch.isfinite(st_.after_top_p)
    final = torch.isfinite(st_.final)
    assert final.any()
    assert not (after_p & ~after_k).any()
    assert not (final & ~after_p).any()
    step = s.sample_next(torch.tensor(xs), settings_, draw_token=False)
    assert math.isclose(float(step.final_probs.sum()), 1.0, rel_tol=1e-4)
    assert float(step.final_probs[~step.kept_min_p].sum()) == 0.0
    assert 0.0 <= step.survivor_mass <= 1.0 + 1e-6
    assert step.n_survivors == int(final.sum())
    assert 0.0 <= step.entropy_bits <= math.log2(len(xs)) + 1e-4


@FAST
@given(logit_lists)
def test_greedy_is_one_hot_on_the_argmax(xs):
    torch, s = _torch(), _sampling()
    scores = torch.tensor(xs)
    step = s.sample_next(scores, s.SamplingSettings(temperature=0))
    assert step.n_survivors == 1
    assert step.chosen == int(torch.argmax(scores))
    assert step.chosen_rank == 1


@FAST
@given(logit_lists, st.integers(0, 2**31 - 1), st.floats(0.3, 2.0))
def test_a_seeded_draw_repeats_and_picks_a_survivor(xs, seed, t):
    torch, s = _torch(), _sampling()
    cfg = s.SamplingSettings(temperature=t, top_k=5, top_p=0.9)
    a = s.sample_next(torch.tensor(xs), cfg, torch.Generator().manual_seed(seed))
    b = s.sample_next(torch.tensor(xs), cfg, torch.Generator().manual_seed(seed))
    assert a.chosen == b.chosen
    assert a.kept_min_p[a.chosen]
    assert 1 <= a.chosen_rank <= len(xs)


@FAST
@given(anything, anything, anything, anything)
def test_settings_validation_never_crashes(t, k, p, m):
    s = _sampling()
    try:
        cfg = s.SamplingSettings(temperature=t, top_k=k, top_p=p, min_p=m)
    except UserError as err:
        assert err.args and str(err)  # a message to show
        return
    assert cfg.temperature == 0 or 0.01 <= cfg.temperature <= 5.0
    assert isinstance(cfg.top_k, int) and cfg.top_k >= 0
    assert 0 < cfg.top_p <= 1 and 0 <= cfg.min_p <= 1


@FAST
@given(st.integers(1, 4096))
def test_uniform_entropy_is_log2_n(n):
    np = pytest.importorskip("numpy")
    s = _sampling()
    assert math.isclose(s.entropy_bits(np.full(n, 1.0 / n)), math.log2(n), abs_tol=1e-9)


# --- memory arithmetic ---------------------------------------------------------------------------
def _memory():
    return pytest.importorskip("llmviz.memory")


@FAST
@given(st.integers(1, 10**13))
def test_param_counts_parse_back(n):
    mem = _memory()
    assert mem.parse_param_count(str(n)) == n
    assert mem.parse_param_count(n) == n
    assert mem.parse_param_count(f"{n:,}") == n
    # a suffix form is the same number (written to the last digit)
    assert math.isclose(mem.parse_param_count(f"{n / 1e9:.9f}B"), n, rel_tol=1e-9, abs_tol=1)


@FAST
@given(st.one_of(st.text(max_size=30), anything))
def test_param_count_parsing_never_crashes(value):
    mem = _memory()
    try:
        n = mem.parse_param_count(value)
    except UserError:
        return
    assert isinstance(n, int) and 1 <= n <= 1e13


architectures = st.builds(
    dict,
    vocab_size=st.integers(2, 300_000),
    hidden_size=st.sampled_from([64, 128, 576, 640, 896, 2048, 4096]),
    num_layers=st.integers(1, 80),
    heads=st.sampled_from([1, 2, 4, 8, 16, 32]),
    kv_div=st.sampled_from([1, 2, 4, 8]),
    head_dim=st.sampled_from([32, 64, 128, 256]),
    intermediate_size=st.integers(64, 30_000),
    tied=st.booleans(),
    gated=st.booleans(),
    bias=st.booleans(),
)


def _arch(d, **extra):
    mem = _memory()
    kv = max(1, d["heads"] // d["kv_div"])
    return mem.Architecture(
        vocab_size=d["vocab_size"],
        hidden_size=d["hidden_size"],
        num_layers=d["num_layers"],
        num_heads=d["heads"],
        num_kv_heads=kv,
        head_dim=d["head_dim"],
        intermediate_size=d["intermediate_size"],
        tied_embeddings=d["tied"],
        gated_mlp=d["gated"],
        attention_bias=d["bias"],
        **extra,
    )


@FAST
@given(architectures)
def test_components_add_up_and_float_bytes_are_params_times_width(d):
    mem = _memory()
    b = mem.analytic_breakdown(_arch(d))
    for prec, width in (("fp32", 4), ("fp16", 2), ("bf16", 2)):
        parts = mem.predict_weights(b, prec)
        assert sum(c.params for c in parts) == b.total
        assert sum(c.bytes for c in parts) == b.total * width + 4 * b.buffers


@FAST
@given(architectures)
def test_untying_adds_exactly_one_embedding_matrix(d):
    mem = _memory()
    tied = mem.analytic_breakdown(_arch({**d, "tied": True}))
    untied = mem.analytic_breakdown(_arch({**d, "tied": False}))
    assert untied.total - tied.total == d["vocab_size"] * d["hidden_size"]


@FAST
@given(architectures)
def test_fewer_bits_never_cost_more_bytes(d):
    mem = _memory()
    b = mem.analytic_breakdown(_arch(d))

    def total(prec, rest="fp16"):
        return sum(c.bytes for c in mem.predict_weights(b, prec, rest))

    assert total("fp32") >= total("fp16") >= total("int8") >= total("nf4")
    # double quant shrinks the absmax constants, once a layer has enough blocks to pay for its
    # fixed 1 KB second-level code table (~350 blocks of 64 weights)
    if all(g.out_features * g.in_features >= 64 * 512 for g in b.linear):
        assert total("nf4") >= total("nf4-dq")
    assert total("q8_0") >= total("q4_0") >= total("q2_k")


@FAST
@given(
    architectures,
    st.integers(1, 200_000),
    st.integers(1, 64),
    st.sampled_from(["fp16", "bf16", "fp32", "fp8"]),
)
def test_kv_cache_is_the_formula_and_linear_in_tokens_and_batch(d, ctx, batch, dtype):
    mem = _memory()
    arch = _arch(d)
    got = mem.kv_cache_bytes(arch, ctx, batch, dtype)
    width = mem.DTYPE_BYTES[dtype]
    assert got == 2 * arch.num_layers * arch.num_kv_heads * arch.head_dim * ctx * batch * width
    assert mem.kv_cache_bytes(arch, ctx, 1, dtype) * batch == got


@FAST
@given(architectures, st.integers(16, 4096), st.integers(1, 20), st.integers(1, 100_000))
def test_sliding_window_caps_only_the_sliding_layers(d, window, sliding, ctx):
    mem = _memory()
    sliding = min(sliding, d["num_layers"])
    arch = _arch(d, sliding_window=window, sliding_layers=sliding)
    full = _arch(d)
    got = mem.kv_cache_bytes(arch, ctx, 1)
    assert got <= mem.kv_cache_bytes(full, ctx, 1)
    per_token_layer = 2 * arch.num_kv_heads * arch.head_dim * 2
    expected = per_token_layer * ((arch.num_layers - sliding) * ctx + sliding * min(ctx, window))
    assert got == expected


@FAST
@given(st.floats(0, 5e12), st.sampled_from([8, 16, 24, 48, 80, 141]), st.floats(0, 2e9))
def test_card_count_is_the_smallest_that_fits(model_bytes, card_gb, overhead):
    mem = _memory()
    usable = card_gb * mem.GB - overhead
    n = mem.cards_needed(model_bytes, card_gb, overhead)
    if model_bytes <= 0:
        assert n == 0
        return
    assert n * usable >= model_bytes * (1 - 1e-9)
    assert (n - 1) * usable < model_bytes


@FAST
@given(anything, anything)
def test_context_and_batch_validation_never_crashes(ctx, batch):
    mem = _memory()
    try:
        c, b = mem.check_context_batch(ctx, batch)
    except UserError:
        return
    assert isinstance(c, int) and isinstance(b, int) and c >= 1 and b >= 1


@FAST
@given(architectures, st.sampled_from(["fp16", "int8", "nf4", "q4_k_m"]), st.integers(1, 32_768))
def test_estimate_totals_and_gpu_fit_are_consistent(d, prec, ctx):
    mem = _memory()
    arch = _arch(d)
    est = mem.estimate(prec, breakdown=mem.analytic_breakdown(arch), arch=arch, context=ctx)
    assert math.isclose(est.total_bytes, sum(c.bytes for c in est.components))
    assert est.weights_bytes <= est.model_bytes <= est.total_bytes
    fits = mem.gpu_fit(est)
    cards = [f.cards for f in fits if f.cards]
    assert cards == sorted(cards, reverse=True)  # bigger cards: never more of them
    for f in fits:
        assert f.fits_one == (f.cards == 1 or (f.cards == 0 and est.model_bytes == 0))


# --- byte grouping -------------------------------------------------------------------------------
def _tokens():
    return pytest.importorskip("llmviz.tokens")


valid_text = st.text(
    st.characters(exclude_categories=("Cs",), codec="utf-8"), min_size=0, max_size=40
)
mixed_text = st.text(
    alphabet=st.sampled_from(
        list("ab cdé\n\t猫犬こんにちはカタカナ한국어😀👩\u200d👩\u200d👧🇯🇵\u0301\u200f")
    ),
    max_size=30,
)


def test_byte_table_is_a_bijection_onto_printable_characters():
    tok = _tokens()
    table = tok.bytes_to_unicode()
    assert sorted(table) == list(range(256))
    assert len(set(table.values())) == 256
    assert all(ch.isprintable() and not ch.isspace() for ch in table.values())


def _pieces_with_exact_bytes(tokenizer, text):
    """Encode ``text``, cut it into pieces, and check the pieces' bytes are exactly its UTF-8."""
    ids = tokenizer.encode(text, add_special_tokens=False)
    pieces = _tokens().token_pieces(tokenizer, ids)
    assert b"".join(p.raw for p in pieces) == text.encode("utf-8")
    return ids, pieces


@SLOWER
@given(st.one_of(valid_text, mixed_text))
def test_pieces_give_back_the_exact_bytes_in_whole_character_groups(tiny_tokenizer, text):
    tok = _tokens()
    ids, pieces = _pieces_with_exact_bytes(tiny_tokenizer, text)
    groups = [p.group for p in pieces]
    assert groups == sorted(groups)
    assert all(b - a in (0, 1) for a, b in zip(groups, groups[1:], strict=False))
    by_group: dict[int, list] = {}
    for p in pieces:
        by_group.setdefault(p.group, []).append(p)
    for members in by_group.values():
        whole = b"".join(p.raw for p in members)
        whole.decode("utf-8")  # a group is always complete characters
        assert all(p.partial for p in members) == (len(members) > 1) or len(members) == 1
    labels = tok.labels_of(pieces)
    assert len(labels) == len(ids)
    assert not any("\ufffd" in label for label in labels)


@pytest.fixture(scope="module")
def gemma_tokenizer():
    from llmviz.models import load_tokenizer

    return load_tokenizer("gemma-3-270m")


@pytest.mark.slow
@SLOWER
@given(st.one_of(valid_text, mixed_text))
def test_sentencepiece_pieces_give_back_the_exact_bytes(gemma_tokenizer, text):
    """Gemma's tokenizer takes the other path (``▁`` spaces, ``<0xNN>`` byte fallback)."""
    tok = _tokens()
    _, pieces = _pieces_with_exact_bytes(gemma_tokenizer, text)
    for group in {p.group for p in pieces}:
        b"".join(p.raw for p in pieces if p.group == group).decode("utf-8")
    assert not any("\ufffd" in label for label in tok.labels_of(pieces))


@SLOWER
@given(st.lists(st.integers(0, 399), max_size=25))
def test_any_id_sequence_gets_labels_without_replacement_chars(tiny_tokenizer, ids):
    tok = _tokens()
    ids = [i for i in ids if i < len(tiny_tokenizer)]
    labels = tok.token_labels(tiny_tokenizer, ids)
    assert len(labels) == len(ids)
    assert not any("\ufffd" in label for label in labels)
    assert all(label for label in labels)


@FAST
@given(st.text(max_size=40))
def test_visible_leaves_nothing_invisible_and_is_idempotent(text):
    tok = _tokens()
    out = tok.visible(text)
    assert tok.visible(out) == out
    for ch in out:
        cat = unicodedata.category(ch)
        assert cat not in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp", "Zs"), (text, out, ch)


# --- educational BPE -----------------------------------------------------------------------------
def _bpe():
    return pytest.importorskip("llmviz.bpe")


small_words = st.lists(st.integers(0, 4), max_size=20)


@FAST
@given(small_words, st.integers(0, 4), st.integers(0, 4))
def test_a_merge_can_be_undone_and_removes_the_pair(word, a, b):
    bpe = _bpe()
    merged = bpe.merge_word(word, (a, b), 99)
    undone = [x for t in merged for x in ((a, b) if t == 99 else (t,))]
    assert undone == word
    assert len(merged) == len(word) - merged.count(99)
    if a != b:  # with a == b an odd run leaves one behind: "a a a" -> "aa a"
        assert all((x, y) != (a, b) for x, y in zip(merged, merged[1:], strict=False))


@FAST
@given(st.lists(small_words, max_size=6), st.data())
def test_pair_counts_weigh_every_neighbour_once(words, data):
    bpe = _bpe()
    counts = [data.draw(st.integers(1, 9)) for _ in words]
    pc = bpe.pair_counts(words, counts)
    assert sum(pc.values()) == sum(
        n * max(len(w) - 1, 0) for w, n in zip(words, counts, strict=True)
    )


word_counts = st.dictionaries(
    st.text(alphabet="abcdeねこ猫", min_size=1, max_size=8), st.integers(1, 20), max_size=12
)


@FAST
@given(word_counts, st.integers(1, 60))
def test_training_counts_never_increase_and_replay_agrees(wc, extra):
    bpe = _bpe()
    alphabet = {c for w in wc for c in w}
    result = bpe.train(wc, len(alphabet) + extra)
    counts = [m.count for m in result.merges]
    assert counts == sorted(counts, reverse=True)
    assert all(c >= 1 for c in counts)
    merges = [(m.left, m.right) for m in result.merges]
    assert bpe.replay(wc, merges) == counts
    # ids are dense, merges create them in order, each token is its two parts
    assert sorted(result.vocab.values()) == list(range(len(result.vocab)))
    for m in result.merges:
        assert m.token == m.left + m.right and result.vocab[m.token] == m.new_id
    assert len(result.vocab) <= max(len(alphabet) + extra, len(alphabet))


# --- scaling -------------------------------------------------------------------------------------
def _scaling():
    return pytest.importorskip("llmviz.scaling")


budgets = st.floats(1e18, 1e27)


@FAST
@given(budgets)
def test_compute_optimal_point_spends_the_budget(c):
    sc = _scaling()
    opt = sc.compute_optimal(c)
    assert math.isclose(6 * opt.n_params * opt.n_tokens, c, rel_tol=1e-9)
    assert opt.loss > sc.CHINCHILLA.L0


@FAST
@given(budgets, st.floats(-2.5, 2.5))
def test_compute_optimal_beats_every_other_split_of_the_budget(c, log_shift):
    sc = _scaling()
    assume(abs(log_shift) > 1e-3)
    opt = sc.compute_optimal(c)
    n = opt.n_params * 10**log_shift
    assert sc.loss(n, c / (6 * n)) > opt.loss


@FAST
@given(st.floats(1e6, 1e13), st.floats(1e8, 1e15), st.floats(1.01, 100))
def test_loss_falls_with_more_parameters_or_data(n, d, factor):
    sc = _scaling()
    base = sc.loss(n, d)
    assert sc.loss(n * factor, d) < base
    assert sc.loss(n, d * factor) < base
    a, b, l0 = sc.loss_terms(n, d)
    assert math.isclose(a + b + l0, base, rel_tol=1e-12)


@FAST
@given(
    st.floats(1e18, 1e28),
    st.sampled_from(["v100", "a100", "h100", "rtx4090"]),
    st.integers(1, 100_000),
    st.floats(0.01, 1.0),
)
def test_training_time_and_gpu_hours_agree(c, gpu, n, u):
    sc = _scaling()
    tt = sc.training_time(c, gpu, n, u)
    assert math.isclose(tt.seconds * tt.cluster_flops, c, rel_tol=1e-9)
    assert math.isclose(tt.gpu_hours, tt.seconds * n / 3600, rel_tol=1e-12)
    assert math.isclose(tt.days * 86_400, tt.seconds, rel_tol=1e-12)


@FAST
@given(anything, anything)
def test_scaling_validation_never_crashes(n, d):
    sc = _scaling()
    try:
        flops = sc.training_flops(n, d)
    except UserError:
        return
    assert math.isfinite(flops) and flops >= 6


@FAST
@given(st.floats(1e6, 1e13), st.sampled_from(["v100", "a100", "h100", "rtx4090"]))
def test_single_stream_inference_is_memory_bound(n, gpu):
    sc = _scaling()
    compute, memory = sc.inference_tokens_per_second(n, gpu)
    spec = sc.GPUS[gpu]
    assert math.isclose(memory, spec.bandwidth / (2 * n), rel_tol=1e-12)
    assert memory < compute  # batch 1: reading the weights is the bottleneck
