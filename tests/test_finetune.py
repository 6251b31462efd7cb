"""LoRA instruction tuning (``llmviz.finetune``) and the shipped adapter entry ``gemma-3-270m-sft``.

The training tests use the real packaged Gemma 3 270M at fp32 (loaded once for the module with
``load_private``: a copy no other test shares) and real peft steps; every run goes through
``finetune.attached`` so the base is left as it was for the next test.
"""

from __future__ import annotations

import itertools
import json
import math
import os

import pytest
import torch

from llmviz import finetune
from llmviz.errors import UserError
from llmviz.finetune import IGNORE, EvalRow, EvalSummary, Example, Pair, TrainSettings
from llmviz.models import hub_config, loading
from llmviz.tokens import stop_token_ids

#: Our own tiny instruction set (3 ja + 3 en), short so a step takes about a second on 2 cores.
PAIRS = (
    Pair("日本の首都は？", "東京です。", "ja"),
    Pair("りんごは何色？", "赤です。", "ja"),
    Pair("犬は何と鳴く？", "ワンと鳴きます。", "ja"),
    Pair("What is 2 + 3?", "5.", "en"),
    Pair("Say hello.", "Hello!", "en"),
    Pair("What is the opposite of hot?", "Cold.", "en"),
)

PROMPT = "日本の首都は？"


@pytest.fixture(scope="module")
def base():
    """The packaged Gemma 3 270M at fp32 (results do not depend on the CPU's bf16 support)."""
    return loading.load_private("gemma-3-270m", "fp32")


def _settings(**kw) -> TrainSettings:
    kw.setdefault("probe_every", 0)
    return TrainSettings(**kw)


def _losses(model, tok, settings, pairs=PAIRS) -> list[float]:
    events = list(finetune.train(model, tok, pairs, settings))
    assert all(isinstance(e, finetune.StepEvent) for e in events)  # no probes asked for
    assert [e.step for e in events] == list(range(1, settings.steps + 1))
    return [e.loss for e in events]


def _logits(model, tok, question: str = PROMPT) -> torch.Tensor:
    ids = torch.tensor([finetune.prompt_ids(tok, question)])
    with torch.no_grad():
        return model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits.float()


def _lora_names(model) -> list[str]:
    return [n for n, _ in model.named_modules() if "lora" in n.lower()]


def _first_lora_a(model) -> torch.Tensor:
    for name, p in model.named_parameters():
        if "lora_A" in name:
            return p.detach().clone()
    raise AssertionError("no lora_A parameter")


def _lora_state(model) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters() if "lora_" in n}


# --- 1. real peft steps -------------------------------------------------------------------------
def test_loss_goes_down_in_a_few_real_peft_steps(base):
    settings = _settings(steps=8, batch_size=4, learning_rate=1e-3)
    with finetune.attached(base.model, settings) as m:
        losses = _losses(m, base.tokenizer, settings, PAIRS * 2)
    assert all(math.isfinite(x) and x > 0 for x in losses)
    first, last = sum(losses[:2]) / 2, sum(losses[-2:]) / 2
    assert last < 0.6 * first, losses


def test_step_events_count_tokens_and_trained_tokens(base):
    settings = _settings(steps=1, batch_size=len(PAIRS))  # one batch = every pair once
    examples = [finetune.format_pair(base.tokenizer, p) for p in PAIRS]
    with finetune.attached(base.model, settings) as m:
        (event,) = list(finetune.train(m, base.tokenizer, PAIRS, settings))
    assert event.steps == 1 and event.seconds > 0
    assert event.tokens == sum(len(e.input_ids) for e in examples)  # padding not counted
    assert event.trained_tokens == sum(e.trained for e in examples)


def test_empty_pairs_are_refused(base):
    with pytest.raises(UserError) as err:
        next(finetune.train(base.model, base.tokenizer, (), _settings(steps=1)))
    assert err.value.key == "ft_no_pairs"


# --- 2. the exact training text: the mask covers exactly the answer --------------------------------
@pytest.mark.parametrize(
    "pair",
    [
        *PAIRS,
        Pair("富士山の高さは？", "富士山の高さは3,776メートルです。"),
        Pair("Translate: The early bird catches the worm.", "早起きは三文の徳。"),
        Pair("Write two lines.", "First line.\nSecond line 🙂"),
    ],
    ids=lambda p: p.instruction[:12],
)
def test_labels_mask_exactly_the_prompt(base, pair):
    tok = base.tokenizer
    ex = finetune.format_pair(tok, pair)
    n_prompt = len(finetune.prompt_ids(tok, pair.instruction))
    assert len(ex.input_ids) == len(ex.labels)
    assert ex.input_ids[0] == tok.bos_token_id
    assert tuple(finetune.prompt_ids(tok, pair.instruction)) == ex.input_ids[:n_prompt]
    assert all(x == IGNORE for x in ex.labels[:n_prompt])
    assert all(x != IGNORE for x in ex.labels[n_prompt:])
    assert ex.labels[n_prompt:] == ex.input_ids[n_prompt:]  # the answer is trained on itself
    assert ex.trained == len(ex.labels) - n_prompt > 0
    trained = [x for x in ex.labels if x != IGNORE]
    assert tok.decode(trained, skip_special_tokens=False) == finetune.answer_text(pair.answer)
    assert tok.decode(ex.input_ids[1:n_prompt], skip_special_tokens=False) == (
        finetune.prompt_text(pair.instruction)
    )
    # the last trained token is the end of turn, which generation stops at
    end = tok.convert_tokens_to_ids(finetune.END_OF_TURN)
    assert trained[-1] == end and trained.count(end) == 1
    assert end in stop_token_ids(tok, base.model)


def test_turn_tokens_are_single_special_tokens_of_the_base(base):
    tok = base.tokenizer
    for name in ("<start_of_turn>", "<end_of_turn>"):
        ids = tok(name, add_special_tokens=False)["input_ids"]
        assert len(ids) == 1 and tok.convert_ids_to_tokens(ids[0]) == name


def test_shown_tokens_mark_trained_and_special(base):
    tok = base.tokenizer
    ex = finetune.format_pair(tok, PAIRS[0])
    shown = finetune.shown_tokens(tok, ex)
    assert len(shown) == len(ex.input_ids)
    assert [s.trained for s in shown] == [lab != IGNORE for lab in ex.labels]
    assert shown[0].special  # <bos>
    assert shown[-1].special and shown[-1].trained  # <end_of_turn>
    assert sum(s.special for s in shown) == 5  # bos, start, end, start (prompt); end (answer)


def test_long_examples_are_cut_to_max_tokens(base):
    tok = base.tokenizer
    pair = Pair("Count.", " ".join(str(i) for i in range(200)))
    ex = finetune.format_pair(tok, pair, max_tokens=20)
    assert len(ex.input_ids) == len(ex.labels) == 20
    n_prompt = len(finetune.prompt_ids(tok, pair.instruction))
    assert ex.trained == 20 - n_prompt


def test_shipped_training_set_fits_and_heldout_is_separate(base):
    tok = base.tokenizer
    train = finetune.read_pairs(finetune.TRAIN_FILE)
    held = finetune.read_pairs(finetune.HELDOUT_FILE)
    assert len(train) == 432 and len(held) == 48
    assert {p.lang for p in train} == {p.lang for p in held} == {"ja", "en"}
    scored = [p for p in held if p.accept]  # definitions, lists, chat... are not scored
    assert 20 <= len(scored) < len(held)
    assert all(finetune.is_correct(p.answer, p.accept) for p in scored)  # the reference passes
    assert not {p.instruction for p in train} & {p.instruction for p in held}
    for p in train:  # nothing is cut: every example keeps its end-of-turn token
        ex = finetune.format_pair(tok, p)
        full = len(finetune.prompt_ids(tok, p.instruction)) + len(
            tok(finetune.answer_text(p.answer), add_special_tokens=False)["input_ids"]
        )
        assert full <= finetune.config.FT_MAX_TOKENS, p.id
        assert len(ex.input_ids) == full


# --- 3. CHAT_TEMPLATE -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "question", ["イギリスの首都は？", "What is the capital of England?", "a\nb 🙂"]
)
def test_chat_template_renders_prompt_text(question):
    tok = loading.load_tokenizer("gemma-3-270m-sft")
    assert tok.chat_template == finetune.CHAT_TEMPLATE
    rendered = tok.apply_chat_template(
        [{"role": "user", "content": question}], tokenize=False, add_generation_prompt=True
    )
    assert rendered == "<bos>" + finetune.prompt_text(question)
    base_tok = loading.load_tokenizer("gemma-3-270m")
    assert base_tok is not tok
    assert not getattr(base_tok, "chat_template", None)  # the base is still a plain base


def test_chat_template_ids_equal_prompt_ids():
    tok = loading.load_tokenizer("gemma-3-270m-sft")
    out = tok.apply_chat_template(
        [{"role": "user", "content": PROMPT}], tokenize=True, add_generation_prompt=True
    )
    ids = out["input_ids"] if hasattr(out, "keys") else out
    ids = ids[0] if ids and isinstance(ids[0], list) else ids
    assert [int(i) for i in ids] == finetune.prompt_ids(tok, PROMPT)


# --- 4. save -> load -------------------------------------------------------------------------------
def test_saved_adapter_loads_back_with_the_same_logits(base, tmp_path):
    from peft import PeftModel

    tok = base.tokenizer
    before = _logits(base.model, tok)
    settings = _settings(steps=3, rank=4)
    with finetune.attached(base.model, settings) as m:
        _losses(m, tok, settings)
        trained = _logits(m, tok)
        out = finetune.save_adapter(m, tmp_path / "a", {"x": 1, "名前": "テスト"})
        named = finetune.save_adapter(m, tmp_path / "b", base_name="google/gemma-3-270m")
    assert out == tmp_path / "a"
    for name in ("adapter_config.json", "adapter_model.safetensors", "training.json"):
        assert (out / name).is_file(), name
    assert not (out / "README.md").exists()
    assert json.loads((out / "training.json").read_text(encoding="utf-8")) == {
        "x": 1,
        "名前": "テスト",
    }
    cfg = json.loads((out / "adapter_config.json").read_text(encoding="utf-8"))
    assert cfg["r"] == 4 and cfg["lora_alpha"] == 16
    named_cfg = json.loads((named / "adapter_config.json").read_text(encoding="utf-8"))
    assert named_cfg["base_model_name_or_path"] == "google/gemma-3-270m"
    assert not (named / "training.json").exists() and not (named / "README.md").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b"]  # no temporary left

    assert not torch.allclose(trained, before, atol=1e-3)  # the 3 steps changed the answer
    loaded = PeftModel.from_pretrained(base.model, str(out))
    try:
        again = _logits(loaded, tok)
    finally:
        loaded.unload()
    assert torch.allclose(again, trained, atol=1e-5), (again - trained).abs().max()
    assert torch.equal(_logits(base.model, tok), before)
    assert not _lora_names(base.model)


# --- 5. the base is restored ------------------------------------------------------------------------
def test_attached_leaves_the_base_as_it_was(base):
    tok = base.tokenizer
    before = _logits(base.model, tok)
    weights = {n: p for n, p in base.model.named_parameters()}
    flags = {n: p.requires_grad for n, p in weights.items()}
    settings = _settings(steps=1, learning_rate=1e-2)
    with finetune.attached(base.model, settings) as m:
        assert _lora_names(m)
        assert not any(p.requires_grad for n, p in m.named_parameters() if "lora_" not in n)
        _losses(m, tok, settings)
        assert not torch.allclose(_logits(m, tok), before, atol=1e-3)
    assert not _lora_names(base.model)
    assert type(base.model).__name__ == "Gemma3ForCausalLM"
    assert not base.model.training
    assert torch.equal(_logits(base.model, tok), before)
    after = dict(base.model.named_parameters())
    assert after.keys() == weights.keys()
    assert all(after[n] is w for n, w in weights.items())  # the very same tensors, back in place
    assert {n: p.requires_grad for n, p in after.items()} == flags  # peft froze them; given back


def test_attached_removes_the_layers_when_the_run_fails(base):
    before = _logits(base.model, base.tokenizer)
    with pytest.raises(RuntimeError, match="boom"):
        with finetune.attached(base.model, _settings(steps=1)):
            raise RuntimeError("boom")
    assert not _lora_names(base.model)
    assert torch.equal(_logits(base.model, base.tokenizer), before)


# --- 6. seeds ------------------------------------------------------------------------------------------
def test_same_seed_same_run_other_seed_other_init(base):
    tok = base.tokenizer
    runs = []
    for _ in range(2):
        settings = _settings(steps=2, seed=7)
        with finetune.attached(base.model, settings) as m:
            init = _first_lora_a(m)
            runs.append((init, _losses(m, tok, settings), _lora_state(m)))
    (a_init, a_losses, a_state), (b_init, b_losses, b_state) = runs
    assert torch.equal(a_init, b_init)
    assert a_losses == b_losses
    assert a_state.keys() == b_state.keys() and all(
        torch.equal(a_state[k], b_state[k]) for k in a_state
    )

    with finetune.attached(base.model, _settings(steps=2, seed=8)) as m:
        other = _first_lora_a(m)
    assert not torch.equal(other, a_init)


def test_attached_does_not_touch_the_global_rng(base):
    state = torch.random.get_rng_state()
    with finetune.attached(base.model, _settings(steps=1, seed=3)):
        pass
    assert torch.equal(torch.random.get_rng_state(), state)


# --- 7. parameter counts --------------------------------------------------------------------------------
@pytest.mark.parametrize("rank", [8, 4])
def test_lora_numbers_equal_peft_count(base, rank):
    breakdown = hub_config.count_from_config(hub_config.read_config("gemma-3-270m"))[1]
    numbers = finetune.lora_numbers(breakdown, rank)
    total = sum(p.numel() for p in base.model.parameters())
    with finetune.attached(base.model, _settings(steps=1, rank=rank)) as m:
        trainable, all_params = m.get_nb_trainable_parameters()
        wrapped = {n.rsplit(".lora_A", 1)[0] for n, _ in m.named_modules() if n.endswith("lora_A")}
    assert numbers.trainable == trainable
    assert numbers.total == total == all_params - trainable
    assert numbers.layers == len(wrapped) == 126  # 18 layers x 7 linear layers, no lm_head
    assert numbers.rank == rank and numbers.scaling == 16 / rank
    assert 0 < numbers.share < 0.01


# --- 8. bad settings ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("field", "value", "key"),
    [
        ("steps", 0, "ft_steps"),
        ("steps", -1, "ft_steps"),
        ("steps", float("nan"), "ft_steps"),
        ("steps", 10**9, "ft_steps"),
        ("steps", "abc", "ft_steps"),
        ("steps", True, "ft_steps"),
        ("steps", None, "ft_steps"),
        ("steps", 2.5, "ft_steps"),
        ("learning_rate", 0, "ft_lr"),
        ("learning_rate", -1e-3, "ft_lr"),
        ("learning_rate", float("nan"), "ft_lr"),
        ("learning_rate", 1.5, "ft_lr"),
        ("learning_rate", float("inf"), "ft_lr"),
        ("learning_rate", "fast", "ft_lr"),
        ("rank", 0, "ft_rank"),
        ("rank", 257, "ft_rank"),
        ("rank", 3.5, "ft_rank"),
        ("batch_size", 0, "ft_batch"),
        ("batch_size", 17, "ft_batch"),
        ("alpha", 0, "ft_alpha"),
        ("seed", -1, "ft_seed"),
        ("probe_every", -1, "ft_probe_every"),
        ("probe_tokens", 0, "ft_probe_tokens"),
    ],
)
def test_bad_settings_are_refused_with_their_key(field, value, key):
    with pytest.raises(UserError) as err:
        TrainSettings(**{field: value})
    assert err.value.key == key
    assert err.value.params["value"]
    assert str(err.value) == err.value.message


def test_edge_settings_pass_and_are_cleaned():
    s = TrainSettings(learning_rate=1.0, rank=256)
    assert s.learning_rate == 1.0 and s.rank == 256
    s = TrainSettings(steps="12", learning_rate="2e-3", rank=4.0, batch_size=16)
    assert (s.steps, s.learning_rate, s.rank, s.batch_size) == (12, 2e-3, 4, 16)
    assert type(s.steps) is int and type(s.rank) is int
    assert s.scaling == 16 / 4
    assert TrainSettings(steps=finetune.config.FT_MAX_STEPS).steps == finetune.config.FT_MAX_STEPS


# --- 9. reading instruction sets ---------------------------------------------------------------------------
def _line(**obj) -> str:
    return json.dumps(obj, ensure_ascii=False)


GOOD = _line(instruction="日本の首都は？", answer="東京です。")


def _key(data, source="data"):
    with pytest.raises(UserError) as err:
        finetune.parse_pairs(data, source)
    return err.value


def test_parse_pairs_reads_fields_and_skips_blank_lines():
    text = "\n".join(
        [
            "",
            _line(
                instruction=" 富士山の高さは？ ",
                answer="3,776 m",
                lang="ja",
                kind="fact",
                id="x1",
                accept=["3776", 3776],
            ),
            "   ",
            _line(instruction="Hi", answer="Hello!", lang=None),
            "",
        ]
    )
    pairs = finetune.parse_pairs(text.encode("utf-8"))
    assert pairs == (
        Pair("富士山の高さは？", "3,776 m", "ja", "fact", "x1", ("3776", "3776")),
        Pair("Hi", "Hello!"),
    )
    assert finetune.parse_pairs(text) == pairs  # str and bytes alike
    assert finetune.parse_pairs(text.replace("\n", "\r\n").encode()) == pairs


@pytest.mark.parametrize("data", [b"", b"\n\n", b"  \n\t\n \r\n", "", "\n"])
def test_empty_data_is_refused(data):
    assert _key(data).key == "ft_data_empty"


def test_binary_non_utf8_and_too_large_are_refused(monkeypatch):
    assert _key(b"\x00\x01\x02\x03" + GOOD.encode()).key == "ft_data_binary"
    err = _key(b"\xff\xfe\xfa", "mine.jsonl")
    assert err.key == "ft_data_not_utf8" and "mine.jsonl" in str(err)
    monkeypatch.setattr(finetune.config, "FT_MAX_UPLOAD_BYTES", 100)
    err = _key((GOOD + "\n").encode() * 3)
    assert err.key == "ft_data_too_large" and err.params["limit"] == "100"
    assert finetune.parse_pairs(GOOD.encode())  # under the limit


def test_broken_json_names_its_line():
    data = "\n".join([GOOD, GOOD, '{"instruction": "x", "answer": ', GOOD]).encode()
    err = _key(data, "mine.jsonl")
    assert err.key == "ft_data_bad_json"
    assert err.params["line"] == 3
    assert "line 3" in str(err) and "mine.jsonl" in str(err)


def test_blank_lines_count_in_line_numbers():
    err = _key("\n".join([GOOD, "", "not json"]))
    assert err.key == "ft_data_bad_json" and err.params["line"] == 3


@pytest.mark.parametrize(
    ("second", "key"),
    [
        (_line(instruction="質問"), "ft_data_field_missing"),
        (_line(instruction="質問", answer="   "), "ft_data_field_missing"),
        (_line(answer="答え"), "ft_data_field_missing"),
        ("[1, 2]", "ft_data_not_object"),
        ('"just text"', "ft_data_not_object"),
        ("42", "ft_data_not_object"),
        (_line(instruction="質問", answer=42), "ft_data_field_type"),
        (_line(instruction=["a"], answer="b"), "ft_data_field_type"),
        (_line(instruction="質問", answer="答え", lang=1), "ft_data_field_type"),
        ('{"instruction": "\\ud83d", "answer": "b"}', "ft_data_surrogate"),  # a JSON escape
    ],
)
def test_bad_line_is_refused_with_its_line_number(second, key):
    err = _key("\n".join([GOOD, second, GOOD]).encode("utf-8"))
    assert err.key == key
    assert err.params["line"] == 2
    assert "line 2" in str(err)


def test_missing_answer_names_the_field():
    err = _key("\n".join([GOOD, _line(instruction="質問")]))
    assert err.key == "ft_data_field_missing"
    assert err.params["line"] == 2 and err.params["name"] == "answer"


def test_lone_surrogate_in_str_input_is_refused():
    err = _key(GOOD + '\n{"instruction": "a\ud83d", "answer": "b"}')
    assert err.key == "ft_data_surrogate" and err.params["line"] == 2


def test_field_length_and_pair_count_limits(monkeypatch):
    monkeypatch.setattr(finetune.config, "FT_MAX_FIELD_CHARS", 5)
    err = _key(_line(instruction="123456", answer="a"))
    assert err.key == "ft_data_field_long" and err.params["name"] == "instruction"
    monkeypatch.setattr(finetune.config, "FT_MAX_FIELD_CHARS", 1000)
    monkeypatch.setattr(finetune.config, "FT_MAX_PAIRS", 2)
    assert len(finetune.parse_pairs("\n".join([GOOD] * 2))) == 2
    assert _key("\n".join([GOOD] * 3)).key == "ft_data_too_many"


@pytest.mark.parametrize("sep", ["\u2028", "\u2029", "\x85"])
def test_unicode_line_separators_inside_a_string_stay_in_the_string(sep):
    line = json.dumps({"instruction": f"一行目{sep}二行目", "answer": "はい。"}, ensure_ascii=False)
    assert sep in line  # written raw, as valid JSON
    (pair,) = finetune.parse_pairs(line.encode("utf-8"))
    assert pair.instruction == f"一行目{sep}二行目"


def test_read_pairs_of_a_directory_is_unreadable(tmp_path):
    with pytest.raises(UserError) as err:
        finetune.read_pairs(tmp_path)
    assert err.value.key == "ft_data_unreadable"


def test_read_pairs_files(tmp_path, monkeypatch):
    with pytest.raises(UserError) as err:
        finetune.read_pairs(tmp_path / "missing.jsonl")
    assert err.value.key == "ft_data_unreadable"
    assert str(tmp_path) not in str(err.value)  # only the file's name is shown

    bom = tmp_path / "bom.jsonl"
    bom.write_bytes(
        b"\xef\xbb\xbf" + (GOOD + "\n" + _line(instruction="Hi", answer="Hello")).encode()
    )
    pairs = finetune.read_pairs(bom)
    assert [p.instruction for p in pairs] == ["日本の首都は？", "Hi"]

    broken = tmp_path / "broken.jsonl"
    broken.write_text(GOOD + "\n{", encoding="utf-8")
    with pytest.raises(UserError) as err:
        finetune.read_pairs(broken)
    assert err.value.key == "ft_data_bad_json" and "broken.jsonl" in str(err.value)

    monkeypatch.setattr(finetune.config, "FT_MAX_UPLOAD_BYTES", 10)
    with pytest.raises(UserError) as err:
        finetune.read_pairs(bom)
    assert err.value.key == "ft_data_too_large"


# --- 10. atomic save ---------------------------------------------------------------------------------------
class _FailingSave:
    """Writes one file of the adapter, then fails (a full disk, a killed process...)."""

    def save_pretrained(self, path, **kwargs):
        os.makedirs(path)
        with open(os.path.join(path, "adapter_config.json"), "w") as f:
            f.write('{"broken": ')
        raise OSError("No space left on device")


class _GoodSave:
    def save_pretrained(self, path, **kwargs):
        assert kwargs.get("safe_serialization") is True
        os.makedirs(path)
        for name, text in (
            ("adapter_config.json", '{"r": 2}'),
            ("adapter_model.safetensors", "w"),
            ("README.md", "card"),
        ):
            with open(os.path.join(path, name), "w") as f:
                f.write(text)


def _tree(root):
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_save_adapter_failure_keeps_the_old_adapter(tmp_path):
    target = tmp_path / "a"
    target.mkdir()
    (target / "adapter_config.json").write_text('{"r": 8}')
    (target / "adapter_model.safetensors").write_bytes(b"old weights")
    before = _tree(target)
    with pytest.raises(OSError, match="No space"):
        finetune.save_adapter(_FailingSave(), target, {"x": 1})
    assert _tree(target) == before
    assert [p.name for p in tmp_path.iterdir()] == ["a"]  # no .a-* temporary left behind


def test_save_adapter_failure_without_an_old_adapter_leaves_nothing(tmp_path):
    with pytest.raises(OSError):
        finetune.save_adapter(_FailingSave(), tmp_path / "sub" / "a")
    assert [p.name for p in (tmp_path / "sub").iterdir()] == []


def test_save_adapter_replaces_the_old_adapter_whole(tmp_path):
    target = tmp_path / "a"
    target.mkdir()
    (target / "stale.bin").write_bytes(b"from an older run")
    finetune.save_adapter(_GoodSave(), target, {"steps": 3})
    assert sorted(_tree(target)) == [
        "adapter_config.json",
        "adapter_model.safetensors",
        "training.json",
    ]
    assert json.loads((target / "training.json").read_text()) == {"steps": 3}
    assert [p.name for p in tmp_path.iterdir()] == ["a"]


# --- 11. evaluation helpers ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "lang"),
    [
        ("ロンドンです。", "ja"),
        ("富士山の高さは3,776メートルです。", "ja"),
        ("ひらがな", "ja"),
        ("Tokyo は首都", "ja"),  # 3 of 8 letters Japanese: at least 30 %
        ("London is the capital 東", "en"),
        ("London.", "en"),
        ("7 × 8 = 56", "none"),
        ("", "none"),
        ("。、！？", "none"),
    ],
)
def test_text_language(text, lang):
    assert finetune.text_language(text) == lang


@pytest.mark.parametrize(
    ("answer", "accept", "ok"),
    [
        ("高さは３，７７６メートルです。", ["3776"], True),
        ("It is 3,776 m high.", ["3776m"], True),
        ("It is 3 776 m.", ["3776"], True),
        ("ＬＯＮＤＯＮ", ["london"], True),
        ("The capital is London.", ["Paris", "London"], True),
        ("パリです。", ["ロンドン", "London"], False),
        ("3775 m", ["3776"], False),
        ("anything", [""], False),  # an empty accepted string matches nothing
        ("anything", [], False),
    ],
)
def test_is_correct(answer, accept, ok):
    assert finetune.is_correct(answer, accept) is ok


def test_eval_summary_numbers():
    ja = Pair("イギリスの首都は？", "ロンドンです。", "ja", accept=("ロンドン",))
    en = Pair("Capital of France?", "Paris.", "en", accept=("Paris",))
    free = Pair("Say hi.", "Hi!", "en")  # no accept: not scored
    rows = (
        EvalRow(ja, "ロンドンです。", True, 4),  # correct, right language
        EvalRow(en, "パリです。", True, 3),  # wrong language, not "Paris"
        EvalRow(en, "Paris, of course.", False, 32),  # correct, did not stop
        EvalRow(free, "Hello!", True, 1),
    )
    assert [r.correct for r in rows] == [True, False, True, None]
    assert [r.language_ok for r in rows] == [True, False, True, True]
    s = EvalSummary(rows)
    assert s.stops == 0.75
    assert s.language == 0.75
    assert s.scored == 3
    assert s.accuracy == pytest.approx(2 / 3)
    assert s.mean_tokens == 10.0
    assert s.as_dict() == {
        "n": 4,
        "stops": 0.75,
        "language": 0.75,
        "accuracy": 0.6667,
        "scored": 3,
        "mean_new_tokens": 10.0,
    }
    unscored = EvalSummary((rows[-1],))
    assert unscored.scored == 0 and unscored.accuracy == 0.0
    with pytest.raises(ValueError, match="at least one"):
        EvalSummary(())


# --- batches and padding --------------------------------------------------------------------------------------
def _firsts(stream, n):
    return [tuple(e.input_ids[0] for e in b) for b in itertools.islice(stream, n)]


def test_batches_are_whole_shuffled_and_reproducible():
    examples = [Example((i,), (i,)) for i in range(10)]
    first = _firsts(finetune.batches(examples, 4, 0), 20)
    again = _firsts(finetune.batches(examples, 4, 0), 20)
    other = _firsts(finetune.batches(examples, 4, 1), 20)
    assert first == again and first != other
    assert all(len(b) == 4 and len(set(b)) == 4 for b in first)
    assert {i for b in first for i in b} == set(range(10))
    small = [len(b) for b in itertools.islice(finetune.batches(examples[:3], 4, 0), 3)]
    assert small == [3, 3, 3]  # fewer examples than a batch: all of them each time


def test_collate_pads_right_with_ignored_labels():
    batch = [Example((5, 6, 7), (IGNORE, 6, 7)), Example((5,), (IGNORE,))]
    out = finetune.collate(batch, pad_id=0)
    assert out["input_ids"].tolist() == [[5, 6, 7], [5, 0, 0]]
    assert out["labels"].tolist() == [[IGNORE, 6, 7], [IGNORE, IGNORE, IGNORE]]
    assert out["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]


# --- 12. stopping a run ------------------------------------------------------------------------------------
def test_closing_the_generator_stops_the_run(base):
    tok = base.tokenizer
    settings = _settings(steps=20)
    with finetune.attached(base.model, settings) as m:
        gen = finetune.train(m, tok, PAIRS, settings)
        event = next(gen)
        assert isinstance(event, finetune.StepEvent) and event.step == 1
        assert m.training
        state = _lora_state(m)
        gen.close()
        assert not m.training
        with pytest.raises(StopIteration):
            next(gen)
        after = _lora_state(m)
        assert all(torch.equal(after[k], v) for k, v in state.items())  # no further step
        assert all(p.grad is None for p in m.parameters())
        again = _settings(steps=1)
        losses = _losses(m, tok, again)
        assert len(losses) == 1 and math.isfinite(losses[0])
        assert not m.training
    assert not _lora_names(base.model)


def test_probes_come_before_training_every_n_steps_and_at_the_end(base):
    tok = base.tokenizer
    settings = TrainSettings(steps=2, probe_every=2, probe_tokens=2)
    with finetune.attached(base.model, settings) as m:
        events = list(finetune.train(m, tok, PAIRS, settings, probes=["What is 2 + 3?"]))
    kinds = [(type(e).__name__[0], e.step) for e in events]
    # step 2 is both due and the last: answered once, not twice
    assert kinds == [("P", 0), ("S", 1), ("S", 2), ("P", 2)]
    probes = [e for e in events if isinstance(e, finetune.ProbeEvent)]
    assert all(e.question == "What is 2 + 3?" and isinstance(e.answer, str) for e in probes)


# --- 13. generation ------------------------------------------------------------------------------------------
def test_generate_answers_on_the_base(base):
    tok = base.tokenizer
    questions = ["イギリスの首都は？", "What is 2 + 3?"]  # different lengths: left padding
    batched = finetune.generate_answers(base.model, tok, questions, 8, batch_size=2)
    assert len(batched) == len(questions)
    for text, stopped, n in batched:
        assert isinstance(text, str) and isinstance(stopped, bool) and isinstance(n, int)
        assert "\ufffd" not in text
        assert 0 <= n <= 8 and (stopped or n == 8)
    # left padding changes nothing: one at a time gives the same greedy answers
    alone = [finetune.generate_answers(base.model, tok, [q], 8)[0] for q in questions]
    assert alone == batched
    assert not base.model.training


# --- 14. subsets -----------------------------------------------------------------------------------------------
def test_subset_filters_by_language():
    assert finetune.subset(PAIRS, "ja") == PAIRS[:3]
    assert finetune.subset(PAIRS, "en") == PAIRS[3:]
    assert finetune.subset(PAIRS, "all") == PAIRS
    assert finetune.subset((), "ja") == ()


@pytest.mark.parametrize("which", ["fr", "JA", "", None, "../all", 1])
def test_subset_refuses_unknown_names(which):
    with pytest.raises(UserError) as err:
        finetune.subset(PAIRS, which)
    assert err.value.key == "ft_subset_unknown"


# --- the shipped adapter entry -------------------------------------------------------------------------------
@pytest.mark.skipif(
    not (finetune.ADAPTER_DIR / "adapter_config.json").is_file(),
    reason="assets/finetune/adapter/ not built (python scripts/build_adapter.py)",
)
def test_shipped_adapter_entry_loads_offline_at_every_precision():
    try:
        for precision in ("fp32", "bf16", "int8", "nf4"):
            item = loading.load_model("gemma-3-270m-sft", precision)
            assert item.precision == precision and item.key == "gemma-3-270m-sft"
            assert item.tokenizer.chat_template == finetune.CHAT_TEMPLATE
            merged = precision in ("fp32", "bf16")
            assert bool(_lora_names(item.model)) is not merged  # merged at float precisions
            ((text, stopped, n),) = finetune.generate_answers(
                item.model, item.tokenizer, ["イギリスの首都は？"], max_new_tokens=32
            )
            assert isinstance(text, str) and text and "\ufffd" not in text, (precision, text)
            if merged:
                assert stopped, (precision, text, n)
            loading.clear_memory_cache()
    finally:
        loading.clear_memory_cache()
    assert not getattr(loading.load_tokenizer("gemma-3-270m"), "chat_template", None)
