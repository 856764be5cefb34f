"""Contributors to a diff: run-model time split into rows, matched across two traces.

Each side's run-model time per iteration is split exactly into

- one row per operator: every delegate operator inside a delegate call and every portable kernel;
- one row per backend whose delegate calls recorded no operator events: those calls whole, as
  one opaque block of that backend ("OpenVINO (no operator events)"), ranked with the operators;
- three overhead rows from the buckets (delegate overhead, dispatch overhead, runtime overhead),
  each defined by subtraction, so the rows of an iteration sum to its run-model time in integer ns.

Rows are keyed so that the same work has the same key on both sides:

- "instruction" (two traces of one program): a portable kernel by its instruction id; a delegate
  operator by its delegate call's instruction id, its position in that call and its name;
- "operator" (different lowerings of one model): by operator type and side (its backend, or
  portable), and for portable kernels by nn.Module path when both traces know module paths.

Classes come from each operator's backend (etprof.backends): "XNNPACK compute", its glue as
"partition-boundary glue" (a backend that cannot tell glue has none), "portable fallback".

A key missing on one side is 0 there. Each row's mean is its per-iteration total over the
measured iterations divided by their number, so the deltas sum to the run-model mean delta.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from etprof.analyzers._diff_pairs import PORTABLE, Name, pair_operators
from etprof.analyzers.buckets import backend_frames, delegate_backends, glue_flags
from etprof.analyzers.stats.significance import rank_tests
from etprof.backends import Backend, resolve
from etprof.trace.model import DELEGATE_CALL, DELEGATE_OP, KERNEL, OPERATOR_CALL, Trace

MATCHES = ("auto", "instruction", "operator")
GLUE, FALLBACK = "partition-boundary glue", "portable fallback"
OPAQUE = "(no operator events)"  # the key suffix of a backend's opaque-block row
# The overhead rows: bucket column -> (row label, class, side, the calls it is paid per)
OVERHEADS = {
    # the part of the calls outside their operators that may be operators below the backend's
    # timer resolution (analyzers/buckets.py)
    "delegate_unresolved": (
        "delegate calls, operators below timer resolution",
        "operators below timer resolution",
        "delegated",
        DELEGATE_CALL,
    ),
    "delegate_overhead": (
        "delegate calls, outside their operators",
        "delegate overhead",
        "delegated",
        DELEGATE_CALL,
    ),
    "dispatch_overhead": (
        "operator calls, outside their kernels",
        "dispatch overhead",
        "portable",
        OPERATOR_CALL,
    ),
    "runtime_overhead": ("run model, outside all calls", "runtime overhead", "runtime", ""),
}
COLUMNS = [
    "contributor",
    "class",
    "side",
    "kind",
    "where",
    "precision",
    "calls_a",
    "calls_b",
    "a_ms",
    "b_ms",
    "delta_ms",
    "share_pct",
    "p_value",
]


def same_program(a: Trace, b: Trace) -> bool:
    """Same sha256, else the same content (metadata v4: instruction tables and delegate blobs),
    else identical instruction tables that ran the same operators in an iteration (as the
    runtime named them: a placeholder resolved on one side only is the same operator) (a float and a quantized lowering share the
    table of MobileNetV3 but not its operators)."""
    pa, pb = a.meta.program, b.meta.program
    if pa.sha256 and pa.sha256 == pb.sha256:
        return True
    if pa.content is not None and pb.content is not None:
        return pa.content == pb.content
    if pa.instructions and pb.instructions and _table(pa.instructions) != _table(pb.instructions):
        return False
    return _signature(a) == _signature(b) != ()


def contributors(
    a: Trace, b: Trace, match: str, frame_a: pd.DataFrame, frame_b: pd.DataFrame
) -> pd.DataFrame:
    """Matched rows of two warm-up-free traces, largest |delta| first (see module docstring).

    `frame_a`/`frame_b`: per-iteration buckets (`Buckets.per_iteration`) of the same iterations.
    """
    modules = match == "operator" and _has_modules(a) and _has_modules(b)
    pairs = _pairs(a, b) if match == "operator" else {}
    wide_a, info_a = _split(a, frame_a, match, modules, pairs)
    wide_b, info_b = _split(b, frame_b, match, modules, pairs)
    keys = list(dict.fromkeys([*wide_a.columns, *wide_b.columns]))
    wa = wide_a.reindex(columns=keys, fill_value=0)
    wb = wide_b.reindex(columns=keys, fill_value=0)
    # a key on both sides: the longer label, which is the resolved name of a placeholder that
    # one side (read without its delegate's graph) names bare
    both = pd.concat([info_a, info_b])
    info = both.assign(_n=both["contributor"].str.len()).sort_values(
        "_n", kind="stable", ascending=False
    )
    info = info[~info.index.duplicated()].reindex(keys)
    prec_a = info_a["precision"].reindex(keys, fill_value="")
    prec_b = info_b["precision"].reindex(keys, fill_value="")
    a_ms = wa.sum(axis=0).to_numpy(float) / len(wa) / 1e6
    b_ms = wb.sum(axis=0).to_numpy(float) / len(wb) / 1e6
    delta = b_ms - a_ms
    total = math.fsum(delta)
    rows = pd.DataFrame(
        {
            "contributor": info["contributor"].to_numpy(),
            "class": info["class"].to_numpy(),
            "side": info["side"].to_numpy(),
            "kind": info["kind"].to_numpy(),
            "where": info["where"].to_numpy(),
            "precision": [_change(x, y) for x, y in zip(prec_a, prec_b, strict=False)],
            "calls_a": info_a["calls"].reindex(keys, fill_value=0.0).to_numpy(float),
            "calls_b": info_b["calls"].reindex(keys, fill_value=0.0).to_numpy(float),
            "a_ms": a_ms,
            "b_ms": b_ms,
            "delta_ms": delta,
            "share_pct": 100.0 * delta / total if total else np.full(len(keys), math.nan),
            "p_value": rank_tests(wa.to_numpy(float), wb.to_numpy(float)),
        }
    )
    order = np.lexsort((rows["contributor"].to_numpy(str), -np.abs(delta)))
    return rows.iloc[order].reset_index(drop=True)


def contributor_table(rows: pd.DataFrame, top: int, calls: bool = True) -> pd.DataFrame:
    """The `top` operator rows, the rest folded into one, the overhead rows, and the total.

    Narrower than `rows` so it reads at 100 columns: side and module path are in the label or
    the JSON; `precision` ("F32 -> QC8") only when some row changed precision; `calls` (per
    iteration, "A -> B") only when rows are operator types.
    """
    ops = rows[rows["kind"] == "operator"]
    shown = ops.head(top)
    rest = ops.iloc[top:]
    parts = [shown]
    if len(rest):
        parts.append(_fold(rest, f"other operators ({len(rest)})"))
    parts.append(rows[rows["kind"] == "overhead"])
    table = pd.concat(parts, ignore_index=True)
    total = _fold(rows, "run model (total)", kind="total").assign(
        calls_a=math.nan, calls_b=math.nan
    )
    table = pd.concat([table, total], ignore_index=True)
    out = table[["contributor", "class"]].copy()
    if rows["precision"].str.contains("->", regex=False).any():  # lowerings at two precisions
        out["precision"] = table["precision"].fillna("").to_numpy()
    if calls:
        out["calls"] = [
            _calls(a, b) for a, b in zip(table["calls_a"], table["calls_b"], strict=False)
        ]
    for col in ("a_ms", "b_ms", "delta_ms", "share_pct", "p_value"):
        out[col] = table[col].astype("float64")
    return out


def _change(a: str, b: str) -> str:
    """The precision of a row: "F32 -> QC8" when the sides differ, "F32" when not."""
    if a == b or not b:
        return a
    return f"{a or '?'} -> {b}" if a else f"? -> {b}"


def _calls(a: float, b: float) -> str:
    if math.isnan(a) or math.isnan(b):
        return ""
    return f"{_count(a)} -> {_count(b)}"


def _count(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:.1f}"


def _fold(rows: pd.DataFrame, label: str, kind: str = "operator") -> pd.DataFrame:
    a, b = math.fsum(rows["a_ms"]), math.fsum(rows["b_ms"])
    share = math.fsum(rows["share_pct"]) if rows["share_pct"].notna().all() else math.nan
    return pd.DataFrame(
        [
            {
                "contributor": label,
                "class": "",
                "side": "",
                "kind": kind,
                "where": "",
                "precision": "",
                "calls_a": float(rows["calls_a"].sum(min_count=1)),
                "calls_b": float(rows["calls_b"].sum(min_count=1)),
                "a_ms": a,
                "b_ms": b,
                "delta_ms": math.fsum(rows["delta_ms"]),
                "share_pct": share,
                "p_value": math.nan,
            }
        ]
    )


def _pairs(a: Trace, b: Trace) -> dict[Name, str]:
    """The name each operator of either trace is keyed by (analyzers/_diff_pairs.py)."""
    backends = {**delegate_backends(b), **delegate_backends(a)}

    def backend(bid: str) -> Backend:
        return backends.get(bid) or resolve(bid)

    return pair_operators(_names(a), _names(b), backend)


def _names(t: Trace) -> set[Name]:
    ops = t.events[t.events["kind"].isin([DELEGATE_OP, KERNEL])]
    lowering = ops["backend"].astype(str).where(ops["kind"] == DELEGATE_OP, PORTABLE)
    return set(zip(lowering.tolist(), ops["op"].astype(str).tolist(), strict=False))


def _split(
    t: Trace, frame: pd.DataFrame, match: str, modules: bool, pairs: dict[Name, str]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(iterations x keys matrix of ns, per-key description) for one warm-up-free trace."""
    iters = frame.index
    ev = t.events
    ops = ev[ev["kind"].isin([DELEGATE_OP, KERNEL]) & ev["iteration"].isin(iters)]
    described = _describe(ops, t, match, modules, pairs)
    if len(ops):
        wide = (
            described.groupby(["iteration", "key"], sort=False)["duration_ns"]
            .sum()
            .unstack(fill_value=0)
            .reindex(iters, fill_value=0)
        )
    else:
        wide = pd.DataFrame(index=iters)
    info = described.drop_duplicates("key").set_index("key")[
        ["contributor", "class", "side", "kind", "where"]
    ]
    info["precision"] = (
        described.groupby("key", sort=False)["precision"]
        .agg(lambda p: " / ".join(sorted({x for x in p if x})))
        .reindex(info.index)
        .fillna("")
    )
    info["calls"] = described.groupby("key").size().reindex(info.index) / max(1, len(iters))
    info = info.astype({"calls": "float64"})
    n = max(1, len(iters))
    for bucket, (label, cls, side, call) in OVERHEADS.items():
        wide[bucket] = frame[bucket].to_numpy()
        calls = float((ev["kind"] == call).sum() / n) if call else math.nan
        info.loc[bucket] = {
            "contributor": label,
            "class": cls,
            "side": side,
            "kind": "overhead",
            "where": "",
            "precision": "",
            "calls": calls,
        }
    for bid, f in backend_frames(t).items():
        if not f["opaque_calls"].reindex(iters, fill_value=0).any():
            continue
        backend = delegate_backends(t)[bid]
        key = f"{bid}:{OPAQUE}"
        wide[key] = f["delegate_opaque"].reindex(iters, fill_value=0).to_numpy()
        info.loc[key] = {
            "contributor": backend.opaque_label,
            "class": backend.opaque_label,
            "side": "delegated",
            "kind": "operator",
            "where": "",
            "precision": "",
            "calls": float(f["opaque_calls"].reindex(iters, fill_value=0).sum() / n),
        }
    return wide.astype("int64"), info


def _describe(
    ops: pd.DataFrame, t: Trace, match: str, modules: bool, pairs: dict[Name, str]
) -> pd.DataFrame:
    """Key, label, class, side and precision of every operator event."""
    op = ops["op"].astype(str)
    backends = delegate_backends(t)
    backend_id = ops["backend"].astype(str)
    judges = {bid: backends.get(bid) or resolve(bid) for bid in backend_id.unique()}
    instr = ops["instruction_id"]
    delegated = ops["kind"] == DELEGATE_OP
    mods = _module_of(t)
    where = instr.map(mods).fillna("").where(~delegated, "")
    instr_s = instr.astype(str)
    if match == "instruction":
        # position of each XNNPACK operator within its delegate call, in execution order
        pos = ops[delegated].groupby(["iteration", "instruction_id"], observed=True).cumcount()
        pos_s = pos.reindex(ops.index, fill_value=-1).astype(str)
        # a placeholder keyed as the runtime names it: resolved or bare, the same operator
        runtime = pd.Series(
            [judges[b].placeholder(o) or o for b, o in zip(backend_id, op, strict=False)],
            index=ops.index,
            dtype=object,
        ).where(delegated, op)
        key = (instr_s + ":" + pos_s + ":" + runtime).where(delegated, instr_s + ":" + op)
        label = (op + " [instr " + instr_s + " #" + pos_s + "]").where(
            delegated, op + " [instr " + instr_s + "]"
        )
    else:
        lowering = backend_id.where(delegated, PORTABLE)
        paired = pd.Series(
            [pairs.get((lw, o), o) for lw, o in zip(lowering, op, strict=False)],
            index=ops.index,
            dtype=object,
        )
        key = lowering + ":" + paired + (("@" + where) if modules else "")
        label = paired
    label = label + (" (" + where + ")").where(where != "", "")
    precision = [
        judges[b].precision(o) if d else ""
        for b, o, d in zip(backend_id, op, delegated, strict=False)
    ]
    glue = glue_flags(ops, backends)  # per distinct name, as each op's backend judges
    compute = (
        ops["backend"]
        .astype(str)
        .map(lambda b: f"{(backends.get(b) or resolve(b)).label} compute")
        .to_numpy(dtype=object)
    )
    cls = np.where(delegated, np.where(glue, GLUE, compute), FALLBACK)
    return pd.DataFrame(
        {
            "iteration": ops["iteration"].to_numpy(),
            "key": key.to_numpy(),
            "contributor": label.to_numpy(),
            "class": cls,
            "side": np.where(delegated, "delegated", "portable"),
            "kind": "operator",
            "where": where.to_numpy(),
            "precision": precision,
            "duration_ns": ops["duration_ns"].to_numpy(),
        },
        index=ops.index,
    )


def _module_of(t: Trace) -> dict[int, str]:
    return {
        i.id: ", ".join(i.modules[:2]) + (" …" if len(i.modules) > 2 else "")
        for i in t.meta.program.instructions
        if i.modules
    }


def _has_modules(t: Trace) -> bool:
    return any(i.modules for i in t.meta.program.instructions)


def _table(instructions: tuple[object, ...]) -> tuple[tuple[object, ...], ...]:
    return tuple((i.id, i.kind, i.name, i.delegate_index) for i in instructions)  # type: ignore[attr-defined]


def _signature(t: Trace) -> tuple[tuple[int, str, str], ...]:
    """What ran, in order, in the last iteration: instruction, event kind and operator."""
    ev = t.events
    if not len(ev) or int(ev["iteration"].max()) < 0:
        return ()
    last = ev[
        (ev["iteration"] == ev["iteration"].max())
        & ev["kind"].isin([DELEGATE_CALL, OPERATOR_CALL, KERNEL, DELEGATE_OP])
    ]
    raw = last["delegate_op"].astype(str)
    names = raw.where(raw != "", last["op"].astype(str))
    return tuple(
        zip(
            last["instruction_id"].tolist(),
            last["kind"].astype(str).tolist(),
            names.tolist(),
            strict=False,
        )
    )
