"""``env=harbor env.path=DIR``: Harbor task folders (terminal-bench 2.0's format), unmodified.

Each episode builds (once) and starts the task's container from ``environment/Dockerfile``
(offline: its base must be on this machine; a missing one fails before any episode, named),
with ``task.toml``'s CPUs and memory, no network. The model reads ``instruction.md`` and works
through one ``bash`` tool (each call bounded by ``env.command_timeout``, all of them by the
task's ``[agent] timeout_sec``); when it answers without a tool call (or at the turn limit, or
when its time is spent) the verifier runs: ``tests/`` is copied to ``/tests`` only then, over
whatever the agent left there, ``/logs/verifier`` is emptied, and ``bash /tests/test.sh`` runs
within ``[verifier] timeout_sec``. The reward is what it wrote, as Harbor reads it:
``/logs/verifier/reward.txt`` (a number) or ``reward.json`` (its ``reward`` key, else its first
value); none is 0. Success is a reward of at least 1.

``policy=scripted`` plays ``solution/solve.sh`` (the ``oracle``: the folder copied to
``/solution``, then the script run); ``noop`` answers at once.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import tarfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field

from agentgym.env import AgentEnv, AgentEnvConfig
from agentgym.envs.harbor.tasks import (
    HarborTask,
    check_images,
    image_for,
    load_tasks,
    workdir_of,
)
from agentgym.errors import ToolError
from agentgym.sandbox import DockerSandbox, Limits
from agentgym.sandbox.docker import check_daemon
from agentgym.tools import tool
from agentgym.types import Message

PROMPT = (
    "{instruction}\n\nWork in the task's container with the bash tool. When you are done, "
    "answer without a tool call: the task's tests run then."
)


class HarborConfig(AgentEnvConfig):
    """``env.*`` keys of ``harbor``."""

    path: str = Field(description="a Harbor task folder, or a folder of task folders")
    command_timeout: float = Field(60.0, gt=0, description="seconds one bash call may run")
    output_chars: int = Field(8000, ge=200, description="most characters a bash call returns")
    max_turns: int = Field(30, ge=1, description="assistant turns before the episode is cut")


def oracle(messages: list[Message], info: dict[str, Any], rng: np.random.Generator) -> str:
    """``solution/solve.sh``: the solution folder unpacked at /solution, the script run; then
    done."""
    if messages[-1].role == "tool":
        return "Done."
    command = (
        f"mkdir -p /solution && echo {info['solution']} | base64 -d | tar -xz -C /solution "
        "&& bash /solution/solve.sh"
    )
    return (
        f"<tool_call>{json.dumps({'name': 'bash', 'arguments': {'command': command}})}</tool_call>"
    )


def noop(messages: list[Message], info: dict[str, Any], rng: np.random.Generator) -> str:
    """Does nothing: answers at once."""
    return "Done."


class HarborEnv(AgentEnv):
    """A Harbor task folder's task in its container, scored by its own tests."""

    config_model = HarborConfig
    cfg: HarborConfig
    baselines = {"oracle": oracle, "noop": noop}

    def __init__(self, **config: Any) -> None:
        super().__init__(**config)
        self.tasks = load_tasks(self.cfg.path)
        self.t: HarborTask | None = None
        self.sandbox: DockerSandbox | None = None
        self.deadline = float("inf")

    @classmethod
    def preflight(cls, config: dict[str, Any]) -> None:
        """The folders are tasks, Docker answers, and every image they start from is here."""
        tasks = load_tasks(HarborConfig(**config).path)
        check_daemon()
        check_images(tasks)

    async def atask(self, options: dict[str, Any]) -> tuple[list[Message], dict[str, Any]]:
        await self.arelease()
        t = self.t = self.tasks[self.task_index(len(self.tasks))]
        image = await asyncio.to_thread(image_for, t)
        workdir = t.workdir or await asyncio.to_thread(workdir_of, image)
        limits = Limits(cpus=t.cpus, memory_mb=t.memory_mb, timeout_s=self.cfg.command_timeout)
        self.sandbox = DockerSandbox(image, limits, workdir=workdir, read_only=False)
        await self.sandbox.start()
        budget = t.agent_timeout_s
        self.deadline = time.monotonic() + budget if budget else float("inf")
        info = {"task": t.name, "solution": _packed(t.folder / "solution")}
        return [Message(role="user", content=PROMPT.format(instruction=t.instruction))], info

    @tool
    async def bash(self, command: str) -> str:
        """Run a shell command in the task's container (its working directory).

        Args:
            command: The command, run with bash -c.
        """
        assert self.sandbox is not None
        left = self.deadline - time.monotonic()
        if left <= 0:
            await self._verify()
            raise ToolError("the task's time (agent timeout_sec) is spent: its tests ran")
        r = await self.sandbox.exec(command, timeout=min(self.cfg.command_timeout, left))
        out = r.output
        if len(out) > self.cfg.output_chars:
            out = out[: self.cfg.output_chars] + f"\n[cut at {self.cfg.output_chars} characters]"
        if r.timed_out:
            out += f"\n[killed after {min(self.cfg.command_timeout, left):g} s]"
        return f"{out}\n[exit code {r.exit_code}]"

    async def aon_reply(self, content: str) -> list[Message]:
        await self._verify()
        return []

    async def aon_turn_limit(self) -> None:
        await self._verify()

    async def _verify(self) -> None:
        """The task's tests, copied in now; the reward they write (see the module docstring)."""
        assert self.sandbox is not None and self.t is not None
        reward, log = await verify(self.sandbox, self.t)
        self.add_reward("tests", reward)
        self.end(success=reward >= 1.0, verifier=log[-2000:])

    async def arelease(self) -> None:
        """The episode's container goes (at the next reset, and at close)."""
        sandbox, self.sandbox = self.sandbox, None
        if sandbox is not None:
            await sandbox.close()


async def verify(sandbox: DockerSandbox, task: HarborTask) -> tuple[float, str]:
    """Run ``tests/test.sh`` in ``sandbox`` as Harbor's verifier does; (reward, its output)."""
    fresh = "rm -rf /tests /logs/verifier && mkdir -p /tests /logs/verifier"
    r = await sandbox.exec(fresh, timeout=60)
    if r.exit_code == 0:
        r = await sandbox.exec("tar -xz -C /tests -f -", stdin=base64.b64decode(
            _packed(task.folder / "tests")), timeout=60)  # fmt: skip
    if r.exit_code != 0:
        return 0.0, f"the tests could not be copied in: {r.output}"
    ran = await sandbox.exec("bash /tests/test.sh", timeout=task.verifier_timeout_s)
    text = await sandbox.exec("cat /logs/verifier/reward.txt", timeout=30)
    if text.exit_code == 0 and text.stdout.strip():
        return _number(text.stdout.strip()), ran.output
    found = await sandbox.exec("cat /logs/verifier/reward.json", timeout=30)
    if found.exit_code == 0 and found.stdout.strip():
        try:
            rewards = json.loads(found.stdout)
        except ValueError:
            return 0.0, ran.output + "\n[reward.json does not parse]"
        if isinstance(rewards, dict):
            rewards = rewards.get("reward", next(iter(rewards.values()), 0.0))
        return _number(str(rewards)), ran.output
    return 0.0, ran.output + "\n[the tests wrote no reward]"


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        return 0.0
    return value if value == value and abs(value) != float("inf") else 0.0


def _packed(folder: Path) -> str:
    """``folder`` as a gzipped tar, base64 (empty when there is no such folder)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        if folder.is_dir():
            for path in sorted(folder.rglob("*")):
                tar.add(path, arcname=str(path.relative_to(folder)), recursive=False)
    return base64.b64encode(buf.getvalue()).decode()
