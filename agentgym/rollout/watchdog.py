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
    """Where ``task`` is suspended: the innermost call of the project's own code (agentgym's,
    or a user's env or policy: ``GUIEnv.astep``, ``VLLMPolicy.generate``) and the component
    it waits on there (the browser, the Docker daemon, the vLLM engine), from the library
    the wait goes through."""
    chain = _frames(task)
    if not chain:
        return "?"
    own = [i for i, frame in enumerate(chain) if _own(frame)]
    at = own[-1] if own else len(chain) - 1
    name, file, line, _ = chain[at]
    where = f"{name} ({Path(file).name}:{line})"
    deeper = [f for f in chain[at + 1 :] if _library(f) or not f[1].startswith(STDLIB)]
    if not deeper:
        return where if at == len(chain) - 1 else f"{where}, in {chain[-1][0]}"
    library = deeper[0][3].partition(".")[0]
    component = COMPONENTS.get(library, library)
    return f"{where}, waiting on {component} ({library}: {deeper[-1][0]})"


COMPONENTS = {
    "playwright": "the browser (Chromium)",
    "docker": "the Docker daemon",
    "vllm": "the vLLM engine",
    "openai": "the model server",
    "httpx": "an HTTP server",
    "httpcore": "an HTTP server",
    "websockets": "a WebSocket peer",
    "mcp": "an MCP server",
    "ray": "a Ray actor",
}
"""The component behind a library a wait goes through, as the user knows it."""

LIBRARIES = tuple(sysconfig.get_paths()[k] for k in ("purelib", "platlib"))


def _frames(task: asyncio.Task[Any]) -> list[tuple[str, str, int, str]]:
    """(qualified name, file, line, module) of each coroutine ``task`` is suspended in,
    outermost first."""
    chain: list[tuple[str, str, int, str]] = []
    coro: Any = task.get_coro()
    while (frame := getattr(coro, "cr_frame", None)) is not None:
        code = frame.f_code
        module = str(frame.f_globals.get("__name__", ""))
        chain.append((code.co_qualname, code.co_filename, frame.f_lineno, module))
        coro = getattr(coro, "cr_await", None)
    return chain


def _library(frame: tuple[str, str, int, str]) -> bool:
    """An installed package's code (not agentgym's)."""
    _, file, _, module = frame
    if module == "agentgym" or module.startswith("agentgym."):
        return False
    return file.startswith(LIBRARIES) or module.partition(".")[0] in COMPONENTS


def _own(frame: tuple[str, str, int, str]) -> bool:
    """The project's code: agentgym's (wherever installed) or the user's (not a library)."""
    return not _library(frame) and (
        frame[3].startswith("agentgym") or not frame[1].startswith(STDLIB)
    )
