"""The policy as an adversary: degenerate and hostile actions (deep nesting, lone surrogates,
NUL bytes, thousands of tags, many calls a turn, wrong types) driven through ``env.step`` of
the built-in environments that run in-process. No exception may escape, no step may hang, and
everything the environment recorded must still serialise (a trajectory writer would die
otherwise). swe and gui get their adversarial cases in their own modules (they need Docker and
a browser)."""

import json
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import agentgym

ENVS = {
    "guess_number": {},
    "digits": {},
    "deep_research": {"world_size": 200, "tasks": 20},
    "retrieval_qa": {"world_size": 200, "tasks": 20},
    "keychain": {"world_size": 1000, "context_tokens": 512, "mode": "tools"},
}
STRINGS = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["\\ud83d", "\\udc00x", "\\u0000", "a\\nb", "../../etc/passwd", "\u202e"]),
    st.builds(lambda n: "x" * n, st.integers(0, 5000)),
)
SCALARS = st.one_of(
    STRINGS.map(json.dumps),
    st.integers(-(10**30), 10**30).map(str),
    st.sampled_from(["NaN", "1e400", "-0", "null", "true", "[]", "{}"]),
)


def _args(keys: list[str], values: list[str]) -> str:
    return "{" + ", ".join(f"{json.dumps(k)}: {v}" for k, v in zip(keys, values)) + "}"


@st.composite
def calls(draw: st.DrawFn, tools: list[str]) -> str:
    name = draw(st.one_of(st.sampled_from(tools or ["x"]), STRINGS))
    keys = draw(st.lists(st.sampled_from(["query", "url", "text", "number", "k", "page", "x"])))
    values = draw(st.lists(SCALARS, min_size=len(keys), max_size=len(keys)))
    body = f'{{"name": {json.dumps(name)}, "arguments": {_args(keys, values)}}}'
    return f"<tool_call>{body}</tool_call>"


@st.composite
def actions(draw: st.DrawFn, tools: list[str]) -> str:
    kind = draw(st.integers(0, 6))
    if kind == 0:
        return draw(st.text(max_size=300))
    if kind == 1:  # a degenerate sample: one token repeated
        token = draw(st.sampled_from(["<tool_call>", "</tool_call>", "[", "{", '"', "\\"]))
        return token * draw(st.integers(1, 20_000))
    if kind == 2:  # nesting past the recursion limit
        depth = draw(st.integers(500, 5000))
        return "<tool_call>" + "[" * depth + "]" * depth + "</tool_call>"
    if kind == 3:  # many calls in one turn
        return draw(calls(tools)) * draw(st.integers(2, 200))
    if kind == 4:  # a bare JSON call (untagged)
        return draw(calls(tools)).removeprefix("<tool_call>").removesuffix("</tool_call>")
    return "".join(draw(st.lists(calls(tools), min_size=1, max_size=3)))


@pytest.mark.parametrize("env_id", list(ENVS))
def test_no_action_crashes_hangs_or_breaks_the_record(env_id):
    env = agentgym.make(env_id, **ENVS[env_id])
    tools = [t.name for t in env.reset(seed=0)[0].tools]
    seeds = iter(range(10**6))

    @settings(
        max_examples=40,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(st.lists(actions(tools), min_size=1, max_size=4))
    def step(episode: list[str]) -> None:
        env.reset(seed=next(seeds))
        for action in episode:
            start = time.perf_counter()
            obs, reward, terminated, truncated, info = env.step(action)
            assert time.perf_counter() - start < 10.0  # no hang (a guard, not a benchmark)
            assert isinstance(reward, float) and reward == reward  # not NaN
            json.dumps(info, default=str)
            for m in [info["action"], *obs.messages]:
                m.model_dump_json()  # what the trajectory writer does
            if terminated or truncated:
                break

    try:
        step()
    finally:
        env.close()
