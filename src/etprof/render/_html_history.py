"""The HTML page of a history: one chart per series (run-model mean of each run, in time order,
coloured by its verdict against the runs before it), then the table and the notes."""

from __future__ import annotations

from html import escape
from typing import Any

import pandas as pd

from etprof.render._html_svg import (
    FASTER,
    MEASURED,
    SLOWER,
    _svg,
    _text,
    fmt_ms,
    nice_ticks,
    y_grid,
)

COLORS = {"slower": SLOWER, "faster": FASTER}
SERIES = ["model", "variant", "device", "method"]


def history_body(result: Any) -> str:
    from etprof.render.html import frame_table, notes_list

    runs: pd.DataFrame = result.runs
    parts = [
        (
            '<header class="page"><h1>etprof history</h1>'
            f"<p>{len(runs)} stored run(s); each run judged against the run(s) before it in its "
            "series, as <code>etprof diff</code> judges two traces</p></header>"
        )
    ]
    for key, series in runs.groupby(SERIES, sort=True):
        name = (
            " ".join(str(k) for k in key[:2] if k)
            + f" on {key[2]}"
            + (f" ({key[3]})" if key[3] != "forward" else "")
        )
        parts.append(
            f'<section class="card"><h2>{escape(name)}</h2>{series_chart(series, name)}</section>'
        )
    for name, frame in result.tables().items():
        parts.append(f'<section class="card"><h2>{escape(name)}</h2>{frame_table(frame)}</section>')
    parts.append(notes_list(result.notes()))
    return "\n".join(parts)


def series_chart(series: pd.DataFrame, title: str, width: int = 1080, height: int = 240) -> str:
    """Run-model mean per run; a significant change is a red (slower) or green (faster) mark."""
    left, right, top_pad, bottom = 64.0, 16.0, 14.0, 40.0
    plot_w, plot_h = width - left - right, height - top_pad - bottom
    means = [float(v) for v in series["mean_ms"]]
    ticks = nice_ticks(max(means, default=0.0) * 1.1, 4)
    scale = plot_h / ticks[-1]
    n = len(means)
    step = plot_w / max(n, 1)
    base = top_pad + plot_h
    body: list[str] = []
    body.extend(y_grid(left, plot_w, top_pad, plot_h, ticks, scale))
    points = [(left + (i + 0.5) * step, base - m * scale) for i, m in enumerate(means)]
    if n > 1:
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
        body.append(
            f'<polyline class="trend" points="{path}" fill="none" stroke="{MEASURED}" '
            'stroke-width="1.5"/>'
        )
    every = max(1, -(-n // 12))
    for i, ((x, y), (_, row)) in enumerate(zip(points, series.iterrows(), strict=False)):
        verdict = str(row["verdict"])
        color = COLORS.get(verdict, MEASURED)
        change = "" if pd.isna(row["change_pct"]) else f", {row['change_pct']:+.1f}%"
        label = (
            f"run {row['run']}"
            + (f" @{row['commit']}" if row["commit"] else "")
            + f" {row['when']}: {fmt_ms(float(row['mean_ms']))}, {verdict}{change}"
        )
        r = 5 if verdict in COLORS else 3.5
        body.append(
            f'<circle class="run" data-verdict="{escape(verdict)}" cx="{x:.1f}" '
            f'cy="{y:.1f}" r="{r}" fill="{color}"><title>{escape(label)}</title></circle>'
        )
        if i % every == 0:
            tick = str(row["commit"] or row["run"])[:10]
            body.append(_text(x, base + 15, tick, "tick", "middle"))
    body.append(
        _text(left + plot_w / 2, base + 32, "run (commit), in time order", "tick", "middle")
    )
    body.append(
        f'<line class="axis" x1="{left:.1f}" y1="{base:.1f}" x2="{left + plot_w:.1f}" '
        f'y2="{base:.1f}"/>'
    )
    return _svg("history", width, height, f"{title}: run-model mean per run", body)
