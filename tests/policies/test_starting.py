import logging
import threading
import time

from agentgym.policies.starting import phases, starting

VLLM_LOG = [
    "INFO vllm.v1.worker.cpu_model_runner: Starting to load model /m...",
    "INFO vllm.model_executor.model_loader.default_loader: Loading weights took 0.75 seconds",
    "INFO vllm.v1.worker.cpu_model_runner: Warming up model for the compilation...",
    "INFO vllm.v1.core.kv_cache_utils: CPU KV cache size: 41,856 tokens",
    "INFO vllm.v1.engine.core: init engine (profile, create kv cache, warmup model) took 9 s",
]


def test_the_phases_are_read_in_the_order_the_log_has_them():
    assert phases("\n".join(reversed(VLLM_LOG[:2]))) == ["weights loaded", "loading the model"]
    assert phases("nothing we know") == []


def test_an_engine_start_is_told_phase_by_phase_then_how_long_it_took(tmp_path, caplog):
    """What was in the log before the start is not shown again; each phase once."""
    log = tmp_path / "vllm.log"
    log.write_text(VLLM_LOG[0] + "\n")  # an earlier engine's start

    def engine() -> None:
        with open(log, "a") as f:
            for line in VLLM_LOG + VLLM_LOG[:1]:
                f.write(line + "\n")
                f.flush()
                time.sleep(0.05)

    caplog.set_level(logging.INFO, logger="agentgym")
    with starting("the vLLM engine", log, every=0.02):
        writer = threading.Thread(target=engine)
        writer.start()
        writer.join()
        time.sleep(0.1)
    said = [r.getMessage() for r in caplog.records]
    assert said[0] == f"starting the vLLM engine (its log: {log})"
    told = [line.split(": ", 1)[1].rsplit(" (", 1)[0] for line in said[1:-1]]
    assert told == [
        "loading the model",
        "weights loaded",
        "warming up the model",
        "allocating the KV cache",
        "starting the scheduler",
    ]
    assert said[-1].startswith("the vLLM engine ready in ")


def test_a_failed_start_is_not_called_ready(caplog):
    caplog.set_level(logging.INFO, logger="agentgym")
    try:
        with starting("the vLLM engine", None):
            raise RuntimeError("no memory")
    except RuntimeError:
        pass
    assert [r.getMessage() for r in caplog.records] == [
        "starting the vLLM engine (its log: vLLM's default)"
    ]
