"""A stand-in for the ``docker`` command that keeps an agent program's shell commands in the
episode's own sandbox (``env=harness`` on swe; mini-swe-agent's ``environment.executable``).

    python -m agentgym.gateway.docker_shim run -d --name N -w DIR ... IMAGE sleep T
        -> prints the episode's container id ($AGENTGYM_SANDBOX); starts nothing
    python -m agentgym.gateway.docker_shim exec [-w DIR] [-e K=V]... ID ARGV...
        -> runs ARGV in $AGENTGYM_SANDBOX (whatever ID was asked), under a time limit of
           $AGENTGYM_COMMAND_TIMEOUT seconds: the sandbox's own bounds (no network, memory,
           processes) hold, as for the env's own tools
    stop / rm / kill / pull -> nothing (the env owns the container's life)
"""

from __future__ import annotations

import os
import subprocess
import sys


def main(argv: list[str]) -> int:
    sandbox = os.environ.get("AGENTGYM_SANDBOX", "")
    if not sandbox:
        print("docker_shim: AGENTGYM_SANDBOX is not set", file=sys.stderr)
        return 125
    action, rest = (argv[0], argv[1:]) if argv else ("", [])
    if action == "run":
        print(sandbox)
        return 0
    if action != "exec":
        return 0
    opts: list[str] = []
    while rest and rest[0].startswith("-"):
        flag = rest.pop(0)
        if flag in ("-w", "-e", "--workdir", "--env", "-u", "--user") and rest:
            opts += [flag, rest.pop(0)]
    argv_in = rest[1:]  # rest[0]: the container id the program thinks it has
    limit = os.environ.get("AGENTGYM_COMMAND_TIMEOUT", "60")
    cmd = ["docker", "exec", *opts, sandbox, "timeout", "-s", "KILL", limit, *argv_in]
    return subprocess.run(cmd, check=False).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
