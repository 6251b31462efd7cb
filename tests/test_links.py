"""Deep links: the core parser (any query, never an exception) and the page's linkable inputs."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import gradio as gr
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmviz import links
from llmviz.links import Field, parse

TABS = {
    "sampling": [
        Field("prompt", "text"),
        Field("temperature", "float", 0.0, 5.0),
        Field("top_k", "int", 0, 1000),
        Field("model", "choice", choices=("gemma-3-270m", "smollm2-135m")),
    ],
    "tokenizer": [Field("tokenizers", "choices", choices=("gpt2", "gemma3"), max_items=2)],
    "memory": [Field("grad", "bool")],
}


def test_a_clean_link_is_read_whole():
    link = parse({"tab": "sampling", "prompt": "こんにちは、", "temperature": "1.5",
                  "top_k": "40", "model": "gemma-3-270m", "lang": "ja"}, TABS)  # fmt: skip
    assert link.tab == "sampling" and link.lang == "ja" and not link.notes
    assert dict(link.values) == {"prompt": "こんにちは、", "temperature": 1.5, "top_k": 40,
                                 "model": "gemma-3-270m"}  # fmt: skip
    assert isinstance(link.values["top_k"], int)


@pytest.mark.parametrize(
    ("query", "note"),
    [
        ({"tab": "sampling", "temperature": "nan"}, ("bad_number", "temperature")),
        ({"tab": "sampling", "temperature": "inf"}, ("bad_number", "temperature")),
        ({"tab": "sampling", "temperature": "9"}, ("bad_number", "temperature")),
        ({"tab": "sampling", "temperature": "-0.1"}, ("bad_number", "temperature")),
        ({"tab": "sampling", "top_k": "2.5"}, ("bad_number", "top_k")),
        ({"tab": "sampling", "model": "evil/remote-code"}, ("unknown_choice", "model")),
        ({"tab": "sampling", "prompt": "x" * 2001}, ("too_long", "prompt")),
        ({"tab": "sampling", "prompt": "a\x00b"}, ("bad_value", "prompt")),
        ({"tab": "sampling", "<script>alert(1)</script>": "1"}, ("unknown_param", "scriptalert1script")),
        ({"tab": "nope"}, ("unknown_tab", "tab")),
        ({"temperature": "1"}, ("needs_tab", "temperature")),
        ({"lang": "fr"}, ("unknown_lang", "lang")),
        ({"present": "maybe"}, ("bad_value", "present")),
        ({"lesson": "0"}, ("bad_number", "lesson")),
        ({"tab": "tokenizer", "tokenizers": "gpt2,llama"}, ("unknown_choice", "tokenizers")),
        ({"tab": "tokenizer", "tokenizers": "gpt2,gemma3,gpt2,gemma3,gpt2"}, None),
        ({"tab": "memory", "grad": "yes please"}, ("bad_value", "grad")),
    ],
)
def test_each_bad_part_is_dropped_with_its_note(query, note):
    link = parse(query, TABS)
    got = [(n.key, n.param) for n in link.notes]
    if note is None:  # duplicates are merged, not an error
        assert link.values["tokenizers"] == ("gpt2", "gemma3") and not got
        return
    assert got == [note]
    assert note[1] not in link.values


def test_a_note_never_carries_the_value_or_markup():
    link = parse({"tab": "sampling", "x<img src=x onerror=alert(1)>": "<b>hi</b>"}, TABS)
    (note,) = link.notes
    assert "<" not in note.param and ">" not in note.param and "hi" not in note.param


def test_a_flood_of_keys_is_cut_to_a_few_notes():
    query = {f"k{i}": "v" for i in range(10_000)}
    link = parse({"tab": "sampling", **query}, TABS)
    assert len(link.notes) == links.MAX_NOTES
    assert link.notes[0].key == "too_many"
    assert link.notes[-1].key == "more_notes"


def test_lists_take_the_first_value_and_page_keys_are_read():
    link = parse({"tab": ["sampling", "memory"], "top_k": ["5", "6"], "present": "1",
                  "lesson": "3"}, TABS)  # fmt: skip
    assert link.tab == "sampling" and link.values["top_k"] == 5
    assert link.present is True and link.lesson == 3 and not link.notes


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(max_size=12), st.one_of(st.text(max_size=40), st.lists(st.text(max_size=5))),
                       max_size=8))  # fmt: skip
def test_any_query_parses_without_raising(query):
    link = parse({"tab": "sampling", **query}, TABS)
    for key, value in link.values.items():
        field = {f.name: f for f in TABS["sampling"]}[key]
        assert links.check_value(field, links.encode(value)) == (value, None)


def test_query_string_round_trips():
    values = {"prompt": "日本の首都は & ?=#", "temperature": 1.5, "top_k": 40, "model": "gemma-3-270m"}
    qs = links.query_string("sampling", values, lang="ja", present=True)
    back = parse({k: v[0] for k, v in parse_qs(qs).items()}, TABS)
    assert dict(back.values) == values and back.lang == "ja" and back.present


# --- the page: every linkable input exists, with the bounds of its component ---------------------
@pytest.fixture(scope="module")
def linked():
    import app

    demo = app.build()
    tabs = next(b for b in demo.blocks.values() if isinstance(b, gr.Tabs) and b.parent is not None
                and any(getattr(c, "elem_id", None) == "tab-sampling" for c in b.children))  # fmt: skip
    from llmviz.ui import links_ui

    return links_ui.Linked.find(demo, tabs)


def test_every_tab_is_linkable_and_fields_follow_the_components(linked):
    import app

    assert set(linked.fields) == {name for name, _ in app.TABS}
    fields = {f.name: f for f in linked.fields["sampling"]}
    comps = {p: c for tab, p, c in linked.comps if tab == "sampling"}
    assert fields["temperature"].kind == "float"
    assert (fields["temperature"].minimum, fields["temperature"].maximum) == (
        comps["temperature"].minimum, comps["temperature"].maximum)  # fmt: skip
    assert fields["model"].kind == "choice" and "gemma-3-270m" in fields["model"].choices
    assert fields["seed"].kind == "int"
    assert {f.name for f in linked.fields["labs"]} == {"prompt", "sub"}


def test_apply_sets_only_the_linked_tab_inputs(linked):
    from llmviz.ui import links_ui

    link = parse({"tab": "sampling", "prompt": "hi", "temperature": "0.5", "sub": "x"},
                 linked.fields)  # fmt: skip
    out = links_ui.apply(linked, link, "en")
    n_sub = len(linked.subtabs)
    set_values = {(tab, p): o for (tab, p, _c), o in zip(linked.comps, out[2 + n_sub:-1], strict=True)
                  if "value" in o}  # gr.skip() is an update without a value  # fmt: skip
    assert {k: v["value"] for k, v in set_values.items()} == {
        ("sampling", "prompt"): "hi", ("sampling", "temperature"): 0.5}  # fmt: skip
    assert out[-1] == "sampling-show"
    assert "sub" in out[1 + n_sub]["value"]  # the note says sub= is not for this tab


def test_a_lesson_link_opens_its_step(linked):
    from llmviz import lesson
    from llmviz.ui import links_ui

    first = lesson.load_lesson().step(0)
    link = links_ui.page_link(linked, {"lesson": "1", "lang": "ja"})
    assert link.tab == first.link["tab"] and link.lang == "ja" and link.lesson == 1
    assert not link.notes


def test_every_lesson_step_link_is_valid_for_the_page(linked):
    from llmviz import lesson
    from llmviz.ui import links_ui

    course = lesson.load_lesson()
    for i in range(len(course)):
        link = links_ui.step_link(linked, i)
        assert link.tab == course.step(i).link["tab"]
        assert not link.notes, (course.step(i).id, link.notes)


def test_the_page_script_has_the_spec_and_no_closing_tag_inside():
    from llmviz.ui import links_ui

    script = links_ui.PageScript.script().decode()
    assert script.startswith("<script>") and script.count("</script>") == 1
    assert '"sampling"' in script and "Navigator.prototype" in script


def test_copied_links_are_made_by_the_same_rules(linked):
    """What the browser writes (``encode`` of each value) parses back to the same values."""
    comps = {p: c for tab, p, c in linked.comps if tab == "sampling"}
    values = {p: c.value for p, c in comps.items() if c.value not in (None, "")}
    url = "http://x/?" + links.query_string("sampling", values)
    query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    back = parse(query, linked.fields)
    assert not back.notes
    assert {k: float(v) if isinstance(v, (int, float)) else v for k, v in back.values.items()} == {
        k: float(v) if isinstance(v, (int, float)) else v for k, v in values.items()}  # fmt: skip


def test_the_page_table_names_exactly_the_core_parameters():
    from llmviz.ui import links_ui

    for tab, params in links.TAB_PARAMS.items():
        subs = {"sub"} if tab in links_ui.SUBTABS else set()
        assert set(links_ui.LINKABLE[tab]) | subs == set(params), tab


def test_a_huge_query_is_shortened_so_that_its_parts_are_still_noted():
    from urllib.parse import parse_qsl, urlencode

    from llmviz.ui import links_ui

    raw = urlencode({"tab": "sampling", "prompt": "猫" * 200_000, "top_k": "5",
                     **{f"k{i}": "v" * 3000 for i in range(50)}}).encode()  # fmt: skip
    short = links_ui.shorten_query(raw)
    assert len(short) <= links_ui.MAX_PAGE_QUERY < 64 * 1024  # gradio's limit on an address
    pairs = dict(parse_qsl(short.decode()))
    assert pairs["tab"] == "sampling" and pairs["prompt"] == links_ui.TOO_LONG
    link = parse(pairs, TABS)
    assert ("too_long", "prompt") in [(n.key, n.param) for n in link.notes]
