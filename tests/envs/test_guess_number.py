import agentgym
from agentgym.envs.guess_number import GuessNumberEnv


def test_seeded_and_solvable_by_bisection():
    env = agentgym.make("guess_number")
    secrets = []
    for seed in range(20):
        obs, info = env.reset(seed=seed)
        secrets.append(env.secret)
        transcript = list(obs.messages)  # the caller keeps it: info["action"], then the answer
        for _ in range(env.max_turns):
            obs, reward, term, trunc, step_info = env.step(
                GuessNumberEnv.oracle(transcript, info, None)
            )
            transcript += [step_info["action"], *obs.messages]
            if term:
                break
        assert term and reward == 1.0 and step_info["success"]
    env.reset(seed=3)
    assert env.secret == secrets[3] and len(set(secrets)) > 10


def test_out_of_range_guess_is_feedback():
    env = agentgym.make("guess_number", high=10)
    env.reset(seed=0)
    obs, reward, *_, info = env.step(
        '<tool_call>{"name": "guess", "arguments": {"number": 11}}</tool_call>'
    )
    assert obs.messages[0].content == "Error: 11 is outside 1..10" and not info["format_error"]
