"""llmviz.lane: a fair compute lane, batched next-token views equal to one-row views, shared
results keyed by model object, and a long generation that lets a short request in."""

from __future__ import annotations

import copy
import threading
import time

import pytest
import torch

from llmviz import generation, lane
from llmviz.sampling import SamplingSettings


def _wait_until(cond, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.002)


# --- FairLock ---------------------------------------------------------------------------------
def test_fair_lock_grants_in_arrival_order():
    lock = lane.FairLock()
    order: list[int] = []
    lock.acquire()
    threads = []
    for i in range(6):  # each thread starts waiting only after the previous one is queued
        t = threading.Thread(target=lambda i=i: (lock.acquire(), order.append(i), lock.release()))
        t.start()
        threads.append(t)
        _wait_until(lambda i=i: lock.waiting == i + 1)
    lock.release()
    for t in threads:
        t.join(5)
    assert order == [0, 1, 2, 3, 4, 5]
    assert lock.waiting == 0


def test_a_thread_that_asks_again_at_once_cannot_starve_a_waiting_one():
    """A generation releases the lane after a token and asks again immediately: a student
    waiting meanwhile must get it at the next release, not after the generation ends."""
    lock = lane.FairLock()
    rounds = 0
    got_in_after: list[int] = []
    stop = threading.Event()

    def greedy():
        nonlocal rounds
        while not stop.is_set():
            with lock:
                rounds += 1
                time.sleep(0.001)  # one "forward pass"

    g = threading.Thread(target=greedy)
    g.start()
    _wait_until(lambda: rounds >= 5)
    start = rounds
    with lock:
        got_in_after.append(rounds - start)
    stop.set()
    g.join(5)
    assert got_in_after[0] <= 1, got_in_after


def test_fair_lock_is_reentrant_and_refuses_a_foreign_release():
    lock = lane.FairLock()
    with lock, lock:  # the holder may take it again
        assert lock.waiting == 0
    errors = []

    def foreign():
        try:
            lock.release()
        except RuntimeError as e:
            errors.append(e)

    with lock:
        t = threading.Thread(target=foreign)
        t.start()
        t.join(5)
    assert len(errors) == 1
    with lock:  # still usable
        pass


def test_a_waiting_request_is_told_its_place_and_then_its_turn(monkeypatch):
    """Two turns ahead (the holder and one waiter): the reporter hears 2, then 1, then its turn
    (0); the estimate is places x the measured mean turn."""
    monkeypatch.setattr(lane.config, "LANE_REPORT_AFTER_S", 0.0)
    monkeypatch.setattr(lane.config, "LANE_REPORT_EVERY_S", 0.02)
    lock = lane.FairLock()
    heard: list[tuple[int, float]] = []
    release_first, release_second = threading.Event(), threading.Event()

    def hold(until):
        with lock:
            until.wait(10)

    first = threading.Thread(target=hold, args=(release_first,))
    first.start()
    _wait_until(lambda: lock._owner is not None)
    second = threading.Thread(target=hold, args=(release_second,))
    second.start()
    _wait_until(lambda: lock.waiting == 1)

    def reported():
        with lane.reporting(lambda ahead, eta: heard.append((ahead, eta))), lock:
            pass

    me = threading.Thread(target=reported)
    me.start()
    _wait_until(lambda: heard[:1] and heard[0][0] == 2)
    assert heard[0][1] == pytest.approx(2 * lock.turn_s)
    release_first.set()
    _wait_until(lambda: any(a == 1 for a, _ in heard))
    release_second.set()
    me.join(5)
    first.join(5)
    second.join(5)
    assert [a for a, _ in heard] == [2, 1, 0]
    assert heard[-1] == (0, 0.0)
    assert lock.waiting == 0 and lock._owner is None


def test_a_short_wait_is_not_reported_and_a_failing_reporter_does_not_lose_the_turn(monkeypatch):
    lock = lane.FairLock()
    heard = []
    with lane.reporting(lambda a, e: heard.append(a)), lock:  # no wait at all: nothing to say
        pass
    assert heard == []

    monkeypatch.setattr(lane.config, "LANE_REPORT_AFTER_S", 0.0)
    monkeypatch.setattr(lane.config, "LANE_REPORT_EVERY_S", 0.02)

    def broken(ahead, eta):
        raise RuntimeError("progress bar gone")

    got = threading.Event()

    def waiter():
        with lane.reporting(broken), lock:
            got.set()

    with lock:
        t = threading.Thread(target=waiter)
        t.start()
        time.sleep(0.1)  # several report attempts, each failing
    assert got.wait(5)
    t.join(5)


def test_the_turn_estimate_follows_measured_hold_times():
    lock = lane.FairLock()
    for _ in range(30):
        with lock:
            time.sleep(0.01)
    assert 0.008 < lock.turn_s < 0.05


def test_a_shared_model_waits_for_the_lane_and_a_failing_pass_releases_it(tiny_llama):
    import copy

    model = copy.deepcopy(tiny_llama)
    lock = lane.FairLock()
    lane.share(model, lock)
    lane.share(model, lock)  # idempotent: one pair of hooks
    ids = torch.tensor([[1, 5, 7]])
    done = threading.Event()
    with lock:
        t = threading.Thread(target=lambda: (model(input_ids=ids), done.set()))
        t.start()
        assert not done.wait(0.3)  # blocked: this thread holds the lane
    assert done.wait(10)
    t.join(5)
    with pytest.raises(Exception):  # noqa: B017 - any failure inside forward
        model(input_ids=torch.tensor([[10**6]]))
    finished = threading.Event()
    threading.Thread(target=lambda: (model(input_ids=ids), finished.set())).start()
    assert finished.wait(10)  # the failed pass gave the lane back


# --- batched views ----------------------------------------------------------------------------
PROMPTS = ["The cat sat", "Hello there, my friend, how", "a", "猫が好きです。犬も"]


def _one_row(model, ids):
    with torch.inference_mode():
        out = model(input_ids=torch.tensor([ids]), use_cache=True)
    return out.logits[0, -1].float()


@pytest.mark.parametrize("name", ["tiny_llama", "tiny_gemma3"])
def test_a_padded_batch_equals_one_row_passes(request, tiny_tokenizer, name):
    model = request.getfixturevalue(name)
    rows = [tuple(tiny_tokenizer(p)["input_ids"]) for p in PROMPTS]
    assert len({len(r) for r in rows}) > 1  # different lengths: real left padding
    batched = lane._last_logits(model, rows, tiny_tokenizer.pad_token_id)
    for ids, got in zip(rows, batched, strict=True):
        want = _one_row(model, list(ids))
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-4)
        assert int(got.argmax()) == int(want.argmax())


def _concurrent_views(model, tokenizer, prompts):
    """Every prompt asked by its own thread while the lane is held, then released at once."""
    b = lane.Batcher(model, tokenizer.pad_token_id, lock=lane.FairLock())
    results: dict[str, torch.Tensor] = {}
    with b.lock:
        threads = [
            threading.Thread(
                target=lambda p=p: results.__setitem__(p, b(tokenizer(p)["input_ids"]))
            )
            for p in prompts
        ]
        for t in threads:
            t.start()
        _wait_until(lambda: b.lock.waiting == len(prompts))
    for t in threads:
        t.join(30)
    return b, results


def test_concurrent_views_run_as_one_batch_and_are_kept(tiny_llama, tiny_tokenizer):
    prompts = PROMPTS + ["The cat sat"]  # a duplicate is computed once
    b, results = _concurrent_views(tiny_llama, tiny_tokenizer, prompts)
    assert b.forward_passes == 1 and b.rows == len(PROMPTS)
    for p in PROMPTS:
        torch.testing.assert_close(
            results[p], _one_row(tiny_llama, tiny_tokenizer(p)["input_ids"]), atol=1e-5, rtol=1e-4
        )
    again = b(tiny_tokenizer("The cat sat")["input_ids"])
    assert again is results["The cat sat"] and b.forward_passes == 1  # shared, no new pass


def test_results_are_kept_per_model_object(tiny_llama, tiny_gemma3, tiny_tokenizer):
    ids = tiny_tokenizer("The cat sat")["input_ids"]
    a = lane.last_logits(tiny_llama, tiny_tokenizer, ids)
    g = lane.last_logits(tiny_gemma3, tiny_tokenizer, ids)
    assert lane.batcher(tiny_llama, tiny_tokenizer) is not lane.batcher(tiny_gemma3, tiny_tokenizer)
    assert not torch.allclose(a, g)  # never one model's view for another
    torch.testing.assert_close(g, _one_row(tiny_gemma3, ids), atol=1e-5, rtol=1e-4)


def test_the_oldest_views_are_dropped_past_the_limit(tiny_llama, tiny_tokenizer):
    b = lane.Batcher(tiny_llama, tiny_tokenizer.pad_token_id, keep=2, lock=lane.FairLock())
    for p in ["one", "two", "three"]:
        b(tiny_tokenizer(p)["input_ids"])
    assert b.cached(tiny_tokenizer("one")["input_ids"]) is None
    assert b.cached(tiny_tokenizer("three")["input_ids"]) is not None


def test_a_bad_row_fails_alone(tiny_llama, tiny_tokenizer):
    b = lane.Batcher(tiny_llama, tiny_tokenizer.pad_token_id, lock=lane.FairLock())
    good = tiny_tokenizer("The cat sat")["input_ids"]
    out: dict[str, object] = {}

    def ask(name, ids):
        try:
            out[name] = b(ids)
        except Exception as e:  # noqa: BLE001
            out[name] = e

    with b.lock:
        threads = [threading.Thread(target=ask, args=("good", good)),
                   threading.Thread(target=ask, args=("bad", [1, 10**6]))]  # fmt: skip
        for t in threads:
            t.start()
        _wait_until(lambda: b.lock.waiting == 2)
    for t in threads:
        t.join(30)
    assert isinstance(out["bad"], Exception)
    torch.testing.assert_close(out["good"], _one_row(tiny_llama, good), atol=1e-5, rtol=1e-4)


def test_sampling_from_a_shared_view_draws_what_a_one_row_run_draws(tiny_llama, tiny_tokenizer):
    """A session started from a shared (batched) view and one computed alone: same tokens."""
    settings = SamplingSettings(temperature=1.0, top_k=50)
    alone = generation.generate_ids(tiny_llama, tiny_tokenizer, "The cat", settings, 12, seed=3)
    lane.last_logits(tiny_llama, tiny_tokenizer, tiny_tokenizer("The cat")["input_ids"])  # kept
    shared = generation.generate_ids(tiny_llama, tiny_tokenizer, "The cat", settings, 12, seed=3)
    assert shared == alone


@pytest.mark.slow
@pytest.mark.parametrize("fixture", ["gemma", "smollm"])
def test_packaged_models_batched_views_equal_one_row_views(request, fixture):
    loaded = request.getfixturevalue(fixture)
    tok, model = loaded.tokenizer, loaded.model
    prompts = ["富士山の高さは", "The capital of England is", "昔々、あるところに", "1, 2, 3,"]
    rows = [tuple(tok(p)["input_ids"]) for p in prompts]
    batched = lane._last_logits(model, rows, tok.pad_token_id or 0)
    for ids, got in zip(rows, batched, strict=True):
        want = lane._last_logits(model, [ids], 0)[0]
        # bf16 weights: a padded batch rounds differently; the distributions must agree
        p, q = torch.softmax(got, -1), torch.softmax(want, -1)
        assert float((p - q).abs().sum()) < 0.05
        assert int(got.argmax()) == int(want.argmax())


# --- fairness ---------------------------------------------------------------------------------
def test_a_long_generation_lets_a_short_request_in_within_one_step(tiny_llama, tiny_tokenizer):
    import copy

    model = copy.deepcopy(tiny_llama)
    lock = lane.FairLock()
    lane.share(model, lock)
    passes: list[str] = []  # who ran each forward pass, in order
    model.register_forward_pre_hook(lambda m, a: passes.append(threading.current_thread().name))
    stop = threading.Event()
    settings = SamplingSettings(temperature=1.0, top_k=0)

    def long_generation():
        decoder = generation.Decoder(model, tiny_tokenizer, "Once upon a time")
        rng = torch.Generator().manual_seed(0)
        for _ in generation.stream(decoder, settings, 200, rng, stop):
            time.sleep(0)

    gen = threading.Thread(target=long_generation, name="long")
    gen.start()
    _wait_until(lambda: passes.count("long") >= 10)
    before = len(passes)
    b = lane.Batcher(model, tiny_tokenizer.pad_token_id, lock=lock)
    b(tiny_tokenizer("a short question")["input_ids"])  # this thread: "MainThread"
    stop.set()
    gen.join(30)
    mine = passes.index(threading.current_thread().name, before)
    assert passes[before:mine].count("long") <= 1, passes[before : mine + 1]


# --- other shared results ---------------------------------------------------------------------
class _Model:
    """Any object that can be weakly referenced stands for a model here."""


def test_shared_computes_once_for_concurrent_identical_requests():
    model = _Model()
    calls = []
    gate = threading.Event()

    def compute():
        calls.append(1)
        gate.wait(5)
        return ("result", len(calls))

    out = []
    threads = [threading.Thread(target=lambda: out.append(lane.shared(model, "k", compute)))
               for _ in range(8)]  # fmt: skip
    for t in threads:
        t.start()
    _wait_until(lambda: len(calls) == 1)
    time.sleep(0.05)
    gate.set()
    for t in threads:
        t.join(5)
    assert calls == [1] and out == [("result", 1)] * 8
    assert lane.shared(model, "k", lambda: 1 / 0) == ("result", 1)  # kept


def test_shared_keeps_models_apart_and_forgets_errors():
    a, b = _Model(), _Model()
    assert lane.shared(a, "k", lambda: "a") == "a"
    assert lane.shared(b, "k", lambda: "b") == "b"  # same key, other model: its own result
    with pytest.raises(ZeroDivisionError):
        lane.shared(a, "bad", lambda: 1 / 0)
    assert lane.shared(a, "bad", lambda: "fixed") == "fixed"  # a failure is not remembered
    for i in range(5):
        lane.shared(a, i, lambda i=i: i, keep=3)
    assert lane.shared(a, 0, lambda: "again", keep=3) == "again"  # dropped past the limit


# --- batched decoding steps -------------------------------------------------------------------
def _prefilled(model, tokenizer, prompt):
    """A one-row DynamicCache after ``prompt`` and the prompt's last token, as a Decoder has."""
    ids = tokenizer(prompt)["input_ids"]
    if len(ids) < 2:
        ids = [tokenizer.bos_token_id, *ids]
    with torch.inference_mode():
        out = model(input_ids=torch.tensor([ids[:-1]]), use_cache=True)
    return out.past_key_values, ids[-1]


def _steps_alone(model, cache, tokens):
    logits = []
    for t in tokens:
        row, cache = lane._one_step(model, cache, t)
        logits.append(row)
    return logits, cache


@pytest.mark.parametrize("name", ["tiny_llama", "tiny_gemma3"])
def test_batched_decoding_steps_equal_one_row_steps(request, tiny_tokenizer, name):
    """Rows of different lengths stepped together three times: every row's logits and cache
    equal the same steps run alone (left padding, mask and positions as generate batches)."""
    model = request.getfixturevalue(name)
    rows = [_prefilled(model, tiny_tokenizer, p) for p in PROMPTS]
    assert len({c.get_seq_length() for c, _ in rows}) > 1  # real left padding
    follow = [[5, 17, 9], [3, 3, 3], [40, 2, 11], [7, 30, 1]]
    want = [_steps_alone(model, _prefilled(model, tiny_tokenizer, p)[0], [t, *f[:2]])
            for p, (_, t), f in zip(PROMPTS, rows, follow, strict=True)]  # fmt: skip
    state = [(c, t) for c, t in rows]
    got: list[list[torch.Tensor]] = [[] for _ in rows]
    for k in range(3):
        out = lane._batched_step(model, state)
        for i, (logits, cache) in enumerate(out):
            got[i].append(logits)
            state[i] = (cache, follow[i][k])
    for i, (w_logits, w_cache) in enumerate(want):
        for g, w in zip(got[i], w_logits, strict=True):
            torch.testing.assert_close(g, w, atol=1e-5, rtol=1e-4)
        for (gk, gv, *_), (wk, wv, *_) in zip(state[i][0], w_cache, strict=True):
            assert gk.shape == wk.shape
            torch.testing.assert_close(gk, wk, atol=1e-5, rtol=1e-4)
            torch.testing.assert_close(gv, wv, atol=1e-5, rtol=1e-4)


def _stepped_together(stepper, calls):
    """Every (cache, token, owner) asked by its own thread while the lane is held."""
    out: dict[int, object] = {}

    def ask(i, cache, token, owner):
        try:
            out[i] = stepper(cache, token, owner)
        except Exception as e:  # noqa: BLE001
            out[i] = e

    with stepper.lock:
        threads = [threading.Thread(target=ask, args=(i, *c)) for i, c in enumerate(calls)]
        for t in threads:
            t.start()
        # every step filed; one caller (the leader) waits for the lane on behalf of all
        _wait_until(lambda: stepper.pending == len(calls) and stepper.lock.waiting == 1)
    for t in threads:
        t.join(30)
    return out


def test_concurrent_steps_run_as_one_pass_and_a_bad_row_fails_alone(tiny_llama, tiny_tokenizer):
    stepper = lane.Stepper(tiny_llama, lock=lane.FairLock(), gather_s=0)
    rows = [_prefilled(tiny_llama, tiny_tokenizer, p) for p in PROMPTS]
    out = _stepped_together(stepper, [(c, t, i) for i, (c, t) in enumerate(rows)])
    assert stepper.forward_passes == 1 and stepper.rows == len(PROMPTS)
    for i, p in enumerate(PROMPTS):
        c, t = _prefilled(tiny_llama, tiny_tokenizer, p)
        torch.testing.assert_close(out[i][0], lane._one_step(tiny_llama, c, t)[0],
                                   atol=1e-5, rtol=1e-4)  # fmt: skip

    stepper = lane.Stepper(tiny_llama, lock=lane.FairLock(), gather_s=0)
    rows = [_prefilled(tiny_llama, tiny_tokenizer, p) for p in PROMPTS[:2]]
    out = _stepped_together(stepper, [(rows[0][0], rows[0][1], 0), (rows[1][0], 10**6, 1)])
    assert isinstance(out[1], Exception)  # a token outside the vocabulary
    c, t = _prefilled(tiny_llama, tiny_tokenizer, PROMPTS[0])
    torch.testing.assert_close(out[0][0], lane._one_step(tiny_llama, c, t)[0],
                               atol=1e-5, rtol=1e-4)  # fmt: skip


def test_rows_past_a_sliding_window_step_alone_and_exactly(tiny_tokenizer, tiny_gemma3):
    """Gemma 3's sliding-window layers trim their cache once the text outgrows the window: such
    a row cannot be stacked with others, so it steps alone (the plain step, bit for bit)."""
    cfg = copy.deepcopy(tiny_gemma3.config)
    cfg.sliding_window, cfg.layer_types = 6, ["sliding_attention", "full_attention"]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)  # fixed random weights, without touching other tests' generators
        model = type(tiny_gemma3)(cfg).eval()
    short = _prefilled(model, tiny_tokenizer, "a")
    long = _prefilled(model, tiny_tokenizer, "Hello there, my friend, how are you")
    assert lane._stackable(model, short[0]) and not lane._stackable(model, long[0])
    stepper = lane.Stepper(model, lock=lane.FairLock(), gather_s=0)
    out = _stepped_together(stepper, [(*short, 0), (*long, 1)])
    assert stepper.forward_passes == 2  # the long row could not be stacked with the short one
    c, t = _prefilled(model, tiny_tokenizer, "Hello there, my friend, how are you")
    assert torch.equal(out[1][0], lane._one_step(model, c, t)[0])  # the plain step, exactly
    c, t = _prefilled(model, tiny_tokenizer, "a")
    torch.testing.assert_close(out[0][0], lane._one_step(model, c, t)[0], atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("name", ["tiny_llama", "tiny_gemma3"])
def test_concurrent_streams_draw_exactly_what_each_draws_alone(request, tiny_tokenizer, name):
    """Six students generate at once, each with their own settings and seed: the batched steps
    give every one of them the tokens they get alone (float32)."""
    import copy

    model = copy.deepcopy(request.getfixturevalue(name))  # its own stepper, nobody else's steps
    students = [(p, SamplingSettings(temperature=t, top_k=k), seed)
                for p, t, k, seed in [("The cat sat", 1.0, 50, 1), ("Hello there, my", 1.3, 0, 2),
                                      ("a", 0.7, 10, 3), ("猫が好きです。犬も", 1.0, 0, 4),
                                      ("The cat sat", 1.0, 50, 5), ("b c", 0.0, 0, 6)]]  # fmt: skip
    alone = [generation.generate_ids(model, tiny_tokenizer, p, s, 24, seed) for p, s, seed in students]
    together: dict[int, list[int]] = {}
    start = threading.Barrier(len(students))

    def run(i, p, s, seed):
        start.wait()
        together[i] = generation.generate_ids(model, tiny_tokenizer, p, s, 24, seed)

    threads = [threading.Thread(target=run, args=(i, *st)) for i, st in enumerate(students)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert [together[i] for i in range(len(students))] == alone


def _students_at_once(model, tokenizer, students, n):
    together: dict[int, list[int]] = {}
    start = threading.Barrier(len(students))

    def run(i, p, s, seed):
        start.wait()
        together[i] = generation.generate_ids(model, tokenizer, p, s, n, seed)

    threads = [threading.Thread(target=run, args=(i, *st)) for i, st in enumerate(students)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return [together[i] for i in range(len(students))]


@pytest.mark.slow
@pytest.mark.parametrize("fixture", ["gemma_fp32", "smollm_fp32"])
def test_packaged_models_concurrent_streams_draw_what_each_draws_alone(request, fixture):
    loaded = request.getfixturevalue(fixture)
    model, tok = loaded.model, loaded.tokenizer
    students = [("富士山の高さは", SamplingSettings(temperature=1.0, top_k=50), 1),
                ("The capital of England is", SamplingSettings(temperature=0.8, top_p=0.9), 2),
                ("昔々、あるところに", SamplingSettings(temperature=1.5, top_k=0), 3),
                ("1, 2, 3,", SamplingSettings(temperature=0), 4)]  # fmt: skip
    alone = [generation.generate_ids(model, tok, p, s, 16, seed) for p, s, seed in students]
    stepper = lane._steppers[model]
    passes, rows = stepper.forward_passes, stepper.rows
    assert _students_at_once(model, tok, students, 16) == alone
    assert stepper.rows - rows == sum(len(a) for a in alone)
    assert stepper.forward_passes - passes < stepper.rows - rows  # some steps did run together


@pytest.mark.slow
@pytest.mark.parametrize("fixture", ["gemma", "smollm"])
def test_packaged_models_batched_steps_agree_with_one_row_steps_in_bf16(request, fixture):
    loaded = request.getfixturevalue(fixture)
    model, tok = loaded.model, loaded.tokenizer
    prompts = ["富士山の高さは", "The capital of England is", "昔々、あるところに", "1, 2, 3,"]
    batched = lane._batched_step(model, [_prefilled(model, tok, p) for p in prompts])
    for p, (got, _) in zip(prompts, batched, strict=True):
        want = lane._one_step(model, *_prefilled(model, tok, p))[0]
        pr, q = torch.softmax(got, -1), torch.softmax(want, -1)
        assert float((pr - q).abs().sum()) < 0.1  # bf16 rounding, not a different distribution
        assert int(got.argmax()) == int(want.argmax())
