"""The composed app: every event is a named API endpoint, and faults leave the server answering."""

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
        if not guarded:
            assert ".launch(" not in ast.unparse(node), ast.unparse(node)[:80]
    assert isinstance(app.demo, type(app.build()))


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
