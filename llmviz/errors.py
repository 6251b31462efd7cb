"""The one exception type the core raises for bad user input.

``UserError`` is a ``ValueError`` whose English message teaches what to do. It may also carry a
translation ``key`` (looked up as ``errors.<key>`` in ``assets/i18n/*.json``) and the ``params``
to format it with, so the UI can show the same message in Japanese. Core code never needs to know
about languages: ``raise UserError("temperature must be >= 0 ...", key="temperature_negative")``.
"""

from __future__ import annotations


class UserError(ValueError):
    """Bad input or an unavailable resource, explained for the person who caused it."""

    def __init__(self, message: str, key: str | None = None, **params: object) -> None:
        super().__init__(message)
        self.message = message
        self.key = key
        self.params = params
