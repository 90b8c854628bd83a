"""The ``agentgym`` command line: ``envs``, ``eval``, ``train``, ``sft``, ``model import``,
``report``, ``serve``, ``index``, ``sandbox``. The only package that prints.

agentgym envs
agentgym eval env=guess_number policy=hf policy.model=.cache/tiny-model episodes=16 group_size=4
agentgym train --help        (every config key, its default and meaning)

Every command takes ``import=MODULE`` (or ``--import MODULE``): modules that register
environments (or policy backends), imported first, from the current directory too.
"""

from __future__ import annotations

import argparse
import os
import signal
import tempfile
import threading
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from agentgym.cli import commands, show
from agentgym.errors import AgentGymError, ConfigError
from agentgym.settings import EvalConfig, load_eval_config, load_imports
from agentgym.trainers.grpo.config import load_train_config

__all__ = ["EvalConfig", "load_eval_config", "load_train_config", "main", "run_eval"]
run_eval = commands.run_eval

TAKES_IMPORTS = ("eval", "train", "serve", "check")
"""Commands whose config keeps its imports (Ray workers import them too)."""


def _train_models() -> list[tuple[str, type[BaseModel]]]:
    from agentgym.trainers.grpo.config import TrainConfig

    return [("", TrainConfig)]


def _eval_models() -> list[tuple[str, type[BaseModel]]]:
    from agentgym.policies.config import PolicyConfig, policy_models

    class Policy(BaseModel):  # the policy section: every backend's keys, named by backend
        policy: PolicyConfig

    Policy.model_fields["policy"].annotation = _union(list(policy_models().values()))
    return [("", EvalConfig), ("", Policy)]


def _sft_models() -> list[tuple[str, type[BaseModel]]]:
    from agentgym.trainers.sft import SFTConfig

    return [("", SFTConfig)]


def _check_models() -> list[tuple[str, type[BaseModel]]]:
    from agentgym.settings import CheckConfig

    return [("", CheckConfig)]


def _union(models: list[type[BaseModel]]) -> Any:
    union: Any = models[0]
    for model in models[1:]:
        union = union | model
    return union


class _ConfigHelp(argparse.Action):
    """``-h``: the command's usage, then its config keys (read when asked for)."""

    def __init__(self, models: Callable[[], list[tuple[str, type[BaseModel]]]], **kw: Any):
        super().__init__(nargs=0, help="show the command's options and config keys", **kw)
        self.models = models

    def __call__(self, parser: argparse.ArgumentParser, namespace: Any, *a: Any, **k: Any) -> None:
        load_imports(namespace.imports)  # `--import M --help`: M's estimators, backends too
        parser.print_help()
        print("\n" + show.config_help(self.models()))
        parser.exit()


def _with_config(sub: Any, name: str, help: str, example: str, models: Any) -> Any:
    """A subcommand of ``key=value`` overrides whose ``--help`` lists its config keys."""
    p = sub.add_parser(name, parents=[_common()], help=help, add_help=False)
    p.add_argument("-h", "--help", action=_ConfigHelp, models=models, dest="help_")
    p.add_argument("overrides", nargs="*", help=f"key=value, e.g. {example}")
    return p


def _common() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--import",
        dest="imports",
        action="append",
        default=[],
        help="import a module that registers environments (repeatable; or import=MODULE)",
    )
    return common


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="agentgym", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    en = sub.add_parser("envs", parents=[_common()], help="list environments, or one's options")
    en.add_argument("env", nargs="?", help="an environment id: its env.* keys and defaults")
    en.set_defaults(fn=commands.cmd_envs)
    _with_config(
        sub,
        "eval",
        "roll out a policy for evaluation only",
        "env=guess_number policy=hf",
        _eval_models,
    ).set_defaults(fn=commands.cmd_eval)
    _with_config(
        sub, "train", "train a policy with GRPO", "env=digits trainer.steps=20", _train_models
    ).set_defaults(fn=commands.cmd_train)
    _with_config(
        sub,
        "sft",
        "supervised fine-tuning on trajectories",
        "data=TRAJECTORIES.jsonl model=PATH",
        _sft_models,
    ).set_defaults(fn=commands.cmd_sft)
    md = sub.add_parser("model", parents=[_common()], help="bring a model in (offline)")
    md.add_argument("action", choices=["import"], help="import: a GGUF file -> a model folder")
    md.add_argument("gguf", help="the .gguf file")
    md.add_argument("out", help="the model folder to write")
    md.add_argument("--dtype", default="bfloat16", help="bfloat16 (default) or float32")
    md.set_defaults(fn=commands.cmd_model)
    rp = sub.add_parser(
        "report", parents=[_common()], help="write RUN/report.html; several: overlay"
    )
    rp.add_argument("runs", nargs="+", help="run directories (their out=); several: compare")
    rp.add_argument("--out", default="compare.html", help="the comparison page (several runs)")
    rp.set_defaults(fn=commands.cmd_report)
    ex = sub.add_parser("export", parents=[_common()], help="a run's trajectories, as ATIF")
    ex.add_argument("format", choices=["atif"], help="atif: Harbor's interchange format")
    ex.add_argument("run", help="a train or eval run directory (its out=)")
    ex.set_defaults(fn=commands.cmd_export)
    sv = sub.add_parser("serve", parents=[_common()], help="serve a component over HTTP")
    sv.add_argument("component", choices=["retrieval", "env", "policy"], help="what to serve")
    sv.add_argument("overrides", nargs="*", help="key=value, e.g. index=DIR method=bm25 port=8000")
    sv.set_defaults(fn=commands.cmd_serve)
    ix = sub.add_parser("index", parents=[_common()], help="build a retrieval index folder")
    ix.add_argument("overrides", nargs="*", help="corpus=FILE out=DIR methods=[bm25,dense]")
    ix.set_defaults(fn=commands.cmd_index)
    _with_config(
        sub,
        "check",
        "check an env's reward with its oracle and null baselines",
        "env=deep_research tasks=8",
        _check_models,
    ).set_defaults(fn=commands.cmd_check)
    _sandbox(sub)
    return parser  # fmt: skip


def _sandbox(sub: Any) -> None:
    sb = sub.add_parser("sandbox", parents=[_common()], help="build the sandbox image, gc")
    sb.add_argument(
        "action", choices=["build", "gc"],
        help="build: the swe sandbox image; gc: remove containers whose owner died",
    )  # fmt: skip
    sb.add_argument("--all", action="store_true", help="gc: remove every agentgym container")
    sb.add_argument("--force", action="store_true", help="build: rebuild images that exist")
    sb.add_argument("--base", help="build: FROM this registry image (default: offline debootstrap)")
    sb.add_argument("--tag", default="agentgym/swe:latest", help="build: the image's tag")
    sb.set_defaults(fn=commands.cmd_sandbox)


def _parse(argv: list[str] | None) -> argparse.Namespace:
    """The arguments; ``import=`` anywhere joins ``--import`` (its modules load first)."""
    parser = _parser()
    args, extra = parser.parse_known_args(argv)
    given = getattr(args, "overrides", []) + extra
    imports = [i for o in given if o.startswith("import=") for i in _modules(o)]
    rest = [o for o in given if not o.startswith("import=")]
    if any(e.startswith("-") for e in rest) or (
        rest and args.command in ("report", "sandbox", "model", "envs")
    ):
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    args.imports = [*args.imports, *imports]
    if args.command in TAKES_IMPORTS and args.imports:
        rest.append(f"import=[{', '.join(args.imports)}]")
    args.overrides = rest
    return args


def _modules(override: str) -> list[str]:
    value = yaml.safe_load(override.partition("=")[2]) or []
    return [str(v) for v in (value if isinstance(value, list) else [value])]


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``agentgym`` command."""
    args = _parse(argv)
    # the progress shown is ours (rich): transformers' own bars ("Loading weights") cut into it
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    show.listen()  # what the library logs (an engine's start): a dim line each
    if threading.current_thread() is threading.main_thread():
        # SIGTERM (a scheduler's kill, `timeout`) ends the run like Ctrl-C: the engine's
        # processes, containers and browsers are closed instead of left orphaned
        signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        load_imports(args.imports)
        with warnings.catch_warnings():
            warnings.showwarning = show.warning
            return int(args.fn(args))
    except ConfigError as exc:
        show.error(str(exc))
        return 2
    except Exception as exc:  # a fault or a bug: one line here, the traceback in a file
        log = Path(tempfile.gettempdir()) / f"agentgym-error-{os.getpid()}.log"
        log.write_text(traceback.format_exc())
        what = str(exc) if isinstance(exc, AgentGymError) else f"{type(exc).__name__}: {exc}"
        if not isinstance(exc, AgentGymError) and what.strip():  # ours are written to be read
            what = what.splitlines()[0]
        show.error(f"{what} (traceback: {log})")
        return 2 if isinstance(exc, AgentGymError) else 1
    except KeyboardInterrupt:
        show.note("interrupted: what was written so far is kept (rerun resumes)")
        return 130
