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
@given(
    st.text(min_size=1, max_size=64).filter(str.isprintable),
    st.dictionaries(st.text(), _json, max_size=4),
)
def test_render_then_parse_is_identity(name, arguments):
    call = ToolCall(name=name, arguments=arguments)
    parsed = parse_hermes(render_tool_calls([call]))
    if "</tool_call>" not in json.dumps(arguments) + json.dumps(name):
        assert [(c.name, c.arguments) for c in parsed.calls] == [(name, arguments)]


# ---- degenerate samples: what a policy emits early in training ---------------------------


def test_deeply_nested_json_is_a_format_error_not_a_crash():
    deep = "[" * 5000 + "]" * 5000
    for text in (
        f"<tool_call>{deep}</tool_call>",
        '<tool_call>{"name": "f", "arguments": ' + deep + "}</tool_call>",
        '<tool_call>{"name": "f", "arguments": "' + deep + '"}</tool_call>',
    ):
        parsed = parse_hermes(text)
        assert not parsed.calls and parsed.errors
    parsed = parse_openai_tool_calls([{"function": {"name": "f", "arguments": deep}}])
    assert not parsed.calls and parsed.errors


def test_tool_calls_that_are_not_a_list_are_a_format_error():
    for value in (3, "x", {"name": "f"}, True):
        parsed = parse_openai_tool_calls(value)  # type: ignore[arg-type]
        assert not parsed.calls and "must be a list" in parsed.errors[0]


def test_lone_surrogate_escape_is_refused_so_trajectories_still_serialise():
    parsed = parse_hermes('<tool_call>{"name": "f", "arguments": {"q": "\\ud83d"}}</tool_call>')
    assert not parsed.calls and "lone surrogate" in parsed.errors[0]
    ok = parse_hermes('<tool_call>{"name": "f", "arguments": {"q": "\\ud83d\\ude00"}}</tool_call>')
    assert ok.calls[0].arguments == {"q": "\U0001f600"}


def test_absurd_tool_names_are_refused():
    assert parse_hermes('<tool_call>{"name": "' + "a" * 1000 + '"}</tool_call>').errors
    assert parse_hermes('<tool_call>{"name": "a\\u0000b"}</tool_call>').errors


def test_unclosed_tags_parse_in_linear_time():
    import time

    def seconds(n):
        text = "<tool_call>{" * n
        best = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            parsed = parse_hermes(text)
            best = min(best, time.perf_counter() - t0)
        assert parsed.errors and not parsed.calls
        return best

    small, large = seconds(20_000), seconds(80_000)
    # 4x the input: ~4x the time when linear, ~16x when quadratic (the old regex: minutes)
    assert large < 10 * max(small, 1e-4), (small, large)
