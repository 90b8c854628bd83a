"""Import heavy optional backends with an error that names the extra to install."""

from __future__ import annotations

import importlib
from types import ModuleType

from agentgym.errors import MissingDependencyError


def require(module: str, extra: str) -> ModuleType:
    """Import ``module`` or raise ``MissingDependencyError`` naming ``extra``."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        if exc.name and module.startswith(exc.name.split(".")[0]):
            raise MissingDependencyError(module, extra) from exc
        raise
