"""Gradio wiring: one module per tab with a public ``build()``; no maths here."""
