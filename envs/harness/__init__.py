"""``harness``: an environment whose agent is a program (a coding agent, an Agents-SDK
program), run unmodified against agentgym's gateway, and scored by a task environment's own
verifier.

    agentgym eval env=harness env.task=swe 'env.task_options={difficulty: 0}' \\
        'env.command=[mini, -t, "{task}", ...]' policy=vllm policy.model=MODEL

Per episode: the task environment (``env.task``: swe, deep_research, any registered one)
resets as usual and its first user message is the instruction; the command runs with the
gateway's episode address in the variables the common clients read
(``agentgym/gateway/program.py``) and the env's tools at ``$AGENTGYM_TOOLS_URL/<name>``; on
swe its shell commands run in the task's sandbox (``docker_shim.py``). When it exits, the
``finish`` tool is called with its last line of output if the episode has not ended (auto:
``answer`` with ``text``, or ``submit``), and the reward is what the task env's verifier paid.
A program that crashes, hangs past ``time_budget_s`` or floods the gateway fails its episode
(``ProgramError``).

Why a wrapper env and not an option of each task env: the program replaces the rollout
engine's turn loop, not a part of the task; one wrapper gives every env (a user's too) its
program mode, and the task envs stay as they are.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from agentgym import programs
from agentgym.asyncenv import Action, AsyncEnv, StepReturn
from agentgym.config import validate
from agentgym.env import AgentEnv
from agentgym.errors import EnvError, ProgramError
from agentgym.gateway.program import run_program
from agentgym.registration import make
from agentgym.types import Message, Observation


class HarnessConfig(BaseModel):
    """``env.*`` keys of ``harness``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    task: str = Field(description="the env whose tasks and verifier score the program")
    task_options: dict[str, Any] = Field(default_factory=dict, description="its env.* options")
    command: tuple[str, ...] = Field(
        min_length=1,
        description="the program's argv; {task} is replaced by the instruction, {programs} by "
        "the folder of agentgym's program configs (agentgym/programs)",
    )
    variables: dict[str, str] = Field(default_factory=dict, description="more env variables")
    time_budget_s: float = Field(600.0, gt=0, description="seconds the program may run")
    finish: str | None = Field(
        "auto",
        description="the tool called with the program's last output line if the episode has "
        "not ended (auto: answer(text) or submit(); null: none)",
    )
    max_tool_calls: int = Field(200, ge=1, description="tool calls the program may make")


class HarnessEnv(AsyncEnv):
    """A program acts in a task environment (see the module docstring)."""

    config_model = HarnessConfig

    def __init__(self, **config: Any) -> None:
        super().__init__()
        self.cfg = validate(HarnessConfig, config, prefix="env")
        task = make(self.cfg.task, **self.cfg.task_options)
        if not isinstance(task, AgentEnv):
            raise EnvError("harness", 0, None, f"'{self.cfg.task}' is not a tool environment")
        self.task_env: AgentEnv = task
        self.instruction, self.opening, self.calls = "", "[]", 0
        self._shim = Path(tempfile.mkdtemp(prefix="agentgym-shim-")) / "docker"
        self._shim.write_text(
            f'#!/bin/sh\nexec {sys.executable} -m agentgym.gateway.docker_shim "$@"\n'
        )
        self._shim.chmod(0o755)

    async def areset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Observation, dict[str, Any]]:
        obs, info = await self.task_env.areset(seed=seed, options=options)
        users = [m.content for m in obs.messages if m.role == "user"]
        self.instruction, self.calls = (users[-1] if users else ""), 0
        self.opening = json.dumps([m.to_openai() for m in obs.messages])
        return obs, info

    async def astep(self, action: Action) -> StepReturn:
        raise EnvError("harness", 0, None, "a program plays this env: use aplay (the engine does)")

    async def aplay(self, link: Any) -> StepReturn:
        """Run the program against ``link`` (the gateway's episode) and score what it did."""
        tools = self.task_env.active_tools().values()
        link.expose(self._tool, [t.spec.to_openai() for t in tools])
        variables = {
            "OPENAI_BASE_URL": link.base_url, "OPENAI_API_BASE": link.base_url,
            "OPENAI_API_KEY": link.token, "AGENTGYM_TASK": self.instruction,
            "AGENTGYM_MESSAGES": self.opening,
            "AGENTGYM_TOOLS_URL": link.tools_url, "MSWEA_DOCKER_EXECUTABLE": str(self._shim),
            **self.task_env.program_variables(), **self.cfg.variables,
        }  # fmt: skip
        argv = [a.replace("{task}", self.instruction).replace("{programs}", str(programs.HERE))
                for a in self.cfg.command]  # fmt: skip
        result = await run_program(argv, variables, self.cfg.time_budget_s)
        if result.timed_out:
            raise ProgramError(f"the program did not end within {self.cfg.time_budget_s:g} s")
        if result.exit_code != 0:
            tail = result.stderr.strip().splitlines()[-3:]
            raise ProgramError(f"the program exited with {result.exit_code}: {' | '.join(tail)}")
        final = next((ln for ln in reversed(result.stdout.splitlines()) if ln.strip()), "")
        await self._finish(final)
        parts, end = self.task_env.earned()
        done = self.task_env.ended
        said = Message(role="assistant", content=final)
        info = {"reward_parts": parts, "action": said, "program_seconds": result.seconds,
                "program_tool_calls": self.calls, **end}  # fmt: skip
        return Observation(messages=[]), float(sum(parts.values())), done, not done, info

    async def _finish(self, final: str) -> None:
        tools = self.task_env.active_tools()
        name = self.cfg.finish
        if name == "auto":
            name = "answer" if "answer" in tools else "submit" if "submit" in tools else None
        if not self.task_env.ended and name in tools:
            props = tools[name].spec.parameters.get("properties", {})
            args = {next(iter(props)): final} if props else {}
            await self.task_env.call_tool(name, args)
        if not self.task_env.ended:
            await self.task_env.aon_turn_limit()

    async def _tool(self, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        """A tool call of the program, run by the task env (errors are text, as for a model)."""
        self.calls += 1
        if self.calls > self.cfg.max_tool_calls:
            result = f"Error: more than {self.cfg.max_tool_calls} tool calls in this episode"
        elif self.task_env.ended:
            result = "Error: the episode has ended"
        else:
            result = await self.task_env.call_tool(name, arguments)
        return {"result": result, "ended": self.task_env.ended}

    async def arelease(self) -> None:
        await self.task_env.aclose()
        self._shim.unlink(missing_ok=True)
        self._shim.parent.rmdir()
