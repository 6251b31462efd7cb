"""Every worked example in a core module's docstrings runs (and stays true).

The examples are the first documentation a reader meets (``>>> whole("42", 0, 100, ...)``);
running them here keeps them honest. The UI layer is left out: its modules build gradio
components and have no examples.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import llmviz

CORE = sorted(
    m.name
    for m in pkgutil.walk_packages(llmviz.__path__, prefix="llmviz.")
    if not m.name.startswith("llmviz.ui")
)


def test_the_core_modules_are_found():
    assert {"llmviz.checks", "llmviz.sampling", "llmviz.tokens", "llmviz.models.catalog"} <= set(
        CORE
    )


@pytest.mark.parametrize("name", CORE)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"
