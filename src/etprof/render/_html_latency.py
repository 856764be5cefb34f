"""The LLM report's latency chart: each step's time against its position in the sequence, one
colour per session, with the least-squares line (SVG, no script)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

# One palette for the whole page: blues are delegated (a backend brings its own compute and glue
# colours, etprof.backends: XNNPACK's are these blues), oranges portable, grey runtime.
from etprof.render._html_svg import _svg, _text, fmt_ms, nice_ticks, y_grid

SESSION_COLORS = ("#1d5fa6", "#e8710a", "#188038", "#9334e6", "#d93025", "#5f6368")
FIT = "#1f2328"  # the least-squares line (report.css: svg .fit)


def axis_limit(values: Sequence[float], spread: float = 4.0) -> float:
    """The top of a value axis that a few outliers do not squash: the largest value within
    `spread` times the median (every value when none lies beyond it)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    median = ordered[len(ordered) // 2]
    if median <= 0 or ordered[-1] <= spread * median:
        return ordered[-1]
    return max(v for v in ordered if v <= spread * median)


def latency_by_position(
    points: Sequence[tuple[int, float, int]],
    fit: tuple[float, float] | None,
    title: str,
    width: int = 1080,
    height: int = 260,
) -> str:
    """One dot per decode step (position, ms, session), coloured by session, and the
    least-squares line of latency on position (`fit`: ms per position, ms at position 0)."""
    left, right, top_pad, bottom = 64.0, 16.0, 14.0, 38.0
    plot_w, plot_h = width - left - right, height - top_pad - bottom
    xs = [p for p, _, _ in points]
    lo, hi = (min(xs), max(xs)) if xs else (0, 1)
    span = max(hi - lo, 1)
    limit = axis_limit([ms for _, ms, _ in points])
    ticks = nice_ticks(limit, 4)
    yscale = plot_h / ticks[-1]
    base = top_pad + plot_h

    def px(position: float) -> float:
        return left + 8 + (position - lo) / span * (plot_w - 16)

    body: list[str] = []
    body.extend(y_grid(left, plot_w, top_pad, plot_h, ticks, yscale))
    above = [ms for _, ms, _ in points if ms > ticks[-1]]
    for position, ms, session in points:
        color = SESSION_COLORS[session % len(SESSION_COLORS)]
        clipped = ms > ticks[-1]
        cy = top_pad if clipped else base - ms * yscale
        note = " (above the axis)" if clipped else ""
        body.append(
            f'<circle class="step" data-position="{position}" data-session="{session}" '
            f'data-clipped="{str(clipped).lower()}" cx="{px(position):.2f}" cy="{cy:.2f}" '
            f'r="3" fill="{color}"><title>position {position}, session {session + 1}: '
            f"{escape(fmt_ms(ms))}{note}</title></circle>"
        )
    if above:
        body.append(
            _text(
                left + plot_w - 2,
                top_pad + 12,
                f"{len(above)} step{'s' if len(above) > 1 else ''} above the axis, "
                f"up to {fmt_ms(max(above))}",
                "band-label",
                "end",
            )
        )
    if fit is not None and points:
        slope, at0 = fit
        y0, y1 = (min(max(at0 + slope * p, 0.0), ticks[-1]) for p in (lo, hi))
        body.append(
            f'<line class="fit" x1="{px(lo):.1f}" y1="{base - y0 * yscale:.1f}" '
            f'x2="{px(hi):.1f}" y2="{base - y1 * yscale:.1f}"><title>least squares: '
            f"{escape(fmt_ms(100 * slope))} per 100 positions</title></line>"
        )
    every = nice_ticks(float(span), 6)
    step = every[1] if len(every) > 1 else 1.0
    mark = math.ceil(lo / step) * step
    while mark <= hi:
        body.append(_text(px(mark), base + 15, f"{mark:g}", "tick", "middle"))
        mark += step
    body.append(
        _text(
            left + plot_w / 2,
            base + 32,
            "position (tokens already in the KV cache)",
            "tick",
            "middle",
        )
    )
    body.append(
        f'<line class="axis" x1="{left:.1f}" y1="{base:.1f}" x2="{left + plot_w:.1f}" '
        f'y2="{base:.1f}"/>'
    )
    return _svg("positions", width, height, title, body)
