"""llmviz.inside: the logit lens reads every layer with the model's own norm and head (its last
row is the model's output), embedding neighbours and analogies are true cosine searches, the 2-D
map recovers known structure, and the KV formula equals the bytes a real cache holds."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from llmviz import config, inside
from llmviz.errors import UserError


def _output(model, ids):
    with torch.inference_mode():
        return model(input_ids=torch.tensor([ids]), use_cache=False).logits[0].float()


def _randomised_norm(model):
    """A copy whose final norm weight is not the identity, so a lens that skipped the norm or
    used the wrong formula (Gemma: 1 + weight) would not match."""
    model = copy.deepcopy(model)
    with torch.no_grad():
        g = torch.Generator().manual_seed(3)
        w = model.model.norm.weight
        w.copy_(torch.randn(w.shape, generator=g) * 0.5 + (0.0 if "Gemma" in type(model).__name__ else 1.0))
    return model


def _check_last_row_is_the_output(model, tokenizer, ids):
    lens = inside.logit_lens(model, tokenizer, ids)
    logits = _output(model, ids)
    probs = torch.softmax(logits, dim=-1)
    top_p, top_i = torch.topk(probs, inside.TOP_K, dim=-1)
    np.testing.assert_array_equal(lens.top_ids[-1], top_i.numpy())
    np.testing.assert_allclose(lens.top_probs[-1], top_p.numpy(), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(lens.log_z[-1], torch.logsumexp(logits, -1).numpy(), rtol=1e-4, atol=1e-4)
    return lens


@pytest.mark.parametrize("name", ["tiny_llama", "tiny_gemma3"])
def test_the_last_lens_row_is_the_models_output_and_inner_rows_use_its_norm(request, tiny_tokenizer, name):
    model = _randomised_norm(request.getfixturevalue(name))
    ids = tiny_tokenizer("吾輩は猫である。The cat")["input_ids"]
    lens = _check_last_row_is_the_output(model, tiny_tokenizer, ids)
    assert lens.top_ids.shape == (model.config.num_hidden_layers + 1, len(ids), inside.TOP_K)
    assert np.all(np.diff(lens.top_probs, axis=-1) <= 1e-7)  # most likely first
    # an inner row: the state after layer 1, read with the model's own norm and head
    with torch.inference_mode():
        hidden = model(input_ids=torch.tensor([ids]), output_hidden_states=True).hidden_states
        want = torch.softmax(model.lm_head(model.model.norm(hidden[1][0])).float(), dim=-1)
    np.testing.assert_allclose(lens.top_probs[1], torch.topk(want, inside.TOP_K).values.numpy(), rtol=1e-4, atol=1e-6)
    assert len(lens.top_labels) == lens.n_layers + 1 and len(lens.labels) == len(ids)


def test_soft_capping_is_applied_when_the_config_has_it(tiny_gemma3, tiny_tokenizer):
    model = copy.deepcopy(tiny_gemma3)
    model.config.final_logit_softcapping = 0.5  # small: changes every distribution visibly
    _check_last_row_is_the_output(model, tiny_tokenizer, tiny_tokenizer("hello world")["input_ids"])


def test_the_target_curve_is_the_tokens_probability_and_rank_in_each_row(tiny_llama, tiny_tokenizer):
    ids = tiny_tokenizer("The cat sat on the")["input_ids"]
    lens = inside.logit_lens(tiny_llama, tiny_tokenizer, ids)
    pos = len(ids) - 1
    top = int(lens.top_ids[-1, pos, 0])
    curve = inside.target_curve(tiny_llama, tiny_tokenizer, lens, top, pos)
    assert curve.ranks[-1] == 1
    np.testing.assert_allclose(curve.probs[-1], lens.top_probs[-1, pos, 0], rtol=1e-4)
    probs = torch.softmax(_output(tiny_llama, ids)[pos], -1)
    other = int(torch.argsort(probs, descending=True)[7])
    curve = inside.target_curve(tiny_llama, tiny_tokenizer, lens, other, pos)
    assert curve.ranks[-1] == 8
    np.testing.assert_allclose(curve.probs[-1], float(probs[other]), rtol=1e-4)
    for row in range(lens.n_layers + 1):  # a top-1 cell has rank 1 in its own row
        t = int(lens.top_ids[row, pos, 0])
        assert inside.target_curve(tiny_llama, tiny_tokenizer, lens, t, pos).ranks[row] == 1
    with pytest.raises(UserError) as err:
        inside.target_curve(tiny_llama, tiny_tokenizer, lens, top, len(ids))
    assert err.value.key == "inside_position"


def test_first_layer_with_is_where_the_answer_appears_and_stays(tiny_llama, tiny_tokenizer):
    ids = tiny_tokenizer("The cat sat")["input_ids"]
    lens = inside.logit_lens(tiny_llama, tiny_tokenizer, ids)
    pos = len(ids) - 1
    final = int(lens.top_ids[-1, pos, 0])
    first = lens.first_layer_with(pos, final)
    assert first is not None
    assert all(int(lens.top_ids[r, pos, 0]) == final for r in range(first, lens.n_layers + 1))
    assert first == 0 or int(lens.top_ids[first - 1, pos, 0]) != final
    assert lens.first_layer_with(pos, -1) is None


def test_prompt_and_target_input_is_checked(tiny_tokenizer):
    for bad, key in [("", "inside_prompt_empty"), ("   ", "inside_prompt_empty"), (None, "inside_prompt_empty"),
                     ("猫 " * 2000, "inside_prompt_long_chars"), ("猫 " * 100, "inside_prompt_long")]:  # fmt: skip
        with pytest.raises(UserError) as err:
            inside.encode_prompt(tiny_tokenizer, bad)
        assert err.value.key == key
    assert inside.target_token(tiny_tokenizer, "cat")[1] >= 1
    first, pieces = inside.target_token(tiny_tokenizer, "吾輩は猫である")
    assert pieces > 1 and first == tiny_tokenizer("吾輩は猫である", add_special_tokens=False)["input_ids"][0]
    for bad in ["", " ", None, "x" * 41]:
        with pytest.raises(UserError):
            inside.target_token(tiny_tokenizer, bad)


# --- embeddings --------------------------------------------------------------------------------
def test_neighbours_find_the_token_itself_at_similarity_one_sorted(tiny_llama, tiny_tokenizer):
    word = inside.encode_word(tiny_tokenizer, "The")
    assert word.pieces == 1
    found = inside.neighbours(tiny_llama, tiny_tokenizer, word, k=10)
    assert found[0].token_id == word.ids[0]
    assert found[0].similarity == pytest.approx(1.0, abs=1e-5)
    sims = [n.similarity for n in found]
    assert sims == sorted(sims, reverse=True) and len(found) == 10
    specials = {tiny_tokenizer.bos_token_id, tiny_tokenizer.eos_token_id, tiny_tokenizer.pad_token_id}
    assert not specials & {n.token_id for n in found}
    weight = tiny_llama.get_input_embeddings().weight.detach()
    for n in found:  # each similarity is the cosine of the two rows
        want = torch.nn.functional.cosine_similarity(weight[n.token_id], weight[word.ids[0]], dim=0)
        assert n.similarity == pytest.approx(float(want), abs=1e-5)


def test_a_word_of_several_tokens_is_the_mean_of_its_pieces(tiny_llama, tiny_tokenizer):
    word = inside.encode_word(tiny_tokenizer, "吾輩は猫")
    assert word.pieces > 1 and len(word.labels) == word.pieces
    weight = tiny_llama.get_input_embeddings().weight.detach()
    np.testing.assert_allclose(inside.word_vector(tiny_llama, word), weight[list(word.ids)].mean(0).numpy(), rtol=1e-6)
    for bad in ["", "  ", None, "x" * 41]:
        with pytest.raises(UserError):
            inside.encode_word(tiny_tokenizer, bad)
    with pytest.raises(UserError) as err:
        inside.encode_word(tiny_tokenizer, "吾輩は猫である名前はまだ無い")
    assert err.value.key == "inside_word_tokens"


def test_an_analogy_built_into_the_matrix_is_found_and_ranked_first(tiny_llama, tiny_tokenizer):
    model = copy.deepcopy(tiny_llama)
    a, b, c, d = (inside.encode_word(tiny_tokenizer, w) for w in ["The", "Large", "was", "x"])
    assert all(w.pieces == 1 for w in (a, b, c, d))
    with torch.no_grad():
        e = model.get_input_embeddings().weight
        e[d.ids[0]] = e[a.ids[0]] - e[b.ids[0]] + e[c.ids[0]]
    result = inside.analogy(model, tiny_tokenizer, a, b, c, expected=d)
    assert result.found[0].token_id == d.ids[0]
    assert result.found[0].similarity == pytest.approx(1.0, abs=1e-5)
    assert result.expected_rank == 1
    assert {a.ids[0], b.ids[0], c.ids[0]}.isdisjoint(n.token_id for n in result.found)
    with pytest.raises(UserError) as err:  # a - a + nothing: a zero vector
        inside.similarities(model, np.zeros(model.config.hidden_size, dtype=np.float32))
    assert err.value.key == "inside_zero_vector"


def test_pca_recovers_a_hand_built_plane_and_a_line():
    rng = np.random.default_rng(0)
    basis, _ = np.linalg.qr(rng.normal(size=(640, 2)))
    coords = np.array([[0, 0], [4, 0], [0, 2], [4, 2], [2, 1]], dtype=np.float64)  # a rectangle and its centre
    points, share = inside.pca_2d(coords @ basis.T + 5.0)
    assert share.sum() == pytest.approx(1.0, abs=1e-6) and share[0] > share[1]
    d_in = np.linalg.norm(coords[:, None] - coords[None], axis=-1)
    d_out = np.linalg.norm(points[:, None] - points[None], axis=-1)
    np.testing.assert_allclose(d_out, d_in, atol=1e-4)  # the same shape, up to rotation and sign
    np.testing.assert_allclose(np.abs(points[:, 0] - points[4, 0]), [2, 2, 2, 2, 0], atol=1e-4)  # long side first
    line = np.outer(np.arange(5.0), rng.normal(size=640))
    points, share = inside.pca_2d(line)
    assert share[0] == pytest.approx(1.0, abs=1e-6)
    assert np.all(np.diff(points[:, 0]) > 0) or np.all(np.diff(points[:, 0]) < 0)
    again, _ = inside.pca_2d(line)
    np.testing.assert_array_equal(points, again)


def test_word_sets_are_parsed_and_bounded():
    assert inside.parse_words("猫、犬、車\n電車, cat,猫") == ["猫", "犬", "車", "電車", "cat"]
    for bad in ["", "猫", "猫,猫,猫", None, ",".join(str(i) for i in range(config.INSIDE_MAX_WORDS + 1))]:
        with pytest.raises(UserError):
            inside.parse_words(bad)


def test_word_map_places_every_word(tiny_llama, tiny_tokenizer):
    m = inside.word_map(tiny_llama, tiny_tokenizer, ["cat", "street", "tired", "猫"])
    assert m.points.shape == (4, 2) and np.isfinite(m.points).all()
    assert [w.text for w in m.words] == ["cat", "street", "tired", "猫"]


# --- KV cache ----------------------------------------------------------------------------------
def _cache_after(model, ids):
    with torch.inference_mode():
        return model(input_ids=torch.tensor([ids]), use_cache=True).past_key_values


@pytest.mark.parametrize("name", ["tiny_llama", "tiny_gemma3"])
def test_the_kv_formula_equals_the_bytes_of_a_real_cache(request, tiny_tokenizer, name):
    model = request.getfixturevalue(name)
    layout = inside.kv_layout(model)
    ids = tiny_tokenizer("The cat sat on the mat. 猫が好き")["input_ids"]
    cache = _cache_after(model, ids)
    assert inside.cache_tokens(cache) == len(ids)
    assert inside.cache_bytes(cache) == layout.bytes_for(len(ids))
    assert layout.per_token == 2 * 2 * 2 * (32 // 4 if name == "tiny_llama" else 8) * 4  # K,V x layers x kv heads x dim x fp32
    assert layout.bytes_without_gqa(len(ids)) == 2 * layout.bytes_for(len(ids))  # 4 heads vs 2 kv heads


def test_packaged_models_lens_and_kv(gemma, smollm):
    """On the real models: the lens' last row is the output (both architectures, bf16 as
    shipped), Gemma 3's sliding-window cache matches the formula, GQA saves what it says."""
    for loaded, prompt in [(gemma, "富士山の高さは"), (smollm, "The capital of France is")]:
        ids = loaded.tokenizer(prompt)["input_ids"]
        lens = inside.logit_lens(loaded.model, loaded.tokenizer, ids)
        logits = _output(loaded.model, ids)
        np.testing.assert_array_equal(lens.top_ids[-1, :, 0], logits.argmax(-1).numpy())
        np.testing.assert_allclose(lens.top_probs[-1], torch.topk(torch.softmax(logits, -1), inside.TOP_K).values.numpy(), rtol=2e-3, atol=1e-5)
        layout = inside.kv_layout(loaded.model)
        cache = _cache_after(loaded.model, ids)
        assert inside.cache_bytes(cache) == layout.bytes_for(len(ids))
        arch = layout.arch
        assert layout.bytes_without_gqa(10) == layout.bytes_for(10) * arch.num_heads // arch.num_kv_heads
    word = inside.encode_word(gemma.tokenizer, "猫")
    found = inside.neighbours(gemma.model, gemma.tokenizer, word)
    assert found[0].token_id == word.ids[0] and found[0].similarity == pytest.approx(1.0, abs=1e-3)
