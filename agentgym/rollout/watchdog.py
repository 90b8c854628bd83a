"""The stall watchdog: a rollout that makes no progress fails, naming what it waits for.

A frozen component (an engine core stopped by a signal, a browser that no longer answers, a
paused container, a server that accepts and never replies) leaves every await on it
pending; each such await would need its own deadline, and one forgotten is a run that idles
for hours without a word. The watchdog is the net under all of them: while episodes are in
flight, a turn or model call ends, or an episode finishes, at least every
``rollout.stall_timeout_s`` seconds, or the run fails with a ``StallError`` that lists the
episodes in flight and, for each, the innermost call it is suspended in (the policy's
``generate``, a tool, the env's reset: the frozen component, by name).
"""

from __future__ import annotations

import asyncio
import sysconfig
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agentgym.errors import StallError

STDLIB = sysconfig.get_paths()["stdlib"]


class Watchdog:
    """Checks every few seconds that ``progress()`` moved within ``timeout_s``.

    Args:
        timeout_s: Seconds without progress that fail the run.
        progress: A number that grows with every turn, call or episode done.
        in_flight: (episode description, its asyncio task) of the episodes being played.
        on_stall: Gets the ``StallError`` when it fires (once).
    """

    def __init__(
        self,
        timeout_s: float,
        progress: Callable[[], int],
        in_flight: Callable[[], list[tuple[str, asyncio.Task[Any]]]],
        on_stall: Callable[[Exception], None],
    ) -> None:
        self.timeout_s, self.progress, self.in_flight = timeout_s, progress, in_flight
        self.on_stall = on_stall
        self.task = asyncio.create_task(self._watch())

    async def _watch(self) -> None:
        seen, since = self.progress(), time.monotonic()
        while True:
            await asyncio.sleep(min(5.0, self.timeout_s / 4))
            now, flying = time.monotonic(), self.in_flight()
            if self.progress() != seen or not flying:
                seen, since = self.progress(), now
            elif now - since > self.timeout_s:
                self.on_stall(stall_error(self.timeout_s, flying))
                return

    def cancel(self) -> None:
        self.task.cancel()


def stall_error(timeout_s: float, flying: list[tuple[str, asyncio.Task[Any]]]) -> StallError:
    lines = [f"  {what}: waiting in {waiting_in(task)}" for what, task in flying[:8]]
    more = f"\n  ... and {len(flying) - 8} more" if len(flying) > 8 else ""
    return StallError(
        f"no episode made progress for {timeout_s:g} s (rollout.stall_timeout_s); "
        f"{len(flying)} in flight:\n" + "\n".join(lines) + more + "\nA component is frozen "
        "or far slower than the timeout: fix it, or raise rollout.stall_timeout_s"
    )


def waiting_in(task: asyncio.Task[Any]) -> str:
    """Where ``task`` is suspended: the innermost coroutine outside Python's own library (the
    component: ``VLLMPolicy.generate``, ``SweEnv.astep``), and the call it waits on there."""
    chain: list[tuple[str, str, int]] = []
    coro: Any = task.get_coro()
    while (frame := getattr(coro, "cr_frame", None)) is not None:
        code = frame.f_code
        chain.append((code.co_qualname, code.co_filename, frame.f_lineno))
        coro = getattr(coro, "cr_await", None)
    if not chain:
        return "?"
    ours = [c for c in chain if not c[1].startswith(STDLIB)] or chain
    name, file, line = ours[-1]
    where = f"{name} ({Path(file).name}:{line})"
    return where if ours[-1] == chain[-1] else f"{chain[-1][0]} in {where}"
