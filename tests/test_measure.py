"""Predicted vs measured footprint (tiny models in every precision, the real defaults), and the
quality cost of quantization (agreement, KL, perplexity, greedy samples)."""

from __future__ import annotations

import math

import pytest
import torch

from llmviz import measure, quant_quality
from llmviz.errors import UserError
from llmviz.models import device
from llmviz.perplexity import score_text

FLOATS = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
ALL = ("fp32", "bf16", "fp16", "int8", "nf4", "nf4-dq", "fp4")


def _load(path, precision):
    """What ``llmviz.models`` does on CPU, on a tiny checkpoint in ``path``."""
    from transformers import AutoModelForCausalLM

    if precision in FLOATS:
        return AutoModelForCausalLM.from_pretrained(path, dtype=FLOATS[precision]).eval()
    model = AutoModelForCausalLM.from_pretrained(
        path,
        quantization_config=device.bnb_config(precision),
        dtype=torch.float32,
        device_map="cpu",
    ).eval()
    device.prepare_4bit_for_cpu(model)
    return model


@pytest.fixture(scope="module")
def tiny_dir(tiny_llama, tmp_path_factory):
    path = tmp_path_factory.mktemp("tiny-llama")
    tiny_llama.save_pretrained(path)
    return path


@pytest.mark.parametrize("precision", ALL)
def test_prediction_equals_measurement_on_a_tiny_model(tiny_dir, precision):
    model = _load(tiny_dir, precision)
    before = measure.compare("tiny", model, precision, "cpu")
    assert before.measured.total == before.predicted_bytes  # exact, to the byte
    with torch.inference_mode():  # int8 moves its scales into module.state on the first forward
        model(torch.tensor([[1, 2, 3, 4]]))
    after = measure.compare("tiny", model, precision, "cpu")
    assert after.measured.total == after.predicted_bytes
    quantized = precision not in FLOATS
    assert (before.measured.quant_state > 0) == quantized
    if quantized:  # get_memory_footprint() leaves the quantization state out
        assert model.get_memory_footprint() == before.measured.total - before.measured.quant_state
        assert model.get_input_embeddings().weight.dtype == torch.float32  # rest_dtype's rule
    assert measure.rest_dtype(precision, "cpu") == (precision if not quantized else "fp32")


def test_tiny_mixture_of_experts_keeps_experts_unquantized(tmp_path):
    from transformers import MixtralConfig, MixtralForCausalLM

    torch.manual_seed(0)
    cfg = MixtralConfig(
        vocab_size=300,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        num_local_experts=4,
        num_experts_per_tok=2,
    )
    MixtralForCausalLM(cfg).save_pretrained(tmp_path)
    model = _load(tmp_path, "nf4")
    assert model.model.layers[0].mlp.experts.gate_up_proj.dtype == torch.float32  # not converted
    c = measure.compare("tiny-moe", model, "nf4", "cpu")
    assert c.measured.total == c.predicted_bytes
    assert next(p for p in c.predicted if p.key == "experts").dtype == "fp32"


def test_cuda_load_peak_is_none_on_cpu():
    if torch.cuda.is_available():
        pytest.skip("CPU behaviour")
    assert measure.cuda_load_peak(lambda: 42) == (42, None)


# --- quality ------------------------------------------------------------------------------------


def test_quality_of_a_model_against_itself(tiny_llama, tiny_tokenizer):
    rows = quant_quality.compare_quality(
        {"fp32": tiny_llama, "copy": tiny_llama},
        tiny_tokenizer,
        text="The animal didn't cross the street.",
    )
    for r in rows:
        assert r.agreement == 1.0 and r.kl == pytest.approx(0.0, abs=1e-6)
    assert rows[0].perplexity == rows[1].perplexity


def test_quality_numbers_match_torch(tiny_llama, tiny_tokenizer):
    import copy

    half = copy.deepcopy(tiny_llama).to(torch.bfloat16)
    txt = "Large language models predict the next token."
    rows = {
        r.precision: r
        for r in quant_quality.compare_quality(
            {"fp32": tiny_llama, "bf16": half}, tiny_tokenizer, text=txt
        )
    }
    ids = quant_quality._ids(
        tiny_tokenizer, tiny_tokenizer(txt, add_special_tokens=False)["input_ids"]
    )
    with torch.inference_mode():
        ref = torch.log_softmax(tiny_llama(ids).logits[0].float(), -1)
        low = torch.log_softmax(half(ids).logits[0].float(), -1)
        loss = tiny_llama(ids, labels=ids).loss
    kl = torch.nn.functional.kl_div(low, ref, log_target=True, reduction="batchmean")
    assert rows["bf16"].kl == pytest.approx(float(kl), rel=1e-4, abs=1e-7)
    assert rows["bf16"].agreement == pytest.approx(
        float((ref.argmax(-1) == low.argmax(-1)).float().mean())
    )
    assert rows["fp32"].perplexity == pytest.approx(math.exp(float(loss)), rel=1e-5)
    assert rows["bf16"].perplexity == pytest.approx(
        score_text(half, tiny_tokenizer, txt).perplexity, rel=1e-5
    )
    assert rows["bf16"].tokens == ids.shape[1]


def test_quality_needs_the_reference_and_a_sane_text(tiny_llama, tiny_tokenizer):
    with pytest.raises(ValueError, match="reference"):
        quant_quality.compare_quality({"int8": tiny_llama}, tiny_tokenizer)
    with pytest.raises(UserError):
        quant_quality.compare_quality({"fp32": tiny_llama}, tiny_tokenizer, text="")
    with pytest.raises(UserError, match="limit is 5 tokens"):
        quant_quality.compare_quality(
            {"fp32": tiny_llama}, tiny_tokenizer, text="word " * 50, max_tokens=5
        )


def test_greedy_sample_is_deterministic(tiny_llama, tiny_tokenizer):
    a = quant_quality.greedy_sample(tiny_llama, tiny_tokenizer, "The animal", max_new_tokens=6)
    b = quant_quality.greedy_sample(tiny_llama, tiny_tokenizer, "The animal", max_new_tokens=6)
    assert a == b and isinstance(a, str)


# --- the real default models --------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    ("key", "precision"),
    [("smollm2-135m-instruct", p) for p in ("fp32", "bf16", "int8", "nf4")]
    + [("gemma-3-270m", "bf16"), ("gemma-3-270m", "nf4")],
)
def test_default_models_within_one_percent(key, precision):
    from llmviz.models import load_model

    loaded = load_model(key, precision)
    c = measure.compare(key, loaded.model, precision, loaded.device)
    assert abs(c.error_pct) <= 1.0, f"{key} {precision}: {c.error_pct:+.3f} %"
    if precision == "nf4":  # the unquantized embedding dominates Gemma's 4-bit footprint
        emb = next(p for p in c.predicted if p.key == "embeddings")
        assert (
            emb.dtype == "fp32"
            and emb.bytes > (0.8 if key.startswith("gemma") else 0.6) * c.predicted_bytes
        )


@pytest.mark.slow
def test_quality_cost_on_smollm():
    from llmviz.models import load_model

    models = {p: load_model("smollm2-135m-instruct", p) for p in ("fp32", "int8", "nf4")}
    tok = models["fp32"].tokenizer
    rows = {
        r.precision: r
        for r in quant_quality.compare_quality({p: m.model for p, m in models.items()}, tok)
    }
    assert rows["fp32"].agreement == 1.0 and rows["fp32"].kl == 0.0
    # int8 keeps more of the model than nf4: closer to fp32 on every measure
    assert rows["int8"].kl < rows["nf4"].kl
    assert rows["int8"].agreement >= rows["nf4"].agreement
    assert 0.5 < rows["nf4"].agreement < 1.0 and rows["nf4"].kl > 0
    assert all(1 < r.perplexity < 1000 for r in rows.values())
    sample = quant_quality.greedy_sample(models["nf4"].model, tok, max_new_tokens=8)
    assert sample.strip()


def test_allocator_peak_is_kept_only_for_a_fresh_load(tiny_llama):
    total = measure.measure(tiny_llama).total
    fresh = measure.compare("tiny", tiny_llama, "fp32", "cuda", allocator_peak=total + 1000)
    cached = measure.compare("tiny", tiny_llama, "fp32", "cuda", allocator_peak=10)
    assert fresh.measured.allocator_peak == total + 1000 and fresh.measured.total == total
    assert cached.measured.allocator_peak is None


def test_largest_error_is_the_furthest_from_zero():
    from llmviz import measure

    assert measure.largest_error([0.1, -0.4, 0.2]) == 1
    assert measure.largest_error([0.3]) == 0
