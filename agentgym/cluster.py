"""Ray start-up helpers shared by everything that runs on a cluster (environments in actors,
vLLM engines in actors, learner ranks in actors)."""

from __future__ import annotations

import itertools
import socket
import sys
from typing import Any

from agentgym._imports import require
from agentgym.errors import ConfigError

_ADDRESS: list[str | None] = [None]


def use(address: str | None) -> None:
    """Name the run's cluster (``rollout.ray_address``) for every part that later starts
    actors; nothing connects until one does."""
    _ADDRESS[0] = address


def ensure_ray(address: str | None = None) -> None:
    """Connect to ``address`` (default: the one ``use`` named), a running cluster, or start
    a local one of this process's own (never a cluster that happens to run on this
    machine), once."""
    ray = require("ray", "ray")
    address = address or _ADDRESS[0]
    if not ray.is_initialized():
        if address:
            _listening(address)
            ray.init(address=address, log_to_driver=False)
        else:
            ray.init(address="local", include_dashboard=False, log_to_driver=False)


def _listening(address: str) -> None:
    """``ConfigError`` at once when nothing listens at a ``host:port`` address (``ray.init``
    would wait for a head there for minutes, with only log warnings)."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        return  # "auto" and the like: ray's to resolve
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as exc:
        raise ConfigError(
            "rollout.ray_address",
            f"nothing answers at {address} ({exc.strerror or exc})",
            "start the head there (ray start --head --port PORT), or drop the key for a local "
            "cluster of the run's own",
        ) from None


def meeting_point() -> tuple[str, int]:
    """Where processes on any node of the run reach this one to form a torch.distributed
    group with it: the Ray node's address when Ray runs here (actors may be on other nodes),
    else the loopback; and a free port."""
    host = "127.0.0.1"
    ray = sys.modules.get("ray")  # never imported: not running here
    if ray is not None and ray.is_initialized():
        host = ray.util.get_node_ip_address()
    with socket.socket() as s:
        s.bind(("", 0))
        return host, int(s.getsockname()[1])


_TURN = itertools.count()


def next_node(ray: Any) -> Any:
    """The cluster's alive nodes in turn, as a scheduling strategy (environments, browsers
    and containers, are the load).

    Hard affinity: Ray's SPREAD, and soft node affinity too, left zero-CPU actors all on one
    node when the machines were busy (7 of 30 placements of four actors, measured). A node lost
    between listing and placing fails its actor, as losing it later would.
    """
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    nodes = sorted(n["NodeID"] for n in ray.nodes() if n["Alive"])
    return NodeAffinitySchedulingStrategy(nodes[next(_TURN) % len(nodes)], soft=False)
