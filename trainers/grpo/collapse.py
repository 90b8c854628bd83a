"""Early warnings of a run going wrong, computed every step from its own metrics.

Small models trained with RL on search and tool tasks are reported to collapse (entropy blows
up or vanishes, the text turns to gibberish, the reward falls off a cliff); a run should notice
before the learning is lost. Each step's record gets ``warnings``, a list of names:

* ``entropy_jump`` / ``entropy_collapse``: the mean entropy of the sampled tokens is above
  ``3x`` / below ``0.2x`` the median of the run's steps so far; a collapse only where the step
  did not solve its tasks (success rate below ``SOLVED``): a policy that succeeds on nearly
  every episode has converged, and its entropy falls as it should;
* ``format_errors_rising``: the share of turns with a format error is 0.25 or more above the
  median share so far;
* ``length_exploding``: the mean sampled tokens per episode is above ``3x`` the median so far
  (and above 32);
* ``reward_cliff``: the mean reward is more than ``max(0.3, half the spread of the rewards so
  far)`` below the best step so far;
* ``held_out_falling`` (on a held-out evaluation): the held-out reward fell at two
  evaluations in a row.

A reference needs ``WARMUP`` steps before the step-wise warnings speak. With
``trainer.on_collapse=rollback`` the loop restores the last checkpoint that passed (the step
sampled with its weights raised no warning) and halves the learning rate (``loop.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from statistics import median
from typing import Any

WARMUP = 1
SOLVED = 0.95
"""A step's success rate from which low entropy is convergence, not collapse."""


@dataclass
class CollapseWatch:
    """The run's history of the watched figures, and the warnings of the latest step."""

    entropy: list[float] = field(default_factory=list)
    format_errors: list[float] = field(default_factory=list)
    length: list[float] = field(default_factory=list)
    reward: list[float] = field(default_factory=list)
    held_out: list[float] = field(default_factory=list)

    def step(self, record: dict[str, Any]) -> list[str]:
        """The warnings of a step's record (the record then joins the history)."""
        warnings = []
        if len(self.reward) >= WARMUP:
            warnings += self._compare(record)
        self.entropy.append(float(record.get("entropy", 0.0) or 0.0))
        self.format_errors.append(float(record.get("format_error_rate", 0.0)))
        self.length.append(float(record.get("mean_sampled_tokens", 0.0)))
        self.reward.append(float(record.get("reward_mean", 0.0)))
        return warnings

    def _compare(self, r: dict[str, Any]) -> list[str]:
        out = []
        entropy, usual = float(r.get("entropy", 0.0) or 0.0), median(self.entropy)
        if usual > 0 and entropy > 3 * usual:
            out.append("entropy_jump")
        solved = float(r.get("success_rate", 0.0)) >= SOLVED
        if usual > 0 and entropy < 0.2 * usual and not solved:
            out.append("entropy_collapse")
        if float(r.get("format_error_rate", 0.0)) >= median(self.format_errors) + 0.25:
            out.append("format_errors_rising")
        length = float(r.get("mean_sampled_tokens", 0.0))
        if length > 32 and length > 3 * median(self.length):
            out.append("length_exploding")
        spread = max(self.reward) - min(self.reward)
        if float(r.get("reward_mean", 0.0)) < max(self.reward) - max(0.3, spread / 2):
            out.append("reward_cliff")
        return out

    def evaluation(self, record: dict[str, Any]) -> list[str]:
        """The warnings of a held-out evaluation's record (GRPO's; base and SFT ones set the
        reference)."""
        self.held_out.append(float(record["eval_reward_mean"]))
        last = self.held_out[-3:]
        falling = len(last) == 3 and last[0] > last[1] > last[2]
        return ["held_out_falling"] if falling and record.get("phase") == "grpo" else []

    def forget_since(self, steps: int) -> None:
        """Drop the last ``steps`` steps' figures (a rollback undid them)."""
        for series in (self.entropy, self.format_errors, self.length, self.reward):
            del series[len(series) - min(steps, len(series)) :]
