"""What an engine is doing while it starts: its log's phases, as the ``agentgym`` logger's
lines (the command line prints them), so that a minute of loading is not a silent screen."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger(__name__)

PHASES = (
    ("Starting to load model", "loading the model"),
    ("Loading weights took", "weights loaded"),
    ("Warming up model", "warming up the model"),
    ("compiled function", "model compiled (torch.compile)"),
    ("Memory profiling", "measuring memory for the KV cache"),
    ("KV cache size", "allocating the KV cache"),
    ("Capturing CUDA graph", "capturing CUDA graphs"),
    ("init engine", "starting the scheduler"),
)
"""(what vLLM's log says, what we show): each shown once, in the order they come."""


def phases(text: str) -> list[str]:
    """The phases whose marks ``text`` holds, in the order they appear."""
    found = [(text.find(mark), shown) for mark, shown in PHASES if mark in text]
    return [shown for _, shown in sorted(found)]


@contextlib.contextmanager
def starting(what: str, log_file: Path | None, every: float = 0.5) -> Iterator[None]:
    """Log ``what``'s phases from ``log_file`` (read from its end at entry) while the block
    runs, then how long it took.

    Args:
        what: The engine, as the lines name it (``the vLLM engine``).
        log_file: The log it writes; None: only the start and the end are logged.
        every: Seconds between two reads of the log.
    """
    t0, done = time.perf_counter(), threading.Event()
    offset = log_file.stat().st_size if log_file is not None and log_file.exists() else 0
    log.info("starting %s (its log: %s)", what, log_file or "vLLM's default")

    def watch() -> None:
        shown: set[str] = set()
        while not done.wait(every):
            assert log_file is not None
            with contextlib.suppress(OSError), open(log_file, errors="replace") as f:
                f.seek(offset)
                for phase in phases(f.read()):
                    if phase not in shown:
                        shown.add(phase)
                        log.info("%s: %s (%.0f s)", what, phase, time.perf_counter() - t0)

    thread = threading.Thread(target=watch, name="engine-start", daemon=True)
    if log_file is not None:
        thread.start()
    try:
        yield
    finally:
        done.set()
        if thread.is_alive():
            thread.join(timeout=every * 4)
    log.info("%s ready in %.1f s", what, time.perf_counter() - t0)
