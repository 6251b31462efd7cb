"""The labs tab (placeholder until its issue lands)."""

from __future__ import annotations

import gradio as gr

from llmviz.ui.i18n import t


def build() -> None:
    gr.Markdown(t("common.coming_next"))
