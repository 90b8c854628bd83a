"""Every exception agentgym raises.

The tree::

    AgentGymError
    ├── ConfigError            bad configuration; raised before any work starts
    ├── RegistrationError      an environment id that cannot be registered or made
    │   └── UnknownEnvError    no environment with that id ("did you mean ...")
    ├── MissingDependencyError an optional backend is not installed (names the extra)
    ├── EnvError               an infrastructure fault inside an environment (names env, turn, tool)
    ├── ToolError              a tool refused its input; becomes an observation for the model
    ├── SandboxError           a sandbox could not be started or used (docker missing, image gone)
    ├── PolicyError            a policy backend failed (server down, bad response)
    │   └── PolicyDeadError    its engine died (names the cause): the run stops at once
    ├── RolloutError           more episodes failed than a run allows (names the last one)
    │   └── StallError         no episode made progress in rollout.stall_timeout_s (names waits)
    ├── ProgramError           an agent program failed its episode (hung, flooded, crashed)
    ├── SyncError              a sampler's log-probs disagree with the learner's after a sync
    ├── CheckpointError        a checkpoint could not be written (disk full); the last one stays
    ├── CollapseError          a run kept collapsing after the rollbacks it may make
    └── RewardCheckError       an env's reward failed its check before training (names tasks)

    FutureWarning
    └── DeprecatedSpelling     an old config spelling that still works (names the new one)

A model's mistakes (malformed tool calls, unknown tools, bad arguments) are never exceptions
that reach the caller: the environment turns them into observations the model can read. Only
``ToolError`` is raised *inside* tools to say so; ``AgentEnv`` catches it.
"""

from __future__ import annotations


class AgentGymError(Exception):
    """Base class of every agentgym exception."""


class ConfigError(AgentGymError):
    """A configuration value is wrong. The message names the key and the fix."""

    def __init__(self, key: str, problem: str, fix: str) -> None:
        self.key, self.problem, self.fix = key, problem, fix
        super().__init__(f"config key '{key}': {problem.rstrip('. ')}. Fix: {fix}")


class RegistrationError(AgentGymError):
    """An environment cannot be registered or instantiated."""


class UnknownEnvError(RegistrationError):
    """No environment is registered under the id that was asked for."""


class MissingDependencyError(AgentGymError):
    """An optional backend is missing; the message names the extra that installs it."""

    def __init__(self, module: str, extra: str) -> None:
        super().__init__(
            f"'{module}' is not installed; it is needed here. "
            f"Fix: pip install 'agentgym[{extra}]' (or run the README's setup command)."
        )


class EnvError(AgentGymError):
    """An environment failed for a reason that is not the model's fault."""

    def __init__(self, env: str, turn: int, tool: str | None, cause: str) -> None:
        where = f"env '{env}', turn {turn}" + (f", tool '{tool}'" if tool else "")
        super().__init__(f"{where}: {cause}")


class ToolError(AgentGymError):
    """Raised by a tool to report a problem with its input back to the model."""


class SandboxError(AgentGymError):
    """A sandbox failed for a reason outside the model's code (no engine, no image, gone)."""


class PolicyError(AgentGymError):
    """A policy backend failed: a server that does not answer, or answers nonsense."""


class PolicyDeadError(PolicyError):
    """The policy's engine died: every episode would fail the same way, so the run stops at
    the first (not past the failure budget), with the cause from the engine's log."""


class RolloutError(AgentGymError):
    """More episodes failed (infrastructure faults) than ``rollout.max_failure_rate`` allows;
    the message names the last one's env, task and cause. Each failure is also in the
    trajectory file (``stop_reason="error"``)."""


class StallError(RolloutError):
    """No episode made progress for ``rollout.stall_timeout_s``: a component is frozen. The
    message lists the episodes in flight and the call each is suspended in."""


class ProgramError(AgentGymError):
    """An agent program (``env=harness``) failed its episode: it crashed, hung past its time
    budget, or flooded the gateway. The episode is recorded as failed and the run goes on
    within ``rollout.max_failure_rate``."""


class CheckpointError(AgentGymError):
    """A checkpoint could not be written (a full disk, says so); the half-written one is
    removed and the previous checkpoint is intact, so a rerun resumes from it."""


class SyncError(AgentGymError):
    """The sampler's log-probs disagree with the learner's after a weight sync."""


class CollapseError(AgentGymError):
    """The run kept collapsing after the rollbacks ``trainer.max_rollbacks`` allows."""


class RewardCheckError(AgentGymError):
    """An environment's reward failed its check before training: the oracle scored below
    what it should, or a null baseline (doing nothing, an empty answer) scored above zero."""


class DeprecatedSpelling(FutureWarning):
    """An old spelling of a config key: it still works for one release; the message names
    the new one (``agentgym`` prints it as one line)."""
