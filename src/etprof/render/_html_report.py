"""The sections of the HTML report: diff verdict, run model, buckets, operators, iterations,
fallback. Only formatting: every figure comes from the analyzers' results in the Report.

With two traces each topic shows both sides one under the other (A then B), so the eye compares
like with like; the iteration charts share one scale when the two runs are of a similar size.
"""

from __future__ import annotations

import math
from html import escape
from typing import TYPE_CHECKING, Any

import pandas as pd

from etprof.analyzers._report import Report, SideReport
from etprof.program.llm import DECODE
from etprof.render import _html_latency as lat
from etprof.render import _html_svg as svg
from etprof.render.html import frame_table, notes_list, prose

if TYPE_CHECKING:
    from etprof.analyzers.diff import DiffResult
from etprof.units import ms_text

SHARED_SCALE_RATIO = 3.0  # iteration charts share a y scale when the sides differ less than this
_DIFF_CLASS = {"faster": "faster", "slower": "slower"}


def report_body(r: Report) -> str:
    parts = [_header(r)]
    parts += [_diff(d, phase, len(r.comparisons) > 1) for phase, d in r.comparisons]
    parts += [
        _llm(r),
        _run(r),
        _buckets(r),
        _operators(r),
        _iterations(r),
        _memory(r),
        _fallback(r),
    ]
    parts.append(
        f"<footer>Made by etprof {escape(r.version)}. One self-contained file: it loads "
        "nothing from the network. Hover a bar for its exact figure.</footer>"
    )
    return "\n".join(parts)


def _tag(side: SideReport) -> str:
    return f'<span class="side-tag">{escape(side.label)}</span>' if side.label else ""


def _name(side: SideReport) -> str:
    return f"{side.label} \u00b7 {side.model}" if side.label else side.model


def _header(r: Report) -> str:
    traces = " \u00b7 ".join(
        f"{_tag(s)}<code>{escape(str(s.breakdown.settings['trace']))}</code>" for s in r.sides
    )
    lead = "" if r.comparisons else f'<p class="lead">{prose(r.headline())}</p>'
    return (
        f'<header class="page"><h1>{escape(r.title)}</h1><p class="sub">{traces}</p>{lead}</header>'
    )


def _diff(d: DiffResult, phase: str | None, several: bool) -> str:
    """The comparison card: of one LLM phase's runs when `phase` is given (`several`: one card
    per phase, each with its own anchor)."""
    verdict = _DIFF_CLASS.get(d.comparison.verdict, "same")
    where = d.where_it_went()
    rows = d.buckets[d.buckets["bucket"] != "run_model"]
    bucket_chart = svg.delta_bars(
        [
            (
                str(b["class"]),
                float(b["delta_ms"]),
                f"A {b['a_ms']:.3f} ms, B {b['b_ms']:.3f} ms, p={b['p_value']:.2g}",
            )
            for _, b in rows.iterrows()
        ],
        "change per bucket, B minus A (ms per iteration)",
    )
    top = d.top_contributors()
    named = top[~top["contributor"].isin(["run model (total)"])]
    contributor_chart = svg.delta_bars(
        [
            (
                str(c["contributor"]),
                float(c["delta_ms"]),
                f"A {c['a_ms']:.3f} ms, B {c['b_ms']:.3f} ms",
            )
            for _, c in named.iterrows()
        ],
        "top contributors to the change, B minus A (ms per iteration)",
    )
    rename = {
        "a_ms": "A ms",
        "b_ms": "B ms",
        "delta_ms": "B - A ms",
        "share_pct": "share of change %",
        "change_pct": "change %",
    }
    notes = [n for n in d.notes() if not n.startswith("where it went")]
    return (
        f'<section class="card" id="{"diff-" + escape(phase) if several and phase else "diff"}">'
        "<h2>Comparison: B against A"
        + (f" ({escape(phase)} runs)" if phase else "")
        + "</h2>"
        + f'<p class="verdict {verdict}">{escape(d.headline())}</p>'
        + (f"<p>{prose(where[0].upper() + where[1:])}.</p>" if where else "")
        + frame_table(d.run_model_table(), rename=rename)
        + "<h3>Where the change went (per bucket)</h3>"
        + bucket_chart
        + svg.legend([(svg.SLOWER, "B slower (more time)"), (svg.FASTER, "B faster (less time)")])
        + _details("bucket table", frame_table(d.buckets, total_last=True, rename=rename))
        + "<h3>Top contributors</h3>"
        + contributor_chart
        + _details("contributor table", frame_table(top, total_last=True, rename=rename))
        + notes_list(notes)
        + "</section>"
    )


def _num(x: float) -> str:
    """Three significant decimals at most: a range of two figures must fit a card."""
    return f"{x:.1f}" if abs(x) >= 100 else f"{x:.2f}" if abs(x) >= 10 else f"{x:.3f}"


def _details(summary: str, body: str) -> str:
    return f"<details><summary>{escape(summary)}</summary>{body}</details>"


def _run(r: Report) -> str:
    blocks = []
    for side in r.sides:
        b = side.breakdown
        s = b.stats.summary()
        st = b.iterations.stability
        cards = [
            (ms_text(s["mean_ms"]), "mean"),
            (ms_text(s["median_ms"]), "median"),
            (f"{_num(s['p10_ms'])}\u2013{_num(s['p90_ms'])}", "p10\u2013p90 ms"),
            (f"{st.cv_pct:.1f}%", "CV" + (" (noisy)" if st.noisy else "")),
            (
                f"{b.stats.n} / {b.stats.iterations}",
                f"measured / recorded ({b.stats.warmup} warm-up dropped)",
            ),
            (str(b.settings["threads"] or "?"), "threads"),
        ]
        stat_html = "".join(
            f'<div class="stat"><b>{escape(v)}</b><span>{escape(k)}</span></div>' for v, k in cards
        )
        program = b.settings["program"] or "unknown (no metadata, no --pte)"
        blocks.append(
            f"<h3>{_tag(side)}{escape(side.model)}</h3>"
            f'<p class="meta">program {escape(str(program))}; warm-up from '
            f"{escape(str(b.settings['warmup_from']))}</p>"
            f'<div class="stats">{stat_html}</div>'
        )
    return (
        '<section class="card" id="run"><h2>Run model (Method::execute)</h2>'
        + "".join(blocks)
        + "</section>"
    )


def _bucket_color(key: tuple[str, str], backends: Any) -> str:
    """A delegate bucket in its backend's colours; the others in the page's palette."""
    bucket, bid = key
    backend = backends.get(bid) if bid else None
    if backend is not None and bucket == "delegate_compute":
        return str(backend.compute_color)
    if backend is not None and bucket == "delegate_glue":
        return str(backend.glue_color)
    return svg.BUCKET_COLORS.get(bucket, svg.NEUTRAL)


def _memory(r: Report) -> str:
    """Load, planned and resident memory, and the profiler's cost, per side (docs/memory.md)."""
    blocks = []
    for side in r.sides:
        costs = side.breakdown.costs
        if costs is None:
            continue
        facts = pd.DataFrame(costs.rows(), columns=["figure", "value"])
        m = costs.memory
        body = frame_table(facts)
        if m.planned is not None:
            body += "<h4>Planned by the program</h4>" + frame_table(m.planned_table())
        if m.measured:
            body += _details("resident memory per session (MB)", frame_table(m.sessions()))
        blocks.append(
            f"<h3>{_tag(side)}{escape(side.model)}</h3>{body}"
            + notes_list(costs.notes() + [n for n in m.notes() if n not in costs.notes()])
        )
    if not blocks:
        return ""
    return (
        '<section class="card" id="memory"><h2>Load, memory and the profiler\'s cost</h2>'
        + "".join(blocks)
        + "</section>"
    )


def _segments(b: Any, colors: dict[tuple[str, str], str]) -> list[svg.Segment]:
    """A Buckets result as the stacked bar's segments (run model left out)."""
    t = b.table()
    segments = []
    for _, x in t[t["bucket"] != "run_model"].iterrows():
        key = (str(x["bucket"]), str(x["backend"]))
        colors[key] = _bucket_color(key, b.backends)
        segments.append(
            svg.Segment(
                key[0], str(x["label"]), float(x["mean_ms"]), float(x["share_pct"]), colors[key]
            )
        )
    return segments


def _rate(x: float) -> str:
    """Tokens per second: whole numbers from 1000 up, else three significant figures."""
    return f"{x:,.0f}" if abs(x) >= 1000 else _num(x)


def _llm(r: Report) -> str:
    """An LLM trace's prefill/decode section: the llama-bench table, time to first token, the
    decode latency percentiles, each phase's buckets and decode latency against position."""
    blocks = []
    for side in r.sides:
        llm = side.breakdown.llm
        if llm is None:
            continue
        cards = []
        label = "shipped" if llm.shipped else "traced"
        for name, p in llm.phases.items():
            mean, half = p.headline_tokens_per_s
            pm = f" \u00b1 {_rate(half)}" if math.isfinite(half) else ""
            cards.append(
                (f"{_rate(mean)}{pm}", f"{llm.test_name(name)} tokens/s ({name}, {label})")
            )
        if math.isfinite(llm.headline_ttft_ms):
            cards.append((ms_text(llm.headline_ttft_ms), f"time to first token ({label})"))
        decode = llm.phases.get(DECODE)
        if decode is not None:
            cards += [
                (ms_text(decode.percentile(q)), f"decode p{q} per token") for q in (50, 90, 99)
            ]
        stat_html = "".join(
            f'<div class="stat"><b>{escape(v)}</b><span>{escape(k)}</span></div>' for v, k in cards
        )
        colors: dict[tuple[str, str], str] = {}
        rows = [
            (f"{name} (per run)", _segments(p.buckets, colors), p.buckets.run_model_ms)
            for name, p in llm.phases.items()
        ]
        labels = {
            (str(x["bucket"]), str(x["backend"])): str(x["label"])
            for p in llm.phases.values()
            for _, x in p.buckets.table().iterrows()
        }
        keys = [(c, labels.get(k, k[0])) for k, c in colors.items()]
        chart = ""
        if decode is not None and decode.latency_ms:
            points = list(
                zip(
                    decode.positions,
                    decode.latency_ms,
                    decode.run_sessions or (0,) * len(decode.latency_ms),
                    strict=False,
                )
            )
            slope = decode.slope_per_100()
            grows = (
                f"; {'+' if slope >= 0 else ''}{_num(slope)} ms per 100 positions"
                if math.isfinite(slope)
                else ""
            )
            chart = (
                "<h4>Decode latency against position</h4>"
                + lat.latency_by_position(
                    points,
                    decode.fit(),
                    f"decode latency per step against position: "
                    f"{side.model} ({len(points)} measured steps{grows})",
                )
                + svg.legend(
                    [
                        (lat.SESSION_COLORS[k % len(lat.SESSION_COLORS)], f"session {k + 1}")
                        for k in sorted({s for *_, s in points})
                    ]
                    + [(lat.FIT, "least-squares line")]
                )
            )
        blocks.append(
            f"<h3>{_tag(side)}{escape(side.model)}</h3>"
            + (f'<p class="lead">{prose(llm.headline())}</p>' if len(r.sides) > 1 else "")
            + f'<div class="stats">{stat_html}</div>'
            + frame_table(llm.bench())
            + frame_table(llm.latency())
            + "<h4>Where each phase's time goes (mean per Execute run of the phase)</h4>"
            + svg.stacked_buckets(rows)
            + svg.legend(keys)
            + frame_table(llm.phase_buckets())
            + chart
            + "".join(
                f"<h4>{escape(name[0].upper() + name[1:])}</h4>{frame_table(t)}"
                for name, t in llm.per_token_tables().items()
            )
            + notes_list(llm.notes())
        )
    if not blocks:
        return ""
    return (
        '<section class="card" id="llm"><h2>Prefill and decode</h2>'
        + "".join(blocks)
        + '<p class="meta">Every figure comes from the measured runs\' own Method::execute '
        "durations, each run's phase and position from the trace's metadata (docs/llm.md). "
        "The sections below pool both phases' runs: a prefill run and a decode step take "
        "very different times.</p></section>"
    )


def _buckets(r: Report) -> str:
    rows = []
    tables = []
    colors: dict[tuple[str, str], str] = {}
    for side in r.sides:
        b = side.breakdown.buckets
        t = b.table()
        rows.append((_name(side), _segments(b, colors), b.run_model_ms))
        tables.append(t.set_index(["bucket", "backend"]))
    order = list(dict.fromkeys(k for t in tables for k in t.index))
    labels = pd.concat([t["label"] for t in tables]).groupby(level=[0, 1]).first()
    sides = pd.concat([t["side"] for t in tables]).groupby(level=[0, 1]).first()
    summary = pd.DataFrame(
        {"bucket": [labels[k] for k in order], "side": [sides[k] for k in order]}
    )
    for side, t in zip(r.sides, tables, strict=False):
        prefix = f"{side.label} " if side.label else ""
        summary[f"{prefix}ms"] = [float(t["mean_ms"].get(k, 0.0)) for k in order]
        summary[f"{prefix}%"] = [float(t["share_pct"].get(k, 0.0)) for k in order]
    keys = [(colors[k], str(labels[k])) for k in order if k in colors]
    return (
        '<section class="card" id="buckets"><h2>Where run-model time goes</h2>'
        + svg.stacked_buckets(rows)
        + svg.legend(keys)
        + frame_table(summary, total_last=True)
        + '<p class="meta">Buckets are exact: per iteration they sum to the run-model time '
        "(docs/attribution.md). Bars show shares; the figure at the right is the mean "
        "run model.</p></section>"
    )


def _operators(r: Report) -> str:
    charts = []
    present: set[str] = set()
    for side in r.sides:
        frame = side.breakdown.operators.frame.head(r.top)
        rows = [
            svg.BarRow(
                label=str(o["op"]),
                value=float(o["per_iter_ms"]),
                kind="glue" if bool(o.get("glue", False)) else str(o["side"]),
                note=f"{o['share_pct']:.1f}%",
                count=float(o["count"]),
            )
            for _, o in frame.iterrows()
        ]
        present.update(row.kind for row in rows)
        total = len(side.breakdown.operators.frame)
        title = f"top {len(rows)} of {total} operator types by time per iteration: {side.model}"
        chart = (
            svg.operator_bars(rows, title)
            if rows
            else '<p class="meta">No operator events in this trace.</p>'
        )
        charts.append(f"<h3>{_tag(side)}{escape(side.model)}</h3>{chart}")
    backend = " + ".join(dict.fromkeys(s.breakdown.buckets.delegate_label() for s in r.sides))
    keys = [
        (svg.SIDE_COLORS[k], svg.SIDE_LABELS[k].format(backend=backend))
        for k in svg.SIDE_COLORS
        if k in present
    ]
    return (
        '<section class="card" id="operators"><h2>Top operators</h2>'
        + svg.legend(keys)
        + "".join(charts)
        + '<p class="meta">Time per iteration over the measured iterations; the percentage '
        "is the share of run model.</p></section>"
    )


def _iterations(r: Report) -> str:
    tops = [float(s.iterations.frame["run_model_ms"].max()) for s in r.sides]
    shared = max(tops) if min(tops) > 0 and max(tops) / min(tops) <= SHARED_SCALE_RATIO else None
    parts = []
    for side in r.sides:
        it = side.iterations
        f = it.frame
        chart = svg.iteration_chart(
            f["iteration"].tolist(),
            f["run_model_ms"].astype(float).tolist(),
            f["dropped"].astype(bool).tolist(),
            f["outlier"].astype(bool).tolist(),
            it.stability.median_ms,
            f"run model per iteration: {side.model} (first {it.warmup} dropped as warm-up)",
            top_ms=shared,
        )
        parts.append(f"<h3>{_tag(side)}{escape(side.model)}</h3>{chart}{notes_list(it.notes())}")
    keys = [
        (svg.MEASURED, "measured iteration"),
        (svg.WARMUP, "warm-up (dropped)"),
        (svg.OUTLIER, "outlier (kept in the statistics)"),
    ]
    scale = " (same scale)" if shared is not None and len(r.sides) > 1 else ""
    return (
        f'<section class="card" id="iterations"><h2>Per-iteration latency{scale}</h2>'
        + svg.legend(keys)
        + "".join(parts)
        + "</section>"
    )


def _fallback(r: Report) -> str:
    parts = []
    for side in r.sides:
        head = f"<h3>{_tag(side)}{escape(side.model)}</h3>"
        fb = side.fallback
        if fb is None:
            why = side.fallback_error or "the fallback explainer is not available"
            parts.append(f'{head}<p class="meta">No explanation: {escape(why)}</p>')
            continue
        lines = "".join(
            f"<p{' class=fix' if line.startswith('Fix:') else ''}>{prose(line)}</p>"
            for line in fb.notes()
        )
        causes = fb.tables()["fallback causes"]
        table = frame_table(causes) if len(causes) else ""
        stat = (
            f'<p class="meta">{fb.partitions} {escape(fb.backend.label)} partition(s), '
            f"{fb.breaks} graph break(s), {fb.portable_instructions} portable instruction(s); fallback cost "
            f"{fb.fallback_ms:.3f} ms per iteration ({fb.fallback_pct:.1f}% of run model)</p>"
        )
        parts.append(f'{head}{stat}<div class="explain">{lines}</div>{table}')
    return (
        '<section class="card" id="fallback"><h2>Why operators ran on portable kernels'
        "</h2>" + "".join(parts) + "</section>"
    )
