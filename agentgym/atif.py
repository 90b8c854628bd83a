"""Trajectories as ATIF, Harbor's Agent Trajectory Interchange Format (v1.8).

    agentgym export atif RUN      # RUN/atif/<file>-<n>.json, one document per episode

A document's steps are the conversation: system and user messages as ``system``/``user``
steps; each assistant message an ``agent`` step with its tool calls and, as its observation,
the tool results that answer them (by call id). Tokens travel in ATIF's own fields where it
has them: each agent step's ``metrics`` carries its sampled ``completion_token_ids`` and
``logprobs`` (and its prompt's length). What ATIF has no field for is in ``extra.agentgym``:
the episode's full token ids and loss mask (the exact training sequence), a program's
segments, the rewards, the task and the stop reason. Validated against the ``harbor``
package's models in ``tests/agentgym/test_atif.py``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from agentgym.rollout import read_trajectories
from agentgym.types import Message, Trajectory

SCHEMA = "ATIF-v1.8"


def to_atif(traj: Trajectory, session_id: str, model_name: str | None = None) -> dict[str, Any]:
    """One episode as an ATIF document (a JSON-ready dict)."""
    steps: list[dict[str, Any]] = []
    tokens = iter(_turn_tokens(traj))
    for m in traj.messages:
        if m.role == "tool" and steps and steps[-1]["source"] == "agent":
            _observe(steps[-1], m)
        elif m.role == "assistant":
            steps.append(_agent_step(len(steps) + 1, m, next(tokens, None), model_name))
        else:
            source = m.role if m.role in ("system", "user") else "user"
            steps.append({"step_id": len(steps) + 1, "source": source, "message": m.content})
    ours = {
        "env_id": traj.env_id,
        "task": traj.task,
        "sample": traj.sample,
        "reward": traj.reward,
        "success": traj.success,
        "stop_reason": traj.stop_reason,
        "reward_parts": [t.reward_parts for t in traj.turns],
        "token_ids": traj.token_ids,
        "loss_mask": traj.loss_mask,
        "logprobs": traj.logprobs,
        "segments": [s.model_dump() for s in traj.segments],
        "attribution_failed": traj.attribution_failed,
    }
    return {
        "schema_version": SCHEMA,
        "session_id": session_id,
        "trajectory_id": f"{session_id}/{traj.env_id}/{traj.task}/{traj.sample}",
        "agent": {
            "name": "agentgym",
            "version": _version(),
            "model_name": model_name,
            "tool_definitions": [t.to_openai() for t in traj.tools] or None,
        },
        "steps": steps,
        "final_metrics": {
            "total_completion_tokens": traj.sampled_tokens,
            "total_steps": len(steps),
        },
        "extra": {"agentgym": ours},
    }


def _turn_tokens(traj: Trajectory) -> list[dict[str, Any] | None]:
    """Per assistant turn: its sampled ids and log-probs, and its prompt's length."""
    out: list[dict[str, Any] | None] = []
    for turn in traj.turns:
        if turn.token_span is None:
            out.append(None)
            continue
        start, end = turn.token_span
        out.append(
            {
                "prompt_tokens": start,
                "completion_tokens": end - start,
                "completion_token_ids": traj.token_ids[start:end],
                "logprobs": traj.logprobs[start:end],
            }
        )
    return out


def _agent_step(
    step_id: int, m: Message, metrics: dict[str, Any] | None, model_name: str | None
) -> dict[str, Any]:
    step: dict[str, Any] = {
        "step_id": step_id,
        "source": "agent",
        "message": m.content,
        "model_name": model_name,
    }
    if m.tool_calls:
        step["tool_calls"] = [
            {
                "tool_call_id": c.id or f"call_{step_id}_{i}",
                "function_name": c.name,
                "arguments": c.arguments,
            }
            for i, c in enumerate(m.tool_calls)
        ]
    if metrics is not None:
        step["metrics"] = metrics
    return step


def _observe(step: dict[str, Any], m: Message) -> None:
    ids = {c["tool_call_id"] for c in step.get("tool_calls", [])}
    result: dict[str, Any] = {"content": m.content}
    if m.tool_call_id in ids:
        result["source_call_id"] = m.tool_call_id
    step.setdefault("observation", {"results": []})["results"].append(result)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("agentgym")
    except PackageNotFoundError:
        return "0"


def export_run(run: str | Path) -> Path:
    """Every trajectory file of ``run`` (eval: trajectories.jsonl; train: trajectories/*) as
    ATIF documents in ``RUN/atif/``; the folder."""
    run = Path(run)
    files = sorted([*run.glob("trajectories.jsonl"), *run.glob("trajectories/*.jsonl")])
    config = run / "config.json"
    model = None
    if config.exists():
        model = json.loads(config.read_text()).get("policy", {}).get("model")
    out = run / "atif"
    out.mkdir(exist_ok=True)
    for f in files:
        for n, traj in enumerate(read_trajectories(f)):
            doc = to_atif(traj, session_id=run.name, model_name=model)
            (out / f"{f.stem}-{n:05d}.json").write_text(json.dumps(doc))
    return out
