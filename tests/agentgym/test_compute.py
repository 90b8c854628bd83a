"""All torch work of a process runs on one thread (see agentgym/_compute.py)."""

import asyncio
import threading

from agentgym._compute import run_torch


def test_run_torch_uses_one_named_thread():
    async def main() -> set[str]:
        names = await asyncio.gather(
            *(run_torch(lambda: threading.current_thread().name) for _ in range(8))
        )
        return set(names)

    names = asyncio.run(main())
    assert len(names) == 1 and names.pop().startswith("agentgym-torch")
