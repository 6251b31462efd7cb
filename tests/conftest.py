"""Shared fixtures.

* ``tiny_tokenizer`` / ``tiny_llama`` / ``tiny_gemma3``: byte-level BPE trained in-process and
  random models built from configs; milliseconds, for core logic.
* ``gemma`` / ``smollm``: the real packaged default models (``LoadedModel``), loaded once per
  session from the on-disk cache (converted from GGUF on the first run of a machine).
* ``app_url`` / ``client``: the whole app launched on 127.0.0.1 and a ``gradio_client.Client``.
No fixture needs the network.
"""

from __future__ import annotations

import os
import socket

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the suite must never depend on the Hub

import pytest


@pytest.fixture(autouse=True)
def _own_global_rng():
    """Tests that compare with ``generate(do_sample=True)`` must seed torch's process-wide
    generator (the library draws from it); give it back as it was, so no test's seed leaks
    into another test's draws and the order of tests never matters."""
    import torch

    with torch.random.fork_rng(devices=[]):
        yield


TINY_CORPUS = [
    "The animal didn't cross the street because it was too tired.",
    "Large language models predict the next token.",
    "こんにちは、世界。今日はいい天気ですね。",
    "吾輩は猫である。名前はまだ無い。",
    "Tokenizers cut text into pieces; 日本語 often needs more tokens than English.",
] * 4


@pytest.fixture(scope="session")
def tiny_tokenizer():
    """A real byte-level BPE (``tokenizers``), ~400 tokens, wrapped as a transformers tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=["<bos>", "<eos>", "<pad>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(TINY_CORPUS, trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>"
    )


def _tiny(config_cls, model_cls, tokenizer, **extra):
    import torch

    cfg = config_cls(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        attn_implementation="eager",
        **extra,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)  # the same random weights in every run, without touching other tests
        return model_cls(cfg).eval()


@pytest.fixture(scope="session")
def tiny_llama(tiny_tokenizer):
    """Random 2-layer Llama (4 query heads, 2 KV heads), eager attention."""
    from transformers import LlamaConfig, LlamaForCausalLM

    return _tiny(LlamaConfig, LlamaForCausalLM, tiny_tokenizer)


@pytest.fixture(scope="session")
def tiny_gemma3(tiny_tokenizer):
    """Random 2-layer Gemma 3 text model, eager attention."""
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    return _tiny(Gemma3TextConfig, Gemma3ForCausalLM, tiny_tokenizer, head_dim=8)


@pytest.fixture(scope="session")
def gemma():
    from llmviz.models import load_model

    return load_model("gemma-3-270m", "bf16")


@pytest.fixture(scope="session")
def gemma_fp32():
    """Gemma 3 270M in float32: where batched and one-row passes agree to rounding, so seeded
    tokens can be compared exactly (in bf16 a one-row product rounds differently)."""
    from llmviz.models import load_model

    return load_model("gemma-3-270m", "fp32")


@pytest.fixture(scope="session")
def smollm_fp32():
    from llmviz.models import load_model

    return load_model("smollm2-135m-instruct", "fp32")


@pytest.fixture(scope="session")
def smollm():
    from llmviz.models import load_model

    return load_model("smollm2-135m-instruct", "bf16")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def app_url():
    """The full app on 127.0.0.1 (one server for the whole session)."""
    import app

    port = free_port()
    app.demo.launch(
        server_name="127.0.0.1",
        server_port=port,
        prevent_thread_lock=True,
        quiet=True,
        **app.LAUNCH_KWARGS,
    )
    yield f"http://127.0.0.1:{port}/"
    app.demo.close()


@pytest.fixture(scope="session")
def client(app_url):
    from gradio_client import Client

    # generous timeout: on a busy 2-core machine the first config request can take a while
    return Client(app_url, verbose=False, httpx_kwargs={"timeout": 300})
