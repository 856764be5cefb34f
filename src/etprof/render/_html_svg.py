"""Inline SVG charts for the HTML report, written as text: no JavaScript, no library, no network.

Every mark carries a ``<title>`` (the browser shows it on hover) with its exact figure, and a
class / data attribute naming what it stands for, so tests can count marks in the rendered DOM.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

# One palette for the whole page: blues are delegated (a backend brings its own compute and glue
# colours, etprof.backends: XNNPACK's are these blues), oranges portable, grey runtime.
BUCKET_COLORS = {
    "delegate_compute": "#1d5fa6",
    "delegate_glue": "#6fa8dc",
    "delegate_unresolved": "#8fb8e0",
    "delegate_opaque": "#0b7a75",
    "delegate_overhead": "#b7d4ef",
    "portable_kernels": "#e8710a",
    "dispatch_overhead": "#f7bd83",
    "runtime_overhead": "#9aa0a6",
}
SIDE_COLORS = {"delegated": "#1d5fa6", "glue": "#6fa8dc", "portable": "#e8710a"}
SIDE_LABELS = {
    "delegated": "{backend} (delegated)",
    "glue": "{backend} layout/precision glue",
    "portable": "portable kernel",
}
MEASURED, WARMUP, OUTLIER, BAND = "#475569", "#c3c9d2", "#d93025", "#eef1f5"
FASTER, SLOWER, NEUTRAL = "#188038", "#d93025", "#9aa0a6"
FONT_PX = 12
CHAR_PX = 7.4  # a generous average advance of 12 px sans-serif (DejaVu is wide): label columns


@dataclass(frozen=True)
class Segment:
    key: str  # bucket name
    label: str
    ms: float
    pct: float
    color: str = ""  # "" : BUCKET_COLORS[key]


@dataclass(frozen=True)
class BarRow:
    label: str
    value: float  # ms
    kind: str  # key of SIDE_COLORS
    note: str = ""  # shown after the value, e.g. "31.5%"
    count: float | None = None


def fmt_ms(x: float) -> str:
    v = abs(x)
    digits = 0 if v >= 1000 else 1 if v >= 100 else 2 if v >= 10 else 3
    return f"{x:,.{digits}f} ms"


def nice_ticks(top: float, count: int = 5) -> list[float]:
    """Round tick values from 0 to at least `top` (1, 2, 2.5 or 5 times a power of ten)."""
    if not math.isfinite(top) or top <= 0:
        return [0.0, 1.0]
    raw = top / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    n = math.ceil(top / step - 1e-9)
    return [i * step for i in range(n + 1)]


def _tick(x: float) -> str:
    return f"{x:,.0f}" if x >= 100 or float(x).is_integer() else f"{x:g}"


def _clip(text: str, px: float) -> str:
    room = max(4, int(px / CHAR_PX))
    return text if len(text) <= room else text[: room - 1] + "\u2026"


def _svg(cls: str, width: int, height: float, label: str, body: list[str]) -> str:
    h = math.ceil(height)
    return (
        f'<svg class="chart {cls}" role="img" aria-label="{escape(label)}" width="{width}" '
        f'height="{h}" viewBox="0 0 {width} {h}"><title>{escape(label)}</title>'
        + "".join(body)
        + "</svg>"
    )


def _text(x: float, y: float, text: str, cls: str = "", anchor: str = "start") -> str:
    c = f' class="{cls}"' if cls else ""
    a = "" if anchor == "start" else f' text-anchor="{anchor}"'
    return f'<text x="{x:.1f}" y="{y:.1f}"{c}{a}>{escape(text)}</text>'


def _rect(
    x: float, y: float, w: float, h: float, fill: str, title: str, cls: str, data: str = ""
) -> str:
    return (
        f'<rect class="{cls}"{data} x="{x:.2f}" y="{y:.2f}" width="{max(w, 0):.2f}" '
        f'height="{h:.2f}" fill="{fill}"><title>{escape(title)}</title></rect>'
    )


def stacked_buckets(rows: Sequence[tuple[str, Sequence[Segment], float]], width: int = 1080) -> str:
    """One 100% bar per trace: each bucket's share of run model, its ms in the tooltip.

    A bucket defined by subtraction can be negative (a delegate's operators timed longer than their
    delegate call); it gets no width, and the bar is scaled to the positive shares' sum.
    """
    label_w = min(300.0, max(len(r[0]) for r in rows) * CHAR_PX + 16) if rows else 0.0
    total_w = 90.0
    bar_w = width - label_w - total_w
    bar_h, gap = 34.0, 14.0
    body: list[str] = []
    for i, (label, segments, total) in enumerate(rows):
        y = 6 + i * (bar_h + gap)
        body.append(_text(0, y + bar_h / 2 + 4, _clip(label, label_w - 12), "label"))
        x = label_w
        full = max(100.0, sum(max(0.0, s.pct) for s in segments))
        for s in segments:
            w = bar_w * max(0.0, s.pct) / full if total > 0 else 0.0
            title = f"{s.label}: {fmt_ms(s.ms)} ({s.pct:.1f}% of run model)"
            color = s.color or BUCKET_COLORS.get(s.key, NEUTRAL)
            body.append(
                _rect(x, y, w, bar_h, color, title, "seg", f' data-bucket="{escape(s.key)}"')
            )
            if w >= 44:  # room for the percentage inside the segment
                dark = s.key in ("delegate_compute", "portable_kernels", "runtime_overhead")
                body.append(
                    _text(
                        x + w / 2,
                        y + bar_h / 2 + 4,
                        f"{s.pct:.0f}%",
                        "in-bar" + (" on-dark" if dark else ""),
                        "middle",
                    )
                )
            x += w
        body.append(_text(width - 4, y + bar_h / 2 + 4, fmt_ms(total), "value", "end"))
    return _svg(
        "buckets", width, 6 + len(rows) * (bar_h + gap), "share of run-model time per bucket", body
    )


def legend(items: Sequence[tuple[str, str]], cls: str = "legend") -> str:
    """An HTML legend: colour swatches with labels (wraps with the page, unlike SVG text)."""
    spans = "".join(
        f'<span class="key"><i style="background:{c}"></i>{escape(t)}</span>' for c, t in items
    )
    return f'<div class="{cls}">{spans}</div>'


def operator_bars(rows: Sequence[BarRow], title: str, width: int = 1080) -> str:
    """Horizontal bars, one per operator type, coloured by where it ran."""
    label_w = min(360.0, max((len(r.label) for r in rows), default=10) * CHAR_PX + 14)
    value_w = 150.0
    plot_w = width - label_w - value_w
    top = max((r.value for r in rows), default=0.0)
    ticks = nice_ticks(top)
    scale = plot_w / ticks[-1]
    bar_h, gap, axis_h = 18.0, 6.0, 18.0
    body = [_grid(label_w, axis_h, plot_w, len(rows) * (bar_h + gap), ticks, scale)]
    for i, r in enumerate(rows):
        y = axis_h + 4 + i * (bar_h + gap)
        count = f", {r.count:g} per iteration" if r.count is not None else ""
        tip = (
            f"{r.label} ({SIDE_LABELS.get(r.kind, r.kind)}): {fmt_ms(r.value)} per iteration"
            f"{count}" + (f", {r.note}" if r.note else "")
        )
        name = _text(label_w - 8, y + 13, _clip(r.label, label_w - 14), "label", "end")
        body.append(
            f'<g class="op-row">{name}'
            + _rect(
                label_w,
                y,
                r.value * scale,
                bar_h,
                SIDE_COLORS.get(r.kind, NEUTRAL),
                tip,
                "bar",
                f' data-side="{escape(r.kind)}"',
            )
            + _text(
                label_w + r.value * scale + 6,
                y + 13,
                fmt_ms(r.value) + (f"  {r.note}" if r.note else ""),
                "value",
            )
            + "</g>"
        )
    return _svg("operators", width, axis_h + 8 + len(rows) * (bar_h + gap), title, body)


def _grid(x0: float, y0: float, w: float, h: float, ticks: list[float], scale: float) -> str:
    """Vertical grid lines with their values above the plot (ms)."""
    out = []
    for t in ticks:
        x = x0 + t * scale
        out.append(
            f'<line class="grid" x1="{x:.1f}" y1="{y0:.1f}" x2="{x:.1f}" y2="{y0 + h + 4:.1f}"/>'
        )
        out.append(
            _text(
                x,
                y0 - 5,
                _tick(t) + (" ms" if t == ticks[-1] else ""),
                "tick",
                "middle" if t != ticks[-1] else "end",
            )
        )
    return "".join(out)


def y_grid(
    left: float, plot_w: float, top_pad: float, plot_h: float, ticks: list[float], scale: float
) -> list[str]:
    """Horizontal grid lines with their values left of the plot, and the axis's "ms"."""
    base = top_pad + plot_h
    out = []
    for t in ticks:
        y = base - t * scale
        out.append(
            f'<line class="grid" x1="{left:.1f}" y1="{y:.1f}" x2="{left + plot_w:.1f}" '
            f'y2="{y:.1f}"/>'
        )
        out.append(_text(left - 6, y + 4, _tick(t), "tick", "end"))
    out.append(_text(12, top_pad + plot_h / 2, "ms", "tick", "middle"))
    return out


def iteration_chart(
    iterations: Sequence[int],
    run_model_ms: Sequence[float],
    dropped: Sequence[bool],
    outlier: Sequence[bool],
    median_ms: float,
    title: str,
    width: int = 1080,
    height: int = 230,
    top_ms: float | None = None,
) -> str:
    """One bar per recorded iteration; the dropped warm-up sits on a shaded band."""
    left, right, top_pad, bottom = 64.0, 16.0, 14.0, 34.0
    plot_w, plot_h = width - left - right, height - top_pad - bottom
    n = len(iterations)
    ticks = nice_ticks(top_ms if top_ms is not None else max(run_model_ms, default=0.0), 4)
    scale = plot_h / ticks[-1]
    step = plot_w / max(n, 1)
    bar_w = max(1.0, step * 0.72)
    base = top_pad + plot_h
    body: list[str] = []
    warm = sum(1 for d in dropped if d)
    if warm:
        body.append(
            f'<rect class="warmup-band" x="{left:.2f}" y="{top_pad:.2f}" '
            f'width="{warm * step:.2f}" height="{plot_h:.2f}" fill="{BAND}">'
            f"<title>warm-up: iterations 0-{warm - 1}, dropped from every statistic"
            f"</title></rect>"
        )
        body.append(_text(left + 6, top_pad + 13, f"warm-up ({warm} dropped)", "band-label"))
    body.extend(y_grid(left, plot_w, top_pad, plot_h, ticks, scale))
    for i, (it, ms, d, o) in enumerate(
        zip(iterations, run_model_ms, dropped, outlier, strict=False)
    ):
        x = left + i * step + (step - bar_w) / 2
        h = ms * scale
        fill = WARMUP if d else OUTLIER if o else MEASURED
        state = "warm-up, dropped" if d else "outlier" if o else "measured"
        body.append(
            _rect(
                x,
                base - h,
                bar_w,
                h,
                fill,
                f"iteration {it}: {fmt_ms(ms)} ({state})",
                "iter",
                f' data-dropped="{str(bool(d)).lower()}"',
            )
        )
    if median_ms > 0 and n:
        y = base - median_ms * scale
        x0 = left + warm * step
        body.append(
            f'<line class="median" x1="{x0:.1f}" y1="{y:.1f}" x2="{left + plot_w:.1f}" '
            f'y2="{y:.1f}"><title>median of the measured iterations: '
            f"{escape(fmt_ms(median_ms))}</title></line>"
        )
        body.append(
            _text(left + plot_w - 2, y - 5, f"median {fmt_ms(median_ms)}", "median-label", "end")
        )
    every = max(1, math.ceil(n / 12 / 5) * 5)
    for i, it in enumerate(iterations):
        if it % every == 0:
            body.append(_text(left + (i + 0.5) * step, base + 15, str(it), "tick", "middle"))
    body.append(_text(left + plot_w / 2, base + 30, "iteration", "tick", "middle"))
    body.append(
        f'<line class="axis" x1="{left:.1f}" y1="{base:.1f}" x2="{left + plot_w:.1f}" '
        f'y2="{base:.1f}"/>'
    )
    return _svg("iterations", width, height, title, body)


def delta_bars(rows: Sequence[tuple[str, float, str]], title: str, width: int = 1080) -> str:
    """Diverging bars around zero: one per row (label, B - A in ms, tooltip extra)."""
    label_w = min(320.0, max((len(r[0]) for r in rows), default=10) * CHAR_PX + 14)
    value_w = 110.0
    plot_w = width - label_w - 2 * value_w
    span = max((abs(r[1]) for r in rows), default=0.0)
    ticks = nice_ticks(span, 3)
    half = plot_w / 2
    scale = half / ticks[-1]
    zero = label_w + value_w + half
    bar_h, gap, axis_h = 18.0, 6.0, 18.0
    h = len(rows) * (bar_h + gap)
    body = []
    for t in ticks:
        for sign in (1,) if t == 0 else (-1, 1):
            x = zero + sign * t * scale
            body.append(
                f'<line class="grid" x1="{x:.1f}" y1="{axis_h:.1f}" x2="{x:.1f}" '
                f'y2="{axis_h + h + 4:.1f}"/>'
            )
            body.append(
                _text(
                    x,
                    axis_h - 5,
                    ("+" if sign > 0 and t else "-" if t else "") + _tick(t),
                    "tick",
                    "middle",
                )
            )
    for i, (label, delta, extra) in enumerate(rows):
        y = axis_h + 4 + i * (bar_h + gap)
        w = abs(delta) * scale
        x = zero if delta >= 0 else zero - w
        fill = SLOWER if delta > 0 else FASTER if delta < 0 else NEUTRAL
        mark = "+" if delta >= 0 else "-"
        tip = f"{label}: {mark}{fmt_ms(abs(delta))}" + (f" ({extra})" if extra else "")
        body.append(_text(label_w - 8, y + 13, _clip(label, label_w - 14), "label", "end"))
        body.append(
            _rect(
                x,
                y,
                w,
                bar_h,
                fill,
                tip,
                "delta",
                f' data-sign="{"up" if delta > 0 else "down" if delta < 0 else "zero"}"',
            )
        )
        tx, anchor = (x + w + 6, "start") if delta >= 0 else (x - 6, "end")
        body.append(_text(tx, y + 13, f"{mark}{fmt_ms(abs(delta))}", "value", anchor))
    body.append(
        f'<line class="axis" x1="{zero:.1f}" y1="{axis_h:.1f}" x2="{zero:.1f}" '
        f'y2="{axis_h + h + 4:.1f}"/>'
    )
    return _svg("deltas", width, axis_h + 8 + h, title, body)
