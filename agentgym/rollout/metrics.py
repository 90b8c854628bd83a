"""Summaries of a set of trajectories: reward, success, unbiased pass@k, turns, tokens, time."""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from math import comb
from statistics import fmean, pstdev
from typing import Any

from agentgym.types import Trajectory


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from ``n`` samples with ``c`` successes (Chen et al., 2021)."""
    if not 0 < k <= n:
        raise ValueError(f"pass@k needs 0 < k <= n, got k={k}, n={n}")
    if n - c < k:
        return 1.0
    return 1.0 - comb(n - c, k) / comb(n, k)


def panel_hash(trajectories: list[Trajectory]) -> str:
    """A content hash of the tasks played (each task's first messages, by task): two
    evaluations with the same hash were scored on the same questions."""
    firsts = {}
    for t in trajectories:
        first = [m.model_dump(mode="json") for m in t.messages[:2] if m.role != "assistant"]
        firsts[f"{t.env_id}/{t.task}"] = first
    blob = json.dumps(sorted(firsts.items()), sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def _mean(xs: list[float]) -> float:
    return fmean(xs) if xs else 0.0


def summarize(trajectories: list[Trajectory], wall_seconds: float = 0.0) -> dict[str, Any]:
    """Aggregate metrics; pass@k for every k up to the smallest group size. Failed episodes
    (an infrastructure fault: ``stop_reason == "error"``) are counted, not averaged in."""
    failed = sum(t.stop_reason == "error" for t in trajectories)
    panel = panel_hash(trajectories)
    trajectories = [t for t in trajectories if t.stop_reason != "error"]
    if not trajectories:
        return {"episodes": 0, "failed_episodes": failed, "panel": panel}
    groups: dict[tuple[str, int], list[bool]] = defaultdict(list)
    for t in trajectories:
        groups[(t.env_id, t.task)].append(t.success)
    k_max = min(len(g) for g in groups.values())
    turns = [t.turns for t in trajectories]
    all_turns = [turn for ts in turns for turn in ts]
    rewards = [t.reward for t in trajectories]
    sampled = [t.sampled_tokens for t in trajectories]
    return {
        "episodes": len(trajectories),
        "failed_episodes": failed,
        "tasks": len(groups),
        "panel": panel,
        "mean_reward": _mean(rewards),
        "std_reward": pstdev(rewards) if len(rewards) > 1 else 0.0,
        "success_rate": _mean([float(t.success) for t in trajectories]),
        "pass_at_k": {
            str(k): _mean([pass_at_k(len(g), sum(g), k) for g in groups.values()])
            for k in range(1, k_max + 1)
        },
        "mean_turns": _mean([float(len(ts)) for ts in turns]),
        "format_error_rate": _mean([float(t.format_error) for t in all_turns]),
        "truncated_rate": _mean([float(t.truncated) for t in trajectories]),
        "mean_sampled_tokens": _mean([float(s) for s in sampled]),
        "mean_total_tokens": _mean([float(len(t.token_ids)) for t in trajectories]),
        "seconds": {
            "wall": wall_seconds,
            "policy": sum(t.policy_seconds for t in all_turns),
            "env": sum(t.env_seconds for t in all_turns),
            "reset": sum(t.reset_seconds for t in trajectories),
        },
        **_grid(trajectories),
        **_judged(all_turns),
    }


def _judged(turns: list[Any]) -> dict[str, Any]:
    """``judge_*`` totals of the turns an LLM judge scored (``info["judge"]``), if any."""
    verdicts = [t.info["judge"] for t in turns if isinstance(t.info.get("judge"), dict)]
    if not verdicts:
        return {}
    return {
        "judge_verdicts": len(verdicts),
        "judge_failures": sum(bool(v["failed"]) for v in verdicts),
        "judge_cached": sum(bool(v["cached"]) for v in verdicts),
        "judge_tokens": sum(int(v["tokens"]) for v in verdicts),
        "judge_seconds": sum(float(v["seconds"]) for v in verdicts),
    }


def _grid(trajectories: list[Trajectory]) -> dict[str, Any]:
    """Success by cell when episodes name a two-axis ``grid`` cell in their end info (e.g.
    KeyChain's needle-in-a-haystack sweep: context length x evidence depth)."""
    cells: dict[tuple[Any, Any], list[float]] = defaultdict(list)
    axes: list[str] = []
    for t in trajectories:
        grid = t.info.get("grid")
        if not isinstance(grid, dict) or len(grid) != 2:
            return {}
        axes = list(grid)
        cells[(grid[axes[0]], grid[axes[1]])].append(float(t.success))
    if not cells:
        return {}
    rows = [[a, b, _mean(v), len(v)] for (a, b), v in sorted(cells.items())]
    return {"grid": {"axes": axes, "cells": rows}}
