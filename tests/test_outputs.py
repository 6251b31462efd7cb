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
