"""What every tab shares: error handling, model pickers, loading with progress, queues.

Handlers are wrapped with ``@handler``: a ``UserError`` from the core becomes a ``gr.Error`` in
the browser's language (``errors.<key>`` in the i18n files, else the English message); any other
exception is logged with its traceback on the server and shown as a short message without one.
Either way the server keeps answering and the next request works.
"""

from __future__ import annotations

import contextvars
import dataclasses
import functools
import inspect
import logging
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import gradio as gr

from llmviz import checks, config, lane
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


def user_error(message: str, lang: str) -> gr.Error:
    """A ``gr.Error`` whose toast title is in the user's language too."""
    return gr.Error(message, title=text("common.error_title", lang), print_exception=False)


def _raise_for(err: Exception, args: tuple, kwargs: dict) -> None:
    if isinstance(err, gr.Error):
        raise err
    if not isinstance(err, UserError):
        log.exception("handler failed")
    lang = lang_of(_find_request(args, kwargs))
    raise user_error(error_message(err, lang), lang) from None


# --- values gradio itself cannot convert (API callers) --------------------------------------------
_REQUEST: contextvars.ContextVar[Any] = contextvars.ContextVar("llmviz_request", default=None)


def _label(block: Any, lang: str) -> str:
    label = getattr(block, "label", None)
    key = getattr(label, "key", None)  # gr.I18n data: translate it here, the client cannot
    if isinstance(key, str):
        return text(key, lang)
    return str(label) if label else type(block).__name__


def _bad_input(block_fn: Any, inputs: list[Any], lang: str) -> tuple[str, Any] | None:
    """(label, value) of the first input gradio cannot convert; None when all convert."""
    for block, value in zip(block_fn.inputs, inputs, strict=False):
        if getattr(block, "stateful", False) or not hasattr(block, "preprocess"):
            continue
        try:
            model = getattr(block, "data_model", None)
            if model is not None and value is not None:
                value = model.model_validate(value, context={"validate_meta": True})
            block.preprocess(value)
        except Exception:  # noqa: BLE001 - any failure means "this is the one"
            return _label(block, lang), value
    return None


def input_error_message(block_fn: Any, inputs: list[Any], lang: str) -> str:
    """What to tell an API caller whose values gradio could not convert for the handler."""
    names = [_label(b, lang) for b in block_fn.inputs if not getattr(b, "stateful", False)]
    wanted = [b for b in block_fn.inputs if not getattr(b, "stateful", False)]
    if len(inputs) < len(block_fn.inputs):
        return text(
            "errors.api_arity", lang, n=len(wanted), got=len(inputs), names=", ".join(names)
        )
    bad = _bad_input(block_fn, inputs, lang)
    if bad is None:
        return text("errors.api_value", lang, names=", ".join(names))
    label, value = bad
    return text("errors.api_type", lang, label=label, value=checks.show(value))


class Blocks(gr.Blocks):
    """``gr.Blocks`` whose input-conversion errors reach API callers as a message.

    Gradio converts each value before the handler runs (a slider's string to a float, a
    checkbox group's list). When that fails it raises an exception that is not a ``gr.Error``,
    and the client gets ``error: null``: nothing says what was wrong. Here such failures (and a
    request with too few values) become a ``gr.Error`` naming the input, in the caller's
    language (``Accept-Language``).
    """

    async def process_api(self, block_fn: Any, inputs: list[Any], *args: Any, **kwargs: Any) -> Any:
        request = kwargs.get("request", args[1] if len(args) > 1 else None)
        token = _REQUEST.set(request[0] if isinstance(request, list) and request else request)
        try:
            return await super().process_api(block_fn, inputs, *args, **kwargs)
        except gr.Error:
            raise
        except Exception as err:  # noqa: BLE001 - e.g. click data without "index" (SelectData)
            log.warning("request refused before its handler: %r", err)
            lang = lang_of(_REQUEST.get())
            raise user_error(text("errors.api_request", lang, kind=type(err).__name__), lang) from None
        finally:
            _REQUEST.reset(token)

    async def preprocess_data(self, block_fn: Any, inputs: list[Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return await super().preprocess_data(block_fn, inputs, *args, **kwargs)
        except gr.Error:
            raise
        except Exception:  # noqa: BLE001 - gradio's own conversion errors, explained
            lang = lang_of(_REQUEST.get())
            raise user_error(input_error_message(block_fn, inputs, lang), lang) from None


_END = object()


# --- named outputs ------------------------------------------------------------------------------
class Outputs:
    """Base of a tab's named outputs: subclass it as a slotted dataclass, one field per output
    component, every field defaulting to ``skip()`` (left as it is on screen)::

        @dataclasses.dataclass(slots=True)
        class Screen(Outputs):
            chart: Any = skip()
            summary: Any = skip()
            state: Any = state_field()

    ``Screen.wire(chart=plot, summary=md, state=st)`` is the ``outputs=`` list of an event (every
    field must be named, nothing else); a handler returns ``Screen(summary="...")`` and ``@handler``
    turns it into gradio's positional values. A misspelt field raises (``TypeError`` in the
    constructor, ``AttributeError`` on assignment, thanks to ``slots``) instead of silently adding
    or shifting an output. API callers and tests read results by name with ``Screen.named(result)``
    (``gr.State`` fields never leave the server, so they are not in an API result).
    """

    __slots__ = ()
    _STATE: ClassVar[str] = "llmviz_state"

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))  # type: ignore[arg-type]

    @classmethod
    def api_names(cls) -> tuple[str, ...]:
        """The fields an API caller receives, in order (``gr.State`` outputs stay on the server)."""
        return tuple(
            f.name
            for f in dataclasses.fields(cls)  # type: ignore[arg-type]
            if not f.metadata.get(cls._STATE)
        )

    @classmethod
    def wire(cls, **components: Any) -> list[Any]:
        """The components in field order; every field named exactly once."""
        names = cls.names()
        missing = [n for n in names if n not in components]
        extra = [n for n in components if n not in names]
        if missing or extra:
            raise TypeError(f"{cls.__name__}.wire: missing {missing}, unknown {extra}")
        for name in names:
            is_state = isinstance(components[name], gr.State)
            field = next(f for f in dataclasses.fields(cls) if f.name == name)  # type: ignore[arg-type]
            if is_state != bool(field.metadata.get(cls._STATE)):
                raise TypeError(f"{cls.__name__}.{name}: gr.State outputs need state_field()")
        return [components[n] for n in names]

    def values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, n) for n in self.names())

    @classmethod
    def named(cls, result: Sequence[Any]) -> dict[str, Any]:
        """An API result (the tuple ``gradio_client`` returns) as ``{field: value}``."""
        names = cls.api_names()
        if len(result) != len(names):
            raise ValueError(f"{cls.__name__}: expected {len(names)} outputs, got {len(result)}")
        return dict(zip(names, result, strict=True))


def skip() -> Any:
    """Default of an ``Outputs`` field: leave that component as it is."""
    return dataclasses.field(default_factory=gr.skip)


def state_field() -> Any:
    """An ``Outputs`` field wired to a ``gr.State`` (kept on the server, absent from API results)."""
    return dataclasses.field(default_factory=gr.skip, metadata={Outputs._STATE: True})


def _positional(result: Any) -> Any:
    return result.values() if isinstance(result, Outputs) else result


def wait_text(ahead: int, eta_s: float, lang: str) -> str:
    """What a request waiting for the compute lane is told (``lane.reporting``)."""
    if ahead <= 0:
        return text("common.lane_turn", lang)
    if eta_s < 1.5:
        return text("common.lane_wait_short", lang, ahead=ahead)
    return text("common.lane_wait", lang, ahead=ahead, seconds=round(eta_s))


def _lane_report(args: tuple, kwargs: dict) -> Callable[[int, float], None] | None:
    """A ``lane.reporting`` callback showing the wait in the handler's progress bar, or None
    when the handler takes no ``gr.Progress``."""
    progress = next((v for v in (*args, *kwargs.values()) if isinstance(v, gr.Progress)), None)
    if progress is None:
        return None
    lang = lang_of(_find_request(args, kwargs))
    return lambda ahead, eta_s: progress(None, desc=wait_text(ahead, eta_s, lang))


def handler(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a gradio event handler (plain function or generator) with the error policy above;
    an ``Outputs`` it returns or yields becomes gradio's positional values.

    Give the handler a ``request: gr.Request`` parameter so messages follow the browser language.
    A handler that also takes ``progress=gr.Progress()`` shows its place in the compute lane and
    an estimated wait there whenever its model work waits for more than a second.
    """
    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def gen_wrapper(*args: Any, **kwargs: Any) -> Any:
            report = _lane_report(args, kwargs)
            inner = fn(*args, **kwargs)
            try:
                while True:
                    # set around each step: gradio may resume the generator in another thread
                    with lane.reporting(report):
                        item = next(inner, _END)
                    if item is _END:
                        break
                    yield _positional(item)
            except Exception as err:  # noqa: BLE001 - the policy is the point
                _raise_for(err, args, kwargs)
            finally:
                inner.close()  # a cancel (gradio closes this wrapper) reaches the handler's finally

        return gen_wrapper

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            with lane.reporting(_lane_report(args, kwargs)):
                return _positional(fn(*args, **kwargs))
        except Exception as err:  # noqa: BLE001
            _raise_for(err, args, kwargs)

    return wrapper


# --- sliders -------------------------------------------------------------------------------------
def limit_slider(*args: Any, **kwargs: Any) -> gr.Slider:
    """A slider whose value reaches the core unchecked, so an out-of-range value sent through the
    API gets the core's teaching message (naming the limit) instead of gradio's bare bound check.
    The browser still keeps the handle inside the range. (An instance override rather than a
    subclass: gradio's component metaclass would write a .pyi stub into the source tree.)"""
    slider = gr.Slider(*args, **kwargs)
    slider.preprocess = lambda payload: payload  # type: ignore[method-assign]
    return slider


def slider_changes(*sliders: Any) -> list[Any]:
    """The triggers for "this slider has a new value": let go with the mouse (``release``), but
    also a number typed into its box or a step with the arrow keys (``input``: gradio sends
    ``release`` only on pointer-up or blur). Use with ``trigger_mode="always_last"`` so a drag
    runs the handler for its newest value only."""
    return [event for s in sliders for event in (s.release, s.input)]


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
