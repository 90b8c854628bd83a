"""The commands of ``agentgym``: each reads its config (checked before any work starts),
does its work and prints what it did (``show``)."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import threading
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

from rich.markup import escape
from rich.table import Table

from agentgym import cluster, rundir
from agentgym.cli import show
from agentgym.cli.show import console
from agentgym.config import check_model_dir, compose, redact, validate
from agentgym.errors import AgentGymError, ConfigError, RegistrationError
from agentgym.policies.config import build_policy
from agentgym.registration import list_envs, spec
from agentgym.report import write_comparison, write_report
from agentgym.rollout import env_factory
from agentgym.settings import EvalConfig, load_eval_config, load_serve_env_config
from agentgym.types import Trajectory


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

    out = Path(cfg.out)
    _check_resume(out, cfg)
    cluster.use(cfg.rollout.ray_address)  # where Ray actors go, if any part starts some
    policy = build_policy(cfg.policy, cfg.env.env_class.baselines, out)
    settings = cfg.rollout
    make_env = env_factory(
        cfg.env.id, cfg.env.kwargs, cfg.imports, cfg.rollout.backend, cfg.rollout.ray_address
    )
    rewards: list[float] = []  # the resumed episodes' too: aevaluate reports them first
    with show.progress() as progress:
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

        return _run(main())


T = TypeVar("T")


def _run(coro: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(coro)``, where SIGTERM cancels the run from inside the event loop and ends
    it as Ctrl-C does (KeyboardInterrupt). The CLI's own SIGTERM handler raises wherever the
    main thread is, which can be a ``__del__`` that swallows it: a train sent SIGTERM once
    ran its 50 steps to the end."""

    async def guarded() -> T:
        main, loop, said = asyncio.current_task(), asyncio.get_running_loop(), []
        if main is None or threading.current_thread() is not threading.main_thread():
            return await coro

        def terminate() -> None:
            said.append(signal.SIGTERM)
            main.cancel()

        loop.add_signal_handler(signal.SIGTERM, terminate)
        try:
            return await coro
        except asyncio.CancelledError:
            if said:
                raise KeyboardInterrupt from None
            raise
        finally:
            loop.remove_signal_handler(signal.SIGTERM)

    return asyncio.run(guarded())


def cmd_train(args: argparse.Namespace) -> int:
    from agentgym.trainers import distributed
    from agentgym.trainers.grpo.config import load_train_config
    from agentgym.trainers.grpo.loop import train
    from agentgym.trainers.grpo.run import Hooks

    cfg = load_train_config(args.overrides)
    if distributed.world()[0] > 0:  # a follower of torchrun's rank 0, which prints and reports
        _run(train(cfg))
        return 0
    with show.progress() as progress:
        bar = progress.add_task(f"train {cfg.env.id}", total=cfg.trainer.steps, reward=0.0)

        def on_step(record: dict[str, Any]) -> None:
            progress.update(bar, completed=record["step"] + 1, reward=record["reward_mean"])
            if record.get("warnings"):
                warned = ", ".join(record["warnings"])
                console.print(f"[yellow]step {record['step']}: early warning: {warned}[/]")

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
        history = _run(train(cfg, hooks))
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


def cmd_sft(args: argparse.Namespace) -> int:
    from agentgym.trainers.sft import SFTConfig, run_sft

    tree = compose("sft", args.overrides, {})
    for key in ("data", "model"):
        if tree.get(key) is None:
            raise ConfigError(key, "is required", f"pass {key}=<path>")
    if isinstance(tree["data"], str):
        tree["data"] = [tree["data"]]
    cfg = validate(SFTConfig, tree)
    check_model_dir("model", cfg.model)
    with show.progress("loss") as progress:
        bar = progress.add_task("sft", total=None, loss=0.0)

        def on_step(record: dict[str, Any]) -> None:
            progress.update(bar, completed=record["sft_step"] + 1, loss=record["loss"])

        model = run_sft(cfg, on_step)
    console.print(f"model: {model} (metrics: {Path(cfg.out) / 'metrics.jsonl'})")
    return 0


def cmd_model(args: argparse.Namespace) -> int:
    from agentgym.models import import_gguf

    with console.status(f"importing {args.gguf} (dequantising; minutes for 0.5B)"):
        out = import_gguf(args.gguf, args.out, args.dtype)
    console.print(f"model: {out}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
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


def cmd_export(args: argparse.Namespace) -> int:
    from agentgym.atif import export_run

    if not Path(args.run).is_dir():
        raise ConfigError("run", f"no such run directory {args.run!r}", "pass a train/eval out=")
    out = export_run(args.run)
    console.print(f"ATIF: {len(list(out.glob('*.json')))} trajectories in {out}")
    return 0


def cmd_envs(args: argparse.Namespace) -> int:
    if args.env:
        return _show_env_options(args.env)
    table = Table("id", "gymnasium id", "description")
    for s in list_envs():
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
        env_cls = spec(env_id).load()
    except RegistrationError as exc:
        raise ConfigError("env", str(exc), "see `agentgym envs`") from None
    if env_cls.config_model is None:  # an AsyncEnv of a user's, without one
        console.print(f"{env_id} declares no config_model: env.<key>= are its __init__'s")
        return 0
    show.options(env_cls.config_model, f"{env_id} (env.<key>=value)", "env.")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from agentgym.checks import check_rewards, verdict
    from agentgym.settings import load_check_config

    cfg = load_check_config(args.overrides)
    with console.status(f"playing the baselines of {cfg.env.id} on {cfg.tasks} tasks"):
        rows = _run(check_rewards(cfg.env.id, cfg.env.kwargs, cfg.tasks, cfg.seed))
    table = Table("baseline", "expected", "mean reward", "success", "broke it on tasks",
                  title=f"reward check: {cfg.env.id}")  # fmt: skip
    for r in rows:
        paid = escape(str(r.paid[:10])) if r.paid else "-"
        name = r.baseline if r.ok else f"[red]{r.baseline}[/]"
        table.add_row(name, r.expected, f"{r.mean_reward:+.3f}", f"{r.success_rate:.2f}", paid)
    console.print(table)
    verdict(cfg.env.id, rows)
    console.print("the reward passed its check")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    cfg = load_eval_config(args.overrides)
    summary = run_eval(cfg)
    show.summary(summary, cfg.out)
    console.print(f"report: {write_report(cfg.out)}")
    return 0


def _serve_env(overrides: list[str]) -> int:
    from agentgym.serving import serve

    cfg = load_serve_env_config(overrides)
    console.print(f"serving {cfg.env.id} on ws://{cfg.host}:{cfg.port}/ws")
    serve(cfg.env.id, cfg.env.kwargs, cfg.host, cfg.port)
    return 0


def _serve_policy(overrides: list[str]) -> int:
    from agentgym.gateway import Gateway
    from agentgym.settings import ServePolicyConfig

    cfg = validate(ServePolicyConfig, compose("serve_policy", overrides, {"policy": "name"}))
    policy = build_policy(cfg.policy)

    async def main() -> None:
        gateway = Gateway(policy, host=cfg.host, open_keys=True)
        try:
            await gateway.start(cfg.port)
            console.print(
                f"serving {policy.__class__.__name__} at {gateway.url}/v1 (OpenAI-compatible; "
                "each API key is an episode of its own)"
            )
            await asyncio.Event().wait()
        finally:
            await gateway.aclose()
            await policy.aclose()

    _run(main())
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    if args.component == "env":
        return _serve_env(args.overrides)
    if args.component == "policy":
        return _serve_policy(args.overrides)
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


def cmd_index(args: argparse.Namespace) -> int:
    from agentgym.data.loaders import load_corpus
    from agentgym.retrieval import build_index
    from agentgym.retrieval.config import IndexConfig

    tree = compose("index", args.overrides, {})
    for key in ("corpus", "out"):
        if tree.get(key) is None:
            raise ConfigError(key, "is required", f"pass {key}=<path>")
    cfg = validate(IndexConfig, tree)
    passages = load_corpus(cfg.corpus)
    with show.progress(None) as progress:
        what = f"index {len(passages)} passages ({', '.join(cfg.methods)})"
        bar = progress.add_task(what, total=len(passages))

        def on_progress(done: int, total: int) -> None:
            progress.update(bar, completed=done)

        build_index(cfg.out, passages, cfg.methods, cfg.faiss, cfg.encoder, on_progress)
        progress.update(bar, completed=len(passages))
    console.print(f"index: {cfg.out} ({len(passages)} passages)")
    return 0


def cmd_sandbox(args: argparse.Namespace) -> int:
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
