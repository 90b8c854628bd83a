"""One thread for a process's torch work (the HF sampler's and the learner's).

libgomp gives every thread that opens a parallel region its own OpenMP team, and once the
threads of all teams outnumber the cores it stops spinning between regions: every op then
pays a futex wake-up. With the learner in the main thread and ``generate`` in a worker
thread, generation ran 1.6-1.9x slower on a 2-core machine than in one thread; with both on
this thread it runs as fast as in the main thread (measured with the tiny model).

Torch work cannot be killed from outside its thread, and the process waits for the thread
at exit: a train sent SIGTERM went on with its learner step for two minutes. So a call whose
awaiting task is cancelled is told so, and long work asks at its steps (``interruption_point``
before each forward): it stops there, within one micro-batch.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")

_THREAD = ThreadPoolExecutor(max_workers=1, thread_name_prefix="agentgym-torch")


_LOCAL = threading.local()


async def run_torch(fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """Run ``fn(*args, **kwargs)`` on the torch thread without blocking the event loop; if the
    caller is cancelled, ``fn`` stops at its next ``interruption_point``."""
    loop, stop = asyncio.get_running_loop(), threading.Event()
    work = functools.partial(_call, stop, fn, *args, **kwargs)
    try:
        return await loop.run_in_executor(_THREAD, work)
    except asyncio.CancelledError:
        stop.set()
        raise


def interruption_point() -> None:
    """Raise ``CancelledError`` if the ``run_torch`` call this thread is running was
    cancelled (a no-op outside one)."""
    stop = getattr(_LOCAL, "stop", None)
    if stop is not None and stop.is_set():
        raise asyncio.CancelledError("the run was cancelled")


def _call(stop: threading.Event, fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """``fn``'s result; a ``StopIteration`` it lets out becomes a ``RuntimeError`` (asyncio
    cannot put a StopIteration into a future: the awaiting task would wait forever, as it
    did when a Qwen2-VL forward met more image tokens than images)."""
    _LOCAL.stop = stop
    try:
        return fn(*args, **kwargs)
    except StopIteration as exc:
        raise RuntimeError(f"{getattr(fn, '__qualname__', fn)} raised StopIteration") from exc
    finally:
        _LOCAL.stop = None
