"""KeyChain synthesis: time and memory to build 4K-128K-token contexts (goal: under 1 s each
for 128K on this machine). Token counts use real tokenizers: the offline MiniLM WordPiece and
the tiny test model's byte-level BPE. The distractor pool is tokenised once (reported apart).

Usage: python bench/keychain.py [--tokenizer PATH]
"""

from __future__ import annotations

import argparse
import resource
import time
import tracemalloc

import numpy as np

from agentgym.data.keychain import Pool, synthesize
from agentgym.data.world import World, make_questions
from agentgym.envs.keychain.config import counter


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokenizer", default=None, help="a tokenizer path; default: MiniLM's")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    world = World(20_000, seed=0)
    questions = make_questions(world, 50, seed=0)
    count = counter(args.tokenizer)
    t = time.perf_counter()
    pool = Pool([world.document(i).text for i in range(world.size)], count)
    print(
        f"pool: {len(pool.docs)} documents, {int(pool.tokens.sum())} tokens, "
        f"tokenised once in {time.perf_counter() - t:.2f} s"
    )
    for target in (4096, 16384, 65536, 131072):
        times, peaks, errors = [], [], []
        for r in range(args.repeats):
            q = questions[r]
            docs = [world.document(int(d[1:])).text for d in q.supporting]
            tracemalloc.start()
            t = time.perf_counter()
            kc = synthesize(
                q.question,
                docs,
                pool,
                [x.question for x in questions[r + 1 : r + 4]],
                target,
                np.random.default_rng(r),
            )
            times.append(time.perf_counter() - t)
            peaks.append(tracemalloc.get_traced_memory()[1] / 2**20)
            tracemalloc.stop()
            errors.append(count(kc.context) / target - 1)
        print(
            f"{target:>7} tokens: synth median {np.median(times) * 1000:7.1f} ms  "
            f"peak alloc {max(peaks):6.1f} MiB  length error {max(map(abs, errors)) * 100:.2f}%"
        )
    print(f"max RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
