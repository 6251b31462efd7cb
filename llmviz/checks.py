"""Checks of user input shared by every tab: numbers, whole numbers, choices, text.

Every value a student (or an API caller) sends reaches the core unchecked, as whatever type it
arrived in: a float for a whole number, a string for a slider, ``None``, ``inf``, half of an
emoji. Each check here accepts anything, returns the clean value, or raises ``UserError`` with
the caller's teaching message and translation key. The message templates may use ``{value}``
(the bad value, shown short and safe by ``show``), ``{lo}`` / ``{hi}`` (the range) and the
caller's own ``params``; the same names reach the translations in ``assets/i18n``.

What this module does not do: decide limits (``config``) or word messages for a field (the
caller owns its message and key, so a message can say what the field means).

>>> whole("42", 0, 100, key="k", message="seed must be from {lo} to {hi}; got {value}.")
42
>>> whole(float("inf"), 0, 100, key="k", message="got {value}")
Traceback (most recent call last):
  ...
llmviz.errors.UserError: got inf
"""

from __future__ import annotations

import math
from collections.abc import Collection
from typing import Any

from llmviz.errors import UserError

#: Characters of a bad value echoed back in a message (a pasted novel is not repeated).
SHOW_CHARS = 24


def show(value: Any, limit: int = SHOW_CHARS) -> str:
    """A short, printable rendering of a bad value for a message.

    Strings are shown as typed (lone surrogates as ``\\udXXX``), other types by ``repr``; long
    values are cut with an ellipsis.

    >>> show("abc")
    'abc'
    >>> show(None)
    'None'
    >>> show("x" * 30)
    'xxxxxxxxxxxxxxxxxxxxxxxx…'
    >>> show("\\ud83d!")
    '\\\\ud83d!'
    """
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e16:
        out = str(int(value))
    else:
        out = value if isinstance(value, str) else repr(value)
    out = out.encode("utf-8", "backslashreplace").decode("utf-8")
    return out if len(out) <= limit else out[:limit] + "…"


def _fail(message: str, key: str | None, value: Any, **params: Any) -> UserError:
    shown = show(value)
    return UserError(message.format(value=shown, **params), key=key, value=shown, **params)


def _as_float(value: Any) -> float:
    """``value`` as a float, NaN when it is not a number (bools are not numbers here)."""
    if isinstance(value, bool) or value is None:
        return math.nan
    try:
        return float(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError, OverflowError):
        return math.nan


def number(value: Any, *, key: str | None, message: str, **params: Any) -> float:
    """A finite number (numeric strings accepted).

    >>> number(" 2.5 ", key=None, message="x")
    2.5
    """
    out = _as_float(value)
    if not math.isfinite(out):
        raise _fail(message, key, value, **params)
    return out


def real(
    value: Any,
    lo: float,
    hi: float,
    *,
    key: str | None,
    message: str,
    lo_open: bool = False,
    **params: Any,
) -> float:
    """A finite number in ``[lo, hi]`` (``(lo, hi]`` with ``lo_open``).

    >>> real(0.5, 0, 1, key=None, message="x")
    0.5
    >>> real(0, 0, 1, key=None, message="top_p must be in ({lo}, {hi}]", lo_open=True)
    Traceback (most recent call last):
      ...
    llmviz.errors.UserError: top_p must be in (0, 1]
    """
    out = _as_float(value)
    ok = math.isfinite(out) and (lo < out if lo_open else lo <= out) and out <= hi
    if not ok:
        raise _fail(message, key, value, lo=f"{lo:g}", hi=f"{hi:g}", **params)
    return out


def whole(
    value: Any, lo: int, hi: int, *, key: str | None, message: str, **params: Any
) -> int:
    """A whole number in ``[lo, hi]``: ``3``, ``3.0`` and ``"3"`` pass; ``3.5``, ``inf``, ``NaN``,
    ``"three"``, ``None`` and ``True`` do not.

    >>> whole(3.0, 1, 5, key=None, message="x")
    3
    >>> whole(3.5, 1, 5, key=None, message="{value} is not a whole number from {lo} to {hi}")
    Traceback (most recent call last):
      ...
    llmviz.errors.UserError: 3.5 is not a whole number from 1 to 5
    """
    out = _as_float(value)
    if not (math.isfinite(out) and out.is_integer() and lo <= out <= hi):
        raise _fail(message, key, value, lo=lo, hi=hi, **params)
    return int(out)


def one_of(
    value: Any, choices: Collection[str], *, key: str | None, message: str, **params: Any
) -> str:
    """``value`` when it is one of ``choices`` (exact strings; nothing is guessed).

    >>> one_of("nf4", ("int8", "nf4"), key=None, message="x")
    'nf4'
    >>> one_of("../etc", ("int8", "nf4"), key=None, message="{value}: choose {choices}")
    Traceback (most recent call last):
      ...
    llmviz.errors.UserError: ../etc: choose int8, nf4
    """
    if not isinstance(value, str) or value not in choices:
        raise _fail(message, key, value, choices=", ".join(choices), **params)
    return value


def utf8(value: str) -> str:
    """``value`` when it can be encoded as UTF-8; a lone surrogate (half of an emoji, left by a
    broken copy-paste or an API client) is refused with its position, before any tokenizer sees it.

    >>> utf8("猫")
    '猫'
    >>> utf8("ab\\ud83d")
    Traceback (most recent call last):
      ...
    llmviz.errors.UserError: The text contains a lone UTF-16 surrogate (U+D83D) at position 2: half of an emoji or rare character that lost its other half. Copy the text again from its source, or delete that character.
    """
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as err:
        code = f"U+{ord(value[err.start]):04X}"
        raise UserError(
            f"The text contains a lone UTF-16 surrogate ({code}) at position {err.start}: half of "
            "an emoji or rare character that lost its other half. Copy the text again from its "
            "source, or delete that character.",
            key="text_surrogate",
            code=code,
            pos=err.start,
        ) from None
    return value


def text(
    value: Any,
    max_chars: int,
    *,
    empty_key: str | None,
    empty_message: str,
    long_key: str | None,
    long_message: str,
    allow_blank: bool = False,
    **params: Any,
) -> str:
    """Text a student typed: a string, not empty (or only spaces, unless ``allow_blank``), at most
    ``max_chars`` characters, valid UTF-8. ``long_message`` may use ``{n}`` and ``{limit}``
    (formatted with thousands separators). Returns the text unchanged.

    >>> text("hi", 10, empty_key=None, empty_message="empty", long_key=None, long_message="long")
    'hi'
    >>> text(None, 10, empty_key=None, empty_message="Type something.", long_key=None,
    ...      long_message="")
    Traceback (most recent call last):
      ...
    llmviz.errors.UserError: Type something.
    """
    if not isinstance(value, str) or not (value if allow_blank else value.strip()):
        raise UserError(empty_message.format(**params), key=empty_key, **params)
    if len(value) > max_chars:
        n, limit = f"{len(value):,}", f"{max_chars:,}"
        raise UserError(
            long_message.format(n=n, limit=limit, **params), key=long_key, n=n, limit=limit, **params
        )
    return utf8(value)
