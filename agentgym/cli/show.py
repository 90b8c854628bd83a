"""What the command line prints: progress bars, tables, config help, one-line errors and
warnings (the package ``agentgym.cli`` is the only place that prints)."""

from __future__ import annotations

import logging
import warnings
from typing import Any

from pydantic import BaseModel
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from agentgym.config import describe
from agentgym.errors import DeprecatedSpelling

console = Console()


def progress(field: str | None = "reward") -> Progress:
    """A bar with done/total, elapsed and remaining time, and the running ``field``."""
    shown = [TextColumn(field + " {task.fields[" + field + "]:.3f}")] if field else []
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        *shown,
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )


def summary(values: dict[str, Any], out: str) -> None:
    """An eval's summary as a table."""
    table = Table(title=f"agentgym eval -> {out}", show_header=False)
    for key, value in values.items():
        if isinstance(value, dict):
            value = ", ".join(
                f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in value.items()
            )
        elif isinstance(value, float):
            value = f"{value:.4f}"
        table.add_row(key, str(value))
    console.print(table)


def options(model: type[BaseModel], title: str, prefix: str = "") -> None:
    """The keys of ``model`` with their defaults and meaning, as a table."""
    table = Table("key", "default", "description", title=title)
    for key, default, text in describe(model, prefix):
        table.add_row(key, escape(default), escape(text))
    console.print(table)


def config_help(models: list[tuple[str, type[BaseModel]]]) -> str:
    """``--help``'s list of config keys (``key=value`` on the command line)."""
    lines = ["config keys (key=value; the default after the key):"]
    for prefix, model in models:
        for key, default, text in describe(model, prefix):
            lines.append(f"  {key} [{default}]")
            if text:
                lines.append(f"      {text}")
    return "\n".join(lines)


def error(line: str) -> None:
    Console(stderr=True, soft_wrap=True).print(
        f"[bold red]error:[/] {escape(line)}", highlight=False
    )


class Lines(logging.Handler):
    """The ``agentgym`` logger's lines (an engine's start, a loader's dropped rows), dimmed,
    above the progress bars."""

    def emit(self, record: logging.LogRecord) -> None:
        console.print(f"[dim]{escape(self.format(record))}[/]", highlight=False)


def listen() -> None:
    """Print the ``agentgym`` logger's INFO lines and above (once per process)."""
    logger = logging.getLogger("agentgym")
    if not any(isinstance(h, Lines) for h in logger.handlers):
        logger.addHandler(Lines())
    logger.setLevel(logging.INFO)


def note(line: str) -> None:
    Console(stderr=True).print(line)


def warning(message: Warning | str, category: type[Warning], *args: Any, **kw: Any) -> None:
    """An old spelling is one yellow line; any other warning as Python prints it."""
    if not issubclass(category, DeprecatedSpelling):
        return _SHOW_WARNING(message, category, *args, **kw)
    Console(stderr=True, soft_wrap=True).print(
        f"[bold yellow]deprecated:[/] {escape(str(message))}", highlight=False
    )


_SHOW_WARNING = warnings.showwarning
