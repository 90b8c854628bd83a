"""The rollout engine: episodes x policy -> trajectories, concurrently on one event loop.

``rollout`` runs ``group_size`` episodes of each task (the groups GRPO needs); ``GroupStream``
(``stream.py``) takes tasks at any time and yields groups as they finish. Both are the same
``Workers``: ``concurrency`` workers, each owning one environment from an ``EnvPool`` (so
browsers and containers are bounded by it), playing (task, sample) pairs from a queue.

An ``Episode`` is the engine's record of one episode in play, and the one owner of its
conversation: the transcript, the turns, the policy's context. An episode that raises (an
infrastructure fault) is recorded as failed with its turns so far (``stop_reason="error"``),
its environment replaced, and the run goes on until more than ``max_failure_rate`` of the
episodes have failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

from agentgym.asyncenv import Action, EpisodeEnv, ProgramEnv
from agentgym.errors import PolicyDeadError, PolicyError, ProgramError, RolloutError
from agentgym.policy import Context, Policy
from agentgym.rollout.config import RolloutConfig
from agentgym.rollout.watchdog import Watchdog
from agentgym.rollout.writer import TrajectoryWriter
from agentgym.types import Message, ToolSpec, Trajectory, Turn

CLOSE_TIMEOUT_S = 10.0
"""Seconds an abandoned episode's environment may take to close (a frozen one is left)."""
_STEP_KEYS = {"turn", "reward_parts", "format_error", "tool_calls", "tool_errors", "action"}


def episode_seed(task: int, sample: int) -> int:
    """The policy's sampling seed for one episode: distinct across a group, reproducible."""
    return task * 100_003 + sample


class Episode:
    """One episode of ``task`` (sample ``sample``) in play: what has happened so far.

    Args:
        env: The environment it is played in.
        policy: The policy that plays it.
        task: The task's seed.
        sample: Which of the task's group this is.
        cfg: The episode's limits.
    """

    def __init__(
        self, env: EpisodeEnv, policy: Policy, task: int, sample: int, cfg: RolloutConfig
    ) -> None:
        self.env, self.policy, self.task, self.sample, self.cfg = env, policy, task, sample, cfg
        self.transcript: list[Message] = []
        self.turns: list[Turn] = []
        self.tools: list[ToolSpec] = []
        self.ctx: Context | None = None
        self.reset_seconds = 0.0
        self.link: Any = None  # a program's gateway episode

    async def play(self) -> Trajectory:
        """Reset, then turn after turn until the episode ends or a limit cuts it."""
        t0 = time.perf_counter()
        options = {"split": self.cfg.split, "max_turns": self.cfg.max_turns}
        options = {k: v for k, v in options.items() if v is not None}
        obs, reset_info = await self.env.areset(seed=self.task, options=options or None)
        self.reset_seconds = time.perf_counter() - t0
        self.transcript, self.tools = list(obs.messages), list(obs.tools)
        seed = episode_seed(self.task, self.sample)
        ctx = self.ctx = self.policy.start(obs.messages, obs.tools, reset_info, seed=seed)
        ctx.temperature = self.cfg.temperature
        if isinstance(self.env, ProgramEnv):  # a program plays it, through the gateway
            return await self._program(self.env, seed)
        limit = self.cfg.max_turns
        while limit is None or len(self.turns) < limit:
            ended = await self._turn(ctx)
            if ended is not None:
                return self.trajectory(*ended)
        return self.trajectory("max_turns", terminated=False, truncated=True)

    async def _turn(self, ctx: Context) -> tuple[str, bool, bool, dict[str, Any]] | None:
        """Play one turn; (stop reason, terminated, truncated, end info) if it ended the
        episode, None if the episode goes on."""
        start, t1 = len(ctx.token_ids), time.perf_counter()
        budget = self.cfg.max_tokens - start
        if budget <= 0:
            return "token_budget", False, True, {}
        sample = await self.policy.act(ctx, budget)
        t2 = time.perf_counter()
        action: Action = Message(role="assistant", content=sample.text)
        if sample.tool_calls is not None:  # native calls: the env parses them
            action = {"content": sample.text, "tool_calls": sample.tool_calls}
        obs, reward, terminated, truncated, info = await self.env.astep(action)
        # the env's reading of the action (its parsed calls); a bare gymnasium-style env: text
        said = info.get("action") or Message(role="assistant", content=sample.text)
        self.transcript += [said, *obs.messages]
        self.tools = list(obs.tools) or self.tools
        self.turns.append(
            Turn(
                index=len(self.turns),
                action=said,
                observation=obs.messages,
                reward=reward,
                reward_parts=info.get("reward_parts", {}),
                format_error=bool(info.get("format_error")),
                token_span=(start, len(ctx.token_ids)) if sample.token_ids else None,
                policy_seconds=t2 - t1,
                env_seconds=time.perf_counter() - t2,
                info={k: v for k, v in info.items() if k not in _STEP_KEYS},
            )
        )
        if terminated or truncated:
            return ("terminated" if terminated else "env_truncated"), terminated, truncated, info
        before = len(ctx.token_ids)
        self.policy.observe(ctx, obs.messages)
        if len(ctx.token_ids) >= self.cfg.max_tokens:  # no room left to answer: stop here
            ctx.truncate(before)
            return "token_budget", False, True, {}
        return None

    async def _program(self, env: ProgramEnv, seed: int) -> Trajectory:
        """The whole episode, played by the env's program against this policy's gateway;
        its model calls become the trajectory's segments."""
        from agentgym.gateway import Gateway

        gateway = await Gateway.of(self.policy)
        link = self.link = gateway.open(seed)
        t0 = time.perf_counter()
        try:
            obs, reward, terminated, truncated, info = await env.aplay(link)
        finally:
            record = gateway.close(link)
        if link.failed:
            raise ProgramError(f"env '{self.env.env_id}', task {self.task}: {link.failed}")
        said = info.get("action") or Message(role="assistant", content="")
        self.transcript += [said, *obs.messages]
        model_s = record.model_seconds  # the rest of the episode's time: program and env
        self.turns.append(
            Turn(index=0, action=said, observation=obs.messages, reward=reward,
                 reward_parts=info.get("reward_parts", {}), policy_seconds=model_s,
                 env_seconds=time.perf_counter() - t0 - model_s,
                 info={k: v for k, v in info.items() if k not in _STEP_KEYS})
        )  # fmt: skip
        stop = "terminated" if terminated else "env_truncated"
        traj = self.trajectory(stop, terminated, truncated, info)
        traj.segments, traj.attribution_failed = record.segments(), not record.attributable
        if record.unattributed:
            traj.info["unattributed"] = record.unattributed[:5]
        return traj

    def trajectory(
        self,
        stop_reason: str,
        terminated: bool = False,
        truncated: bool = False,
        end_info: dict[str, Any] | None = None,
    ) -> Trajectory:
        """The episode as it stands, ended for ``stop_reason``."""
        end_info = end_info or {}
        ctx = self.ctx or Context(messages=[], tools=[])
        return Trajectory(
            env_id=self.env.env_id,
            task=self.task,
            sample=self.sample,
            messages=self.transcript,
            tools=self.tools,
            turns=self.turns,
            token_ids=ctx.token_ids,
            loss_mask=ctx.loss_mask,
            logprobs=ctx.logprobs,
            token_versions=ctx.versions,
            images=ctx.images,
            reward=sum(t.reward for t in self.turns),
            success=bool(end_info.get("success", False)),
            terminated=terminated,
            truncated=truncated,
            stop_reason=stop_reason,
            policy_version=self.policy.version,
            reset_seconds=self.reset_seconds,
            info={k: v for k, v in end_info.items() if k not in ("reward_parts", "turn")},
        )

    @property
    def progress(self) -> int:
        """Grows with every turn (and every model call of a program)."""
        return len(self.turns) + (len(self.link.record.calls) if self.link is not None else 0)

    def __str__(self) -> str:
        return f"env '{self.env.env_id}' task {self.task} sample {self.sample} turn {self.progress}"

    def failed(self, exc: BaseException) -> Trajectory:
        """The record of this episode after it raised: its turns so far, and why."""
        traj = self.trajectory("error")
        traj.info = {"error": f"{type(exc).__name__}: {exc}"[:2000], "turn": len(self.turns)}
        return traj


async def run_episode(
    env: EpisodeEnv, policy: Policy, task: int, sample: int, cfg: RolloutConfig
) -> Trajectory:
    """Play one episode of ``task`` and return its trajectory (an error raises)."""
    return await Episode(env, policy, task, sample, cfg).play()


class EnvPool:
    """Environments kept between rollouts, so a trainer's steps reuse them.

    Building an environment can cost seconds (a browser, containers, a Ray actor); a trainer
    that called ``rollout`` with a factory would pay that every step. Workers take an idle
    environment from the pool or build one, and give it back when they are done; an
    environment whose episode raised is closed, not reused. ``aclose`` closes the idle ones.

    Args:
        make_env: Builds one environment.
    """

    def __init__(self, make_env: Callable[[], EpisodeEnv]) -> None:
        self.make_env = make_env
        self.idle: list[EpisodeEnv] = []

    def acquire(self) -> EpisodeEnv:
        return self.idle.pop() if self.idle else self.make_env()

    def release(self, env: EpisodeEnv) -> None:
        self.idle.append(env)

    async def aclose(self) -> None:
        """Close the idle environments (each within ``CLOSE_TIMEOUT_S``: a frozen one is left
        to its process's end, not waited on)."""
        while self.idle:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.idle.pop().aclose(), CLOSE_TIMEOUT_S)


class Workers:
    """The engine's one worker loop (see the module docstring).

    Args:
        envs: The pool the workers take their environments from (the caller closes it).
        policy: The policy that plays.
        cfg: Episode limits, the number of workers (``concurrency``), the failure budget.
        on_done: Gets every finished episode (failed ones too).
        on_fatal: Gets the error that stops the run (more failures than the budget, a
            ``PolicyError`` then as it is); the workers stop taking episodes.
    """

    def __init__(
        self,
        envs: EnvPool,
        policy: Policy,
        cfg: RolloutConfig,
        on_done: Callable[[Trajectory], None],
        on_fatal: Callable[[Exception], None],
    ) -> None:
        self.envs, self.policy, self.cfg = envs, policy, cfg
        self.on_done, self.on_fatal = on_done, on_fatal
        self.queue: asyncio.Queue[tuple[int, int]] = asyncio.Queue()
        self.tasks: list[asyncio.Task[None]] = []
        self.submitted = self.failures = self.finished = 0
        self.playing: dict[asyncio.Task[Any], Episode] = {}
        self.watchdog: Watchdog | None = None

    def submit(self, task: int, sample: int, workers: int | None = None) -> None:
        """Queue one episode (starting up to ``workers``, default ``concurrency``, on first
        use)."""
        if not self.tasks:
            n = max(1, min(self.cfg.concurrency, workers or self.cfg.concurrency))
            self.tasks = [asyncio.create_task(self._work()) for _ in range(n)]
            if self.cfg.stall_timeout_s is not None and self.watchdog is None:
                self.watchdog = Watchdog(self.cfg.stall_timeout_s, self._progress,
                                         self._in_flight, self.on_fatal)  # fmt: skip
        self.queue.put_nowait((task, sample))
        self.submitted += 1

    async def aclose(self) -> None:
        """Stop the workers: idle environments go back to the pool, those of episodes in
        flight (abandoned) are closed."""
        if self.watchdog is not None:
            self.watchdog.cancel()
            self.watchdog = None
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        self.tasks = []

    def _progress(self) -> int:
        return self.finished + sum(e.progress for e in self.playing.values())

    def _in_flight(self) -> list[tuple[str, asyncio.Task[Any]]]:
        return [(str(e), task) for task, e in self.playing.items()]

    async def _work(self) -> None:
        try:
            await self._play_queued()
        except Exception as exc:  # not an episode's fault (the writer's disk, a bug): stop
            self.on_fatal(exc)

    async def _play_queued(self) -> None:
        env, busy = self.envs.acquire(), False
        me = asyncio.current_task()
        assert me is not None
        try:
            while True:
                task, sample = await self.queue.get()
                busy = True
                episode = self.playing[me] = Episode(env, self.policy, task, sample, self.cfg)
                try:
                    try:
                        traj = await episode.play()
                    finally:  # ended, failed or abandoned: no longer in flight
                        del self.playing[me]
                        self.finished += 1
                except Exception as exc:  # an infrastructure fault: record it, replace the env
                    fatal = self._past_budget(env, task, exc)
                    if fatal is not None:
                        self.on_fatal(fatal)
                    self.on_done(episode.failed(exc))
                    if fatal is not None:
                        return
                    await env.aclose()
                    env = self.envs.acquire()
                else:
                    self.on_done(traj)
                busy = False
                await asyncio.sleep(0)  # episodes that never wait (scripted) must not starve
                # the loop: its signal handlers (SIGTERM), watchdog and progress run between them
        finally:
            if busy:  # abandoned mid-episode; a frozen env must not hold the run's end up
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(env.aclose(), CLOSE_TIMEOUT_S)
            else:
                self.envs.release(env)

    def _past_budget(self, env: EpisodeEnv, task: int, exc: Exception) -> Exception | None:
        """Count a failure; past ``max_failure_rate`` of the episodes submitted (plus one, when
        the rate is not 0), the error that stops the run (the policy's own error as it is: the
        policy is down, every episode would fail the same way)."""
        self.failures += 1
        if isinstance(exc, PolicyDeadError):
            return exc
        rate = self.cfg.max_failure_rate
        if self.failures <= rate * self.submitted + (rate > 0):  # a run of 8 survives one
            return None
        if isinstance(exc, PolicyError):
            return exc
        error = RolloutError(
            f"{self.failures} of {self.submitted} episodes failed (more than "
            f"rollout.max_failure_rate={self.cfg.max_failure_rate}); the last: "
            f"env '{env.env_id}', task {task}: {type(exc).__name__}: {exc}"[:1000]
        )
        error.__cause__ = exc
        return error


async def rollout(
    envs: EnvPool | Callable[[], EpisodeEnv],
    policy: Policy,
    tasks: list[int],
    group_size: int,
    cfg: RolloutConfig | None = None,
    writer: TrajectoryWriter | None = None,
    on_episode: Callable[[Trajectory], None] | None = None,
) -> list[Trajectory]:
    """Run ``group_size`` episodes of every task; return the new trajectories (task order).

    ``envs`` is a pool the caller keeps (and closes), or a factory: then the environments
    built here are closed before returning. Episodes already in ``writer.done`` are skipped.
    An episode that raises is returned (and written) as failed, with ``stop_reason="error"``;
    past ``cfg.max_failure_rate`` the run stops (the episodes already written stay on disk)
    and the error is raised.
    """
    cfg = cfg or RolloutConfig()
    if not isinstance(envs, EnvPool):
        pool = EnvPool(envs)
        try:
            return await rollout(pool, policy, tasks, group_size, cfg, writer, on_episode)
        finally:
            await pool.aclose()
    todo = [(t, s) for t in tasks for s in range(group_size)]
    if writer is not None:
        todo = [key for key in todo if key not in writer.done]
    results: dict[tuple[int, int], Trajectory] = {}
    finished: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def done(traj: Trajectory) -> None:
        results[traj.key] = traj
        if writer is not None:
            writer.write(traj)
        if on_episode is not None:
            on_episode(traj)
        if len(results) == len(todo) and not finished.done():
            finished.set_result(None)

    def fatal(exc: Exception) -> None:
        if not finished.done():
            finished.set_exception(exc)

    if not todo:
        return []
    workers = Workers(envs, policy, cfg, done, fatal)
    for task, sample in todo:
        workers.submit(task, sample, workers=len(todo))
    try:
        await finished
    finally:
        await workers.aclose()
    return [results[key] for key in todo]


def env_factory(
    env_id: str,
    kwargs: dict[str, Any],
    imports: list[str] | None = None,
    backend: str = "local",
    ray_address: str | None = None,
) -> Callable[[], EpisodeEnv]:
    """Build environments here (``local``) or in Ray actors (``ray``)."""
    if backend == "ray":
        from agentgym.cluster import ensure_ray
        from agentgym.rollout.remote import RayEnv

        ensure_ray(ray_address)
        return lambda: RayEnv(env_id, kwargs, list(imports or []))
    from agentgym.registration import make

    return lambda: make(env_id, **kwargs)
