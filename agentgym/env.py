"""``AgentEnv``: a Gymnasium environment whose actions are assistant messages.

A subclass writes the task and the tools; the base class does the rest (parsing tool calls,
validating arguments, turning the model's mistakes into observations, the turn limit, reward
parts)::

    class GuessNumber(AgentEnv):
        def task(self, options):
            self.secret = int(self.np_random.integers(1, 101))
            return [Message(role="user", content="Guess my number (1-100).")], {}

        @tool
        def guess(self, number: int) -> str:
            '''Guess the number.

            Args:
                number: Your guess.
            '''
            if number == self.secret:
                self.add_reward("correct", 1.0)
                self.end(success=True)
                return "correct"
            return "higher" if number < self.secret else "lower"

``reset`` returns an ``Observation`` (the first messages and the tools). ``step(action)`` takes
the assistant's message (a ``Message``, its text, or an OpenAI assistant message dict with
native ``tool_calls``) and returns ``(observation, reward, terminated, truncated, info)``;
``observation.messages`` are the new messages only and ``info["action"]`` is the assistant
message as recorded (calls parsed, with ids): the caller keeps the transcript (the rollout
engine does). ``info["reward_parts"]`` names every part of the reward; ``info["signals"]``
carries per-turn signals that are not part of it (process rewards); ``info["format_error"]``
flags a malformed or penalised turn. ``areset``/``astep`` are the async twins the rollout
engine drives; tools may be ``async def`` and environments with I/O should make them so.

An environment's options are one pydantic model, ``config_model`` (a subclass of
``AgentEnvConfig``, whose fields every environment takes: ``max_turns``, ``format_penalty``,
``untagged_tool_calls``, ``mcp_servers``); ``make(id, **options)`` validates them into
``self.cfg``. The turn limit is ``cfg.max_turns``, stated once per environment there (a class
line ``max_turns = 8`` is short for a config model whose ``max_turns`` defaults to 8).
"""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, create_model

from agentgym.asyncenv import Action, AsyncEnv, StepReturn
from agentgym.config import validate
from agentgym.errors import EnvError, ToolError
from agentgym.mcp import McpServer, McpServerConfig, start_servers
from agentgym.parsing import read_action
from agentgym.tools import Tool, collect_tools
from agentgym.types import Message, Observation, ToolCall, ToolSpec

TURNS = "assistant turns before the episode is cut"


class AgentEnvConfig(BaseModel):
    """The options every environment takes (``env.<key>=`` on the command line, keyword
    arguments of ``make``); an environment's own ``config_model`` extends it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_turns: int = Field(10, ge=1, description=TURNS)
    format_penalty: float = Field(
        0.1, ge=0.0, description="subtracted for a turn with a malformed or missing tool call"
    )
    untagged_tool_calls: bool = Field(
        False,
        description="also run a message that is one bare (or ```json-fenced) JSON call of a "
        "known tool, at half the format penalty (small models write calls so before they learn "
        "the <tool_call> tags)",
    )
    mcp_servers: tuple[McpServerConfig, ...] = Field(
        (),
        description="MCP servers ({command: [argv]} or {url: ...}) whose tools join the env's "
        "from the first reset on",
    )


class AgentEnv(AsyncEnv):
    """Base class of every agentgym environment. See the module docstring."""

    config_model: type[AgentEnvConfig] = AgentEnvConfig
    """The model of the environment's options (see the module docstring)."""
    cfg: AgentEnvConfig
    max_tool_calls_per_turn: int = 8
    """Calls past this many in one turn are not run (one error observation says so, and the
    turn is a format error): a turn of 100 guesses must not win guess_number."""
    turn_time_budget_s: float = 300.0
    """Wall-clock seconds all the tool calls of one turn may take together: a call still
    running when it is spent is stopped and the later calls are not run (an error
    observation says so). Bounds a turn of slow calls, whatever each tool's own limit."""
    holdout_fraction: float = 0.1
    """The share of a task list (``task_index``) held out for evaluation: ``reset(options=
    {"split": "eval"})`` plays only those tasks, ``"train"`` only the others, no split all."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """``max_turns = N`` in a class body is short for a config model whose ``max_turns``
        defaults to N (the limit stays one config field, ``env.max_turns=`` overrides it)."""
        super().__init_subclass__(**kwargs)
        if not issubclass(cls.config_model, AgentEnvConfig):
            raise TypeError(f"{cls.__name__}.config_model must subclass AgentEnvConfig")
        turns = cls.__dict__.get("max_turns")
        if turns is None:
            return
        if not isinstance(turns, int) or isinstance(turns, bool) or turns < 1:
            raise TypeError(f"{cls.__name__}.max_turns must be a positive int, got {turns!r}")
        delattr(cls, "max_turns")
        cls.config_model = create_model(
            f"{cls.__name__}Config",
            __base__=cls.config_model,
            max_turns=(int, Field(turns, ge=1, description=TURNS)),
        )

    def __init__(self, **config: Any) -> None:
        super().__init__()
        self.cfg = validate(self.config_model, config, prefix="env")
        self.max_turns = self.cfg.max_turns
        """The current episode's turn limit (``cfg.max_turns`` unless ``reset`` got one)."""
        self.tools: dict[str, Tool] = collect_tools(self)
        self.turn = 0
        self._ended = False
        self._end_info: dict[str, Any] = {}
        self._rewards: dict[str, float] = {}
        self._signals: dict[str, float] = {}
        self._turn_info: dict[str, Any] = {}
        self.task_seed: int | None = None
        self.split: str | None = None
        self._mcp: list[McpServer] | None = None

    @property
    def format_penalty(self) -> float:
        return self.cfg.format_penalty

    def __getstate__(self) -> dict[str, Any]:
        """Pickled without its tools (rebuilt from the class) and its private event loop."""
        state = self.__dict__.copy()
        state.pop("tools", None)
        state["_loop"], state["_mcp"] = None, None  # MCP servers restart at the next reset
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.tools = collect_tools(self)

    # ---- what a subclass writes -------------------------------------------------------------

    def task(self, options: dict[str, Any]) -> tuple[list[Message], dict[str, Any]]:
        """Start an episode: draw the task from ``self.np_random``; return (messages, info)."""
        raise NotImplementedError

    async def atask(self, options: dict[str, Any]) -> tuple[list[Message], dict[str, Any]]:
        """Async twin of ``task``; override for environments that do I/O at reset."""
        return self.task(options)

    def on_reply(self, content: str) -> list[Message]:
        """Called when the assistant answers without tool calls. Default: the episode ends."""
        self.end()
        return []

    async def aon_reply(self, content: str) -> list[Message]:
        """Async twin of ``on_reply``; override where answering needs I/O."""
        return self.on_reply(content)

    async def aon_turn_limit(self) -> None:
        """Called when a turn ends at the turn limit without the episode having ended; may add
        rewards and ``end(...)`` info that score the final state (default: nothing)."""

    # ---- what a subclass calls --------------------------------------------------------------

    def task_index(self, n: int) -> int:
        """Which of ``n`` tasks this episode plays: ``seed % n`` when reset got a seed (task
        ``t`` of a run is task ``t``), else a draw from ``np_random``; within the split that
        ``reset``'s ``options["split"]`` names (see ``holdout_fraction``)."""
        k = self.task_seed if self.task_seed is not None else int(self.np_random.integers(n))
        if self.split is None or n < 2:
            return k % n
        held = max(1, round(n * self.holdout_fraction))
        return n - held + k % held if self.split == "eval" else k % (n - held)

    def add_reward(self, name: str, value: float) -> None:
        """Add ``value`` to the reward part ``name`` of the current turn."""
        self._rewards[name] = self._rewards.get(name, 0.0) + float(value)

    def add_signal(self, name: str, value: float) -> None:
        """Record a per-turn signal (e.g. a process reward) in ``info["signals"]`` without
        adding it to the reward; a trainer may still credit it (``turn_reward_parts``)."""
        self._signals[name] = self._signals.get(name, 0.0) + float(value)

    def label(self, **info: Any) -> None:
        """Add keys to this turn's ``info`` (e.g. ``intent=...``, which GRPO's turn-level
        credit groups by)."""
        self._turn_info.update(info)

    def end(self, success: bool | None = None, **info: Any) -> None:
        """End the episode after this turn (``terminated=True``); ``info`` goes into step's info."""
        self._ended = True
        if success is not None:
            info["success"] = success
        self._end_info.update(info)

    def active_tools(self) -> dict[str, Tool]:
        """The tools the model may call now: what it is shown and what ``step`` dispatches to
        (override to hide some, e.g. by mode). Default: every tool of the env."""
        return self.tools

    @property
    def tool_specs(self) -> list[ToolSpec]:
        return [t.spec for t in self.active_tools().values()]

    # ---- the episode ------------------------------------------------------------------------

    async def areset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Observation, dict[str, Any]]:
        """Async ``reset``. ``options``: ``split`` (``"train"``/``"eval"``) and
        ``max_turns`` (this episode's limit instead of ``cfg.max_turns``)."""
        gym_reset = super(AsyncEnv, self).reset  # gymnasium's: seeds np_random
        gym_reset(seed=seed)
        options = dict(options or {})
        self.task_seed, self.split = seed, options.get("split")
        if self.split not in (None, "train", "eval"):
            raise ValueError(f"options['split'] must be 'train' or 'eval', got {self.split!r}")
        # however the limit is reached, the episode is truncated here and aon_turn_limit scores it
        self.max_turns = int(options.get("max_turns") or self.cfg.max_turns)
        self.turn, self._ended, self._end_info, self._rewards = 0, False, {}, {}
        if self._mcp is not None and not all(server.alive for server in self._mcp):
            await self._stop_mcp()  # a server exited since the last episode: start it again
        if self.cfg.mcp_servers and self._mcp is None:
            self._mcp, mcp_tools = await start_servers(
                self.cfg.mcp_servers, set(self.tools), self.env_id
            )
            self.tools.update(mcp_tools)
        messages, info = await self.atask(options)
        return Observation(messages=messages, tools=self.tool_specs), info

    async def astep(self, action: Action) -> StepReturn:
        """Async ``step``."""
        if self._ended or (self.turn >= self.max_turns and self.turn > 0):
            raise EnvError(self.env_id, self.turn, None, "step() after the episode ended; reset()")
        self.turn += 1
        self._rewards, self._signals, self._turn_info = {}, {}, {}
        recorded, prose, calls, new = self._read(action)
        format_error, tool_errors = bool(new), 0
        deadline = asyncio.get_running_loop().time() + self.turn_time_budget_s
        for call in calls:
            if self._ended:
                break
            reply, bad_call, failed = await self._call_within(call, deadline)
            format_error |= bad_call
            tool_errors += failed
            new.extend(_tool_messages(call, reply))
        if not calls and not new:
            new.extend(await self.aon_reply(prose))
        if format_error:
            self.add_reward("format", -self.format_penalty)
        # the flag and the penalty agree: a turn penalised for its format (plain text where a
        # tool call was due, an untagged call) is a format error too
        format_error = format_error or self._rewards.get("format", 0.0) < 0
        terminated = self._ended
        truncated = not terminated and self.turn >= self.max_turns
        if truncated:
            await self.aon_turn_limit()
        info: dict[str, Any] = {
            "turn": self.turn,
            "reward_parts": dict(self._rewards),
            "format_error": format_error,
            "tool_calls": len(calls),
            "tool_errors": tool_errors,
            "action": recorded,
            **({"signals": dict(self._signals)} if self._signals else {}),
            **self._turn_info,
            **(self._end_info if terminated or truncated else {}),
        }
        reward = float(sum(self._rewards.values()))
        return Observation(messages=new, tools=self.tool_specs), reward, terminated, truncated, info

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> str:
        """Run one tool outside a step, for a program that acts in this env (``env=harness``):
        the model's mistakes come back as error text, rewards join the current turn's parts."""
        call = ToolCall(id=f"call_{self.turn}", name=name, arguments=arguments)
        reply, _, _ = await self._call_within(call, asyncio.get_running_loop().time() + 300)
        return reply.content if isinstance(reply, Message) else reply

    @property
    def ended(self) -> bool:
        """Whether the episode has ended (``end`` was called)."""
        return self._ended

    def earned(self) -> tuple[dict[str, float], dict[str, Any]]:
        """The reward parts of the current turn and the end info (a program's episode is one
        turn: what its tool calls earned)."""
        return dict(self._rewards), dict(self._end_info)

    def program_variables(self) -> dict[str, str]:
        """Environment variables a program acting in this env needs (swe: its sandbox)."""
        return {}

    def _read(self, action: Action) -> tuple[Message, str, list[ToolCall], list[Message]]:
        """The action as recorded (its calls with ids), its prose (what ``aon_reply`` reads
        when there is no call), the calls to run (at most ``max_tool_calls_per_turn``), and an
        error message for each problem found."""
        untagged = self.active_tools() if self.cfg.untagged_tool_calls else None
        message, parsed = read_action(action, untagged)
        if parsed.untagged:
            self.add_reward("format", -self.format_penalty / 2)
            self.label(untagged_call=True)
        errors, calls, cap = list(parsed.errors), parsed.calls, self.max_tool_calls_per_turn
        if len(calls) > cap:
            errors.append(
                f"{len(calls) - cap} tool calls after the first {cap} of this turn were not run "
                f"(at most {cap} per turn)"
            )
            calls = calls[:cap]
        calls = [
            c if c.id else c.model_copy(update={"id": f"call_{self.turn}_{i}"})
            for i, c in enumerate(calls)
        ]
        recorded = message.model_copy(update={"tool_calls": calls})
        prose = "" if parsed.untagged else parsed.content
        return recorded, prose, calls, [Message(role="user", content=f"Error: {e}") for e in errors]

    async def _call_within(
        self, call: ToolCall, deadline: float
    ) -> tuple[str | Message, bool, bool]:
        """``_call``, stopped at ``deadline`` (the turn's time budget), not run after it."""
        spent = f"Error: this turn's time budget ({self.turn_time_budget_s:g} s) ran out"
        if asyncio.get_running_loop().time() >= deadline:
            return f"{spent}; this call was not run.", False, True
        try:
            async with asyncio.timeout_at(deadline):
                return await self._call(call)
        except TimeoutError:
            return f"{spent}; this call was stopped.", False, True

    async def _call(self, call: ToolCall) -> tuple[str | Message, bool, bool]:
        """Run one call. Returns (text for the model, malformed call?, tool refused?)."""
        active = self.active_tools()
        tool = active.get(call.name)
        if tool is None:
            known = ", ".join(active) or "none"
            return f"Error: unknown tool '{call.name}'. Available tools: {known}.", True, True
        try:
            kwargs = tool.validate(call.arguments)
        except ToolError as exc:
            return f"Error: {exc}", True, True
        try:
            return await tool.run(self, kwargs), False, False
        except ToolError as exc:
            return f"Error: {exc}", False, True
        except ConnectionError as exc:  # a server the tool needs is gone: say which
            raise EnvError(self.env_id, self.turn, call.name, str(exc)) from exc
        except Exception as exc:
            raise EnvError(self.env_id, self.turn, call.name, repr(exc)) from exc

    async def arelease(self) -> None:
        """Stop the MCP servers (their tools leave with them); subclasses that hold more
        (browsers, containers, clients) release it and call this."""
        await self._stop_mcp()

    async def _stop_mcp(self) -> None:
        for server in self._mcp or []:
            await server.aclose()
        self._mcp = None
        self.tools = collect_tools(self)


def _tool_messages(call: ToolCall, reply: str | Message) -> list[Message]:
    """A call's answer as a tool message (and its images, if any, as a user message after
    it: OpenAI's schema allows images on user messages only)."""
    message = reply if isinstance(reply, Message) else Message(role="tool", content=reply)
    answer = message.model_copy(
        update={"role": "tool", "tool_call_id": call.id, "name": call.name, "images": []}
    )
    if message.images:
        return [answer, Message(role="user", content="", images=message.images)]
    return [answer]
