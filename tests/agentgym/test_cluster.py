"""Joining a Ray cluster: an address where no head listens fails at once, naming the key."""

import time

import pytest

from agentgym.cluster import ensure_ray
from agentgym.errors import ConfigError
from tests.conftest import free_port


@pytest.mark.ray
def test_a_ray_address_with_nothing_listening_fails_in_seconds():
    pytest.importorskip("ray")
    t0 = time.monotonic()
    with pytest.raises(ConfigError, match=r"rollout.ray_address.*nothing answers"):
        ensure_ray(f"127.0.0.1:{free_port()}")
    assert time.monotonic() - t0 < 10
