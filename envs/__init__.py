"""agentgym's environments, one package each. They register through the ``agentgym.envs``
entry-point group (see pyproject.toml), so importing this package registers nothing."""
