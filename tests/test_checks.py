"""llmviz.checks: every kind of bad value gets the caller's message, never a Python error."""

from __future__ import annotations

import math

import pytest

from llmviz import checks
from llmviz.errors import UserError

MSG = "pick a whole number from {lo} to {hi}; got {value}."
BAD_NUMBERS = [math.nan, math.inf, -math.inf, None, "three", "", [1], {"v": 1}, True, 10**400]


@pytest.mark.parametrize("bad", [*BAD_NUMBERS, 2.5, -1, 101, "1e309"])
def test_whole_refuses_with_the_callers_message_and_key(bad):
    with pytest.raises(UserError) as info:
        checks.whole(bad, 0, 100, key="my_key", message=MSG)
    err = info.value
    assert err.key == "my_key" and err.message.startswith("pick a whole number from 0 to 100")
    assert err.params["value"] == checks.show(bad) and len(err.params["value"]) <= 25


@pytest.mark.parametrize(("value", "expected"), [(0, 0), (100, 100), (7.0, 7), ("42", 42), (" 3 ", 3)])
def test_whole_accepts_whole_numbers_in_any_form(value, expected):
    out = checks.whole(value, 0, 100, key=None, message=MSG)
    assert out == expected and isinstance(out, int)


@pytest.mark.parametrize("bad", [*BAD_NUMBERS, -0.1, 1.0001])
def test_real_refuses_non_finite_and_out_of_range(bad):
    with pytest.raises(UserError, match=r"^x in \[0, 1\]"):
        checks.real(bad, 0.0, 1.0, key="k", message="x in [{lo}, {hi}]: {value}")


def test_real_open_lower_bound():
    assert checks.real(1e-9, 0, 1, key=None, message="", lo_open=True) == 1e-9
    with pytest.raises(UserError):
        checks.real(0, 0, 1, key=None, message="", lo_open=True)


@pytest.mark.parametrize("bad", [None, "", "NF4", "nf4 ", ["nf4"], "../nf4"])
def test_one_of_is_exact(bad):
    with pytest.raises(UserError, match="choose int8, nf4"):
        checks.one_of(bad, ("int8", "nf4"), key="k", message="{value}: choose {choices}")


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        (None, "Type something"),
        ("", "Type something"),
        ("  \n\u3000", "Type something"),
        (123, "Type something"),
        ("x" * 11, "11 characters; the limit is 10"),
        ("ok\ud800", r"lone UTF-16 surrogate \(U\+D800\) at position 2"),
    ],
)
def test_text(value, needle):
    with pytest.raises(UserError, match=needle):
        checks.text(
            value, 10, empty_key="e", empty_message="Type something.", long_key="l",
            long_message="{n} characters; the limit is {limit}.",
        )  # fmt: skip


def test_text_passes_good_text_unchanged():
    assert checks.text(" 猫 ", 10, empty_key=None, empty_message="", long_key=None, long_message="") == " 猫 "
    assert checks.text("  ", 10, empty_key=None, empty_message="", long_key=None, long_message="",
                       allow_blank=True) == "  "  # fmt: skip


def test_surrogate_error_is_translatable():
    with pytest.raises(UserError) as info:
        checks.utf8("\udfff")
    assert info.value.key == "text_surrogate"
    assert info.value.params == {"code": "U+DFFF", "pos": 0}


@pytest.mark.parametrize(
    ("value", "shown"),
    [("abc", "abc"), (None, "None"), (2.0, "2"), (math.inf, "inf"), ("\ud800", "\\ud800"),
     ("猫" * 30, "猫" * 24 + "…"), ([1, 2], "[1, 2]")],
)  # fmt: skip
def test_show_is_short_printable_and_utf8(value, shown):
    out = checks.show(value)
    assert out == shown
    out.encode("utf-8")  # never a lone surrogate: safe in any message, log or JSON
