"""What every tab shares: error handling, model pickers, loading with progress, queues.

Handlers are wrapped with ``@handler``: a ``UserError`` from the core becomes a ``gr.Error`` in
the browser's language (``errors.<key>`` in the i18n files, else the English message); any other
exception is logged with its traceback on the server and shown as a short message without one.
Either way the server keeps answering and the next request works.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable
from typing import Any

import gradio as gr

from llmviz import config
from llmviz.errors import UserError
from llmviz.models import CATALOG, LoadedModel, get_spec, load_model, offered_keys
from llmviz.ui.i18n import lang_of, text

log = logging.getLogger("llmviz.ui")

# Queues (concurrency_id): light endpoints never wait behind model work or generation. Model
# work and generation share one lane (config.MODEL_LANES): on a CPU, jobs running side by side
# only slow each other down. GENERATE stays a separate name so a tab says what it does.
LIGHT = {"concurrency_id": "light", "concurrency_limit": config.LIGHT_LANES}
MODEL = {"concurrency_id": "model", "concurrency_limit": config.MODEL_LANES}
GENERATE = MODEL


def error_message(err: Exception, lang: str) -> str:
    """The message to show for ``err`` in ``lang``."""
    if isinstance(err, UserError):
        if err.key:
            translated = text(f"errors.{err.key}", lang, **err.params)
            if translated != f"errors.{err.key}":
                return translated
        return err.message
    return text("errors.internal", lang, kind=type(err).__name__)


def _find_request(args: tuple, kwargs: dict) -> gr.Request | None:
    for value in (*args, *kwargs.values()):
        if isinstance(value, gr.Request):
            return value
    return None


def _raise_for(err: Exception, args: tuple, kwargs: dict) -> None:
    if isinstance(err, gr.Error):
        raise err
    if not isinstance(err, UserError):
        log.exception("handler failed")
    lang = lang_of(_find_request(args, kwargs))
    raise gr.Error(error_message(err, lang), print_exception=False) from None


def handler(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a gradio event handler (plain function or generator) with the error policy above.

    Give the handler a ``request: gr.Request`` parameter so messages follow the browser language.
    """
    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def gen_wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                yield from fn(*args, **kwargs)
            except Exception as err:  # noqa: BLE001 - the policy is the point
                _raise_for(err, args, kwargs)

        return gen_wrapper

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as err:  # noqa: BLE001
            _raise_for(err, args, kwargs)

    return wrapper


# --- models ------------------------------------------------------------------------------------
def model_choices(role: str | None = None) -> list[tuple[str, str]]:
    """(label, catalog key) pairs for a dropdown; ``role`` filters "base" / "instruct"."""
    return [
        (CATALOG[k].display, k) for k in offered_keys() if role is None or CATALOG[k].role == role
    ]


def model_dropdown(label: Any, value: str, role: str | None = None, **kwargs: Any) -> gr.Dropdown:
    """A model picker listing the catalog; custom values allow a Hub id (on a Space)."""
    return gr.Dropdown(
        choices=model_choices(role), value=value, label=label, allow_custom_value=True, **kwargs
    )


def get_model(name: str, precision: str = "auto", progress: gr.Progress | None = None) -> LoadedModel:
    """``load_model`` with the first-time conversion shown as a gradio progress bar."""
    get_spec(name)  # fail fast on bad names, before any progress bar appears

    def report(fraction: float, message: str) -> None:
        if progress is not None:
            progress(fraction, desc=message)

    return load_model(name, precision, progress=report)
