"""A pool of warm sandboxes: ``acquire`` hands out one that is already started (and starts
the next in the background), ``release`` destroys a used one. An episode never sees a
sandbox another episode used."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from agentgym.sandbox.base import Sandbox

CHECK_TIMEOUT_S = 10.0
"""Seconds a warm sandbox's health check (and a dead one's removal) may take."""


class SandboxPool:
    """Keep ``size`` started sandboxes made by ``factory`` ready."""

    def __init__(self, factory: Callable[[], Sandbox], size: int = 2) -> None:
        self.factory, self.size = factory, size
        self._ready: asyncio.Queue[Sandbox] = asyncio.Queue()
        self._starting: set[asyncio.Task[None]] = set()
        self._closed = False

    def _refill(self) -> None:
        while not self._closed and self._ready.qsize() + len(self._starting) < self.size:
            task = asyncio.get_running_loop().create_task(self._start_one())
            self._starting.add(task)
            task.add_done_callback(self._starting.discard)

    async def _start_one(self) -> None:
        sandbox = self.factory()
        await sandbox.start()
        if self._closed:
            await sandbox.close()
        else:
            self._ready.put_nowait(sandbox)

    async def acquire(self) -> Sandbox:
        """A started sandbox, never used before, checked alive (a warm one that died or was
        paused while it waited is destroyed and replaced, not found out at scoring)."""
        self._refill()
        while not self._ready.empty():
            sandbox = self._ready.get_nowait()
            try:
                ok = await asyncio.wait_for(sandbox.healthy(), CHECK_TIMEOUT_S)
            except TimeoutError:
                ok = False
            if ok:
                self._refill()
                return sandbox
            with contextlib.suppress(Exception):
                await asyncio.wait_for(sandbox.close(), CHECK_TIMEOUT_S)
        sandbox = self.factory()
        await sandbox.start()
        self._refill()
        return sandbox

    async def release(self, sandbox: Sandbox) -> None:
        await sandbox.close()

    async def close(self) -> None:
        """Destroy every warm sandbox (and those still starting)."""
        self._closed = True
        if self._starting:
            await asyncio.gather(*self._starting, return_exceptions=True)
        while not self._ready.empty():
            await self._ready.get_nowait().close()
