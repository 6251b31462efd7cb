import pytest

from llmviz import config
from llmviz.errors import UserError
from llmviz.models import CATALOG, PAIRS, get_spec, offered_keys


def test_defaults_are_packaged_and_offered():
    keys = offered_keys()
    for key in (config.DEFAULT_BASE, config.DEFAULT_INSTRUCT):
        assert key in keys
        assert CATALOG[key].is_packaged
    assert CATALOG[config.DEFAULT_BASE].role == "base"
    assert CATALOG[config.DEFAULT_INSTRUCT].role == "instruct"
    assert CATALOG[config.DEFAULT_INSTRUCT].has_chat_template


def test_pairs_are_base_then_instruct_and_same_family_on_the_hub():
    for name, (base, inst) in PAIRS.items():
        assert CATALOG[base].role == "base" and CATALOG[inst].role == "instruct"
        if name != "cross":  # the one cross-family pair, kept for contrast (the tab says so)
            assert CATALOG[base].family == CATALOG[inst].family


def test_hub_presets_offered_only_when_asked(monkeypatch):
    assert all(CATALOG[k].is_packaged for k in offered_keys())
    monkeypatch.setattr(config, "HUB_MODELS", "qwen2.5-0.5b, qwen2.5-0.5b-instruct")
    assert {"qwen2.5-0.5b", "qwen2.5-0.5b-instruct"} <= set(offered_keys())
    monkeypatch.setattr(config, "HUB_MODELS", "all")
    assert set(offered_keys()) == set(CATALOG)


def test_hub_ids_resolve_to_catalog_or_ad_hoc_specs():
    assert get_spec("Qwen/Qwen2.5-0.5B").key == "qwen2.5-0.5b"
    spec = get_spec("someone/Some-Model-1B-Instruct")
    assert spec.source == "hub" and spec.hub_id == "someone/Some-Model-1B-Instruct"
    assert spec.role == "instruct"


@pytest.mark.parametrize(
    "name,key",
    [
        ("", "model_empty"),
        ("   ", "model_empty"),
        (None, "model_empty"),
        ("/etc/passwd", "model_path_like"),
        ("../../secret", "model_path_like"),
        ("~/models/x", "model_path_like"),
        ("a/b/c", "model_path_like"),
        ("C:\\models\\x", "model_path_like"),
        ("gpt-5", "model_unknown"),
        ("no spaces/allowed here", "model_unknown"),
        ("日本語のモデル", "model_unknown"),
    ],
)
def test_bad_names_explain_themselves(name, key):
    with pytest.raises(UserError) as info:
        get_spec(name)
    assert info.value.key == key
    assert len(info.value.message) > 20
