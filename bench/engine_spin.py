"""Does in-process vLLM spin? py-spy samples every process of a short training run (the
README's recipe, 2 GRPO steps, no cold start or evaluation) and counts the samples inside
vLLM's shared-memory queue (``shm_broadcast``: its readers and writers busy-wait with
``sched_yield``), where 33% of the active samples of a profiled step were before the engine
ran its model in the engine-core process (uniprocess executor).

    bash scripts/setup.sh            # once (installs the [bench] extra)
    .venv/bin/python bench/engine_spin.py [--steps 2]
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

SPIN = re.compile(r"shm_broadcast|sched_yield")


def count(raw: Path) -> tuple[int, int]:
    """(all samples, samples in the shared-memory queue) of py-spy's raw output."""
    total = spin = 0
    for line in raw.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if not n.isdigit():
            continue
        total += int(n)
        spin += int(n) if SPIN.search(stack) else 0
    return total, spin


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=2)
    args = ap.parse_args()
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.txt"
        train = [
            sys.executable, "-m", "agentgym.cli", "train", "recipe=deep_research_smollm2",
            f"trainer.steps={args.steps}", "cold_start.episodes=0", "trainer.eval_tasks=0",
            f"out={tmp}/run",
        ]  # fmt: skip
        record = [spy, "record", "-r", "40", "--subprocesses", "-f", "raw", "-o", str(raw)]
        subprocess.run(
            [*record, "--", *train], check=True,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        total, spin = count(raw)
    print(f"{total} active samples over all processes, {spin} in vLLM's shared-memory queue "
          f"({100 * spin / max(total, 1):.2f}%; 33% before)")  # fmt: skip


if __name__ == "__main__":
    main()
