"""Sandboxes for code a model wrote: docker (isolated, the default where an engine runs)
and local (development only). See ``base.py`` for the interface."""

from agentgym.sandbox.base import ExecResult, Limits, Sandbox
from agentgym.sandbox.docker import DockerSandbox, gc
from agentgym.sandbox.local import LocalSandbox
from agentgym.sandbox.pool import SandboxPool

__all__ = ["DockerSandbox", "ExecResult", "Limits", "LocalSandbox", "Sandbox", "SandboxPool", "gc"]
