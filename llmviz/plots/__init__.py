"""Plotly figures, one module per lesson. The only package allowed to import plotly.

Functions take plain arrays and labels and return ``go.Figure``; they never compute the lesson's
maths. Repeated category labels merge in plotly, so plot on integer positions and set
``tickvals``/``ticktext``.
"""
