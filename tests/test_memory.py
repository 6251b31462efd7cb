"""The memory calculator: the textbook table, presets vs transformers' own counts, bitsandbytes'
component rules, quantization constants, the KV cache with GQA and sliding windows, GPU fit,
Hub config reading (offline, gated, unknown, unsupported) and every bad input."""

from __future__ import annotations

import math

import pytest

from llmviz import config, memory
from llmviz.errors import UserError
from llmviz.memory import GB, LinearGroup
from llmviz.memory_presets import PRESETS, get_preset
from llmviz.models import hub_config

# --- the textbook -------------------------------------------------------------------------------


def test_textbook_gpt2_table_exactly():
    row = memory.textbook_row("GPT-2", PRESETS["gpt2-1.5b"].params)
    assert row.gb == (6.0, 3.0, 1.5, 0.75)


def test_textbook_gpt3_needs_about_15_rtx4090s_at_16_bits():
    row = memory.textbook_row("GPT-3", PRESETS["gpt3-175b"].params)
    assert row.gb[1] == 350.0
    assert row.rtx4090_at_16bit == 15  # 350 GB / 24 GB = 14.6 -> 15 cards


def test_textbook_gpt35_350b():
    row = memory.textbook_row("GPT-3.5", PRESETS["gpt3.5-350b"].params)
    assert row.gb == (1400.0, 700.0, 350.0, 175.0)
    assert row.rtx4090_at_16bit == 30


def test_params_only_estimate_is_the_textbook_formula():
    est = memory.estimate("fp16", params=1_500_000_000, overhead_gb=0)
    assert est.total_bytes == 3 * GB
    assert [c.key for c in est.components] == ["weights"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1.5B", 1_500_000_000),
        ("175e9", 175_000_000_000),
        ("135M", 135_000_000),
        ("7 b", 7_000_000_000),
        ("1,500,000", 1_500_000),
        ("2T", 2_000_000_000_000),
        (42, 42),
        (3e9, 3_000_000_000),
        (".5k", 500),
    ],
)
def test_parse_param_count(text, expected):
    assert memory.parse_param_count(text) == expected


@pytest.mark.parametrize(
    ("bad", "key"),
    [
        ("0", "mem_params_too_small"),
        ("-5", "mem_params_not_number"),
        (-5, "mem_params_too_small"),
        (0, "mem_params_too_small"),
        ("abc", "mem_params_not_number"),
        ("", "mem_params_not_number"),
        (None, "mem_params_not_number"),
        ("1e15", "mem_params_too_large"),
        (1e15, "mem_params_too_large"),
        (float("nan"), "mem_params_too_small"),
        (float("inf"), "mem_params_too_small"),
        ("1.5 billion", "mem_params_not_number"),
    ],
)
def test_bad_param_counts(bad, key):
    with pytest.raises(UserError) as err:
        memory.parse_param_count(bad)
    assert err.value.key == key
    assert "1.5B" in err.value.message or "at most" in err.value.message


# --- presets vs transformers --------------------------------------------------------------------


def _configs():
    from transformers import Gemma3TextConfig, LlamaConfig, MixtralConfig, Qwen2Config

    return {
        "smollm2-135m": LlamaConfig(
            vocab_size=49152,
            hidden_size=576,
            intermediate_size=1536,
            num_hidden_layers=30,
            num_attention_heads=9,
            num_key_value_heads=3,
            tie_word_embeddings=True,
        ),
        "llama3-8b": LlamaConfig(
            vocab_size=128256,
            hidden_size=4096,
            intermediate_size=14336,
            num_hidden_layers=32,
            num_attention_heads=32,
            num_key_value_heads=8,
            tie_word_embeddings=False,
        ),
        "llama3-70b": LlamaConfig(
            vocab_size=128256,
            hidden_size=8192,
            intermediate_size=28672,
            num_hidden_layers=80,
            num_attention_heads=64,
            num_key_value_heads=8,
            tie_word_embeddings=False,
        ),
        "qwen2.5-0.5b": Qwen2Config(
            vocab_size=151936,
            hidden_size=896,
            intermediate_size=4864,
            num_hidden_layers=24,
            num_attention_heads=14,
            num_key_value_heads=2,
            tie_word_embeddings=True,
        ),
        "qwen2.5-7b": Qwen2Config(
            vocab_size=152064,
            hidden_size=3584,
            intermediate_size=18944,
            num_hidden_layers=28,
            num_attention_heads=28,
            num_key_value_heads=4,
            tie_word_embeddings=False,
        ),
        "gemma-3-270m": Gemma3TextConfig(
            vocab_size=262144,
            hidden_size=640,
            intermediate_size=2048,
            num_hidden_layers=18,
            num_attention_heads=4,
            num_key_value_heads=1,
            head_dim=256,
            sliding_window=512,
        ),
        "mixtral-8x7b": MixtralConfig(
            vocab_size=32000,
            hidden_size=4096,
            intermediate_size=14336,
            num_hidden_layers=32,
            num_attention_heads=32,
            num_key_value_heads=8,
            num_local_experts=8,
            num_experts_per_tok=2,
            tie_word_embeddings=False,
        ),
    }


#: published parameter counts (model cards / safetensors metadata on the Hub)
PUBLISHED = {
    "smollm2-135m": 134_515_008,
    "llama3-8b": 8_030_261_248,
    "llama3-70b": 70_553_706_496,
    "qwen2.5-0.5b": 494_032_768,
    "qwen2.5-7b": 7_615_616_512,
    "gemma-3-270m": 268_098_176,
    "mixtral-8x7b": 46_702_792_704,
}


@pytest.mark.parametrize("key", list(PUBLISHED))
def test_preset_breakdown_equals_transformers_meta_count(key):
    preset = PRESETS[key]
    arch, meta = hub_config.count_from_config(_configs()[key])
    assert preset.breakdown == meta  # every component, every linear shape, the buffers
    assert preset.params == meta.total == PUBLISHED[key]
    assert (arch.num_layers, arch.num_heads, arch.num_kv_heads, arch.head_dim) == (
        preset.arch.num_layers,
        preset.arch.num_heads,
        preset.arch.num_kv_heads,
        preset.arch.head_dim,
    )
    assert arch.tied_embeddings == preset.arch.tied_embeddings


def test_mixtral_experts_are_not_linear_layers_for_bitsandbytes():
    b = PRESETS["mixtral-8x7b"].breakdown
    assert b.experts > 0.95 * b.total  # 45.1B of 46.7B parameters
    assert b.linear_params < 0.03 * b.total  # only attention is nn.Linear in transformers 5
    nf4 = {c.key: c for c in memory.predict_weights(b, "nf4", "fp16")}
    assert nf4["experts"].dtype == "fp16" and not nf4["experts"].quantized
    assert nf4["linear"].quantized


def test_gemma_embedding_stays_high_precision_under_bitsandbytes():
    b = PRESETS["gemma-3-270m"].breakdown
    parts = {c.key: c for c in memory.predict_weights(b, "nf4", "fp32")}
    assert parts["embeddings"].params == 262144 * 640
    assert parts["embeddings"].bytes == 4 * 262144 * 640 and parts["embeddings"].dtype == "fp32"
    assert "lm_head" not in parts  # tied: stored once
    assert parts["linear"].bytes == b.linear_params / 2


def test_gguf_block_sizes_match_the_gguf_package():
    from gguf import GGML_QUANT_SIZES, GGMLQuantizationType

    for key, gtype in (("q8_0", "Q8_0"), ("q6_k", "Q6_K"), ("q4_0", "Q4_0")):
        block, size = GGML_QUANT_SIZES[GGMLQuantizationType[gtype]]
        assert memory.PRECISIONS[key].bits == size * 8 / block
    assert 4.8 < memory.PRECISIONS["q4_k_m"].bits < 5.0  # a mix of Q4_K and Q6_K tensors


# --- quantization constants ---------------------------------------------------------------------


def test_int8_constants_are_one_fp32_scale_per_output_row():
    groups = (LinearGroup(1536, 576, 60), LinearGroup(576, 1536, 30))
    assert memory.quant_constant_bytes(groups, memory.PRECISIONS["int8"]) == 4 * (
        1536 * 60 + 576 * 30
    )


def test_4bit_constants_are_absmax_per_64_plus_code_table():
    g = (LinearGroup(128, 100, 3),)  # 12800 weights = 200 blocks per layer
    nf4 = memory.quant_constant_bytes(g, memory.PRECISIONS["nf4"])
    assert nf4 == 3 * (200 * 4 + 16 * 4)
    dq = memory.quant_constant_bytes(g, memory.PRECISIONS["nf4-dq"])
    # uint8 absmax per block, one fp32 per 256 blocks, a 256-entry fp32 code, an fp32 offset, the 4-bit code
    assert dq == 3 * (200 + 4 * 1 + 256 * 4 + 4 + 16 * 4)
    per_param = (
        memory.quant_constant_bytes((LinearGroup(4096, 4096, 1),), memory.PRECISIONS["nf4-dq"])
        * 8
        / 4096**2
    )
    assert per_param == pytest.approx(
        0.127, abs=0.001
    )  # ~0.127 bit per parameter, the QLoRA figure


# --- KV cache -----------------------------------------------------------------------------------


def test_kv_cache_llama3_8b_is_one_gib_at_8k_fp16():
    arch = PRESETS["llama3-8b"].arch
    assert memory.kv_cache_bytes(arch, 8192, 1, "fp16") == 2**30
    assert memory.kv_cache_bytes(arch, 8192, 4, "fp32") == 8 * 2**30


def test_gqa_uses_kv_heads_not_query_heads():
    from dataclasses import replace

    arch = PRESETS["llama3-70b"].arch
    gqa = memory.kv_cache_bytes(arch, 4096, 1)
    mha = memory.kv_cache_bytes(replace(arch, num_kv_heads=arch.num_heads), 4096, 1)
    assert mha == 8 * gqa  # 64 query heads share 8 KV heads
    s = memory.size_model(
        "x", ["fp16"], breakdown=PRESETS["llama3-70b"].breakdown, arch=arch, context=4096
    )
    assert (s.kv_bytes, s.kv_bytes_without_gqa) == (gqa, mha)


def test_sliding_window_layers_keep_only_the_window():
    arch = PRESETS["gemma-3-270m"].arch
    per_token_layer = 2 * 1 * 256 * 2
    assert memory.kv_cache_bytes(arch, 32768, 1) == per_token_layer * (3 * 32768 + 15 * 512)
    assert memory.kv_cache_bytes(arch, 100, 1) == per_token_layer * 18 * 100


@pytest.mark.parametrize(
    ("context", "batch", "key"),
    [
        (0, 1, "mem_context_range"),
        (1e9, 1, "mem_context_range"),
        (-3, 1, "mem_context_range"),
        (4096, 0, "mem_batch_range"),
        (4096, -1, "mem_batch_range"),
        (4096, 10**6, "mem_batch_range"),
        ("abc", 1, "mem_context_not_number"),
        (4096, "x", "mem_batch_not_number"),
        (None, 1, "mem_context_not_number"),
        (2.5, 1, "mem_context_not_number"),
        (float("inf"), 1, "mem_context_not_number"),
    ],
)
def test_bad_context_and_batch(context, batch, key):
    with pytest.raises(UserError) as err:
        memory.kv_cache_bytes(PRESETS["llama3-8b"].arch, context, batch)
    assert err.value.key == key
    with pytest.raises(UserError):  # also without an architecture
        memory.size_model("x", ["fp16"], params=10**9, context=context, batch=batch)


def test_limits_are_inclusive():
    arch = PRESETS["smollm2-135m"].arch
    assert memory.kv_cache_bytes(arch, 1, 1) > 0
    assert memory.kv_cache_bytes(arch, config.MEMORY_MAX_CONTEXT, config.MEMORY_MAX_BATCH) > 0


# --- GPU fit and the whole estimate -------------------------------------------------------------


def test_one_gpu_table_serves_the_calculator_and_the_scaling_lab():
    from llmviz import scaling

    assert scaling.GPUS is memory.GPUS  # one table, not two copies that can drift apart
    for gpu in memory.GPUS.values():
        assert gpu.gb > 0 and gpu.peak_flops > 1e12 and gpu.bandwidth > 1e11, gpu.key
        assert scaling.get_gpu(gpu.key) is gpu
    # every card size the calculator shows is a GPU of the table, and every GPU has its column
    sizes = {c.gb: c for c in memory.CARD_SIZES}
    assert sorted(sizes) == sorted({g.gb for g in memory.GPUS.values()})
    assert sizes[80].label == "80 GB (A100 / H100)" and sizes[24].label == "24 GB (RTX 4090)"
    # the scaling lab's 24 GB card is the calculator's textbook card
    assert scaling.GPUS["rtx4090"].memory_gb == 24 and scaling.GPUS["rtx4090"] in sizes[24].gpus


def test_cards_needed():
    assert memory.cards_needed(350e9, 24) == 15
    assert memory.cards_needed(24e9, 24) == 1
    assert memory.cards_needed(24e9 + 1, 24) == 2
    assert memory.cards_needed(20e9, 24, overhead_bytes=5e9) == 2  # each card pays the overhead
    assert memory.cards_needed(0, 24) == 0


def test_estimate_components_sum_and_overhead_is_marked_estimate():
    p = PRESETS["llama3-8b"]
    est = memory.estimate("nf4", breakdown=p.breakdown, arch=p.arch, context=32768, batch=1)
    keys = [c.key for c in est.components]
    assert keys == [
        "linear",
        "embeddings",
        "lm_head",
        "norms_bias",
        "constants",
        "buffers",
        "kv_cache",
        "overhead",
    ]
    overhead = est.components[-1]
    assert overhead.estimate and overhead.bytes == config.MEMORY_CUDA_OVERHEAD_GB * GB
    assert est.total_bytes == pytest.approx(sum(c.bytes for c in est.components))
    assert est.model_bytes == est.total_bytes - overhead.bytes
    fits = {f.card.gb: f for f in memory.gpu_fit(est)}
    assert fits[24].fits_one and not fits[8].fits_one  # ~11 GB with a 32k context
    assert fits[8].cards == 2


def test_llama70b_fp16_needs_two_80gb_cards():
    p = PRESETS["llama3-70b"]
    est = memory.estimate("fp16", breakdown=p.breakdown, arch=p.arch, context=8192)
    fits = {f.card.gb: f.cards for f in memory.gpu_fit(est)}
    assert fits[80] == 2 and fits[24] == math.ceil(est.model_bytes / (24 * GB - 0.5 * GB))


def test_unknown_precision_dtype_preset_and_empty_selection():
    b = PRESETS["smollm2-135m"].breakdown
    with pytest.raises(UserError, match="Unknown precision"):
        memory.predict_weights(b, "int3")
    with pytest.raises(UserError, match="Unknown dtype"):
        memory.predict_weights(b, "nf4", "fp64")
    with pytest.raises(UserError, match="Unknown preset"):
        get_preset("gpt-5")
    with pytest.raises(UserError, match="at least one precision"):
        memory.size_model("x", [], params=10**9)
    assert memory.check_precisions(["nf4", "fp32"]) == ("fp32", "nf4")  # calculator order


def test_params_only_4bit_constants_and_gguf():
    est = memory.estimate("nf4", params=6400, overhead_gb=0)
    assert [c.bytes for c in est.components] == [3200, 400]  # 0.5 B per weight + 4 B per 64 weights
    est = memory.estimate("q8_0", params=3200, overhead_gb=0)
    assert est.total_bytes == 3400


# --- Hub configs --------------------------------------------------------------------------------


def test_packaged_model_config_is_read_offline_without_weights():
    counted = hub_config.count_model("smollm2-135m-instruct")
    assert counted.params == 134_515_008 and counted.arch.num_kv_heads == 3
    assert counted.breakdown == PRESETS["smollm2-135m"].breakdown


def test_hub_offline_says_so():
    # the suite runs with HF_HUB_OFFLINE=1 (tests/conftest.py)
    with pytest.raises(UserError) as err:
        hub_config.count_model("Qwen/Qwen2.5-7B")
    assert err.value.key == "mem_hub_offline" and "preset" in err.value.message


@pytest.mark.parametrize("bad", ["", "   ", "../etc/passwd", "/tmp/model", "not a model id!"])
def test_hub_bad_names(bad):
    with pytest.raises(UserError):
        hub_config.count_model(bad)


def _http_error(cls, status, message):
    import httpx

    url = "https://huggingface.co/owner/model/resolve/main/config.json"
    return cls(message, response=httpx.Response(status, request=httpx.Request("GET", url)))


@pytest.mark.parametrize(
    ("error", "key"),
    [("gated", "mem_hub_gated"), ("missing", "mem_hub_not_found")],
)
def test_hub_gated_and_unknown_through_transformers(monkeypatch, error, key):
    """The real huggingface_hub errors, wrapped by transformers' own config loader."""
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

    exc = (
        _http_error(GatedRepoError, 401, "Access to model owner/model is restricted.")
        if error == "gated"
        else _http_error(RepositoryNotFoundError, 404, "404 Client Error. Repository Not Found")
    )

    def refuse(*args, **kwargs):
        raise exc

    monkeypatch.setattr(hub_config, "_offline", lambda: False)
    monkeypatch.setattr("transformers.utils.hub.hf_hub_download", refuse)
    with pytest.raises(UserError) as err:
        hub_config.count_model("owner/model")
    assert err.value.key == key and "owner/model" in err.value.message


def test_hub_unsupported_architecture(monkeypatch):
    from transformers import PretrainedConfig

    cfg = PretrainedConfig()  # no model class registered for it
    monkeypatch.setattr(hub_config, "read_config", lambda name: cfg)
    with pytest.raises(UserError) as err:
        hub_config.count_model("owner/model")
    assert err.value.key == "mem_hub_unsupported"


def test_architecture_of_a_real_config():
    from transformers import MistralConfig

    arch = hub_config.architecture_of(MistralConfig(sliding_window=4096, num_hidden_layers=4))
    assert arch.sliding_window == 4096 and arch.sliding_layers == 4
    assert arch.head_dim == 128 and arch.num_kv_heads == 8


# --- the validators share llmviz.checks ---------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "key"),
    [
        (lambda: memory.check_context_batch(True, 1), "mem_context_not_number"),  # not a number
        (lambda: memory.check_context_batch(4096, False), "mem_batch_not_number"),
        (lambda: memory.check_context_batch("\ud800", 1), "mem_context_not_number"),
        (lambda: memory.check_context_batch(float("-inf"), 1), "mem_context_not_number"),
        (lambda: memory.check_context_batch(10**30, 1), "mem_context_range"),  # whole, too big
        (lambda: memory.check_precisions(["\ud800"]), "mem_precision_unknown"),
        (lambda: memory.get_precision(None), "mem_precision_unknown"),
        (lambda: get_preset("\ud83d"), "mem_preset_unknown"),
    ],
)
def test_bad_values_get_their_key_and_a_printable_message(call, key):
    with pytest.raises(UserError) as err:
        call()
    assert err.value.key == key
    # a lone surrogate echoed back raw would break the JSON answer (and the Japanese message)
    err.value.message.encode("utf-8")
    for value in err.value.params.values():
        str(value).encode("utf-8")


def test_range_messages_keep_their_numbers():
    with pytest.raises(UserError, match="between 1 and 10,000,000 tokens") as err:
        memory.check_context_batch(0, 1)
    assert err.value.params["limit"] == "10,000,000"
    assert memory.check_context_batch(" 512 ", 3.0) == (512, 3)


# --- counts in words ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("count", "en", "en_short", "ja"),
    [
        (175e9, "175 billion", "175B", "1,750 億"),  # not "175 十億": Japanese groups by 万 / 億
        (1.5e9, "1.5 billion", "1.5B", "15 億"),
        (7e12, "7 trillion", "7T", "7 兆"),
        (70e9, "70 billion", "70B", "700 億"),
        (1.4e12, "1.4 trillion", "1.4T", "1.4 兆"),
        (134_515_008, "135 million", "135M", "1.35 億"),
        (8_030_261_248, "8.03 billion", "8.03B", "80.3 億"),
        (300e9, "300 billion", "300B", "3,000 億"),
        (50_000, "50 thousand", "50K", "5 万"),
        (512, "512", "512", "512"),
    ],
)
def test_count_words_in_both_languages(count, en, en_short, ja):
    assert memory.count_words(count, "en") == en
    assert memory.count_words(count, "en", short=True) == en_short
    assert memory.count_words(count, "ja") == ja
    assert memory.count_words(count, "ja", short=True) == ja  # Japanese has no short form


def test_summary_says_the_count_in_the_readers_language():
    from llmviz.ui import memory_tab

    p = PRESETS["gpt3-175b"]
    s = memory.size_model(p.label, ["bf16"], params=p.params, arch=p.kv_arch, context=2048)
    ja = memory_tab._summary(s, 2048, 1, "fp16", "fp16", "ja")
    assert "（1,750 億）" in ja and "十億" not in ja
    assert "(175 billion)" in memory_tab._summary(s, 2048, 1, "fp16", "fp16", "en")
    small = PRESETS["smollm2-135m"]
    s = memory.size_model(small.label, ["bf16"], breakdown=small.breakdown, arch=small.arch)
    assert "（1.35 億）" in memory_tab._summary(s, 4096, 1, "fp16", "fp16", "ja")


# --- the textbook's count and what serving adds -------------------------------------------------


@pytest.mark.parametrize("key", ["gpt2-1.5b", "gpt3-175b", "gpt3.5-350b"])
def test_textbook_presets_reproduce_the_textbook_table_by_default(key):
    p = PRESETS[key]
    row = memory.textbook_row(p.label, p.params)
    only = memory.counts_weights_only("auto", p.textbook)
    s = memory.size_model(
        p.label, ["bf16"], params=p.params, arch=p.kv_arch, context=8192, weights_only=only
    )
    fits = {f.card.gb: f.cards for f in memory.gpu_fit(s.estimates[0])}
    assert fits[24] == row.rtx4090_at_16bit
    assert s.estimates[0].total_bytes == row.gb[1] * GB  # parameters x 16 bits / 8, nothing else


def test_serving_gap_gpt3_kv_cache_then_overhead():
    p = PRESETS["gpt3-175b"]
    s = memory.size_model(p.label, ["fp32", "bf16"], params=p.params, arch=p.kv_arch, context=8192)
    gap = memory.serving_gap(s)
    assert gap.precision == "bf16" and gap.card.gb == 24
    assert s.kv_bytes == 2 * 96 * 96 * 128 * 8192 * 2  # K and V x layers x heads x dim x tokens
    assert (gap.weights, gap.with_kv, gap.serving) == (15, 17, 17)  # 350 -> 388.7 GB
    assert {f.card.gb: f.cards for f in memory.gpu_fit(s.estimates[1])}[24] == 17
    short = memory.size_model(p.label, ["bf16"], params=p.params, arch=p.kv_arch, context=1)
    assert memory.serving_gap(short).serving == 15  # 350 GB + a tiny cache on 23.5 GB usable


def test_scope_choices():
    assert [memory.counts_weights_only(s, False) for s in memory.SCOPES] == [False, True, False]
    assert [memory.counts_weights_only(s, True) for s in memory.SCOPES] == [True, True, False]
    with pytest.raises(UserError) as err:
        memory.counts_weights_only("all", True)
    assert err.value.key == "mem_scope_unknown"


# --- arithmetic the tab used to do --------------------------------------------------------------


def test_doctests():
    import doctest

    assert doctest.testmod(memory).failed == 0


def test_stack_and_components_for_the_chart_and_table():
    p = PRESETS["llama3-8b"]
    s = memory.size_model(
        p.label, ["bf16", "nf4"], breakdown=p.breakdown, arch=p.arch, context=8192
    )
    assert s.component_keys[0] == "linear" and "constants" in s.component_keys
    stack = dict(s.stack_gb())
    assert stack["constants"][0] == 0 and stack["constants"][1] > 0  # bf16 has none
    for i, est in enumerate(s.estimates):
        assert sum(v[i] for v in stack.values()) == pytest.approx(est.total_bytes / GB)
    assert s.estimates[0].component("constants") is None
    assert s.breakdown.linear_share == pytest.approx(p.breakdown.linear_params / p.params)
    assert memory.gb_text(s.kv_bytes) == "1.07" and memory.mb_text(2.5e6) == "2.50"
    assert not s.beyond_trained_context and not s.window_applies
    g = PRESETS["gemma-3-270m"]
    s = memory.size_model(g.label, ["bf16"], breakdown=g.breakdown, arch=g.arch, context=40_000)
    assert s.beyond_trained_context and s.window_applies  # 32k trained, 512-token windows
