"""From trajectories to learner sequences (trainers/grpo/batch.py): tied groups, the turn
credit of signals beside reward parts, and intent grouping across tasks (ChatR1)."""

from agentgym.trainers.grpo.batch import build_batch
from agentgym.trainers.grpo.config import GRPOConfig
from agentgym.types import Message, Trajectory, Turn


def traj(task, sample, reward, turns):
    """A two-turn-token trajectory: turn i samples tokens [10 i + 2, 10 i + 6)."""
    n = 10 * len(turns)
    return Trajectory(
        env_id="e",
        task=task,
        sample=sample,
        messages=[Message(role="user", content="q")],
        turns=[
            Turn(
                index=i,
                action=Message(role="assistant", content="a"),
                observation=[],
                reward=0.0,
                reward_parts=parts,
                token_span=(10 * i + 2, 10 * i + 6),
                info=info,
            )
            for i, (parts, info) in enumerate(turns)
        ],
        token_ids=list(range(n)),
        loss_mask=[1] * n,
        logprobs=[0.0] * n,
        reward=reward,
    )


def test_tied_groups_are_counted_and_skipped_when_asked():
    trajs = [traj(0, s, 1.0, [({}, {})]) for s in range(2)] + [
        traj(1, 0, 1.0, [({}, {})]),
        traj(1, 1, 0.0, [({}, {})]),
    ]
    kept = build_batch(trajs, GRPOConfig())
    assert (kept.groups, kept.tied_groups, kept.skipped, len(kept.sequences)) == (2, 1, 0, 4)
    assert all(a == 0.0 for a in kept.sequences[0].advantages)  # a tied group teaches nothing
    dropped = build_batch(trajs, GRPOConfig(skip_tied_groups=True))
    assert dropped.skipped == 2 and len(dropped.sequences) == 2


def test_signals_are_turn_credit_beside_reward_parts():
    """swe's tests_passed is a signal (info['signals']), not reward: credited per turn."""
    good = traj(0, 0, 1.0, [({}, {"signals": {"tests_passed": 1.0}}), ({}, {})])
    bad = traj(0, 1, 1.0, [({}, {"signals": {"tests_passed": 0.0}}), ({}, {})])
    cfg = GRPOConfig(turn_reward_parts=["tests_passed"], turn_reward_weight=1.0)
    a, b = build_batch([good, bad], cfg).sequences
    assert a.advantages[3] > 0 > b.advantages[3]  # inside turn 0's span
    assert a.advantages[13] == b.advantages[13] == 0.0  # turn 1: no difference to credit


def test_turns_with_the_same_intent_are_compared_across_tasks():
    right = traj(0, 0, 0.0, [({"intent": 1.0}, {"intent": "follow-up"})])
    wrong = traj(1, 0, 0.0, [({"intent": 0.0}, {"intent": "follow-up"})])
    cfg = GRPOConfig(turn_reward_parts=["intent"], turn_reward_weight=1.0)
    a, b = build_batch([right, wrong], cfg).sequences
    assert a.advantages[3] > 0 > b.advantages[3]
    # without intents each turn is its own group (task, turn): nothing to compare with
    plain = [traj(0, 0, 0.0, [({"intent": 1.0}, {})]), traj(1, 0, 0.0, [({"intent": 0.0}, {})])]
    assert all(x == 0.0 for s in build_batch(plain, cfg).sequences for x in s.advantages)


def test_turn_groups_choose_what_a_turn_is_compared_with():
    """turn: same task and index (intent labels ignored); state: turns that acted on the same
    observation (GiGPO's anchor states), at any index."""
    from agentgym.trainers.grpo.batch import turn_key

    seen = [Message(role="tool", content="page 1")]
    a = traj(0, 0, 0.0, [({}, {}), ({"useful": 1.0}, {"intent": "x"})])
    b = traj(0, 1, 0.0, [({}, {}), ({"useful": 1.0}, {}), ({"useful": 0.0}, {"intent": "x"})])
    a.turns[0].observation, b.turns[1].observation = seen, seen  # the same state, other turns
    assert turn_key(a, 1, "turn") == (0, 1) and turn_key(a, 1, "intent") == ("intent", "x")
    assert turn_key(a, 1, "state") == turn_key(b, 2, "state") != turn_key(b, 1, "state")
    cfg = GRPOConfig(turn_reward_parts=["useful"], turn_reward_weight=1.0, turn_groups="state")
    x, y = build_batch([a, b], cfg).sequences
    assert x.advantages[13] > 0 > y.advantages[23]  # compared although at other indexes
    positional = cfg.model_copy(update={"turn_groups": "turn"})
    assert all(v == 0.0 for s in build_batch([a, b], positional).sequences for v in s.advantages)
