"""A trace's rows for every table of the store (pandas only: no database is involved here).

The numbers are the analyzers' own (runmodel, buckets, operators, blocks), so a stored run says
exactly what `etprof breakdown` says about its trace.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from etprof.analyzers.blocks import BlockOptions, blocks
from etprof.analyzers.buckets import BucketOptions, buckets
from etprof.analyzers.operators import OperatorOptions, operators
from etprof.analyzers.runmodel import RunModelOptions, run_model_samples, run_model_stats
from etprof.errors import InputError
from etprof.store.schema import SCHEMA_VERSION, TABLES, column_names
from etprof.trace.model import Trace
from etprof.util.version import __version__

TAG = re.compile(r"^([A-Za-z_][A-Za-z0-9_.-]*)=(.*)$")


@dataclass(frozen=True)
class StoredTrace:
    """One trace's rows: per table of :data:`TABLES`, its columns as arrays (the schema's
    columns in order, all of one length). Columns, not a DataFrame: a batch of 10,000 traces is
    joined column by column in milliseconds (etprof.store.batch), where concatenating 70,000
    small DataFrames takes tens of seconds."""

    run_id: str
    source: str
    columns: dict[str, dict[str, npt.NDArray[Any]]]

    def frame(self, table: str) -> pd.DataFrame:
        return pd.DataFrame(self.columns[table], columns=column_names(table))

    @property
    def tables(self) -> dict[str, pd.DataFrame]:
        return {name: self.frame(name) for name in TABLES}


def as_columns(frame: pd.DataFrame) -> dict[str, npt.NDArray[Any]]:
    """A conformed table's columns as arrays."""
    return {str(c): frame[c].to_numpy() for c in frame.columns}


def parse_tags(tags: list[str] | tuple[str, ...]) -> dict[str, str]:
    """`k=v` strings as a dict; a malformed one or a key given twice is a user error."""
    out: dict[str, str] = {}
    for tag in tags:
        if not tag.isprintable():
            raise InputError(
                f"--tag {tag!r} holds a line break or another control character",
                "give a tag on one line, e.g. --tag commit=abc123",
            )
        m = TAG.fullmatch(tag)
        if not m:
            raise InputError(
                f"--tag '{tag}' is not key=value",
                "use e.g. --tag commit=abc123 --tag device=pixel8",
            )
        key, value = m.group(1), m.group(2)
        if key in out and out[key] != value:
            raise InputError(
                f"--tag {key} is given twice ({out[key]!r} and {value!r})", "give each key once"
            )
        out[key] = value
    return out


def content_id(path: Path) -> str:
    """The run's key: sha256 of the trace file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# Words that name a variant rather than a model in file stems like "mv3_xnnpack_q8_quantonly":
# only the default *label* of a history series (tags and `etprof run --model` win); whether two
# traces are of one model is diff's question, decided from content (analyzers/_diff_model.py).
VARIANT_WORDS = frozenset(
    {
        "portable",
        "xnnpack",
        "fp32",
        "fp16",
        "bf16",
        "f32",
        "f16",
        "q8",
        "q4",
        "int8",
        "int4",
        "8a8w",
        "quant",
        "quantized",
        "quantonly",
        "qat",
        "mixed",
        "dynamic",
        "static",
        "coreml",
        "mps",
        "qnn",
        "vulkan",
        "delegated",
    }
)


def model_base(name: str) -> str:
    """The series a program name files under: the stem before its first variant word.

    "mv3_xnnpack_q8_quantonly" and "mv3_xnnpack_q8" are both "mv3"; "mv3-large_xnnpack_fp32"
    is "mv3_large". A name without variant words is its own base.
    """
    words = [w for w in re.split(r"[_\-.\s]+", name.lower()) if w]
    base: list[str] = []
    for w in words:
        if w in VARIANT_WORDS:
            break
        base.append(w)
    return "_".join(base) or name.lower()


def series_of(program: str, tags: Mapping[str, str], host_cpu: str) -> tuple[str, str, str]:
    """(model, variant, device): tags win, else the program name split at its first variant
    word (docs/diff.md, "base name") and the host CPU."""
    base = model_base(program) if program else "unknown"
    words = [w for w in re.split(r"[_\-.\s]+", program.lower()) if w]
    rest = "_".join(words[len(base.split("_")) :]) if program else ""
    return (
        tags.get("model") or base,
        tags.get("variant", rest),
        tags.get("device") or host_cpu or "unknown",
    )


def trace_rows(
    trace: Trace,
    path: Path,
    tags: Mapping[str, str],
    *,
    run_id: str = "",
    stored_at: datetime | None = None,
) -> StoredTrace:
    """Every table's rows for `trace` (read from `path`), tagged with `tags`: one set of rows per
    method the trace ran (a run of several methods has a `runs` row per method)."""
    run_id = run_id or content_id(path)
    when = (stored_at or datetime.now(UTC)).replace(tzinfo=None)
    methods = trace.methods or (trace.meta.program.method or "forward",)
    parts = [_method_rows(trace.for_method(m), m, path, tags, run_id, when) for m in methods]
    tables = {name: pd.concat([p[name] for p in parts], ignore_index=True) for name in parts[0]}
    tables["tags"] = pd.DataFrame(
        {"run_id": run_id, "key": list(tags), "value": list(tags.values())},
        columns=["run_id", "key", "value"],
    )
    return StoredTrace(
        run_id, str(path), {name: as_columns(conform(name, tables[name])) for name in TABLES}
    )


def _method_rows(
    trace: Trace, method: str, path: Path, tags: Mapping[str, str], run_id: str, stored_at: datetime
) -> dict[str, pd.DataFrame]:
    meta = trace.meta
    stats = run_model_stats(trace, RunModelOptions())
    measured = trace.measured()
    samples = run_model_samples(measured)
    iteration = samples.index.to_numpy().astype(np.int64)
    session = trace.session_of(iteration)
    ms = samples.to_numpy() / 1e6
    program = meta.program.model or Path(trace.source).stem
    said = {"model": meta.program.source_model} if meta.program.source_model else {}
    model, variant, device = series_of(program, {**said, **tags}, meta.host.cpu)
    summary = stats.summary()
    run = {
        "run_id": run_id,
        "schema_version": SCHEMA_VERSION,
        "stored_at": stored_at,
        "started": _timestamp(meta.run.started) if trace.has_meta else None,
        "model": model,
        "variant": variant,
        "device": device,
        "program": program,
        "method": method,
        "program_sha256": meta.program.sha256,
        "backends": ",".join(sorted(set(meta.program.delegates))),
        "trace_path": str(path),
        "trace_bytes": path.stat().st_size,
        "commit": tags.get("commit", ""),
        "host_cpu": meta.host.cpu,
        "host_cores": meta.host.cores,
        "host_platform": meta.host.platform,
        "python_version": meta.host.python,
        "etprof_version": meta.versions.get("etprof", "") if trace.has_meta else __version__,
        "executorch_version": meta.versions.get("executorch", ""),
        "torch_version": meta.versions.get("torch", ""),
        "iterations": trace.iterations,
        "warmup": trace.warmup,
        "measured": stats.n,
        "sessions": trace.sessions,
        "threads": meta.run.threads if trace.has_meta else None,
        "cpu_share_pct": meta.run.cpu_share_pct,
        "load_average": meta.run.load_average,
        **{
            k: summary[k]
            for k in (
                "mean_ms",
                "median_ms",
                "p10_ms",
                "p90_ms",
                "min_ms",
                "max_ms",
                "std_ms",
                "cv_pct",
            )
        },
    }
    iterations = pd.DataFrame(
        {
            "run_id": run_id,
            "method": method,
            "session": session,
            "iteration": iteration,
            "run_model_ms": ms,
        }
    )
    return {
        "runs": pd.DataFrame([run]),
        "sessions": _sessions(iterations),
        "iterations": iterations,
        "buckets": _from(buckets(trace, BucketOptions()).table(), run_id, method),
        "operators": _from(operators(trace, OperatorOptions()).frame, run_id, method),
        "blocks": _from(blocks(trace, BlockOptions()).blocks, run_id, method),
    }


def conform(table: str, frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` with exactly the table's columns in order; a column it lacks is NULL."""
    cols = column_names(table)
    out = pd.DataFrame(
        {c: frame[c] if c in frame.columns else None for c in cols}, index=frame.index
    )
    for name, kind in TABLES[table]:
        if kind == "VARCHAR":
            out[name] = out[name].astype(object).where(out[name].notna(), None)
            out[name] = [None if v is None else str(v) for v in out[name]]
    return out.reset_index(drop=True)


def _from(frame: pd.DataFrame, run_id: str, method: str) -> pd.DataFrame:
    """An analyzer's table with the run and method in front; columns the schema lacks are
    dropped by :func:`conform`, generic ones (bucket key, label, backend) are kept as given."""
    out = frame.copy()
    out.insert(0, "method", method)
    out.insert(0, "run_id", run_id)
    if "backend" in out.columns:
        out["backend"] = out["backend"].fillna("")
    return out


def _sessions(iterations: pd.DataFrame) -> pd.DataFrame:
    g = iterations.groupby("session", sort=True)["run_model_ms"]
    out = pd.DataFrame(
        {
            "measured": g.size(),
            "mean_ms": g.mean(),
            "median_ms": g.median(),
            "min_ms": g.min(),
            "max_ms": g.max(),
            "std_ms": g.std(ddof=1).fillna(0.0),
        }
    ).reset_index()
    out.insert(0, "method", iterations["method"].iloc[0] if len(iterations) else "")
    out.insert(0, "run_id", iterations["run_id"].iloc[0] if len(iterations) else "")
    return out


def _timestamp(text: str) -> datetime | None:
    if not text:
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return None
    return when.astimezone(UTC).replace(tzinfo=None) if when.tzinfo else when
