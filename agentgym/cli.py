"""The ``agentgym`` command line: ``envs``, ``eval``, ``train``, ``sft``, ``model import``,
``report``, ``serve``, ``index``, ``sandbox``. The only module that prints.

agentgym envs
agentgym eval env=guess_number policy=hf policy.model=.cache/tiny-model episodes=16 group_size=4
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import os
import signal
import sys
import tempfile
import threading
import traceback
import warnings
from pathlib import Path
from typing import Any

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

import agentgym
from agentgym import cluster, rundir
from agentgym.config import check_model_dir, compose, redact, validate
from agentgym.errors import AgentGymError, ConfigError, DeprecatedSpelling, RegistrationError
from agentgym.policies.config import parse_policy
from agentgym.registration import load_module
from agentgym.report import write_comparison, write_report
from agentgym.rollout import env_factory
from agentgym.settings import (
    EvalConfig,
    load_eval_config,
    load_serve_env_config,
    load_train_config,
)
from agentgym.types import Trajectory

console = Console()


def _check_resume(out: Path, cfg: EvalConfig) -> None:
    saved = out / "config.json"
    mine = redact(cfg.model_dump(mode="json", by_alias=True))
    if saved.exists():
        theirs = json.loads(saved.read_text())
        changed = sorted(k for k in mine if k != "rollout" and theirs.get(k) != mine[k])
        if changed:
            raise ConfigError(
                changed[0],
                f"differs from the run already in {out}",
                "pass a new out=<dir>, or delete the old run to start over",
            )
    out.mkdir(parents=True, exist_ok=True)
    saved.write_text(json.dumps(mine, indent=2))


def run_eval(cfg: EvalConfig) -> dict[str, Any]:
    """Roll out, write ``trajectories.jsonl`` and ``summary.json``; return the summary.
    ``out`` is held by this process while it runs (a second eval there fails at once)."""
    with rundir.claim(Path(cfg.out)):
        return _run_eval(cfg)


def _run_eval(cfg: EvalConfig) -> dict[str, Any]:
    from agentgym.evaluate import aevaluate
    from agentgym.policies.config import build_policy

    out = Path(cfg.out)
    _check_resume(out, cfg)
    env_cls = agentgym.spec(cfg.env.id).load()
    policy_cfg = parse_policy(cfg.policy)
    cluster.use(cfg.rollout.ray_address)  # where Ray actors go, if any part starts some
    policy = build_policy(policy_cfg, getattr(env_cls, "baselines", {}), out)
    settings = cfg.rollout
    make_env = env_factory(
        cfg.env.id, cfg.env.kwargs, cfg.imports, cfg.rollout.backend, cfg.rollout.ray_address
    )
    rewards: list[float] = []  # the resumed episodes' too: aevaluate reports them first
    with _progress() as progress:
        bar = progress.add_task(f"eval {cfg.env.id}", total=cfg.episodes, reward=0.0)

        def on_episode(t: Trajectory) -> None:
            rewards.append(t.reward)
            progress.update(bar, advance=1, reward=sum(rewards) / len(rewards))

        async def main() -> dict[str, Any]:
            try:
                return await aevaluate(
                    make_env,
                    policy,
                    episodes=cfg.episodes,
                    group_size=cfg.group_size,
                    seed=cfg.seed,
                    out=out,
                    settings=settings,
                    on_episode=on_episode,
                )
            finally:
                await policy.aclose()

        return asyncio.run(main())


def _progress(field: str | None = "reward") -> Progress:
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


def _print_summary(summary: dict[str, Any], out: str) -> None:
    table = Table(title=f"agentgym eval -> {out}", show_header=False)
    for key, value in summary.items():
        if isinstance(value, dict):
            value = ", ".join(
                f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in value.items()
            )
        elif isinstance(value, float):
            value = f"{value:.4f}"
        table.add_row(key, str(value))
    console.print(table)


def _cmd_train(args: argparse.Namespace) -> int:
    from agentgym.trainers import distributed
    from agentgym.trainers.grpo.loop import train
    from agentgym.trainers.grpo.run import Hooks

    cfg = load_train_config(args.overrides)
    if distributed.world()[0] > 0:  # a follower of torchrun's rank 0, which prints and reports
        asyncio.run(train(cfg))
        return 0
    with _progress() as progress:
        bar = progress.add_task(f"train {cfg.env.id}", total=cfg.trainer.steps, reward=0.0)

        def on_step(record: dict[str, Any]) -> None:
            progress.update(bar, completed=record["step"] + 1, reward=record["reward_mean"])

        def on_plan(plan: dict[str, Any]) -> None:
            rows = ", ".join(
                f"{k} {v:.1f}" for k, v in plan.items() if k not in ("total", "device")
            )
            console.print(
                f"GPU memory plan (GiB): {rows}; total {plan['total']:.1f} of {plan['device']:.1f}"
            )

        evals: list[dict[str, Any]] = []

        def on_eval(record: dict[str, Any]) -> None:
            evals.append(record)
            console.print(
                f"held-out ({record['phase']}, step {record['step']}): reward "
                f"{record['eval_reward_mean']:.3f}, success {record['eval_success_rate']:.3f} "
                f"over {record['eval_tasks']} tasks"
            )

        hooks = Hooks(step=on_step, eval=on_eval, plan=on_plan, note=console.print)
        history = asyncio.run(train(cfg, hooks))
    if history:
        first, last = history[0], history[-1]
        console.print(
            f"training reward {first['reward_mean']:.3f} (step {first['step']}) -> "
            f"{last['reward_mean']:.3f} (step {last['step']}); run: {cfg.out}"
        )
    if len(evals) > 1:
        when = {"base": "base model", "sft": "after SFT", "grpo": "GRPO step {}"}
        path = " -> ".join(
            f"{e['eval_reward_mean']:.3f} ({when[e['phase']].format(e['step'])})" for e in evals
        )
        console.print(f"[bold]held-out reward: {path}[/]")
    console.print(f"report: {write_report(cfg.out)}")
    return 0


def _cmd_sft(args: argparse.Namespace) -> int:
    from agentgym.trainers.sft import SFTConfig, run_sft

    tree = compose("sft", args.overrides, {})
    for key in ("data", "model"):
        if tree.get(key) is None:
            raise ConfigError(key, "is required", f"pass {key}=<path>")
    if isinstance(tree["data"], str):
        tree["data"] = [tree["data"]]
    cfg = validate(SFTConfig, tree)
    check_model_dir("model", cfg.model)
    with _progress("loss") as progress:
        bar = progress.add_task("sft", total=None, loss=0.0)

        def on_step(record: dict[str, Any]) -> None:
            progress.update(bar, completed=record["sft_step"] + 1, loss=record["loss"])

        model = run_sft(cfg, on_step)
    console.print(f"model: {model} (metrics: {Path(cfg.out) / 'metrics.jsonl'})")
    return 0


def _cmd_model(args: argparse.Namespace) -> int:
    from agentgym.models import import_gguf

    with console.status(f"importing {args.gguf} (dequantising; minutes for 0.5B)"):
        out = import_gguf(args.gguf, args.out, args.dtype)
    console.print(f"model: {out}")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    for run in args.runs:
        if not Path(run).is_dir():
            raise ConfigError("run", f"no such run directory {run!r}", "pass train/eval out dirs")
    if len(args.runs) == 1:
        console.print(f"report: {write_report(args.runs[0])}")
        return 0
    for run in args.runs:  # each run's own page, which the comparison links to
        write_report(run)
    console.print(f"comparison: {write_comparison(args.runs, args.out)}")
    return 0


def _cmd_envs(args: argparse.Namespace) -> int:
    if args.env:
        return _show_env_options(args.env)
    table = Table("id", "gymnasium id", "description")
    for s in agentgym.list_envs():
        try:
            summary = s.summary()
        except AgentGymError as exc:  # one broken plugin must not hide the others
            summary = f"[red]cannot load: {escape(str(exc))}[/]"
        table.add_row(s.id, s.gym_id, summary)
    console.print(table)
    return 0


def _show_env_options(env_id: str) -> int:
    """The env.* keys of one environment, from its config model (the one source of them)."""
    try:
        env_cls = agentgym.spec(env_id).load()
    except RegistrationError as exc:
        raise ConfigError("env", str(exc), "see `agentgym envs`") from None
    table = Table("env.<key>", "default", "description", title=f"{env_id} (env.<key>=value)")
    model = getattr(env_cls, "config_model", None)
    if model is not None:
        for key, field in model.model_fields.items():
            if key == "max_turns":
                continue
            default = field.default_factory() if field.default_factory else field.default
            table.add_row(key, escape(repr(default)), escape(field.description or ""))
    else:
        for p in inspect.signature(env_cls).parameters.values():
            if p.kind is p.KEYWORD_ONLY or p.kind is p.POSITIONAL_OR_KEYWORD:
                table.add_row(p.name, escape(repr(p.default)), "")
    own = repr(getattr(env_cls, "max_turns", None))
    table.add_row("max_turns", own, "turns per episode (rollout.max_turns overrides it)")
    table.add_row("untagged_tool_calls", "False", "also accept one bare JSON call (any env)")
    table.add_row("mcp_servers", "[]", "MCP servers whose tools join the env's (any env)")
    console.print(table)
    return 0


def _cmd_eval(args: argparse.Namespace) -> int:
    cfg = load_eval_config(args.overrides)
    summary = run_eval(cfg)
    _print_summary(summary, cfg.out)
    console.print(f"report: {write_report(cfg.out)}")
    return 0


def _serve_env(overrides: list[str]) -> int:
    from agentgym.serving import serve

    cfg = load_serve_env_config(overrides)
    console.print(f"serving {cfg.env.id} on ws://{cfg.host}:{cfg.port}/ws")
    serve(cfg.env.id, cfg.env.kwargs, cfg.host, cfg.port)
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    if args.component == "env":
        return _serve_env(args.overrides)
    from agentgym.retrieval import open_index
    from agentgym.retrieval.config import ServeConfig
    from agentgym.retrieval.server import serve

    cfg = validate(ServeConfig, compose("serve", args.overrides, {}))
    folder: str | Path | None = cfg.index
    if folder is None:
        from agentgym.data.world import World
        from agentgym.data.world.site import world_index

        methods = ("bm25", "dense") if cfg.method == "hybrid" else (cfg.method,)
        with console.status(f"building the index of a {cfg.world_size}-page world (once)"):
            folder = world_index(World(cfg.world_size, cfg.world_seed), methods)
    retriever = open_index(folder, cfg.method)
    console.print(
        f"serving {len(retriever)} passages ({cfg.method}) on http://{cfg.host}:{cfg.port}"
    )
    serve(retriever, cfg.host, cfg.port)
    return 0


def _cmd_index(args: argparse.Namespace) -> int:
    from agentgym.data.loaders import load_corpus
    from agentgym.retrieval import build_index
    from agentgym.retrieval.config import IndexConfig

    tree = compose("index", args.overrides, {})
    for key in ("corpus", "out"):
        if tree.get(key) is None:
            raise ConfigError(key, "is required", f"pass {key}=<path>")
    cfg = validate(IndexConfig, tree)
    passages = load_corpus(cfg.corpus)
    with _progress(None) as progress:
        what = f"index {len(passages)} passages ({', '.join(cfg.methods)})"
        bar = progress.add_task(what, total=len(passages))

        def on_progress(done: int, total: int) -> None:
            progress.update(bar, completed=done)

        build_index(cfg.out, passages, cfg.methods, cfg.faiss, cfg.encoder, on_progress)
        progress.update(bar, completed=len(passages))
    console.print(f"index: {cfg.out} ({len(passages)} passages)")
    return 0


def _cmd_sandbox(args: argparse.Namespace) -> int:
    if args.action == "build":
        from agentgym.sandbox.images import build

        build(args.tag, args.base, args.force, say=console.print)
        return 0
    from agentgym.sandbox import gc

    removed = asyncio.run(gc(all_owners=args.all))
    console.print(
        f"removed {len(removed)} sandbox container(s)"
        + (f": {' '.join(removed)}" if removed else "")
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``agentgym`` command."""
    parser = argparse.ArgumentParser(prog="agentgym", description=__doc__.splitlines()[0])
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--import",
        dest="imports",
        action="append",
        default=[],
        help="import a module that registers environments (repeatable)",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    en = sub.add_parser("envs", parents=[common], help="list environments, or one's env.* options")
    en.add_argument("env", nargs="?", help="an environment id: show its env.* keys and defaults")
    en.set_defaults(fn=_cmd_envs)
    ev = sub.add_parser("eval", parents=[common], help="roll out a policy for evaluation only")
    ev.add_argument("overrides", nargs="*", help="key=value, e.g. env=guess_number policy=hf")
    ev.set_defaults(fn=_cmd_eval)
    tr = sub.add_parser("train", parents=[common], help="train a policy with GRPO")
    tr.add_argument("overrides", nargs="*", help="key=value, e.g. env=digits trainer.steps=20")
    tr.set_defaults(fn=_cmd_train)
    sf = sub.add_parser("sft", parents=[common], help="supervised fine-tuning on trajectories")
    sf.add_argument("overrides", nargs="*", help="data=TRAJECTORIES.jsonl model=PATH out=DIR")
    sf.set_defaults(fn=_cmd_sft)
    md = sub.add_parser("model", parents=[common], help="bring a model in (offline)")
    md.add_argument("action", choices=["import"], help="import: a GGUF file -> a model folder")
    md.add_argument("gguf", help="the .gguf file")
    md.add_argument("out", help="the model folder to write")
    md.add_argument("--dtype", default="bfloat16", help="bfloat16 (default) or float32")
    md.set_defaults(fn=_cmd_model)
    rp = sub.add_parser(
        "report", parents=[common], help="write RUN/report.html; several runs: overlay them"
    )
    rp.add_argument("runs", nargs="+", help="run directories (their out=); several: compare")
    rp.add_argument("--out", default="compare.html", help="the comparison page (several runs)")
    rp.set_defaults(fn=_cmd_report)
    sv = sub.add_parser("serve", parents=[common], help="serve a component over HTTP")
    sv.add_argument("component", choices=["retrieval", "env"], help="what to serve")
    sv.add_argument("overrides", nargs="*", help="key=value, e.g. index=DIR method=bm25 port=8000")
    sv.set_defaults(fn=_cmd_serve)
    ix = sub.add_parser("index", parents=[common], help="build a retrieval index folder")
    ix.add_argument("overrides", nargs="*", help="corpus=FILE out=DIR methods=[bm25,dense]")
    ix.set_defaults(fn=_cmd_index)
    sb = sub.add_parser("sandbox", parents=[common], help="build the sandbox image, gc containers")
    sb.add_argument(
        "action", choices=["build", "gc"],
        help="build: the swe sandbox image; gc: remove containers whose owner died",
    )  # fmt: skip
    sb.add_argument("--all", action="store_true", help="gc: remove every agentgym container")
    sb.add_argument("--force", action="store_true", help="build: rebuild images that exist")
    sb.add_argument("--base", help="build: FROM this registry image (default: offline debootstrap)")
    sb.add_argument("--tag", default="agentgym/swe:latest", help="build: the image's tag")
    sb.set_defaults(fn=_cmd_sandbox)
    args, extra = parser.parse_known_args(argv)
    if any(e.startswith("-") for e in extra) or (
        extra and args.command in ("report", "sandbox", "model")
    ):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.overrides = getattr(args, "overrides", []) + extra
    # the progress shown is ours (rich): transformers' own bars ("Loading weights") cut into it
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    if threading.current_thread() is threading.main_thread():
        # SIGTERM (a scheduler's kill, `timeout`) ends the run like Ctrl-C: the engine's
        # processes, containers and browsers are closed instead of left orphaned
        signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        for module in args.imports:
            load_module(module)
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            return int(args.fn(args))
    except ConfigError as exc:
        _say_error(str(exc))
        return 2
    except Exception as exc:  # a fault or a bug: one line here, the traceback in a file
        log = Path(tempfile.gettempdir()) / f"agentgym-error-{os.getpid()}.log"
        log.write_text(traceback.format_exc())
        what = str(exc) if isinstance(exc, AgentGymError) else f"{type(exc).__name__}: {exc}"
        _say_error(f"{what.splitlines()[0] if what.strip() else what} (traceback: {log})")
        return 2 if isinstance(exc, AgentGymError) else 1
    except KeyboardInterrupt:
        Console(stderr=True).print("interrupted: what was written so far is kept (rerun resumes)")
        return 130


def _show_warning(message: Warning | str, category: type[Warning], *args: Any, **kw: Any) -> None:
    """An old spelling is one yellow line; any other warning as Python prints it."""
    if not issubclass(category, DeprecatedSpelling):
        return _SHOW_WARNING(message, category, *args, **kw)
    Console(stderr=True, soft_wrap=True).print(
        f"[bold yellow]deprecated:[/] {escape(str(message))}", highlight=False
    )


_SHOW_WARNING = warnings.showwarning


def _say_error(line: str) -> None:
    Console(stderr=True, soft_wrap=True).print(
        f"[bold red]error:[/] {escape(line)}", highlight=False
    )


if __name__ == "__main__":
    sys.exit(main())
