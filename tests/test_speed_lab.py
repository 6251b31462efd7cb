"""The "GPU vs CPU" lab: times come from the timer, every method squares correctly, the budgets
bound the work, torch's thread count is restored, crossovers and 百ます計算 are computed, bad
input is explained in English and Japanese; and three calls through the running app's API."""

from __future__ import annotations

import dataclasses
import json
import math
import threading

import gradio as gr
import httpx
import numpy as np
import pytest

from benchmarks import harness
from llmviz import config, speed_lab
from llmviz.config import ASSETS
from llmviz.errors import UserError
from llmviz.speed_lab import Measurement, Skipped
from llmviz.ui import labs_speed
from llmviz.ui.common import error_message

RUN, GRID = "/labs_gpu_cpu", "/labs_hyakumasu"


class Clock:
    """A fake ``perf_counter``: it moves only when a method's call moves it."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def slowed(monkeypatch, clock: Clock, method: str, cost) -> list[int]:
    """Make each call of ``method`` (still computing for real) advance ``clock`` by
    ``cost(size)``; returns the sizes the method was prepared for."""
    real = speed_lab.KERNELS[method]
    prepared: list[int] = []

    def kernel(x):
        ready = real(x)
        prepared.append(int(x.shape[0]))

        def run():
            clock.now += cost(int(x.shape[0]))
            return ready.run()

        return dataclasses.replace(ready, run=run)

    monkeypatch.setitem(speed_lab.KERNELS, method, kernel)
    return prepared


class Lane:
    """A lock that records whether it is held (instead of the app's compute lane)."""

    def __init__(self) -> None:
        self.held = 0
        self.taken = 0

    def __enter__(self):
        self.held += 1
        self.taken += 1
        return self

    def __exit__(self, *exc):
        self.held -= 1


@pytest.fixture
def odd_threads():
    """torch's thread count set to a value no method uses, and put back afterwards: a method
    that forgot to restore its own count would leave 1 or all_threads() behind."""
    import torch

    before = torch.get_num_threads()
    odd = speed_lab.all_threads() + 1
    torch.set_num_threads(odd)
    try:
        yield odd
    finally:
        torch.set_num_threads(before)


# --- the numbers come from the timer -------------------------------------------------------------
def test_seconds_are_what_the_timer_says(monkeypatch):
    clock = Clock()
    slowed(monkeypatch, clock, "numpy", lambda n: 2.0**-9)  # exact in binary
    x = np.arange(10, dtype=np.float32)
    m = speed_lab.time_method("numpy", x, timer=clock, min_time_s=0.02, repeats=3)
    # 1, 2, 5, 10 calls last < 0.02 s on this clock; 20 calls last 20 * 2^-9 = 0.039 s
    assert (m.seconds, m.loops, m.repeats, m.size) == (2.0**-9, 20, 3, 10)


def test_the_fastest_repeat_counts(monkeypatch):
    clock = Clock()
    costs = iter([7.0, 0.5, 0.25, 0.75])  # warm-up (untimed), then three repeats of one call
    slowed(monkeypatch, clock, "python", lambda n: next(costs))
    m = speed_lab.time_method("python", np.ones(10, np.float32), timer=clock, repeats=3)
    assert (m.seconds, m.loops, m.repeats) == (0.25, 1, 3)


def test_measure_reports_the_timer_for_every_size(monkeypatch):
    clock = Clock()
    slowed(monkeypatch, clock, "numpy", lambda n: n * 2.0**-20)
    results = list(
        speed_lab.measure(["numpy"], (10, 100, 1000), 1.0, timer=clock, lock=Lane(), min_time_s=0)
    )
    assert [(r.size, r.seconds) for r in results] == [(n, n * 2.0**-20) for n in (10, 100, 1000)]
    assert all(r.ns_per_number == pytest.approx(2.0**-20 * 1e9) for r in results)


# --- every method computes the squares -----------------------------------------------------------
@pytest.mark.parametrize("method", speed_lab.CPU_METHODS)
def test_every_method_squares_every_number(method):
    x = speed_lab._data(1000, seed=3)
    ready = speed_lab.KERNELS[method](x)
    got = ready.run()
    got = np.asarray(got.numpy() if hasattr(got, "numpy") else got, dtype=np.float32)
    assert np.array_equal(got, x * x)
    idx = np.array([0, 17, 999])
    assert np.array_equal(ready.read(ready.run(), idx), (x * x)[idx])


def test_the_gpu_squares_too_where_there_is_one():
    if not speed_lab.gpu_available():
        pytest.skip("no GPU on this machine")
    x = speed_lab._data(10_000, seed=1)
    ready = speed_lab.KERNELS["cuda"](x)
    assert np.array_equal(ready.read(ready.run(), np.arange(10_000)), x * x)
    m = speed_lab.time_method("cuda", x)
    assert m.seconds > 0


def test_the_data_is_seeded_locally_and_float32():
    a, b = speed_lab._data(500, 0), speed_lab._data(500, 0)
    state = np.random.get_state()[1].copy()
    assert a.dtype == np.float32 and np.array_equal(a, b)
    assert not np.array_equal(a, speed_lab._data(500, 1))
    assert -10 <= a.min() and a.max() < 10
    assert np.array_equal(np.random.get_state()[1], state)  # the global generator untouched


@pytest.mark.parametrize("when", ["always", "after_warm_up"])
def test_a_wrong_method_cannot_report_a_time(monkeypatch, when):
    real = speed_lab.KERNELS["numpy"]
    calls = []

    def broken(x):
        ready = real(x)

        def run():
            calls.append(1)
            out = ready.run()
            return out + 1 if when == "always" or len(calls) > 1 else out

        return dataclasses.replace(ready, run=run)

    monkeypatch.setitem(speed_lab.KERNELS, "numpy", broken)
    with pytest.raises(speed_lab.WrongResult, match="numpy"):
        speed_lab.time_method("numpy", speed_lab._data(100, 0), min_time_s=0)


# --- the budgets bound the work ------------------------------------------------------------------
def test_a_slow_method_stops_growing(monkeypatch):
    clock = Clock()
    prepared = slowed(monkeypatch, clock, "numpy", lambda n: 2.0)
    results = list(
        speed_lab.measure(["numpy"], (10, 100, 1000), 1.0, timer=clock, lock=Lane(),
                          run_budget_s=1e9)
    )  # fmt: skip
    assert prepared == [10]  # nothing larger was even prepared
    first, *rest = results
    assert isinstance(first, Measurement) and first.seconds == 2.0
    assert [(r.reason, r.estimate_s) for r in rest] == [("time", 20.0), ("time", 200.0)]


def test_a_method_under_budget_keeps_growing(monkeypatch):
    clock = Clock()
    prepared = slowed(monkeypatch, clock, "numpy", lambda n: n * 1e-4)
    results = list(
        speed_lab.measure(["numpy"], (10, 100, 1000, 10_000), 0.5, timer=clock, lock=Lane())
    )
    # 10^3 numbers take 0.1 s, so 10^4 would take ~1 s: over the 0.5 s budget
    assert prepared == [10, 100, 1000]
    assert isinstance(results[-1], Skipped) and results[-1].reason == "time"
    assert results[-1].estimate_s == pytest.approx(1.0)


def test_the_click_budget_stops_everything(monkeypatch):
    clock = Clock()
    slowed(monkeypatch, clock, "numpy", lambda n: 1.0)
    slowed(monkeypatch, clock, "torch_1", lambda n: 1.0)
    results = list(
        speed_lab.measure(["numpy", "torch_1"], (10, 100), 100.0, timer=clock, lock=Lane(),
                          run_budget_s=3.0)
    )  # fmt: skip
    assert isinstance(results[0], Measurement)  # 4 calls: the clock is at 4 s
    assert [r.reason for r in results[1:]] == ["run_budget"] * 3


def test_caps_skip_without_preparing(monkeypatch):
    monkeypatch.setattr(config, "SPEED_PYTHON_MAX_SIZE", 100)
    monkeypatch.setattr(config, "SPEED_MAX_BYTES", 7_000)  # python 10^2: 6,400; numpy 10^3: 8,000
    py = slowed(monkeypatch, Clock(), "python", lambda n: 0.0)
    npy = slowed(monkeypatch, Clock(), "numpy", lambda n: 0.0)
    monkeypatch.setitem(speed_lab.KERNELS, "cuda", lambda x: pytest.fail("cuda was prepared"))
    results = list(
        speed_lab.measure(["python", "numpy", "cuda"], (10, 100, 1000), lock=Lane(), gpu=False,
                          min_time_s=0)
    )  # fmt: skip
    reasons = {(r.method, r.size): getattr(r, "reason", "measured") for r in results}
    assert py == [10, 100] and npy == [10, 100]
    assert reasons[("python", 1000)] == "cap" and reasons[("numpy", 1000)] == "memory"
    assert {reasons[("cuda", n)] for n in (10, 100, 1000)} == {"no_gpu"}
    assert not any(isinstance(r, Measurement) and r.method == "cuda" for r in results)


def test_autorange_is_bounded_even_by_a_stopped_clock(monkeypatch):
    monkeypatch.setattr(config, "SPEED_MAX_LOOPS", 1000)
    calls = []
    slowed(monkeypatch, Clock(), "numpy", lambda n: calls.append(n) or 0.0)
    m = speed_lab.time_method("numpy", np.ones(10, np.float32), timer=lambda: 0.0, repeats=2)
    # warm-up, then 1, 2, 5, ..., 500, 1000 calls (1,888) while the clock says 0 s, one repeat more
    assert m.loops == 1000 and len(calls) == 1 + 1888 + 1000
    monkeypatch.setattr(config, "SPEED_MAX_BATCH_ELEMENTS", 100_000)
    m = speed_lab.time_method("numpy", np.ones(10_000, np.float32), timer=lambda: 0.0)
    assert m.loops == 10  # 20 x 10^4 numbers would pass the batch limit


# --- torch's thread count and the lane -----------------------------------------------------------
def test_threads_are_set_while_timing_and_restored(monkeypatch, odd_threads):
    import torch

    seen = {}
    lane = Lane()
    for method in ("torch_1", "torch_all"):
        real = speed_lab.KERNELS[method]

        def spy(x, real=real, method=method):
            ready = real(x)

            def run():
                seen.setdefault(method, set()).add((torch.get_num_threads(), lane.held))
                return ready.run()

            return dataclasses.replace(ready, run=run)

        monkeypatch.setitem(speed_lab.KERNELS, method, spy)
    list(speed_lab.measure(["torch_1", "torch_all"], (10, 100), lock=lane, min_time_s=0))
    assert seen == {"torch_1": {(1, 1)}, "torch_all": {(speed_lab.all_threads(), 1)}}
    assert torch.get_num_threads() == odd_threads and lane.held == 0 and lane.taken == 4


def test_threads_restored_when_a_method_raises(monkeypatch, odd_threads):
    import torch

    def boom(x):
        def run():
            raise RuntimeError("kernel failed")

        return speed_lab._Ready(run, lambda r, i: r)

    monkeypatch.setitem(speed_lab.KERNELS, "torch_1", boom)
    lane = Lane()
    with pytest.raises(RuntimeError, match="kernel failed"):
        list(speed_lab.measure(["torch_1"], (10,), lock=lane))
    assert torch.get_num_threads() == odd_threads and lane.held == 0


def test_the_lane_is_free_between_results_and_threads_restored_on_close(odd_threads):
    import torch

    lane = speed_lab.lane.FairLock()  # a real fair lock of our own, not the app's lane

    def free() -> bool:  # can another thread take the lane now?
        got = []
        t = threading.Thread(target=lambda: (lane.acquire(), got.append(1), lane.release()))
        t.start()
        t.join(5)
        return got == [1]

    runs = speed_lab.measure(["torch_1", "torch_all"], (10, 100, 1000), lock=lane, min_time_s=0)
    first = next(runs)
    assert first.method == "torch_1" and torch.get_num_threads() == odd_threads and free()
    assert next(runs).method == "torch_all" and torch.get_num_threads() == odd_threads and free()
    runs.close()  # what gradio does on Stop
    assert torch.get_num_threads() == odd_threads and free()


# --- crossovers ----------------------------------------------------------------------------------
def _ms(method, times):
    return [Measurement(method, n, t, 3, 1) for n, t in times.items()]


def test_crossovers_from_synthetic_measurements():
    sizes = [10**k for k in range(1, 7)]
    results = (
        _ms("python", {n: 1e-7 * n for n in sizes})
        + _ms("numpy", {n: 1.5e-6 + 1e-9 * n for n in sizes})  # overhead, then flat
        + _ms("torch_1", {n: 2e-6 + 1e-9 * n for n in sizes})
        + _ms("torch_all", {n: 8e-6 + 0.5e-9 * n for n in sizes})
        + [Skipped("python", 10**7, "cap", 1.0, 0)]
    )
    got = {(c.method, c.baseline): c.size for c in speed_lab.crossovers(results)}
    assert got == {
        ("numpy", "python"): 100,  # 1.6 µs > 1 µs at 10, then faster
        ("torch_1", "python"): 100,
        ("torch_all", "python"): 100,  # 8.0 µs vs 10 µs at 100
        ("torch_all", "torch_1"): 100_000,  # 8e-6 + 5e-5 < 2e-6 + 1e-4 first at 10^5
    }


def test_a_crossover_must_hold_at_every_larger_size():
    py = _ms("python", {10: 1.0, 100: 1.0, 1000: 1.0, 10_000: 1.0})
    wobbly = _ms("numpy", {10: 0.5, 100: 2.0, 1000: 0.5, 10_000: 0.5})
    assert speed_lab.crossover(py + wobbly, "numpy").size == 1000
    late = _ms("numpy", {10: 0.5, 100: 0.5, 1000: 0.5, 10_000: 1.0})  # a tie is not a win
    c = speed_lab.crossover(py + late, "numpy")
    assert c.size is None and c.compared == (10, 100, 1000, 10_000)
    only = _ms("numpy", {10**5: 0.1})  # no size measured for both
    assert speed_lab.crossover(py + only, "numpy") == speed_lab.Crossover(
        "numpy", "python", None, ()
    )


def test_speedup_at_the_largest_common_size():
    results = _ms("python", {10: 1e-6, 100: 1e-5}) + _ms("numpy", {10: 2e-6, 100: 5e-7, 1000: 1e-6})
    s = speed_lab.speedup(results, "numpy")
    assert (s.size, s.seconds, s.baseline_seconds) == (100, 5e-7, 1e-5)
    assert s.ratio == pytest.approx(20.0)
    assert speed_lab.speedup(results, "torch_1") is None


# --- 百ます計算 ------------------------------------------------------------------------------------
def test_hyakumasu_steps():
    for workers in range(1, 101):
        h = speed_lab.hyakumasu(workers)
        assert h.steps == math.ceil(100 / workers) == int(h.done_at.max()), workers
        for step in range(1, h.steps + 1):
            now = h.done_at == step
            assert now.sum() == min(workers, 100 - (step - 1) * workers)
            assert len(set(h.worker[now].tolist())) == now.sum()  # one cell per worker per step
        assert h.filled_after(h.steps).all()
        assert h.steps == 1 or not h.filled_after(h.steps - 1).all()
        assert h.speedup == pytest.approx(100 / h.steps)


def test_hyakumasu_is_a_real_sheet():
    h = speed_lab.hyakumasu(7)
    assert sorted(h.rows.tolist()) == sorted(h.cols.tolist()) == list(range(10))
    assert h.sums[3, 4] == h.rows[3] + h.cols[4]
    assert (h.steps, h.done_at[0, 6], h.done_at[0, 7], h.worker[0, 7]) == (15, 1, 2, 0)
    with pytest.raises(ValueError):
        h.done_at[0, 0] = 5  # read-only


# --- bad input, in both languages ----------------------------------------------------------------
@pytest.mark.parametrize(
    ("call", "en", "ja"),
    [
        (lambda: speed_lab.check_methods([]), "Tick at least one method", "1 つ以上選んで"),
        (lambda: speed_lab.check_methods(None), "Tick at least one method", "1 つ以上選んで"),
        (lambda: speed_lab.check_methods(["numpy", "tpu"]), "Unknown method “tpu”",
         "「tpu」という方法はありません"),
        (lambda: speed_lab.check_max_size(0), "from 10 to 100,000,000; got 0",
         "10〜100,000,000 の整数"),
        (lambda: speed_lab.check_max_size(-5), "got -5", "入力値：-5"),
        (lambda: speed_lab.check_max_size(float("nan")), "got nan", "入力値：nan"),
        (lambda: speed_lab.check_max_size(float("inf")), "got inf", "入力値：inf"),
        (lambda: speed_lab.check_max_size(1e12), "got 1000000000000", "入力値：1000000000000"),
        (lambda: speed_lab.check_max_size("ten"), "got ten", "入力値：ten"),
        (lambda: speed_lab.check_max_size(2.5), "got 2.5", "入力値：2.5"),
        (lambda: speed_lab.hyakumasu(0), "workers must be a whole number from 1 to 100",
         "人数は 1〜100 の整数"),
        (lambda: speed_lab.hyakumasu("many"), "got many", "入力値：many"),
    ],
)  # fmt: skip
def test_bad_input_is_explained_in_both_languages(call, en, ja):
    with pytest.raises(UserError) as err:
        call()
    assert err.value.key.startswith("labs_speed_")
    assert en in error_message(err.value, "en")
    assert ja in error_message(err.value, "ja")


def test_good_input_is_cleaned():
    assert speed_lab.check_methods(["cuda", "numpy", "numpy"]) == ("numpy", "cuda")
    assert speed_lab.check_max_size("1e7") == 10**7 and speed_lab.check_max_size(10.0) == 10
    assert speed_lab.sizes_up_to(10) == (10,)
    assert speed_lab.sizes_up_to(10**8)[-1] == 10**8 and len(speed_lab.sizes_up_to(10**8)) == 8
    assert speed_lab.sizes_up_to(12_345) == (10, 100, 1000, 10_000, 12_345)


def test_the_handler_answers_in_japanese():
    ja = gr.Request(headers={"accept-language": "ja-JP,ja;q=0.9"})
    with pytest.raises(gr.Error, match="1 つ以上選んで"):
        list(labs_speed._on_run([], 1000, ja))
    with pytest.raises(gr.Error, match="入力値：0"):
        labs_speed._on_grid(0, ja)


def test_cpu_name_from_cpuinfo_or_platform(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: Test CPU 9000 @ 3 GHz\n", encoding="utf-8")
    assert speed_lab.cpu_name(str(info)) == "Test CPU 9000 @ 3 GHz"
    assert speed_lab.cpu_name(str(tmp_path / "missing")).strip()


# --- the screen: only measured points are drawn; estimates are marked --------------------------
def test_estimates_are_never_drawn_and_are_marked(monkeypatch):
    mach = speed_lab.Machine("Test CPU", 2, None, "2.0", "2.9")
    results = [
        Measurement("python", 10, 1e-6, 3, 100),
        Measurement("numpy", 10, 5e-7, 3, 100),
        Skipped("python", 100, "time", 1e-5, 6400),
        Measurement("numpy", 100, 6e-7, 3, 100),
        Skipped("cuda", 10, "no_gpu", None, 80),
        Skipped("cuda", 100, "no_gpu", None, 800),
    ]
    methods, sizes = ("python", "numpy", "cuda"), (10, 100)
    for lang, marked in (("en", "estimate, not measured"), ("ja", "推定、未測定")):
        fig = labs_speed._figure(results, methods, mach, lang)
        drawn = {tr.name: list(tr.y) for tr in fig.data}
        assert list(drawn.values()) == [[1e-6], [5e-7, 6e-7]]  # measured values only, no GPU line
        table = labs_speed._table(results, methods, sizes, lang)
        assert marked in table and "\ufffd" not in table
        summary = labs_speed._summary(results, methods, 6, mach, lang, 1.0)
        assert "Test CPU" in summary and "\ufffd" not in summary
    assert "No GPU on this machine" in labs_speed._summary(results, methods, 6, mach, "en", 1.0)


def test_limits_stated_in_the_ui_match_config():
    en = json.loads((ASSETS / "i18n" / "labs_speed.json").read_text(encoding="utf-8"))["en"]
    assert f"{config.SPEED_PYTHON_MAX_SIZE:,}" in en["labs.speed.methods_info"]
    assert f"{config.SPEED_CALL_BUDGET_S:g} s" in en["labs.speed.methods_info"]
    assert f"{config.SPEED_MIN_SIZE} to {config.SPEED_MAX_SIZE:,}" in en["labs.speed.max_size_info"]
    assert all(k.startswith(("labs.speed.", "errors.labs_speed_")) for k in en)


# --- through the running app ---------------------------------------------------------------------
def test_api_run_has_every_method(client):
    plot, table, summary = client.predict(["python", "numpy", "torch_1"], 10_000, api_name=RUN)
    fig = json.loads(plot["plot"])
    assert [tr["name"] for tr in fig["data"]] == ["Python loop", "numpy", "torch, 1 thread"]
    for tr in fig["data"]:
        assert len(tr["text"]) == 4  # 10, 10², 10³, 10⁴: one measured point each
    rows = [line for line in table.splitlines() if line.startswith("| 10")]
    assert [r.split(" | ")[0] for r in rows] == ["| 10", "| 10²", "| 10³", "| 10⁴"]
    assert "…" not in table and "**Done:** 12 of 12" in summary
    assert "beats the Python loop" in summary or "was not ahead of the Python loop" in summary
    assert "Measured on this machine" in summary and "\ufffd" not in table + summary


def test_api_bad_input_in_both_languages(client, app_url):
    with pytest.raises(Exception, match="from 10 to 100,000,000; got 0"):
        client.predict(["numpy"], 0, api_name=RUN)
    with httpx.Client(timeout=120, headers={"accept-language": "ja"}) as http:
        res = harness.call(app_url, "labs_gpu_cpu", [[], 1000], 120, client=http)
    assert res.status == "error" and "1 つ以上選んで" in res.message
    _, table, _ = client.predict(["numpy"], 100, api_name=RUN)  # the next request still works
    assert "| 10² |" in table


def test_api_hyakumasu(client):
    figure, table = client.predict(7, api_name=GRID)
    fig = json.loads(figure["plot"])
    assert [a["text"] for a in fig["layout"]["annotations"]][:5] == [
        "1 worker: 100 steps", "2 workers: 50 steps", "7 workers: 15 steps",
        "10 workers: 10 steps", "100 workers: 1 step",
    ]  # fmt: skip
    assert len(fig["layout"]["sliders"][0]["steps"]) == 101  # after 0 to 100 steps
    assert "| 7 | 15 | ×6.67 | 14–15 (95%) |" in table
