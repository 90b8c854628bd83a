import asyncio

import gymnasium
import pytest

import agentgym
from agentgym import AgentEnv, EnvError, Message, ToolCall, ToolError, tool


class Echo(AgentEnv):
    """Echoes; `answer` ends the episode; `boom` is an infrastructure fault."""

    max_turns = 3

    def task(self, options):
        self.target = int(self.np_random.integers(0, 1000))
        return [Message(role="user", content=f"say {self.target}")], {"target": self.target}

    @tool
    def echo(self, text: str) -> str:
        """Echo text."""
        if not text:
            raise ToolError("text is empty")
        return text

    @tool
    async def answer(self, value: int) -> str:
        """Answer."""
        await asyncio.sleep(0)
        ok = value == self.target
        self.add_reward("correct", float(ok))
        self.end(success=ok)
        return "bye"

    @tool
    def boom(self) -> str:
        """Fail."""
        raise RuntimeError("disk on fire")


def call(name, **args):
    return Message(role="assistant", content="", tool_calls=[ToolCall(name=name, arguments=args)])


def test_reset_is_seeded_and_shows_tools():
    env = Echo()
    obs1, info1 = env.reset(seed=7)
    obs2, info2 = env.reset(seed=7)
    assert info1 == info2 and obs1 == obs2
    assert [t.name for t in obs1.tools] == ["echo", "answer", "boom"]
    assert env.observation_space.contains(obs1)


def test_tool_results_rewards_and_termination():
    env = Echo()
    _, info = env.reset(seed=1)
    obs, reward, term, trunc, step_info = env.step(call("echo", text="hi"))
    assert [m.content for m in obs.messages] == ["hi"] and obs.messages[0].role == "tool"
    assert (reward, term, trunc) == (0.0, False, False)
    obs, reward, term, _, step_info = env.step(call("answer", value=info["target"]))
    assert reward == 1.0 and term and step_info["success"] is True
    assert step_info["reward_parts"] == {"correct": 1.0}
    with pytest.raises(EnvError, match="after the episode ended"):
        env.step("again")


@pytest.mark.parametrize(
    "action, expected",
    [
        ('<tool_call>{"name": "nope", "arguments": {}}</tool_call>', "unknown tool 'nope'"),
        ('<tool_call>{"name": "echo", "arguments": {"txt": "a"}}</tool_call>', "invalid arguments"),
        ('<tool_call>{"name": "echo", "arguments": {"text": 1}}</tool_call>', "invalid arguments"),
        ("<tool_call>{oops</tool_call>", "not valid JSON"),
    ],
)
def test_model_mistakes_are_observations_with_a_format_flag(action, expected):
    env = Echo(format_penalty=0.5)
    env.reset(seed=0)
    obs, reward, term, trunc, info = env.step(action)
    assert expected in obs.messages[0].content and obs.messages[0].content.startswith("Error:")
    assert info["format_error"] and reward == -0.5 and info["reward_parts"] == {"format": -0.5}
    assert not term and not trunc


def test_tool_refusal_is_not_a_format_error():
    env = Echo()
    env.reset(seed=0)
    obs, reward, *_, info = env.step(call("echo", text=""))
    assert obs.messages[0].content == "Error: text is empty"
    assert not info["format_error"] and info["tool_errors"] == 1 and reward == 0.0


def test_infrastructure_fault_names_env_turn_and_tool():
    env = Echo()
    env.reset(seed=0)
    with pytest.raises(EnvError, match=r"env 'Echo', turn 1, tool 'boom': RuntimeError"):
        env.step(call("boom"))


def test_turn_limit_truncates_and_text_reply_ends():
    env = Echo()
    env.reset(seed=0)
    results = [env.step(call("echo", text="x")) for _ in range(3)]
    assert [r[3] for r in results] == [False, False, True]
    env.reset(seed=0)
    assert env.step("just text")[2] is True


def test_turn_limit_hook_scores_the_final_state():
    class Scored(Echo):
        async def aon_turn_limit(self):
            self.add_reward("final", 0.5)
            self.end(success=False, graded=True)

    env = Scored()
    env.reset(seed=0)
    results = [env.step(call("echo", text="x")) for _ in range(3)]
    assert [r[1] for r in results] == [0.0, 0.0, 0.5]
    _, _, terminated, truncated, info = results[-1]
    assert (
        truncated and not terminated and info["graded"] and info["reward_parts"] == {"final": 0.5}
    )


def test_async_api_and_sync_inside_loop_is_refused():
    async def main():
        env = Echo()
        obs, info = await env.areset(seed=3)
        step = await env.astep(call("answer", value=info["target"]))
        with pytest.raises(EnvError, match="await"):
            env.reset(seed=1)
        return step

    assert asyncio.run(main())[1] == 1.0


def test_registered_env_works_through_gymnasium():
    agentgym.register("echo_test", Echo, description="echo")
    env = gymnasium.make("agentgym/echo_test-v0")
    obs, info = env.reset(seed=2)
    assert env.step(call("answer", value=info["target"]))[1] == 1.0
    assert agentgym.make("agentgym/echo_test-v0").spec.id == "agentgym/echo_test-v0"


@pytest.mark.parametrize(
    "text",
    [
        '{"name": "guess", "arguments": {"number": 50}}',
        '```json\n{"name": "guess", "arguments": {"number": 50}}\n```',
        'Let me guess.\n```json\n{"name": "guess", "arguments": {"number": 50}}\n```',
    ],
)
def test_untagged_json_calls_are_accepted_only_when_asked_and_cost_half(text):
    strict = agentgym.make("guess_number")
    strict.reset(seed=1)
    _, reward, *_, info = strict.step(text)
    assert info["tool_calls"] == 0  # prose: the episode's reply, no call ran
    lenient = agentgym.make("guess_number", untagged_tool_calls=True)
    obs, _ = lenient.reset(seed=1)
    obs, reward, _, _, info = lenient.step(text)
    assert info["tool_calls"] == 1 and info["untagged_call"]
    assert info["format_error"]  # penalised (at half): the flag says so
    assert obs.messages[0].role == "tool"
    assert info["reward_parts"]["format"] == pytest.approx(-lenient.format_penalty / 2)
    tagged = agentgym.make("guess_number", untagged_tool_calls=True)
    tagged.reset(seed=1)
    *_, info = tagged.step('<tool_call>{"name": "guess", "arguments": {"number": 50}}</tool_call>')
    assert "format" not in info["reward_parts"]  # the tagged form is preferred


@pytest.mark.parametrize(
    "text",
    ['{"name": "nosuch", "arguments": {}}', '{"answer": 3}', "{not json", "```\n[1, 2]\n```"],
)
def test_untagged_json_that_names_no_known_tool_is_prose(text):
    env = agentgym.make("guess_number", untagged_tool_calls=True)
    env.reset(seed=1)
    *_, info = env.step(text)
    assert info["tool_calls"] == 0 and "untagged_call" not in info


def test_a_turn_runs_at_most_max_tool_calls_per_turn():
    env = agentgym.make("guess_number")
    env.reset(seed=3)
    guesses = "".join(
        f'<tool_call>{{"name": "guess", "arguments": {{"number": {n}}}}}</tool_call>'
        for n in range(1, 101)
    )
    obs, reward, terminated, _, info = env.step(guesses)
    assert info["tool_calls"] == env.max_tool_calls_per_turn
    assert info["format_error"] and "92 tool calls after the first 8" in obs.messages[0].content
    ran = [m for m in obs.messages if m.role == "tool"]
    assert len(ran) <= env.max_tool_calls_per_turn


def test_hidden_tools_cannot_be_called():
    env = agentgym.make("keychain", mode="single", world_size=1000, context_tokens=512)
    obs, _ = env.reset(seed=0)
    assert obs.tools == []
    obs, _, terminated, _, info = env.step(
        '<tool_call>{"name": "answer", "arguments": {"text": "x"}}</tool_call>'
    )
    assert info["format_error"] and not terminated
    assert "unknown tool 'answer'. Available tools: none" in obs.messages[0].content


class Slow(Echo):
    turn_time_budget_s = 0.5

    @tool
    async def nap(self, seconds: float) -> str:
        """Sleep."""
        await asyncio.sleep(seconds)
        return "rested"


def test_a_turn_of_slow_calls_is_stopped_at_its_time_budget():
    import time

    env = Slow()
    env.reset(seed=0)
    naps = [ToolCall(name="nap", arguments={"seconds": 0.3}) for _ in range(4)]
    t = time.perf_counter()
    obs, _, _, _, info = env.step(Message(role="assistant", content="", tool_calls=naps))
    assert time.perf_counter() - t < 1.5
    texts = [m.content for m in obs.messages]
    assert texts[0] == "rested" and "budget (0.5 s) ran out; this call was stopped" in texts[1]
    assert all("was not run" in text for text in texts[2:]) and info["tool_errors"] == 3
    obs, *_ = env.step(Message(role="assistant", content="", tool_calls=naps[:1]))
    assert obs.messages[0].content == "rested"  # the next turn has its own budget


def test_a_turn_penalised_for_its_format_is_flagged_as_a_format_error():
    env = agentgym.make("deep_research", world_size=200, tasks=20)
    try:
        env.reset(seed=0)
        *_, info = env.step("I think the answer is Paris.")  # plain text where a call was due
        assert info["reward_parts"]["format"] < 0 and info["format_error"]
    finally:
        env.close()


def test_spaces_compare_equal_and_an_env_pickles_mid_episode():
    import pickle

    a, b = agentgym.make("guess_number"), agentgym.make("guess_number")
    assert a.observation_space == b.observation_space and a.action_space == b.action_space
    a.reset(seed=4)
    a.step(call("guess", number=50))
    twin = pickle.loads(pickle.dumps(a))
    assert [twin.step(call("guess", number=n))[:4] for n in (25, 75)] == [
        a.step(call("guess", number=n))[:4] for n in (25, 75)
    ]


def test_the_base_class_validates_an_envs_config_into_cfg_and_takes_its_turn_limit():
    import pydantic

    from agentgym.env import AgentEnvConfig
    from agentgym.errors import ConfigError

    class Cfg(AgentEnvConfig):
        max_turns: int = 4
        size: int = 1

    class Configured(Echo):
        config_model = Cfg

    env = Configured(size=2)
    assert env.cfg == Cfg(size=2) and env.max_turns == 4
    assert Configured(max_turns=5).max_turns == 5 == Configured(max_turns=5).cfg.max_turns
    with pytest.raises(ConfigError, match=r"env\.bogus"):
        Configured(bogus=1)
    # `max_turns = 3` in Echo's body is its config model's default: one statement of it
    assert Echo().max_turns == 3 and Echo.config_model.model_fields["max_turns"].default == 3
    with pytest.raises(ConfigError, match=r"env\.bogus.*valid keys: max_turns, format_penalty"):
        Echo(bogus=1)  # every env takes the base options, and only its own besides
    with pytest.raises(TypeError, match="must subclass AgentEnvConfig"):

        class Plain(Echo):
            config_model = pydantic.create_model("Plain", max_turns=(int, 3))


def test_the_readme_environment_runs_as_written(tmp_path):
    """README.md's ten-line environment, registered and played by its own oracle."""
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    code = re.findall(r"```python\n(from agentgym import AgentEnv.*?)```", readme, re.S)[0]
    scope: dict = {}
    exec(code, scope)
    env = agentgym.make("guess")
    obs, info = env.reset(seed=1)
    assert env.max_turns == 8 and [t.name for t in obs.tools] == ["guess"]
    secret = info["secret"]
    call = f'<tool_call>{{"name": "guess", "arguments": {{"number": {secret}}}}}</tool_call>'
    *_, reward, terminated, _, end = env.step(call)
    assert reward == 1.0 and terminated and end["success"]


def test_evaluate_takes_a_policy_by_name_as_the_command_line_does(tmp_path):
    summary = agentgym.evaluate("guess_number", "scripted", episodes=4, out=tmp_path)
    assert summary["success_rate"] == 1.0 and (tmp_path / "summary.json").exists()
    random = agentgym.evaluate("guess_number", {"name": "scripted", "script": "random"}, episodes=4)
    assert random["success_rate"] < 1.0
    with pytest.raises(agentgym.ConfigError, match=r"policy\.model.*policy\.model=<path"):
        agentgym.evaluate("guess_number", "hf")
