"""Named outputs (llmviz.ui.common.Outputs): a misspelt field raises instead of shifting outputs."""

from __future__ import annotations

import dataclasses
from typing import Any

import gradio as gr
import pytest

from llmviz.ui.common import Outputs, handler, skip, state_field


@dataclasses.dataclass(slots=True)
class Demo(Outputs):
    chart: Any = skip()
    summary: Any = skip()
    state: Any = state_field()


def test_fields_default_to_skip_and_values_keep_field_order():
    values = Demo(summary="hi").values()
    assert values[1] == "hi" and values[0] == gr.skip() and values[2] == gr.skip()


def test_a_misspelt_field_raises():
    with pytest.raises(TypeError):
        Demo(sumary="hi")  # type: ignore[call-arg]
    screen = Demo()
    with pytest.raises(AttributeError):
        screen.sumary = "hi"  # type: ignore[attr-defined]


def test_wire_needs_every_field_once_and_state_on_a_state_field():
    with gr.Blocks():
        chart, summary, state = gr.Plot(), gr.Markdown(), gr.State()
        assert Demo.wire(state=state, chart=chart, summary=summary) == [chart, summary, state]
        with pytest.raises(TypeError, match="missing"):
            Demo.wire(chart=chart, summary=summary)
        with pytest.raises(TypeError, match="unknown"):
            Demo.wire(chart=chart, summary=summary, state=state, extra=chart)
        with pytest.raises(TypeError, match="state_field"):
            Demo.wire(chart=chart, summary=state, state=state)


def test_named_reads_an_api_result_without_the_state():
    assert Demo.named(("fig", "text")) == {"chart": "fig", "summary": "text"}
    with pytest.raises(ValueError, match="expected 2 outputs"):
        Demo.named(("fig", "text", None))


def test_handler_turns_outputs_into_positional_values_also_when_streaming():
    @handler
    def one():
        return Demo(chart=1)

    @handler
    def many():
        yield Demo(summary="a")
        yield Demo(summary="b", state=3)

    assert one()[0] == 1
    assert [v[1] for v in many()] == ["a", "b"] and list(many())[1][2] == 3


def test_closing_a_streaming_handler_reaches_its_finally():
    closed = []

    @handler
    def stream():
        try:
            while True:
                yield Demo(summary="tick")
        finally:
            closed.append(True)

    gen = stream()
    next(gen)
    gen.close()  # what gradio does on Stop / cancel
    assert closed == [True]


class _Recorder(gr.Progress):
    """A progress bar that records what it is told instead of sending it to a browser."""

    def __init__(self) -> None:
        super().__init__()
        self.said: list[str] = []

    def __call__(self, progress, desc=None, total=None, unit="steps", _tqdm=None):
        self.said.append(desc)


@pytest.mark.parametrize("streaming", [False, True])
def test_a_handler_waiting_for_the_lane_shows_its_place_in_the_users_language(monkeypatch, streaming):
    """The handler's own progress bar says how many turns are ahead and then that its turn has
    come, in Japanese for a Japanese browser; plain and streaming handlers alike."""
    import threading

    from llmviz import lane
    from llmviz.ui import common

    monkeypatch.setattr(lane.config, "LANE_REPORT_AFTER_S", 0.0)
    monkeypatch.setattr(lane.config, "LANE_REPORT_EVERY_S", 0.02)
    lock = lane.FairLock()
    go = threading.Event()

    def work():
        with lock:
            return Demo(summary="done")

    if streaming:

        @handler
        def run(request, progress=None):
            yield Demo(summary="start")
            yield work()

    else:

        @handler
        def run(request, progress=None):
            return work()

    progress = _Recorder()
    japanese = gr.Request(headers={"accept-language": "ja,en;q=0.5"})

    def holder():
        with lock:
            go.wait(10)

    h = threading.Thread(target=holder)
    h.start()
    while lock._owner is None:
        threading.Event().wait(0.002)
    results = []
    t = threading.Thread(target=lambda: results.append(
        list(run(japanese, progress)) if streaming else run(japanese, progress=progress)
    ))
    t.start()
    while not progress.said:
        threading.Event().wait(0.01)
    go.set()
    t.join(5)
    h.join(5)
    assert progress.said == [
        common.wait_text(1, 0.0, "ja"),
        common.text("common.lane_turn", "ja"),
    ]
    assert "前に 1 件" in progress.said[0]
    last = results[0][-1] if streaming else results[0]
    assert last[1] == "done"


def test_the_wait_text_rounds_the_estimate_in_both_languages():
    from llmviz.ui.common import wait_text

    assert "12 s" in wait_text(3, 12.4, "en") and "3 ahead" in wait_text(3, 12.4, "en")
    assert "約 12 秒" in wait_text(3, 12.4, "ja")
    assert "a second" in wait_text(1, 0.4, "en")
    assert wait_text(0, 0.0, "en") != wait_text(0, 0.0, "ja")
