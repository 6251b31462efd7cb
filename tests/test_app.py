"""The composed app: every event is a named API endpoint, and faults leave the server answering."""

from pathlib import Path

import pytest
from gradio_client.exceptions import AppError

import app


def test_every_event_has_an_explicit_api_name():
    fns = list(app.demo.fns.values())
    assert fns, "the app registers no events"
    for fn in fns:
        name = fn.api_name
        # gradio derives a name from the function (e.g. "_on_load") when none is given
        assert name and not str(name).startswith("_"), f"{fn.name} has no explicit api_name"


def test_api_names_are_unique():
    names = [fn.api_name for fn in app.demo.fns.values() if fn.api_name]
    assert len(names) == len(set(names))


def test_launch_happens_only_under_main():
    import ast
    from pathlib import Path

    tree = ast.parse(Path(app.__file__).read_text())
    for node in tree.body:  # module level: anything but the __main__ guard must not launch
        guarded = isinstance(node, ast.If) and "__main__" in ast.unparse(node.test)
        if not guarded and not isinstance(node, ast.FunctionDef):  # app.serve launches when called
            assert ".launch(" not in ast.unparse(node), ast.unparse(node)[:80]
    assert isinstance(app.demo, type(app.build()))


def test_importing_the_app_starts_no_thread():
    """A thread started at import or build time races the importer's own imports: CPython's
    import deadlock avoidance then hands one side a half-initialised ``transformers`` (CI once
    failed to collect ``from transformers import GenerationConfig`` this way)."""
    import os
    import subprocess
    import sys

    code = (
        "import threading, app\n"
        "extra = [t.name for t in threading.enumerate() if t is not threading.main_thread()]\n"
        "assert not extra, extra\n"
        "from transformers import GenerationConfig\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=Path(app.__file__).parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]


@pytest.mark.slow
def test_models_panel_loads_a_packaged_model(client):
    out = client.predict("smollm2-135m-instruct", "bf16", api_name="/models_load")
    assert "SmolLM2" in out and "MiB" in out


@pytest.mark.parametrize(
    "name,precision,needle",
    [
        ("no-such-model", "bf16", "Unknown model"),
        ("/etc/passwd", "bf16", "looks like a file path"),
        ("../../x", "bf16", "looks like a file path"),
        ("", "bf16", "model name is empty"),
        ("HuggingFaceTB/SmolLM2-135M", "bf16", "offline"),
        ("smollm2-135m-instruct", "int3", "not in the list of choices"),  # gradio validates
    ],
)
def test_bad_model_requests_get_clear_messages_and_the_server_keeps_answering(
    client, name, precision, needle
):
    with pytest.raises(AppError) as info:
        client.predict(name, precision, api_name="/models_load")
    assert needle in str(info.value)
    assert "Traceback" not in str(info.value)
    table = client.predict(api_name="/models_catalog")  # the next request works
    assert any("smollm2-135m-instruct" in row for row in table["data"])
