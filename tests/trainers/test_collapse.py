"""The early warnings, on hand-made step records."""

from agentgym.trainers.grpo.collapse import CollapseWatch


def rec(entropy=1.0, fmt=0.0, length=40.0, reward=0.5):
    return {"entropy": entropy, "format_error_rate": fmt, "mean_sampled_tokens": length,
            "reward_mean": reward}  # fmt: skip


def test_each_warning_fires_on_its_own_sign_and_not_on_steady_steps():
    cases = {
        "entropy_jump": rec(entropy=3.5),
        "entropy_collapse": rec(entropy=0.1),
        "format_errors_rising": rec(fmt=0.3),
        "length_exploding": rec(length=200.0),
        "reward_cliff": rec(reward=0.1),
    }
    for name, bad in cases.items():
        watch = CollapseWatch()
        assert [watch.step(rec()) for _ in range(3)] == [[], [], []]
        assert watch.step(bad) == [name], name


def test_held_out_falling_needs_two_falls_in_a_row():
    watch = CollapseWatch()
    evals = [("base", 0.1), ("sft", 0.4), ("grpo", 0.5), ("grpo", 0.45), ("grpo", 0.4)]
    got = [watch.evaluation({"phase": p, "eval_reward_mean": r}) for p, r in evals]
    assert got == [[], [], [], [], ["held_out_falling"]]


def test_a_rollback_forgets_the_undone_steps():
    watch = CollapseWatch()
    for r in (0.5, 0.6, 0.0, 0.0):
        watch.step(rec(reward=r))
    watch.forget_since(2)
    assert watch.reward == [0.5, 0.6]


def test_low_entropy_of_a_solved_task_is_convergence_not_collapse():
    """The README's digits command solves its task after one step, then its entropy falls:
    no warning; the same fall while episodes still fail is a collapse."""
    watch = CollapseWatch()
    watch.step({**rec(reward=0.2), "success_rate": 0.3})
    watch.step({**rec(reward=1.0), "success_rate": 1.0})
    assert watch.step({**rec(entropy=0.05, reward=1.0), "success_rate": 1.0}) == []
    assert watch.step({**rec(entropy=0.05, reward=0.9), "success_rate": 0.6}) == [
        "entropy_collapse"
    ]
