"""Japanese y-axis titles read left to right: no figure of the attention and sampling tabs turns
them 90° (plotly's default); each is a horizontal annotation above its axis."""

from __future__ import annotations

import numpy as np

from llmviz.plots.attention import focus_figure, head_figure
from llmviz.plots.sampling import CandidateBars, candidates_figure


def _horizontal(fig, label):
    assert not (fig.layout.yaxis.title.text or "")
    notes = [a for a in fig.layout.annotations if a.text == label]
    assert len(notes) == 1 and notes[0].textangle == 0 and notes[0].yref == "paper"


def test_attention_figures():
    labels = ["<bos>", "吾", "輩", "は", "猫"]
    head = head_figure(np.tril(np.ones((5, 5))) / 5, labels, "層 2・ヘッド 3", "読む側のトークン（クエリ）",
                       "読まれる側のトークン（キー）")  # fmt: skip
    _horizontal(head, "読む側のトークン（クエリ）")
    bars = focus_figure(labels, [("層 2・ヘッド 3", np.full(5, 0.2))], "「猫」が見ている場所",
                        "読まれる側のトークン（キー）", "アテンション")  # fmt: skip
    _horizontal(bars, "アテンション")


def test_sampling_candidates_figure_keeps_the_legend_clear_of_the_title():
    bars = CandidateBars(["猫", "犬"], [0.6, 0.4], [0.6, 0.4], [0.6, 0.4], ["", ""])
    names = {k: k for k in ("original", "tempered", "final", "removed")} | {"probability": "確率"}
    fig = candidates_figure(bars, names, "「こんにちは、」の次のトークン", "上位 2 件")
    _horizontal(fig, "確率")
    assert fig.layout.legend.xanchor == "right"  # the title has the top-left corner
