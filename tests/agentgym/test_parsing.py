import json

from hypothesis import given, settings
from hypothesis import strategies as st

from agentgym.parsing import parse_hermes, parse_openai_tool_calls, render_tool_calls
from agentgym.types import ToolCall


def test_several_calls_and_prose():
    text = (
        'Let me look.\n<tool_call>\n{"name": "a", "arguments": {"x": 1}}\n</tool_call>\n'
        '<tool_call>{"name": "b", "arguments": "{\\"y\\": [1, 2]}"}</tool_call> done'
    )
    parsed = parse_hermes(text)
    assert [c.name for c in parsed.calls] == ["a", "b"]
    assert parsed.calls[1].arguments == {"y": [1, 2]}
    assert parsed.content == "Let me look.\n\n done" and parsed.errors == []


def test_malformed_blocks_become_errors():
    cases = {
        "<tool_call>{not json}</tool_call>": "not valid JSON",
        '<tool_call>["a"]</tool_call>': "expected a JSON object",
        '<tool_call>{"arguments": {}}</tool_call>': "missing 'name'",
        '<tool_call>{"name": "a", "arguments": 3}</tool_call>': "must be a JSON object",
        '<tool_call>{"name": "a", "arguments": "{bad"}</tool_call>': "not valid JSON",
        '<tool_call>{"name": "a"': "not closed",
        "x </tool_call>": "without a matching",
    }
    for text, problem in cases.items():
        parsed = parse_hermes(text)
        assert parsed.calls == [] and len(parsed.errors) == 1, text
        assert problem in parsed.errors[0], (text, parsed.errors)


def test_openai_tool_calls():
    raw = [
        {"id": "c1", "type": "function", "function": {"name": "a", "arguments": '{"x": 1}'}},
        {"id": "c2", "type": "function", "function": {"name": "b", "arguments": "nope"}},
        {"id": "c3"},
    ]
    parsed = parse_openai_tool_calls(raw, None)
    assert parsed.calls == [ToolCall(id="c1", name="a", arguments={"x": 1})]
    assert len(parsed.errors) == 2


def test_render_round_trips():
    calls = [ToolCall(name="a", arguments={"q": "<tool_call>"}), ToolCall(name="b")]
    parsed = parse_hermes(render_tool_calls(calls))
    assert [(c.name, c.arguments) for c in parsed.calls] == [(c.name, c.arguments) for c in calls]


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)
_fragments = st.sampled_from(
    ["<tool_call>", "</tool_call>", "{", "}", '"name"', '"arguments"', ":", ",", '"', "\\", "\n"]
)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.text() | _fragments | _json.map(json.dumps), max_size=12).map("".join))
def test_parser_never_raises_on_adversarial_text(text):
    parsed = parse_hermes(text)
    assert isinstance(parsed.errors, list)
    for call in parsed.calls:
        assert isinstance(call.name, str) and isinstance(call.arguments, dict)


@settings(max_examples=200, deadline=None)
@given(st.lists(_json | st.dictionaries(st.sampled_from(["id", "function"]), _json), max_size=4))
def test_openai_parser_never_raises(raw):
    parse_openai_tool_calls(raw, "x")


@settings(max_examples=200, deadline=None)
@given(st.text(min_size=1), st.dictionaries(st.text(), _json, max_size=4))
def test_render_then_parse_is_identity(name, arguments):
    call = ToolCall(name=name, arguments=arguments)
    parsed = parse_hermes(render_tool_calls([call]))
    if "</tool_call>" not in json.dumps(arguments) + json.dumps(name):
        assert [(c.name, c.arguments) for c in parsed.calls] == [(name, arguments)]
