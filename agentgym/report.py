"""A run's report: one self-contained HTML page (no network) with the curves and the
trajectories. ``agentgym report RUN_DIR`` writes it; ``train`` and ``eval`` write it at the end.

It reads what runs leave behind: ``metrics.jsonl`` (train), ``summary.json`` (eval),
``trajectories.jsonl`` or ``trajectories/step_*.jsonl``, ``config.json``.
"""

from __future__ import annotations

import json
import math
import os
from html import escape
from pathlib import Path
from typing import Any

from agentgym.errors import AgentGymError
from agentgym.rollout.writer import read_trajectories
from agentgym.types import Trajectory
from agentgym.vision import read_image

COLORS = ["#2563eb", "#16a34a", "#dc2626", "#9333ea", "#ea580c", "#0891b2"]
CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:24px auto;max-width:1100px;color:#111}
h1{font-size:22px} h2{font-size:17px;margin-top:28px;border-bottom:1px solid #ddd}
table{border-collapse:collapse} td,th{padding:3px 10px;border-bottom:1px solid #eee;text-align:left}
.charts{display:flex;flex-wrap:wrap;gap:16px} .chart{border:1px solid #e5e7eb;border-radius:6px}
details{border:1px solid #e5e7eb;border-radius:6px;margin:6px 0;padding:4px 10px}
summary{cursor:pointer} .msg{white-space:pre-wrap;margin:6px 0;padding:6px 10px;border-radius:6px;
font:12px/1.4 ui-monospace,monospace} .system{background:#f3f4f6} .user{background:#eff6ff}
.assistant{background:#f0fdf4} .tool{background:#fefce8} .parts{color:#555;font-size:12px}
.ok{color:#16a34a} .bad{color:#dc2626}
"""


def line_chart(
    title: str, series: dict[str, list[float]], width: int = 520, height: int = 220
) -> str:
    """An inline SVG line chart of one or more series over the same x (the step)."""
    values = [v for ys in series.values() for v in ys]
    if not values:
        return ""
    lo, hi = min(values), max(values)
    hi = hi if hi > lo else lo + 1.0
    n = max(len(ys) for ys in series.values())
    pad = 40

    def xy(i: int, v: float) -> str:
        x = pad + (width - 2 * pad) * (i / max(n - 1, 1))
        y = height - pad - (height - 2 * pad) * (v - lo) / (hi - lo)
        return f"{x:.1f},{y:.1f}"

    parts = [
        f'<svg class="chart" width="{width}" height="{height}" role="img" '
        f'aria-label="{escape(title)}"><text x="{pad}" y="20" font-weight="bold">'
        f"{escape(title)}</text>",
        f'<line x1="{pad}" x2="{width - pad}" y1="{height - pad}" y2="{height - pad}" '
        'stroke="#999"/>',
        f'<text x="{width - pad + 4}" y="{height - pad + 4}" font-size="10">step</text>',
    ]
    for i in sorted({round(k * (n - 1) / 4) for k in range(5)}):  # the x axis: steps
        x = pad + (width - 2 * pad) * (i / max(n - 1, 1))
        parts.append(
            f'<text class="xtick" x="{x:.1f}" y="{height - pad + 14}" font-size="10" '
            f'text-anchor="middle">{i}</text>'
        )
    digits = max(0, 2 - math.floor(math.log10(hi - lo)))  # ticks that differ when printed
    for k in range(5):
        v = lo + (hi - lo) * k / 4
        y = height - pad - (height - 2 * pad) * k / 4
        parts.append(
            f'<text class="tick" x="2" y="{y + 4:.1f}" font-size="10">{v:.{digits}f}</text>'
            f'<line x1="{pad}" x2="{width - pad}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eee"/>'
        )
    step = min(130.0, (width - pad) / max(len(series), 1))  # the legend's spacing
    for k, (name, ys) in enumerate(series.items()):
        color = COLORS[k % len(COLORS)]
        points = " ".join(xy(i, v) for i, v in enumerate(ys))
        parts.append(
            f'<polyline class="series" data-name="{escape(name)}" fill="none" '
            f'stroke="{color}" stroke-width="2" points="{points}"/>'
        )
        parts.append(
            f'<text x="{pad + step * k:.0f}" y="{height - 6}" fill="{color}" '
            f'font-size="12">{escape(name)}</text>'
        )
    return "".join(parts) + "</svg>"


def heatmap(axes: list[str], cells: list[list[Any]]) -> str:
    """An SVG heat map of success per (row, column) cell, the value written in each."""
    rows = sorted({c[0] for c in cells})
    cols = sorted({c[1] for c in cells})
    value = {(c[0], c[1]): c[2] for c in cells}
    w, h, left, top = 70, 28, 90, 40
    parts = [
        f'<text x="{left}" y="14" class="t">success by {escape(axes[0])} (rows) x '
        f"{escape(axes[1])} (columns)</text>"
    ]
    for j, c in enumerate(cols):
        parts.append(f'<text x="{left + j * w + w / 2}" y="{top - 6}" class="l">{c}</text>')
    for i, r in enumerate(rows):
        y = top + i * h
        parts.append(f'<text x="{left - 6}" y="{y + h / 2 + 4}" class="r">{r}</text>')
        for j, c in enumerate(cols):
            v = value.get((r, c))
            fill = "#eee" if v is None else f"hsl({120 * v:.0f},60%,{85 - 30 * v:.0f}%)"
            label = "" if v is None else f"{v:.2f}"
            parts.append(
                f'<rect x="{left + j * w}" y="{y}" width="{w - 2}" height="{h - 2}" '
                f'fill="{fill}"/><text x="{left + j * w + w / 2}" y="{y + h / 2 + 4}" '
                f'class="l">{label}</text>'
            )
    width, height = left + len(cols) * w + 10, top + len(rows) * h + 10
    return (
        f'<svg class="heatmap" width="{width}" height="{height}" '
        f'xmlns="http://www.w3.org/2000/svg"><style>.l{{text-anchor:middle;font:11px sans-serif}}'
        f".r{{text-anchor:end;font:11px sans-serif}}.t{{font:12px sans-serif}}</style>"
        f"{''.join(parts)}</svg>"
    )


def _table(rows: dict[str, Any]) -> str:
    cells = "".join(
        f"<tr><th>{escape(k)}</th><td>{escape(_fmt(v))}</td></tr>" for k, v in rows.items()
    )
    return f"<table>{cells}</table>"


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, dict):
        return ", ".join(f"{k}={_fmt(x)}" for k, x in v.items())
    return str(v)


def _src(ref: str, run: Path) -> str:
    """An image's ``src``: a data URL as is, a stored image's path relative to the report."""
    return ref if ref.startswith("data:") else os.path.relpath(ref, run)


def _marked(ref: str, run: Path, info: dict[str, Any]) -> str:
    """A screenshot with what a GUI turn's ``info`` names drawn on it: the target ``box``
    (green) and the ``point`` the model clicked (red), in the screenshot's own pixels."""
    img = f'<img src="{escape(_src(ref, run))}" width="360" alt="image">'
    box, pt = info.get("box") or [], info.get("point")
    if not box and not pt:
        return "<br>" + img
    try:
        w, h = read_image(ref).size
    except (OSError, ValueError, AgentGymError):  # unreadable, or no Pillow: no marks
        return "<br>" + img
    marks = ""
    if len(box) == 4:
        x1, y1, x2, y2 = (float(v) for v in box)
        marks += (
            f'<rect x="{x1}" y="{y1}" width="{x2 - x1}" height="{y2 - y1}" fill="none" '
            'stroke="#1a7f37" stroke-width="3"/>'
        )
    if pt and all(math.isfinite(float(v)) for v in pt):
        marks += f'<circle cx="{pt[0]}" cy="{pt[1]}" r="8" fill="#cf222e" opacity="0.8"/>'
    svg = (
        f'<svg viewBox="0 0 {w} {h}" style="position:absolute;left:0;top:0;width:100%;'
        f'height:100%">{marks}</svg>'
    )
    return f'<br><span style="position:relative;display:inline-block">{img}{svg}</span>'


def _trajectory(t: Trajectory, label: str, step: str, run: Path) -> str:
    mark = '<span class="ok">success</span>' if t.success else '<span class="bad">fail</span>'
    head = (
        f"{escape(label)} task {t.task} sample {t.sample} — reward {t.reward:.3f} — "
        f"{mark} — {len(t.turns)} turns — {t.stop_reason}"
    )
    body = []
    turns = iter(t.turns)
    marks = [  # each message's: the info of the turn that answered it (GUI boxes, clicks)
        (next(turns, None) if i + 1 < len(t.messages) and t.messages[i + 1].role == "assistant"
         else None)
        for i in range(len(t.messages))
    ]  # fmt: skip
    for m, turn in zip(t.messages, marks, strict=True):
        calls = "".join(
            f"\n→ {escape(c.name)}({escape(json.dumps(c.arguments))})" for c in m.tool_calls
        )
        info = turn.info if turn is not None and m.images else {}
        shots = "".join(_marked(u, run, info) for u in m.images)
        body.append(
            f'<div class="msg {m.role}"><b>{m.role}</b>\n{escape(m.content)}{calls}{shots}</div>'
        )
    parts = "; ".join(f"turn {turn.index}: {_fmt(turn.reward_parts) or '-'}" for turn in t.turns)
    body.append(f'<div class="parts">reward parts — {escape(parts)}</div>')
    data = (
        f'data-step="{escape(step)}" data-reward="{t.reward}" data-stop="{escape(t.stop_reason)}"'
    )
    return f'<details class="trajectory" {data}><summary>{head}</summary>{"".join(body)}</details>'


FILTER_JS = """
function agFilter() {
  const step = document.getElementById('f-step').value;
  const stop = document.getElementById('f-stop').value;
  const low = parseFloat(document.getElementById('f-reward').value);
  let shown = 0;
  document.querySelectorAll('details.trajectory').forEach(d => {
    const ok = (!step || d.dataset.step === step) && (!stop || d.dataset.stop === stop)
      && (isNaN(low) || parseFloat(d.dataset.reward) >= low);
    d.hidden = !ok;
    shown += ok;
  });
  document.getElementById('f-count').textContent = shown + ' shown';
}
"""


def _filters(steps: list[str], stops: list[str], n: int) -> str:
    """Selects for step and stop reason and a lowest reward, over the trajectories shown."""

    def select(name: str, values: list[str]) -> str:
        options = "".join(f'<option value="{escape(v)}">{escape(v)}</option>' for v in values)
        head = f'<select id="f-{name}" onchange="agFilter()"><option value="">all</option>'
        return f"{head}{options}</select>"

    return (
        f'<div class="filters">step {select("step", steps)} stop reason {select("stop", stops)} '
        '<label>reward at least <input id="f-reward" type="number" step="0.1" '
        f'oninput="agFilter()"></label> <span id="f-count">{n} shown</span></div>'
        f"<script>{FILTER_JS}</script>"
    )


def _trajectory_files(run: Path) -> list[tuple[str, Path]]:
    if (run / "trajectories.jsonl").exists():
        return [("", run / "trajectories.jsonl")]
    steps = sorted((run / "trajectories").glob("step_*.jsonl"))
    picked = steps if len(steps) <= 2 else [steps[0], steps[-1]]
    return [(f"step {int(p.stem.split('_')[1])}", p) for p in picked]


def held_out(evals: list[dict[str, Any]], width: int = 520, height: int = 220) -> str:
    """The held-out panel: one bar per evaluation (base model, after SFT, after GRPO steps)
    with its reward, and the table behind it."""
    lo = min(0.0, *(e["eval_reward_mean"] for e in evals))
    hi = max(1.0, *(e["eval_reward_mean"] for e in evals))
    pad, n = 40, len(evals)
    slot = (width - 2 * pad) / n
    zero = height - pad - (height - 2 * pad) * (0.0 - lo) / (hi - lo)
    bars = [
        f'<svg class="chart" width="{width}" height="{height}" role="img" '
        f'aria-label="held-out reward"><text x="{pad}" y="20" font-weight="bold">'
        f"held-out reward (same tasks each time)</text>",
        f'<line x1="{pad}" x2="{width - pad}" y1="{zero:.1f}" y2="{zero:.1f}" stroke="#999"/>',
    ]
    for i, e in enumerate(evals):
        v = e["eval_reward_mean"]
        y = height - pad - (height - 2 * pad) * (v - lo) / (hi - lo)
        x = pad + i * slot + slot * 0.15
        top, h = min(y, zero), abs(zero - y)
        bars.append(
            f'<rect x="{x:.1f}" y="{top:.1f}" width="{slot * 0.7:.1f}" height="{h:.1f}" '
            f'fill="{COLORS[i % len(COLORS)]}"/>'
            f'<text x="{x:.1f}" y="{top - 4:.1f}" font-size="11">{v:.3f}</text>'
            f'<text x="{x:.1f}" y="{height - 12}" font-size="11">'
            f"{escape(e['phase'])} {e['step']}</text>"
        )
    bars.append("</svg>")
    keys = ["phase", "step", *(k for k in evals[0] if k.startswith("eval_"))]
    rows = "".join(
        "<tr>" + "".join(f"<td>{_cell(e.get(k))}</td>" for k in keys) + "</tr>" for e in evals
    )
    table = f"<table><tr>{''.join(f'<th>{escape(k)}</th>' for k in keys)}</tr>{rows}</table>"
    return f"<h2>Held-out evaluation</h2><div class='charts'>{''.join(bars)}</div>{table}"


def _cell(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, float) else escape(str(value))


def _pick(path: Path, n: int) -> list[tuple[str, Trajectory]]:
    """The ``n // 2`` highest-reward and ``n - n // 2`` lowest-reward trajectories of a file
    (all of them when it holds fewer than ``n``), best first."""
    ranked = sorted(read_trajectories(path), key=lambda t: (-t.reward, t.task, t.sample))
    if len(ranked) <= n:
        return [("", t) for t in ranked]
    best, worst = ranked[: n // 2], ranked[len(ranked) - (n - n // 2) :]
    return [("best", t) for t in best] + [("worst", t) for t in worst]


def write_report(run: str | Path, max_trajectories: int = 40) -> Path:
    """Write ``RUN/report.html`` and return its path."""
    run = Path(run)
    sections = [f"<h1>agentgym run — {escape(str(run))}</h1>"]
    metrics, evals = _records(run)
    if evals:
        sections.append(held_out(evals))
    if metrics:
        sections.append(_training(metrics))
    if (run / "summary.json").exists():
        summary = json.loads((run / "summary.json").read_text())
        grid = summary.pop("grid", None)
        sections.append("<h2>Evaluation</h2>" + _table(summary))
        if grid:
            sections.append(heatmap(grid["axes"], grid["cells"]))
    if (run / "config.json").exists():
        config = escape((run / "config.json").read_text())
        sections.append(
            f"<h2>Config</h2><details><summary>config.json</summary><pre>{config}</pre></details>"
        )
    sections.append(_trajectories(run, max_trajectories))
    html = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>agentgym report</title>"
        f"<style>{CSS}</style></head><body>{''.join(sections)}</body></html>"
    )
    out = run / "report.html"
    out.write_text(html)
    return out


def _training(metrics: list[dict[str, Any]]) -> str:
    """The training curves and the last step's figures."""
    col = lambda k: [float(m.get(k) or 0.0) for m in metrics]  # noqa: E731
    charts = [
        line_chart(
            "reward and success", {"reward": col("reward_mean"), "success": col("success_rate")}
        ),
        line_chart(
            "seconds per phase",
            {
                "rollout": col("rollout_seconds"),
                "learn": col("learn_seconds"),
                "sync": col("sync_seconds"),
            },
        ),
        line_chart("entropy", {"entropy": col("entropy")}),
        line_chart("KL, clip fraction", {"kl": col("kl"), "clip": col("clip_frac")}),
    ]
    if "staleness_mean" in metrics[-1]:  # runs from 0.2 on
        names = {"staleness_mean": "staleness", "staleness_max": "max",
                 "dropped_groups": "dropped", "sampler_idle_fraction": "sampler idle",
                 "tis_mean": "IS weight"}  # fmt: skip
        charts.append(line_chart("sampling ahead", {v: col(k) for k, v in names.items()}))
    return (
        f'<h2>Training</h2><div class="charts">{"".join(charts)}</div>'
        + _warnings(metrics)
        + f"<details open><summary>last step ({metrics[-1]['step']})</summary>"
        f"{_table(metrics[-1])}</details>"
    )


def _warnings(metrics: list[dict[str, Any]]) -> str:
    """The steps that raised an early warning of collapse, and the rollbacks."""
    rows = [
        f"<li>step {m['step']}: {escape(', '.join(m['warnings']))}"
        + (f" (rolled back to step {m['rolled_back_to']})" if "rolled_back_to" in m else "")
        + "</li>"
        for m in metrics
        if m.get("warnings")
    ]
    return f"<h3>Early warnings</h3><ul class='warn'>{''.join(rows)}</ul>" if rows else ""


def _trajectories(run: Path, most: int) -> str:
    """The best and the worst trajectories of each file, with filters."""
    items, steps, stops = [], [], set()
    for label, path in _trajectory_files(run):
        step = label.removeprefix("step ")
        steps.append(step)
        for why, t in _pick(path, most):
            items.append(_trajectory(t, f"{label}, {why}" if why else label, step, run))
            stops.add(t.stop_reason)
    return (
        f"<h2>Trajectories ({len(items)}: the best and the worst of each file)</h2>"
        + _filters([s for s in steps if s], sorted(stops), len(items))
        + "".join(items)
    )


def _records(run: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(training steps, held-out evaluations) of a run's metrics.jsonl."""
    path = run / "metrics.jsonl"
    if not path.exists():
        return [], []
    records = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
    return [m for m in records if "phase" not in m], [m for m in records if "phase" in m]


COMPARED = ("mean_reward", "success_rate", "pass_at_k", "format_error_rate", "mean_turns")
"""The evaluation summary's keys a comparison shows side by side."""


def write_comparison(runs: list[str | Path], out: str | Path) -> Path:
    """Write one HTML page that overlays the curves of several runs (train or eval) and
    tabulates their final figures side by side; return its path."""
    paths = [Path(r) for r in runs]
    names = [p.name or str(p) for p in paths]
    if len(set(names)) < len(names):
        names = [str(p) for p in paths]
    steps = {n: _records(p)[0] for n, p in zip(names, paths, strict=True)}
    evals = {n: _records(p)[1] for n, p in zip(names, paths, strict=True)}
    col = lambda k: {n: [float(m.get(k, 0.0)) for m in ms] for n, ms in steps.items() if ms}  # noqa: E731
    held = {n: [e["eval_reward_mean"] for e in es] for n, es in evals.items() if es}
    phases = ("rollout", "learn", "sync")
    seconds = {
        n: [sum(float(m.get(f"{k}_seconds", 0.0)) for k in phases) for m in ms]
        for n, ms in steps.items()
        if ms
    }
    charts = [
        line_chart("training reward", col("reward_mean")),
        line_chart("success rate", col("success_rate")),
        line_chart("held-out reward", held),
        line_chart("seconds per step", seconds),
        line_chart("entropy", col("entropy")),
        line_chart("KL", col("kl")),
    ]
    rows = []
    for name, path in zip(names, paths, strict=True):
        last = steps[name][-1] if steps[name] else {}
        found = path / "summary.json"
        summary = json.loads(found.read_text()) if found.exists() else {}
        held_out_reward = evals[name][-1]["eval_reward_mean"] if evals[name] else None
        cells = [last.get("step"), last.get("reward_mean"), held_out_reward]
        cells += [summary.get(k) for k in COMPARED]
        rows.append(f"<tr><td>{escape(name)}</td>{''.join(_compared(c) for c in cells)}</tr>")
    head = ["run", "last step", "training reward", "held-out reward", *COMPARED]
    table = (
        "<table><tr>" + "".join(f"<th>{escape(h)}</th>" for h in head) + "</tr>"
        + "".join(rows) + "</table>"
    )  # fmt: skip
    links = " · ".join(
        f'<a href="{escape(str((p / "report.html").resolve()))}">{escape(n)}</a>'
        for n, p in zip(names, paths, strict=True)
    )
    html = (
        "<!doctype html><html><head><meta charset='utf-8'><title>agentgym comparison</title>"
        f"<style>{CSS}</style></head><body><h1>agentgym — {len(paths)} runs</h1>{table}"
        f'<div class="charts">{"".join(c for c in charts if c)}</div>'
        f"<p>Each run's own report: {links}</p></body></html>"
    )
    out = Path(out)
    out.write_text(html)
    return out


def _compared(value: Any) -> str:
    if value is None:
        return "<td>-</td>"
    if isinstance(value, dict):  # pass@k
        return "<td>" + ", ".join(f"@{k} {_cell(v)}" for k, v in value.items()) + "</td>"
    return f"<td>{_cell(value)}</td>"
