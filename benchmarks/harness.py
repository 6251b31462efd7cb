"""What the benchmark (``benchmarks/run.py`` and its modules) and the hostile-input sweep
(``tests/test_hostile_sweep.py``) share: finding the app's API endpoints, calling them over plain
HTTP, realistic ("normal") arguments for each endpoint, and latency statistics.

* Endpoints are DISCOVERED from the running app (``GET /gradio_api/info``, or ``demo.get_api_info()``
  in-process), so a tab that lands later is measured and swept without editing this file.
* ``call()`` speaks gradio's simple HTTP API (``POST /gradio_api/call/<name>`` then the event
  stream ``GET /gradio_api/call/<name>/<event_id>``) with its own JSON encoder, so it can send what
  ``gradio_client`` refuses to encode (NaN, infinities, lone surrogates, the wrong number of
  arguments) and it counts the bytes the browser-side protocol carries back.
* ``NORMAL`` holds arguments a student would really send, for endpoints whose UI defaults are not
  enough (state set up first, a cheaper prompt, few tokens). Endpoints missing from it use the
  defaults of their components (``parameter_default`` in the API info).

Deliberately not here: timing policy (``measure.py``, ``classroom.py``), targets, reports
(``report.py``) and assertions (the tests).
"""

from __future__ import annotations

import ast
import json
import math
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

API = "gradio_api/"


# --- endpoints ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Param:
    name: str
    component: str  # "Textbox", "Number", "Slider", "Dropdown", "Checkbox", "File", ...
    python_type: str  # as the API info writes it: "str", "float", "Literal['a', 'b']", ...
    default: Any = None
    has_default: bool = False

    @property
    def choices(self) -> tuple[Any, ...] | None:
        """The allowed values when the API info lists them (``Literal[...]``)."""
        pt = self.python_type
        if pt.startswith("Literal[") and pt.endswith("]"):
            try:
                value = ast.literal_eval("(" + pt[8:-1] + ",)") if pt[8:-1] else ()
            except (ValueError, SyntaxError):
                return None
            return tuple(value)
        return None

    @property
    def kind(self) -> str:
        """A coarse type used to pick hostile values: text, number, bool, choice, list, file, table, other."""
        c, pt = self.component.lower(), self.python_type.lower()
        if c in ("file", "uploadbutton", "image", "audio", "video", "model3d", "gallery", "files"):
            return "file"
        if "filepath" in pt or "filedata" in pt:
            return "file"
        if c == "dataframe":
            return "table"
        if c == "checkbox":
            return "bool"
        if c in ("checkboxgroup",) or pt.startswith("list["):
            return "list"
        if c in ("number", "slider") or pt in ("float", "int"):
            return "number"
        if self.choices is not None or c in ("dropdown", "radio"):
            return "choice"
        if c in ("textbox", "code", "textarea", "markdown") or pt == "str":
            return "text"
        return "other"


@dataclass(frozen=True)
class Endpoint:
    name: str  # api_name without the leading slash, e.g. "tokenizer_tokenize"
    params: tuple[Param, ...]
    returns: tuple[str, ...]  # output component names, e.g. ("Plot", "Html", "Markdown")
    group: str = "?"  # concurrency_id: "light" | "model" | "generate" | ...

    @property
    def defaults(self) -> dict[str, Any]:
        return {p.name: p.default for p in self.params}


def endpoints_from_info(info: dict, groups: dict[str, str] | None = None) -> list[Endpoint]:
    """``Endpoint``s from gradio's API info (``/gradio_api/info`` or ``demo.get_api_info()``)."""
    out = []
    for api_name, spec in sorted(info.get("named_endpoints", {}).items()):
        name = api_name.lstrip("/")
        params = tuple(
            Param(
                name=p.get("parameter_name") or f"arg{i}",
                component=str(p.get("component", "")),
                python_type=str((p.get("python_type") or {}).get("type", "")),
                default=p.get("parameter_default"),
                has_default=bool(p.get("parameter_has_default")),
            )
            for i, p in enumerate(spec.get("parameters", []))
        )
        returns = tuple(str(r.get("component", "")) for r in spec.get("returns", []))
        out.append(Endpoint(name, params, returns, (groups or {}).get(name, "?")))
    return out


def groups_of(demo: Any) -> dict[str, str]:
    """api_name -> concurrency_id, read from a ``gr.Blocks`` in-process."""
    out = {}
    for fn in demo.fns.values():
        if isinstance(fn.api_name, str) and fn.api_name:
            out[fn.api_name] = str(fn.concurrency_id)
    return out


def discover(base_url: str, groups: dict[str, str] | None = None) -> list[Endpoint]:
    """The named endpoints of the app running at ``base_url``."""
    r = httpx.get(base_url.rstrip("/") + "/" + API + "info", timeout=60)
    r.raise_for_status()
    return endpoints_from_info(r.json(), groups)


# --- calling over HTTP -------------------------------------------------------------------------
@dataclass
class CallResult:
    status: str  # "complete" | "error" | "http_error" | "timeout" | "broken"
    data: Any = None  # the outputs (complete) or the error payload (error)
    seconds: float = 0.0
    payload_bytes: int = 0  # bytes of the event stream (every update of a streaming endpoint)
    final_bytes: int = 0  # bytes of the last data line (the finished result)
    events: int = 0  # data events received ("generating" updates + the final one)
    http_status: int = 0
    text: str = ""  # raw body of an HTTP error, for reports

    @property
    def ok(self) -> bool:
        return self.status == "complete"

    @property
    def message(self) -> str | None:
        """The error message the app sent (None: an error gradio hid, i.e. raised outside a handler)."""
        if self.status == "error":
            if isinstance(self.data, dict):
                msg = self.data.get("error")
                return None if msg is None else str(msg)
            return None if self.data is None else str(self.data)
        if self.status == "http_error":
            return self.text
        return None


def encode(data: Any) -> bytes:
    """JSON as Python writes it: NaN/Infinity tokens and ``\\ud800`` escapes allowed (starlette
    decodes both), unlike httpx/gradio_client which refuse them."""
    return json.dumps(data, allow_nan=True, ensure_ascii=True).encode("ascii")


def call(
    base_url: str,
    api_name: str,
    data: Sequence[Any],
    timeout: float = 120.0,
    session_hash: str | None = None,
    client: httpx.Client | None = None,
) -> CallResult:
    """Call ``/api_name`` with positional ``data`` and wait for the result (or ``timeout``)."""
    base = base_url.rstrip("/") + "/" + API + "call/" + api_name.lstrip("/")
    body: dict[str, Any] = {"data": list(data)}
    if session_hash:
        body["session_hash"] = session_hash
    own = client is None
    http = client or httpx.Client(timeout=httpx.Timeout(timeout, connect=10))
    t0 = time.perf_counter()
    try:
        try:
            r = http.post(base, content=encode(body), headers={"content-type": "application/json"})
        except httpx.TimeoutException:
            return CallResult("timeout", seconds=time.perf_counter() - t0)
        if r.status_code != 200:
            return CallResult(
                "http_error",
                seconds=time.perf_counter() - t0,
                http_status=r.status_code,
                text=r.text[:2000],
            )
        event_id = r.json()["event_id"]
        return _read_events(http, f"{base}/{event_id}", t0, timeout)
    except (httpx.HTTPError, ValueError, KeyError) as err:
        return CallResult("broken", seconds=time.perf_counter() - t0, text=repr(err)[:500])
    finally:
        if own:
            http.close()


def _read_events(http: httpx.Client, url: str, t0: float, timeout: float) -> CallResult:
    result = CallResult("broken")
    nbytes = events = 0
    event = None
    deadline = t0 + timeout
    try:
        with http.stream("GET", url) as s:
            for line in s.iter_lines():
                nbytes += len(line.encode("utf-8")) + 1
                if line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:"):
                    payload = line[5:].strip()
                    if event in ("generating", "complete", "error"):
                        events += 1
                    if event in ("complete", "error"):
                        try:
                            parsed = json.loads(payload)
                        except ValueError:
                            parsed = payload
                        result = CallResult(event, parsed, final_bytes=len(payload.encode()))
                        break
                if time.perf_counter() > deadline:
                    result = CallResult("timeout")
                    break
    except httpx.TimeoutException:
        result = CallResult("timeout")
    result.seconds = time.perf_counter() - t0
    result.payload_bytes = nbytes
    result.events = events
    return result


_CONFIGS: dict[str, dict] = {}


def _dependency(base_url: str, api_name: str) -> tuple[int, list[bool]]:
    """(fn_index, is-State flag per input) of ``api_name``, from the app's /config."""
    base = base_url.rstrip("/") + "/"
    if base not in _CONFIGS:
        r = httpx.get(base + "config", timeout=60)
        r.raise_for_status()
        _CONFIGS[base] = r.json()
    cfg = _CONFIGS[base]
    kinds = {c["id"]: c.get("type") for c in cfg["components"]}
    for dep in cfg["dependencies"]:
        if dep.get("api_name") == api_name.lstrip("/"):
            return dep["id"], [kinds.get(i) == "state" for i in dep["inputs"]]
    raise KeyError(api_name)


def call_event(
    base_url: str,
    api_name: str,
    data: Sequence[Any],
    event_data: Any,
    timeout: float = 120.0,
    session_hash: str | None = None,
) -> CallResult:
    """Like ``call`` but through the browser's protocol (``/queue/join`` + ``/queue/data``), which
    also carries ``event_data``: what a ``gr.SelectData`` handler reads (e.g. ``{"index": [x, y]}``
    for a click on an image). The simple HTTP API cannot send it."""
    base = base_url.rstrip("/") + "/" + API
    session = session_hash or new_session()
    t0 = time.perf_counter()
    try:
        fn_index, states = _dependency(base_url, api_name)
        values = iter(data)
        full = [None if is_state else next(values, None) for is_state in states]
        body = {"data": full, "event_data": event_data, "fn_index": fn_index,
                "trigger_id": None, "session_hash": session}  # fmt: skip
        with httpx.Client(timeout=httpx.Timeout(timeout, connect=10)) as http:
            r = http.post(base + "queue/join", content=encode(body),
                          headers={"content-type": "application/json"})  # fmt: skip
            if r.status_code != 200:
                return CallResult("http_error", seconds=time.perf_counter() - t0,
                                  http_status=r.status_code, text=r.text[:2000])  # fmt: skip
            event_id = r.json()["event_id"]
            nbytes = events = 0
            with http.stream("GET", base + "queue/data", params={"session_hash": session}) as st:
                for line in st.iter_lines():
                    nbytes += len(line.encode("utf-8")) + 1
                    if not line.startswith("data:"):
                        continue
                    msg = json.loads(line[5:])
                    if msg.get("event_id") != event_id:
                        continue
                    if msg.get("msg") == "process_generating":
                        events += 1
                    if msg.get("msg") == "process_completed":
                        out = msg.get("output") or {}
                        status = "complete" if msg.get("success") else "error"
                        res = CallResult(status, out.get("data") if msg.get("success") else out)
                        res.seconds, res.payload_bytes, res.events = (
                            time.perf_counter() - t0,
                            nbytes,
                            events + 1,
                        )
                        return res
                    if time.perf_counter() - t0 > timeout:
                        break
        return CallResult("timeout", seconds=time.perf_counter() - t0)
    except httpx.TimeoutException:
        return CallResult("timeout", seconds=time.perf_counter() - t0)
    except (httpx.HTTPError, ValueError, KeyError) as err:
        return CallResult("broken", seconds=time.perf_counter() - t0, text=repr(err)[:500])


def new_session() -> str:
    return uuid.uuid4().hex[:12]


def alive(base_url: str, timeout: float = 15.0) -> bool:
    """Does the server still answer a tiny request?"""
    try:
        r = httpx.get(base_url.rstrip("/") + "/" + API + "app_id", timeout=timeout)
        return r.status_code == 200
    except httpx.HTTPError:
        return False


def upload(base_url: str, name: str, content: bytes) -> dict[str, Any]:
    """Upload one file; returns the FileData dict a File input expects."""
    r = httpx.post(
        base_url.rstrip("/") + "/" + API + "upload",
        files={"files": (name, content)},
        timeout=60,
    )
    r.raise_for_status()
    path = r.json()[0]
    return {
        "path": path,
        "orig_name": name,
        "size": len(content),
        "meta": {"_type": "gradio.FileData"},
    }


# --- normal arguments --------------------------------------------------------------------------
#: Short prompts keep "normal" requests cheap (the sweep makes one after every endpoint).
PROMPT_EN = "The capital of France is"
PROMPT_JA = "日本の首都は"


@dataclass(frozen=True)
class Normal:
    """How to make a realistic request to one endpoint.

    ``args``: overrides of the component defaults, by parameter name; a value may be a function
    of the setup calls' outputs (``lambda outs: ...``, ``outs[i]`` = outputs of setup call i).
    ``setup``: calls to make first in the same session (api_name, overrides), e.g. show a
    distribution before re-filtering it.
    """

    args: dict[str, Any] = field(default_factory=dict)
    setup: tuple[tuple[str, dict[str, Any]], ...] = ()
    #: ``gr.SelectData`` the event carries (a click on an image: ``{"index": [x, y]}``); such
    #: endpoints are called through the browser's protocol (``call_event``)
    event_data: Any = None
    #: runs a model many times (several precisions, texts or samples): tens of seconds on a
    #: 2-core CPU even with the cheapest arguments; the sweep and ``--quick`` call it sparingly
    expensive: bool = False


_ATTENTION = (("attention_run", {"txt": "The cat sat on the mat because it was tired."}),)
_SAMPLING = {"prompt": PROMPT_EN, "model_key": "gemma-3-270m", "seed": 42, "top_n": 10}
NORMAL: dict[str, Normal] = {
    "attention_run": Normal(dict(_ATTENTION[0][1])),
    "attention_layer": Normal({"layer": 2, "head": 1, "token": 3}, _ATTENTION),
    "attention_head": Normal({"layer": 2, "head": 1, "token": 3}, _ATTENTION),
    "attention_token": Normal({"layer": 2, "head": 1, "token": 3}, _ATTENTION),
    "attention_view": Normal({"layer": 2, "head": 1, "token": 3, "hide": True}, _ATTENTION),
    "attention_find": Normal({"pattern": "previous", "token": 3}, _ATTENTION),
    # a click near the top-left of the overview picture: layer 0, head 0
    "attention_pick": Normal({"token": 3}, _ATTENTION, {"index": [60, 40], "value": None}),
    "compare_run": Normal({"max_new_tokens": 4}),
    # one short step, answers only before and after: a training run costs seconds, not minutes
    "finetune_run": Normal({"steps": 1, "batch": 1, "probe_every": 0}),
    "finetune_ask": Normal(
        {"question": "日本の首都は？"},
        setup=(("finetune_run", {"steps": 1, "batch": 1, "probe_every": 0}),),
    ),
    "memory_measure": Normal({"precisions": ["bf16"]}),
    "inside_lens": Normal({"prompt": PROMPT_JA, "model_key": "gemma-3-270m"}),
    "inside_cell": Normal(
        {}, (("inside_lens", {"prompt": PROMPT_JA, "model_key": "gemma-3-270m"}),),
        {"index": [1, 2], "value": None},
    ),
    "inside_kv": Normal({"n_tokens": 4}),
    "tokenizer_preset": Normal({"name": "ja_en"}),
    "tokenizer_train": Normal({"vocab": 300}),
    "models_load": Normal({"name": "gemma-3-270m", "precision": "bf16"}),
    "sampling_view": Normal(_SAMPLING),
    "sampling_step": Normal(_SAMPLING),
    "sampling_reset": Normal(_SAMPLING),
    "sampling_force": Normal({**_SAMPLING, "token_id": 7}),
    "sampling_generate": Normal({**_SAMPLING, "n_tokens": 3}),
    "sampling_refilter": Normal(
        {"temperature": 0.7, "top_k": 20, "top_p": 0.9, "min_p": 0.0, "top_n": 10},
        setup=(("sampling_view", _SAMPLING),),
    ),
    "sampling_pick": Normal(
        {"token_id": lambda outs: outs[0][4]["choices"][0][1]},
        setup=(("sampling_view", _SAMPLING),),
    ),
    "sampling_experiment": Normal(
        {"prompt": PROMPT_EN, "model_key": "smollm2-135m-instruct"}, expensive=True
    ),
    "labs_bias": Normal({"with_tuned": False}),
    "labs_icl": Normal({"conditions": ["true"]}),
    # twelve problems answered twice (direct, then worked): ~10-20 s of generation on 2 cores
    "labs_cot": Normal(expensive=True),
    # the UI default times four methods up to 10^7 numbers (~3-4 s): two small ones take ~0.5 s
    "labs_gpu_cpu": Normal({"methods": ["python", "numpy"], "max_size": 1000}),
    # the UI default (300 steps x 3 runs) takes ~1 s on idle cores, far more under load: 50 steps
    "labs_lr_training": Normal({"steps": 50}),
    "labs_perplexity": Normal(
        {"txt": "The cat sat on the mat. 猫がマットの上に座った。", "model_b": "none"}
    ),
    "labs_perplexity_languages": Normal({"pair": "day"}, expensive=True),
    "memory_quality": Normal({"model_key": "smollm2-135m-instruct"}, expensive=True),
}


def is_expensive(name: str) -> bool:
    return NORMAL.get(name, Normal()).expensive


#: A cheap normal request per queue: proves that queue still serves after an endpoint's sweep.
CANARIES = {
    "light": "labs_scaling_preset",
    "model": "models_catalog",
    "generate": "sampling_generate",
}


def canary(endpoints: dict[str, Endpoint], group: str) -> Endpoint | None:
    """A cheap endpoint in ``group`` (or any cheap one) for "the server still works" checks."""
    for name in (CANARIES.get(group), *CANARIES.values()):
        if name in endpoints and not is_expensive(name):
            return endpoints[name]
    return None


def normal_args(
    ep: Endpoint, overrides: dict[str, Any] | None = None, setup_outputs: Sequence[Any] = ()
) -> list[Any]:
    """Positional arguments: component defaults, then ``NORMAL``, then ``overrides``."""
    values = ep.defaults
    values.update(NORMAL.get(ep.name, Normal()).args)
    values.update(overrides or {})
    return [
        values[p.name](list(setup_outputs)) if callable(values[p.name]) else values[p.name]
        for p in ep.params
    ]


def run_setup(
    base_url: str,
    ep: Endpoint,
    endpoints: dict[str, Endpoint],
    session_hash: str,
    timeout: float = 300.0,
) -> tuple[list[Any], CallResult | None]:
    """Make ``ep``'s setup calls in ``session_hash``: (their outputs, the failed call or None)."""
    outputs: list[Any] = []
    for setup_name, setup_args in NORMAL.get(ep.name, Normal()).setup:
        res = call(
            base_url,
            setup_name,
            normal_args(endpoints[setup_name], setup_args, outputs),
            timeout,
            session_hash,
        )
        if not res.ok:
            return outputs, res
        outputs.append(res.data)
    return outputs, None


def stale_normal_keys(endpoints: Sequence[Endpoint]) -> list[str]:
    """Entries of ``NORMAL`` that name an endpoint or parameter the app no longer has."""
    by_name = {e.name: e for e in endpoints}
    out = []
    for name, normal in NORMAL.items():
        ep = by_name.get(name)
        if ep is None:
            out.append(name)
            continue
        names = {p.name for p in ep.params}
        out += [f"{name}.{k}" for k in normal.args if k not in names]
        for setup_name, setup_args in normal.setup:
            sep = by_name.get(setup_name)
            if sep is None:
                out.append(f"{name} setup {setup_name}")
            else:
                out += [
                    f"{setup_name}.{k}" for k in setup_args if k not in {p.name for p in sep.params}
                ]
    return out


def call_normal(
    base_url: str,
    ep: Endpoint,
    endpoints: dict[str, Endpoint],
    session_hash: str | None = None,
    timeout: float = 300.0,
) -> CallResult:
    """Run ``ep``'s setup calls (if any) then a normal request, all in one session."""
    session = session_hash or new_session()
    outputs, failed = run_setup(base_url, ep, endpoints, session, timeout)
    if failed is not None:
        return failed
    return call_as_browser(base_url, ep.name, normal_args(ep, None, outputs), timeout, session)


def call_as_browser(
    base_url: str, api_name: str, data: Sequence[Any], timeout: float = 120.0,
    session_hash: str | None = None, event_data: Any = None,
) -> CallResult:  # fmt: skip
    """``call``, or ``call_event`` for endpoints whose ``NORMAL`` entry carries event data."""
    normal = NORMAL.get(api_name, Normal())
    if event_data is None:
        event_data = normal.event_data
    if event_data is not None:
        return call_event(base_url, api_name, data, event_data, timeout, session_hash)
    return call(base_url, api_name, data, timeout, session_hash)


# --- statistics --------------------------------------------------------------------------------
def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100), linear interpolation between closest ranks (numpy's
    default). ``percentile([1, 2, 3, 4], 50) == 2.5``; NaN for no values."""
    if not values:
        return math.nan
    if not 0 <= q <= 100:
        raise ValueError(f"q must be within 0..100, got {q}")
    xs = sorted(values)
    pos = (len(xs) - 1) * q / 100
    lo = math.floor(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def summary(values: Sequence[float]) -> dict[str, float]:
    """n, median, p95, min, max of a list of latencies (seconds)."""
    return {
        "n": len(values),
        "median": percentile(values, 50),
        "p95": percentile(values, 95),
        "min": min(values) if values else math.nan,
        "max": max(values) if values else math.nan,
    }


def overlapping(
    intervals: Sequence[tuple[float, float]], others: Sequence[tuple[float, float]]
) -> list[int]:
    """Indices of ``intervals`` (start, end) that overlap at least one of ``others``."""
    out = []
    spans = sorted(others)
    for i, (s, e) in enumerate(intervals):
        if any(os_ < e and oe > s for os_, oe in spans):
            out.append(i)
    return out


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out
