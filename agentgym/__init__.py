"""agentgym: agentic, multi-turn RL environments for LLMs.

The public API::

    import agentgym
    env = agentgym.make("guess_number")
    obs, info = env.reset(seed=0)
    obs, reward, terminated, truncated, info = env.step('<tool_call>...</tool_call>')
    summary = agentgym.evaluate("guess_number", policy, episodes=8, out="runs/x")
"""

from agentgym.env import AgentEnv, AgentEnvConfig
from agentgym.errors import (
    AgentGymError,
    ConfigError,
    EnvError,
    MissingDependencyError,
    PolicyError,
    RegistrationError,
    RolloutError,
    ToolError,
    UnknownEnvError,
)
from agentgym.evaluate import aevaluate, evaluate
from agentgym.policy import Context, Policy
from agentgym.registration import EnvSpec, _load_plugins, list_envs, make, register, spec
from agentgym.tools import Tool, tool
from agentgym.types import (
    Message,
    Observation,
    Sample,
    StepResult,
    ToolCall,
    ToolSpec,
    Trajectory,
    Turn,
)

__version__ = "0.2.0"

__all__ = [
    "AgentEnv",
    "AgentEnvConfig",
    "AgentGymError",
    "ConfigError",
    "Context",
    "EnvError",
    "EnvSpec",
    "Message",
    "MissingDependencyError",
    "Observation",
    "Policy",
    "PolicyError",
    "RegistrationError",
    "RolloutError",
    "Sample",
    "StepResult",
    "Tool",
    "ToolCall",
    "ToolError",
    "ToolSpec",
    "Trajectory",
    "Turn",
    "UnknownEnvError",
    "__version__",
    "aevaluate",
    "evaluate",
    "list_envs",
    "make",
    "register",
    "spec",
    "tool",
]

_load_plugins()  # importing the package registers every environment
