"""Running an agent program for one episode: its own process group, a time budget, the
gateway's address in the variables the common clients read, and bounded output.

The variables: ``OPENAI_BASE_URL`` and ``OPENAI_API_BASE`` (the episode's gateway address;
the OpenAI SDK reads the first, litellm the second), ``OPENAI_API_KEY`` (the episode's token),
``AGENTGYM_TASK`` (the instruction), ``AGENTGYM_MESSAGES`` (the env's opening messages, system
prompt included, as OpenAI JSON: for a program that wants the prompt agentgym's engine would
send), ``AGENTGYM_TOOLS_URL`` (the env's tools over HTTP: GET ``<url>`` lists them, POST
``<url>/<name>`` with the arguments as JSON runs one), and what the env adds (swe: its
sandbox).
``{task}`` in the command line is replaced by the instruction too.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from dataclasses import dataclass

KEEP = 64 * 1024
"""Bytes of each output stream kept (the last ones): a program that floods its output costs
nothing more."""


@dataclass
class ProgramResult:
    """How the program ended: its exit code (None: stopped at its time budget), the last of
    its output, its seconds."""

    exit_code: int | None
    stdout: str
    stderr: str
    seconds: float

    @property
    def timed_out(self) -> bool:
        return self.exit_code is None


async def run_program(
    command: list[str], variables: dict[str, str], budget_s: float, cwd: str | None = None
) -> ProgramResult:
    """Run ``command`` with ``variables`` added to this process's environment; stop its whole
    process group at ``budget_s`` (or when the caller is cancelled)."""
    t0 = time.perf_counter()
    proc = await asyncio.create_subprocess_exec(
        *command,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **variables},
        cwd=cwd,
        start_new_session=True,
    )
    reads = [asyncio.ensure_future(_tail(s)) for s in (proc.stdout, proc.stderr)]
    try:
        code: int | None = await asyncio.wait_for(proc.wait(), budget_s)
    except TimeoutError:
        code = None
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # its children too, however it ended
        if proc.returncode is None:
            await proc.wait()
    out, err = await asyncio.gather(*reads)
    return ProgramResult(code, out, err, time.perf_counter() - t0)


async def _tail(stream: asyncio.StreamReader | None) -> str:
    kept = b""
    while stream is not None and (chunk := await stream.read(65536)):
        kept = (kept + chunk)[-KEEP:]
    return kept.decode("utf-8", "replace")
