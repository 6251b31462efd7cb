"""Colour-blind-safe charts: series colours stay apart under simulated colour-vision deficiencies."""

from __future__ import annotations

import pytest

from llmviz.plots import labs, memory, palette, speed


def test_the_shared_palette_is_distinct_for_every_simulated_vision():
    d, vision, a, b = palette.min_distance(palette.OKABE_ITO)
    assert d >= palette.MIN_DELTA_E, (d, vision, a, b)


def test_the_check_fails_for_the_palette_the_labs_used_before():
    """Indigo and violet, and teal and pink, merge for protan/deutan readers: the check sees it."""
    before = ["#4f46e5", "#d97706", "#059669", "#dc2626", "#7c3aed", "#0891b2", "#be185d"]
    d, vision, _a, _b = palette.min_distance(before)
    assert d < palette.MIN_DELTA_E and vision in ("protanopia", "deuteranopia")


@pytest.mark.parametrize(
    "colours",
    [
        list(labs.PALETTE),
        list(speed.COLOURS.values()),
        [c for k, c in memory.COLORS.items() if k != "linear"],  # "linear" is the weights' colour
    ],
    ids=["labs", "speed", "memory"],
)
def test_each_charts_series_colours_are_safe(colours):
    d, vision, a, b = palette.min_distance(colours)
    assert d >= palette.MIN_DELTA_E, (d, vision, a, b)


def test_a_grey_next_to_a_colour_is_what_the_check_catches():
    assert palette.min_distance([palette.PURPLE, "#999999"])[0] < palette.MIN_DELTA_E
