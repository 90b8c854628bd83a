"""Packages are found, not listed: the core ``agentgym/`` and the top-level folders that
install as its subpackages (``envs/`` -> ``agentgym.envs``, ``policies/``, ``trainers/``).
Everything else about the distribution is in pyproject.toml."""

from setuptools import find_packages, setup

ROOTS = {
    "agentgym": "agentgym",
    "agentgym.envs": "envs",
    "agentgym.policies": "policies",
    "agentgym.trainers": "trainers",
}


def packages() -> list[str]:
    found = []
    for name, folder in ROOTS.items():
        found.append(name)
        found += [f"{name}.{sub}" for sub in find_packages(folder) if f"{name}.{sub}" not in ROOTS]
    return found


setup(packages=packages(), package_dir=ROOTS)
