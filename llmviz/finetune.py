"""Instruction tuning with LoRA: the data, the exact training text, the loop, the adapter.

A base model only continues text. Instruction tuning shows it (instruction, answer) pairs wrapped
in a turn format and trains it, with the loss counted **only on the answer tokens**, to produce
the answer and then the end-of-turn token. LoRA (through ``peft``) freezes every weight of the
base and learns a low-rank update ``W + (alpha / r) * B @ A`` for each linear layer instead, so a
270M-parameter model trains ~1.9M parameters.

This module knows nothing about the UI:

* ``read_pairs`` / ``parse_pairs``: our JSONL instruction sets, checked line by line;
* ``format_pair``: the token ids the model sees, with labels ``-100`` on the prompt (masked);
* ``TrainSettings``: steps, learning rate, rank... checked with ``llmviz.checks``;
* ``lora_config`` / ``lora_numbers``: the LoRA set-up and its parameter count;
* ``attached``: a base model with fresh LoRA layers for one run, removed again afterwards;
* ``train``: the loop itself, a generator of ``StepEvent`` / ``ProbeEvent`` (stop = close it);
* ``save_adapter``: peft's own format, written atomically;
* ``memory_table``: full fine-tuning vs LoRA vs QLoRA memory from the memory module's numbers.

Gemma 3's turn format (``<start_of_turn>user ... <end_of_turn>`` / ``<start_of_turn>model``) is
used; its tokens exist in the packaged base vocabulary, which has no chat template of its own, so
``CHAT_TEMPLATE`` supplies one that renders exactly ``prompt_text``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import random
import shutil
import tempfile
import time
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmviz import checks, config, library, memory
from llmviz.errors import UserError
from llmviz.tokens import readable_decode, stop_token_ids

# --- the turn format ---------------------------------------------------------------------------
USER_START = "<start_of_turn>user\n"
MODEL_START = "<start_of_turn>model\n"
END_OF_TURN = "<end_of_turn>"

#: A Jinja chat template that renders ``bos + prompt_text(question)`` for one user turn (and the
#: model's earlier turns, for completeness). Written for llmviz after Gemma 3's documented format.
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{% set role = 'model' if message['role'] == 'assistant' else message['role'] %}"
    "<start_of_turn>{{ role }}\n{{ message['content'] }}<end_of_turn>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
)


def prompt_text(instruction: str) -> str:
    """What precedes the answer (``<bos>`` excluded: the tokenizer's own id is put in front).

    >>> prompt_text("富士山の高さは？")
    '<start_of_turn>user\\n富士山の高さは？<end_of_turn>\\n<start_of_turn>model\\n'
    """
    return f"{USER_START}{instruction}{END_OF_TURN}\n{MODEL_START}"


def answer_text(answer: str) -> str:
    """The trained part: the answer and the end-of-turn token that teaches the model to stop."""
    return f"{answer}{END_OF_TURN}"


# --- the data ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Pair:
    instruction: str
    answer: str
    lang: str = ""
    kind: str = ""
    id: str = ""
    accept: tuple[str, ...] = ()  # held-out only: substrings that make a short answer correct


def _field(obj: dict[str, Any], name: str, line: int, source: str, required: bool) -> str:
    value = obj.get(name, "")
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise UserError(
            f"{source}, line {line}: '{name}' must be text, not {type(value).__name__}.",
            key="ft_data_field_type",
            source=source,
            line=line,
            name=name,
        )
    if required and not value.strip():
        raise UserError(
            f"{source}, line {line}: the field '{name}' is missing or empty. Each line needs "
            '{"instruction": "...", "answer": "..."}.',
            key="ft_data_field_missing",
            source=source,
            line=line,
            name=name,
        )
    if len(value) > config.FT_MAX_FIELD_CHARS:
        raise UserError(
            f"{source}, line {line}: '{name}' is {len(value):,} characters long; the limit is "
            f"{config.FT_MAX_FIELD_CHARS:,}. Shorten it.",
            key="ft_data_field_long",
            source=source,
            line=line,
            name=name,
            n=f"{len(value):,}",
            limit=f"{config.FT_MAX_FIELD_CHARS:,}",
        )
    try:
        checks.utf8(value)
    except UserError:
        raise UserError(
            f"{source}, line {line}: '{name}' holds a broken character (a lone surrogate).",
            key="ft_data_surrogate",
            source=source,
            line=line,
            name=name,
        ) from None
    return value.strip()


def parse_pairs(data: bytes | str, source: str = "data") -> tuple[Pair, ...]:
    """Pairs from JSON Lines: one ``{"instruction": ..., "answer": ...}`` object per line
    (``lang``, ``kind``, ``id``, ``accept`` optional; blank lines skipped).

    Refused with a message naming the line: empty data, binary data, broken JSON, a line that
    is not an object, a missing or empty field, too many pairs.

    >>> parse_pairs('{"instruction": "1 + 1 は？", "answer": "2 です。"}')[0].answer
    '2 です。'
    >>> parse_pairs('{"instruction": "hi"}', "mine.jsonl")
    Traceback (most recent call last):
      ...
    llmviz.errors.UserError: mine.jsonl, line 1: the field 'answer' is missing or empty. Each line needs {"instruction": "...", "answer": "..."}.
    """
    if isinstance(data, bytes):
        if len(data) > config.FT_MAX_UPLOAD_BYTES:
            raise UserError(
                f"{source} is {len(data):,} bytes; the limit is {config.FT_MAX_UPLOAD_BYTES:,}. "
                "Use a smaller instruction set.",
                key="ft_data_too_large",
                source=source,
                n=f"{len(data):,}",
                limit=f"{config.FT_MAX_UPLOAD_BYTES:,}",
            )
        if b"\x00" in data[:65536]:
            raise UserError(
                f"{source} looks like a binary file, not text. Upload a UTF-8 .jsonl file.",
                key="ft_data_binary",
                source=source,
            )
        try:
            data = data.decode("utf-8-sig")
        except UnicodeDecodeError as err:
            raise UserError(
                f"{source} is not UTF-8 text (byte {err.start:,}). Save it as UTF-8 .jsonl.",
                key="ft_data_not_utf8",
                source=source,
                pos=f"{err.start:,}",
            ) from None
    pairs: list[Pair] = []
    for number, raw in enumerate(data.split("\n"), start=1):  # not splitlines: JSON allows U+2028 raw
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
        except ValueError as err:
            raise UserError(
                f"{source}, line {number}: not valid JSON ({str(err)[:80]}). Each line must be "
                'one object like {"instruction": "...", "answer": "..."}.',
                key="ft_data_bad_json",
                source=source,
                line=number,
            ) from None
        if not isinstance(obj, dict):
            raise UserError(
                f"{source}, line {number}: expected an object with 'instruction' and 'answer'.",
                key="ft_data_not_object",
                source=source,
                line=number,
            )
        accept = obj.get("accept") or []
        pairs.append(
            Pair(
                instruction=_field(obj, "instruction", number, source, True),
                answer=_field(obj, "answer", number, source, True),
                lang=_field(obj, "lang", number, source, False),
                kind=_field(obj, "kind", number, source, False),
                id=_field(obj, "id", number, source, False),
                accept=tuple(str(a) for a in accept) if isinstance(accept, list) else (),
            )
        )
        if len(pairs) > config.FT_MAX_PAIRS:
            raise UserError(
                f"{source} has more than {config.FT_MAX_PAIRS:,} pairs; the limit is "
                f"{config.FT_MAX_PAIRS:,}.",
                key="ft_data_too_many",
                source=source,
                limit=f"{config.FT_MAX_PAIRS:,}",
            )
    if not pairs:
        raise UserError(
            f"{source} holds no pairs. Each line must be "
            '{"instruction": "...", "answer": "..."}.',
            key="ft_data_empty",
            source=source,
        )
    return tuple(pairs)


def read_pairs(path: str | Path) -> tuple[Pair, ...]:
    """``parse_pairs`` of a file (its size checked before it is read)."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError:
        raise UserError(
            f"Cannot read the file {path.name}. Upload it again.",
            key="ft_data_unreadable",
            source=path.name,
        ) from None
    if size > config.FT_MAX_UPLOAD_BYTES:
        raise UserError(
            f"{path.name} is {size:,} bytes; the limit is {config.FT_MAX_UPLOAD_BYTES:,}. "
            "Use a smaller instruction set.",
            key="ft_data_too_large",
            source=path.name,
            n=f"{size:,}",
            limit=f"{config.FT_MAX_UPLOAD_BYTES:,}",
        )
    try:
        data = path.read_bytes()
    except OSError:
        raise UserError(
            f"Cannot read the file {path.name}. Upload it again.",
            key="ft_data_unreadable",
            source=path.name,
        ) from None
    return parse_pairs(data, path.name)


TRAIN_FILE = config.ASSETS / "finetune" / "train.jsonl"
HELDOUT_FILE = config.ASSETS / "finetune" / "heldout.jsonl"
ADAPTER_DIR = config.ASSETS / "finetune" / "adapter"
EVAL_FILE = config.ASSETS / "finetune" / "eval.json"


def file_sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


SUBSETS = ("all", "ja", "en")


def subset(pairs: Sequence[Pair], which: str) -> tuple[Pair, ...]:
    """The pairs of one language ("ja", "en") or all of them."""
    which = checks.one_of(
        which, SUBSETS, key="ft_subset_unknown", message="Unknown subset {value}: choose {choices}."
    )
    return tuple(p for p in pairs if which == "all" or p.lang == which)


# --- the exact training text ---------------------------------------------------------------------
IGNORE = -100  # the label transformers' loss skips


@dataclass(frozen=True)
class Example:
    """One pair as the model sees it: ids, and labels (``IGNORE`` where the loss is not counted)."""

    input_ids: tuple[int, ...]
    labels: tuple[int, ...]

    @property
    def trained(self) -> int:
        return sum(1 for x in self.labels if x != IGNORE)


def prompt_ids(tokenizer: Any, instruction: str) -> list[int]:
    """``<bos>`` + the prompt of one instruction: what generation starts from."""
    ids = tokenizer(prompt_text(instruction), add_special_tokens=False)["input_ids"]
    bos = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
    return bos + list(ids)


def format_pair(tokenizer: Any, pair: Pair, max_tokens: int | None = None) -> Example:
    """The ids of one pair and its labels: the prompt masked, the answer (and its end-of-turn
    token) trained. The prompt is tokenized alone, exactly as at generation time, so the answer
    tokens are the ones the model must produce after it."""
    prompt = prompt_ids(tokenizer, pair.instruction)
    answer = list(tokenizer(answer_text(pair.answer), add_special_tokens=False)["input_ids"])
    ids = (prompt + answer)[: max_tokens or config.FT_MAX_TOKENS]
    labels = ([IGNORE] * len(prompt) + answer)[: len(ids)]
    return Example(tuple(int(i) for i in ids), tuple(int(i) for i in labels))


@dataclass(frozen=True)
class ShownToken:
    label: str  # readable (spaces as ␣, split characters as bytes)
    trained: bool
    special: bool


def shown_tokens(tokenizer: Any, example: Example) -> tuple[ShownToken, ...]:
    """The tokens of ``example`` for display, each marked trained or masked."""
    from llmviz.tokens import special_ids, token_labels

    specials = special_ids(tokenizer)
    labels = token_labels(tokenizer, list(example.input_ids))
    return tuple(
        ShownToken(label, lab != IGNORE, tid in specials)
        for label, tid, lab in zip(labels, example.input_ids, example.labels, strict=True)
    )


# --- settings ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class TrainSettings:
    steps: int = config.FT_DEFAULT_STEPS
    learning_rate: float = 1e-3
    rank: int = 8
    alpha: int = 16
    batch_size: int = 4
    seed: int = 0
    probe_every: int = config.FT_DEFAULT_PROBE_EVERY
    probe_tokens: int = config.FT_PROBE_TOKENS
    targets: str = "all-linear"

    def __post_init__(self) -> None:
        c = checks
        object.__setattr__(self, "steps", c.whole(
            self.steps, 1, config.FT_MAX_STEPS, key="ft_steps",
            message="Steps must be a whole number from {lo} to {hi}, not {value}."))
        object.__setattr__(self, "learning_rate", c.real(
            self.learning_rate, 0, 1, lo_open=True, key="ft_lr",
            message="The learning rate must be a number above {lo} and at most {hi}, not "
            "{value} (LoRA usually trains well with 1e-4 to 2e-3)."))
        object.__setattr__(self, "rank", c.whole(
            self.rank, 1, config.FT_MAX_RANK, key="ft_rank",
            message="The LoRA rank must be a whole number from {lo} to {hi}, not {value}."))
        object.__setattr__(self, "alpha", c.whole(
            self.alpha, 1, 4 * config.FT_MAX_RANK, key="ft_alpha",
            message="LoRA alpha must be a whole number from {lo} to {hi}, not {value}."))
        object.__setattr__(self, "batch_size", c.whole(
            self.batch_size, 1, config.FT_MAX_BATCH, key="ft_batch",
            message="The batch size must be a whole number from {lo} to {hi}, not {value}."))
        object.__setattr__(self, "seed", c.whole(
            self.seed, 0, config.SAMPLING_MAX_SEED, key="ft_seed",
            message="The seed must be a whole number from {lo} to {hi}, not {value}."))
        object.__setattr__(self, "probe_every", c.whole(
            self.probe_every, 0, config.FT_MAX_STEPS, key="ft_probe_every",
            message="'Answer every' must be a whole number of steps from {lo} to {hi}, not "
            "{value}."))
        object.__setattr__(self, "probe_tokens", c.whole(
            self.probe_tokens, 1, config.MAX_NEW_TOKENS, key="ft_probe_tokens",
            message="New tokens must be a whole number from {lo} to {hi}, not {value}."))

    @property
    def scaling(self) -> float:
        """LoRA's update multiplier alpha / r."""
        return self.alpha / self.rank


def lora_config(settings: TrainSettings) -> Any:
    library.ready("peft")
    from peft import LoraConfig

    return LoraConfig(
        r=settings.rank,
        lora_alpha=settings.alpha,
        lora_dropout=0.0,  # no randomness inside a step: a run is reproducible from its seed
        target_modules=settings.targets,
        task_type="CAUSAL_LM",
    )


@dataclass(frozen=True)
class LoraNumbers:
    rank: int
    alpha: int
    layers: int  # linear layers wrapped (every nn.Linear but the output head)
    trainable: int
    total: int  # the base's parameters

    @property
    def share(self) -> float:
        return self.trainable / self.total if self.total else 0.0

    @property
    def scaling(self) -> float:
        return self.alpha / self.rank


def lora_numbers(breakdown: memory.ParamBreakdown, rank: int, alpha: int = 16) -> LoraNumbers:
    """What LoRA over every linear layer adds to a model with this parameter ``breakdown``
    (``memory.analytic_breakdown`` / ``hub_config.count_from_config``): ``r * (in + out)`` per
    wrapped layer, as A is r x in and B is out x r. Equal to peft's own count (tested).

    SmolLM2-135M at rank 8: 30 layers x 7 linear layers.
    >>> arch = memory.Architecture(49152, 576, 30, 9, 3, 64, 1536, True)
    >>> n = lora_numbers(memory.analytic_breakdown(arch), 8)
    >>> n.layers, n.trainable, f"{n.share:.2%}"
    (210, 2442240, '1.82%')
    """
    trainable = sum(g.count * rank * (g.in_features + g.out_features) for g in breakdown.linear)
    layers = sum(g.count for g in breakdown.linear)
    return LoraNumbers(rank, alpha, layers, trainable, breakdown.total)


# --- memory: full fine-tuning vs LoRA vs QLoRA -----------------------------------------------------
@dataclass(frozen=True)
class MemoryRow:
    method: str  # "full" | "lora" | "qlora"
    weights: float  # bytes
    gradients: float
    optimizer: float  # Adam: two fp32 states per trained parameter

    @property
    def total(self) -> float:
        return self.weights + self.gradients + self.optimizer


ADAM_STATE_BYTES = 8  # first and second moment, fp32 each


def memory_table(params: int, trainable: int, weight_bits: float = 16) -> tuple[MemoryRow, ...]:
    """Training memory before activations, with the textbook formula ``params x bits / 8``
    (``memory.weights_bytes``):

    * full: every weight at ``weight_bits``, a gradient of the same size, Adam's two fp32 states;
    * LoRA: frozen weights at ``weight_bits``; the adapter in fp32 with its gradient and Adam;
    * QLoRA: frozen weights in nf4 (``memory.PRECISIONS["nf4"]``), the same adapter.

    >>> rows = memory_table(1_000_000_000, 10_000_000)
    >>> [round(r.total / 1e9, 2) for r in rows]
    [12.0, 2.16, 0.66]
    """
    adapter = memory.weights_bytes(trainable, 32)
    adapter_grad = memory.weights_bytes(trainable, 32)
    nf4 = memory.PRECISIONS["nf4"].bits
    return (
        MemoryRow(
            "full",
            memory.weights_bytes(params, weight_bits),
            memory.weights_bytes(params, weight_bits),
            params * ADAM_STATE_BYTES,
        ),
        MemoryRow(
            "lora",
            memory.weights_bytes(params, weight_bits) + adapter,
            adapter_grad,
            trainable * ADAM_STATE_BYTES,
        ),
        MemoryRow(
            "qlora",
            memory.weights_bytes(params, nf4) + adapter,
            adapter_grad,
            trainable * ADAM_STATE_BYTES,
        ),
    )


# --- one run ---------------------------------------------------------------------------------------
@contextlib.contextmanager
def attached(base: Any, settings: TrainSettings) -> Iterator[Any]:
    """``base`` wrapped in fresh LoRA layers (initialised from ``settings.seed``) for one run; the
    layers are removed on exit, leaving ``base`` as it was (its weights are never changed)."""
    import torch
    library.ready("peft")
    from peft import get_peft_model

    trainable = {name: p.requires_grad for name, p in base.named_parameters()}
    with torch.random.fork_rng(devices=[]):  # seed the init without touching the global RNG
        torch.manual_seed(settings.seed)
        peft_model = get_peft_model(base, lora_config(settings))
    try:
        yield peft_model
    finally:
        peft_model.unload()  # the LoRA layers go; base's own modules return in place
        for name, p in base.named_parameters():  # peft froze them; give back their flags
            p.requires_grad_(trainable.get(name, p.requires_grad))


@dataclass(frozen=True)
class StepEvent:
    step: int
    steps: int
    loss: float
    seconds: float  # since the run started
    tokens: int  # tokens in this step's batch (padding excluded)
    trained_tokens: int


@dataclass(frozen=True)
class ProbeEvent:
    step: int  # 0 = before any training
    question: str
    answer: str
    stopped: bool  # ended with end-of-turn by itself
    seconds: float


def batches(examples: Sequence[Example], batch_size: int, seed: int) -> Iterator[list[Example]]:
    """Endless shuffled batches: every example once per epoch, a new order each epoch."""
    rng = random.Random(seed)
    order = list(range(len(examples)))
    while True:
        rng.shuffle(order)
        if len(order) <= batch_size:
            yield [examples[j] for j in order]
            continue
        for i in range(0, len(order) - batch_size + 1, batch_size):  # whole batches only
            yield [examples[j] for j in order[i : i + batch_size]]


def collate(batch: Sequence[Example], pad_id: int) -> dict[str, Any]:
    """Right-padded tensors: padding has attention 0 and label ``IGNORE``."""
    import torch

    width = max(len(e.input_ids) for e in batch)
    ids = [list(e.input_ids) + [pad_id] * (width - len(e.input_ids)) for e in batch]
    labels = [list(e.labels) + [IGNORE] * (width - len(e.labels)) for e in batch]
    mask = [[1] * len(e.input_ids) + [0] * (width - len(e.input_ids)) for e in batch]
    return {
        "input_ids": torch.tensor(ids),
        "labels": torch.tensor(labels),
        "attention_mask": torch.tensor(mask),
    }


def generate_answers(
    model: Any, tokenizer: Any, questions: Sequence[str], max_new_tokens: int, batch_size: int = 8
) -> list[tuple[str, bool, int]]:
    """Greedy answers (text, stopped by itself, new tokens) to ``questions`` in the turn format,
    batched with left padding (transformers' ``generate``)."""
    import torch

    stops = list(stop_token_ids(tokenizer, model))
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else stops[0]
    out: list[tuple[str, bool, int]] = []
    was_training = model.training
    model.eval()
    try:
        for i in range(0, len(questions), batch_size):
            prompts = [prompt_ids(tokenizer, q) for q in questions[i : i + batch_size]]
            width = max(len(p) for p in prompts)
            ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompts])
            mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
            with torch.no_grad():
                result = model.generate(
                    input_ids=ids.to(model.device),
                    attention_mask=mask.to(model.device),
                    max_new_tokens=max_new_tokens,
                    do_sample=False,
                    eos_token_id=stops,
                    pad_token_id=pad,
                )
            for row in result[:, width:].tolist():
                new: list[int] = []
                stopped = False
                for t in row:
                    if t in stops:
                        stopped = True
                        break
                    new.append(t)
                out.append((readable_decode(tokenizer, new).strip(), stopped, len(new)))
    finally:
        model.train(was_training)
    return out


def train(
    model: Any,
    tokenizer: Any,
    pairs: Sequence[Pair],
    settings: TrainSettings,
    probes: Sequence[str] = (),
) -> Iterator[StepEvent | ProbeEvent]:
    """Train the LoRA layers of ``model`` (a peft model, see ``attached``) on ``pairs``.

    Yields a ``ProbeEvent`` per probe question before the first step and every
    ``settings.probe_every`` steps (and after the last), and a ``StepEvent`` after each step.
    The optimizer is AdamW with a constant learning rate alpha: each step is
    theta <- theta - alpha * (Adam's normalised gradient of L). Closing the generator stops the
    run at once (between two steps).
    """
    import torch

    if not pairs:
        raise UserError("There is nothing to train on: the chosen subset is empty.",
                        key="ft_no_pairs")
    examples = [format_pair(tokenizer, p) for p in pairs]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=settings.learning_rate, weight_decay=0.0)
    start = time.perf_counter()

    def probe(step: int) -> Iterator[ProbeEvent]:
        if not probes:
            return
        answers = generate_answers(model, tokenizer, list(probes), settings.probe_tokens)
        for question, (text, stopped, _) in zip(probes, answers, strict=True):
            yield ProbeEvent(step, question, text, stopped, time.perf_counter() - start)

    stream = batches(examples, settings.batch_size, settings.seed)
    try:
        yield from probe(0)
        model.train()
        for step in range(1, settings.steps + 1):
            batch = next(stream)
            inputs = {k: v.to(model.device) for k, v in collate(batch, pad).items()}
            loss = model(**inputs).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            value = float(loss.detach())
            if not math.isfinite(value):
                raise UserError(
                    f"The loss became {value} at step {step}: the learning rate is too high "
                    "for this model. Lower it (e.g. 1e-3) and start again.",
                    key="ft_loss_diverged",
                    step=step,
                )
            yield StepEvent(
                step,
                settings.steps,
                value,
                time.perf_counter() - start,
                int(inputs["attention_mask"].sum()),
                sum(e.trained for e in batch),
            )
            due = settings.probe_every and step % settings.probe_every == 0
            if due or step == settings.steps:
                yield from probe(step)
                model.train()
    finally:
        model.eval()
        optimizer.zero_grad(set_to_none=True)
        del optimizer


# --- saving -------------------------------------------------------------------------------------
def save_adapter(
    peft_model: Any,
    target: str | Path,
    info: dict[str, Any] | None = None,
    base_name: str | None = None,
) -> Path:
    """Save the LoRA weights in peft's format (``adapter_config.json`` +
    ``adapter_model.safetensors``) plus ``training.json``; written to a temporary sibling and
    renamed into place, so a crash mid-save leaves the old adapter intact. ``base_name`` (a Hub
    id) replaces the local path peft records as the base model."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        peft_model.save_pretrained(work / "a", safe_serialization=True)
        (work / "a" / "README.md").unlink(missing_ok=True)  # peft's generic model-card template
        if base_name:
            cfg_path = work / "a" / "adapter_config.json"
            cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
            cfg["base_model_name_or_path"] = base_name
            cfg_path.write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        if info is not None:
            (work / "a" / "training.json").write_text(
                json.dumps(info, indent=1, ensure_ascii=False) + "\n", encoding="utf-8"
            )
        old = None
        if target.exists():
            old = target.with_name(f".{target.name}-old-{os.getpid()}-{time.time_ns()}")
            os.replace(target, old)
        os.replace(work / "a", target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


# --- evaluation ---------------------------------------------------------------------------------
def text_language(text: str) -> str:
    """"ja" when at least 30 % of the letters are kana or kanji, "en" when there are Latin
    letters, "none" for digits and symbols only.

    >>> text_language("ロンドンです。"), text_language("London."), text_language("7 × 8 = 56")
    ('ja', 'en', 'none')
    """
    ja = latin = 0
    for ch in text:
        code = ord(ch)
        if 0x3040 <= code <= 0x30FF or 0x4E00 <= code <= 0x9FFF or 0x3400 <= code <= 0x4DBF:
            ja += 1
        elif ch.isascii() and ch.isalpha():
            latin += 1
    if not ja + latin:
        return "none"
    return "ja" if ja / (ja + latin) >= 0.3 else "en"


def _normal(text: str) -> str:
    return unicodedata.normalize("NFKC", text).lower().replace(",", "").replace(" ", "")


def is_correct(answer: str, accept: Sequence[str]) -> bool:
    """True when one accepted substring occurs in the answer (NFKC, case, commas and spaces
    ignored: "３，７７６ m" matches "3776m").

    >>> is_correct("高さは３，７７６メートルです。", ["3776"])
    True
    """
    got = _normal(answer)
    return any(_normal(a) and _normal(a) in got for a in accept)


@dataclass(frozen=True)
class EvalRow:
    pair: Pair
    answer: str
    stopped: bool
    new_tokens: int

    @property
    def language_ok(self) -> bool:
        return text_language(self.answer) == text_language(self.pair.answer)

    @property
    def correct(self) -> bool | None:
        return is_correct(self.answer, self.pair.accept) if self.pair.accept else None


@dataclass(frozen=True)
class EvalSummary:
    rows: tuple[EvalRow, ...] = field(repr=False)

    def __post_init__(self) -> None:
        if not self.rows:  # every share below divides by the number of answers
            raise ValueError("an evaluation needs at least one answer")

    @property
    def stops(self) -> float:
        return sum(r.stopped for r in self.rows) / len(self.rows)

    @property
    def language(self) -> float:
        return sum(r.language_ok for r in self.rows) / len(self.rows)

    @property
    def scored(self) -> int:
        return sum(r.correct is not None for r in self.rows)

    @property
    def accuracy(self) -> float:
        scored = [r.correct for r in self.rows if r.correct is not None]
        return sum(scored) / len(scored) if scored else 0.0

    @property
    def mean_tokens(self) -> float:
        return sum(r.new_tokens for r in self.rows) / len(self.rows)

    def as_dict(self) -> dict[str, Any]:
        return {
            "n": len(self.rows),
            "stops": round(self.stops, 4),
            "language": round(self.language, 4),
            "accuracy": round(self.accuracy, 4),
            "scored": self.scored,
            "mean_new_tokens": round(self.mean_tokens, 1),
        }


def evaluate(
    model: Any, tokenizer: Any, items: Sequence[Pair], max_new_tokens: int = 64,
    raw: bool = False,
) -> EvalSummary:
    """Answer every held-out item greedily and score it. ``raw`` gives the question as plain text
    (what a base model sees in the base-vs-instruct tab) instead of the turn format."""
    if raw:
        rows = [
            EvalRow(p, *_raw_answer(model, tokenizer, p.instruction, max_new_tokens))
            for p in items
        ]
    else:
        answers = generate_answers(model, tokenizer, [p.instruction for p in items], max_new_tokens)
        rows = [EvalRow(p, *a) for p, a in zip(items, answers, strict=True)]
    return EvalSummary(tuple(rows))


def _raw_answer(model: Any, tokenizer: Any, question: str, max_new_tokens: int):
    import torch

    stops = list(stop_token_ids(tokenizer, model))
    ids = tokenizer(question, return_tensors="pt")["input_ids"].to(model.device)
    with torch.no_grad():
        result = model.generate(
            input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens,
            do_sample=False, eos_token_id=stops, pad_token_id=stops[0],
        )
    new: list[int] = []
    stopped = False
    for t in result[0, ids.shape[1]:].tolist():
        if t in stops:
            stopped = True
            break
        new.append(t)
    return readable_decode(tokenizer, new).strip(), stopped, len(new)
