"""`history`: runs of each series over time, each judged against the runs before it.

A series is (model, variant, device, method). Runs are ordered by when they were recorded (``started``,
else when they were stored). Each run is compared with the ``window`` runs before it in its
series by :func:`etprof.analyzers.stats.significance.compare` on the stored per-iteration run-model times,
labelled by session: the same test, interval, noise band and contention widening as
`etprof diff` (docs/diff.md), so a window of 1 gives the verdict `etprof diff PREVIOUS THIS`
gives. Several baseline runs pool as sessions of one baseline.

For a significant change the buckets and operators that moved are named: those carrying at least
10% of the run-model mean delta in its direction (stored rows are per-run means, so these shares
are descriptive; the run-model verdict is the tested one).

Unlike the other analyzers it reads stored rows, not a trace (``inputs=0``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from etprof.analyzers import analyzer
from etprof.analyzers._history_cache import Key, judge_key, known
from etprof.analyzers._history_cache import rows as verdict_rows
from etprof.analyzers._history_pairs import (
    MOVED_SHARE_PCT,
    Parts,
    SampleIndex,
    as_float,
    iso_seconds,
    pair,
)
from etprof.analyzers.stats.gate import (
    DEFAULT_MIN_SESSIONS,
    INCONCLUSIVE,
    Gate,
    GateCheck,
    check_thresholds,
    judge,
)
from etprof.analyzers.stats.significance import NO_CHANGE, Comparison, Method, check_method
from etprof.analyzers.stats.significance_batch import Pair, compare_many
from etprof.errors import InputError
from etprof.result import records

__all__ = ["MOVED_SHARE_PCT", "History", "HistoryOptions", "Judge", "StoredRuns", "history"]
# makes the comparisons of `pairs`, in order; `series` numbers each pair's series
Judge = Callable[[Sequence[Pair], Sequence[int]], list[Comparison]]
SERIES = ("model", "variant", "device", "method")


@dataclass(frozen=True)
class HistoryOptions:
    model: str | None = None  # only this series model
    tags: tuple[tuple[str, str], ...] = ()  # only runs with every one of these tags
    window: int = 1  # previous runs of the series pooled as the baseline
    noise_pct: float = 1.0
    statistic: str = "mean"
    seed: int = 0
    # the CI gate on each series' latest run (etprof.analyzers.stats.gate), as `etprof diff` has it
    fail_if_slower: float | None = None
    fail_if_faster: float | None = None
    min_sessions: int = DEFAULT_MIN_SESSIONS

    def method(self) -> Method:
        return Method(noise_pct=self.noise_pct, statistic=self.statistic, seed=self.seed)

    def check(self) -> None:
        check_method(self.method())
        check_thresholds(self.fail_if_slower, self.fail_if_faster, self.min_sessions)
        if self.window < 1:
            raise InputError(f"--window {self.window} is less than 1", "use 1 or more")


@dataclass(frozen=True)
class StoredRuns:
    """The store's tables (etprof.store.schema), as read from DuckDB or Parquet."""

    tables: dict[str, pd.DataFrame]

    def __getitem__(self, name: str) -> pd.DataFrame:
        return self.tables[name]


@dataclass(frozen=True)
class History:
    runs: pd.DataFrame  # one row per run, in series and time order, with its verdict
    filters: dict[str, Any] = field(default_factory=dict)
    window: int = 1
    # for exports: the selected runs' stored rows (runs table) and their bucket rows
    stored_runs: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)
    stored_buckets: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)
    # the gate of each series' latest run, keyed by the series' label (empty: no threshold)
    gates: tuple[tuple[str, Gate], ...] = ()
    # the comparisons made by this call (not read from the store's verdicts): rows of the
    # verdicts table (analyzers/_history_cache.py), for the command to keep
    judged: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)

    @property
    def gate(self) -> Gate | None:
        """All series' gates as one: a fail anywhere fails, else an inconclusive one."""
        if not self.gates:
            return None
        return Gate(
            tuple(c for _, g in self.gates for c in g.checks), self.gates[0][1].min_sessions
        )

    schema = "etprof.history"

    def tables(self) -> dict[str, pd.DataFrame]:
        return {"history": self.runs.drop(columns=["moved_detail", "baseline_ms"])}

    def notes(self) -> list[str]:
        changed = self.runs[self.runs["verdict"].isin(["faster", "slower"])]
        out = [
            f"{_label(r)}: {r['verdict']} {r['change_pct']:+.1f}% against "
            f"{r['baseline']}" + (f"; moved: {r['moved_detail']}" if r["moved_detail"] else "")
            for _, r in changed.iterrows()
        ]
        series = self.runs.groupby(list(SERIES)).ngroups if len(self.runs) else 0
        for label, gate in self.gates:
            out.extend(f"gate: {label}: {c.sentence()}" for c in gate.checks)
        if self.gate is not None:
            out.append(f"gate: {self.gate.outcome} (exit code {self.gate.exit_code})")
        out.append(
            f"{len(self.runs)} run(s) in {series} series; each run compared with the "
            f"{self.window} run(s) before it in its series, as etprof diff compares "
            "(docs/diff.md)"
        )
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "filters": self.filters,
            "window": self.window,
            "runs": records(self.runs),
            "gate": None
            if self.gate is None
            else {
                **self.gate.to_dict(),
                "series": [{"series": label, **g.to_dict()} for label, g in self.gates],
            },
        }


@analyzer(
    "history",
    "runs of each series over time, significant changes and what moved",
    HistoryOptions,
    inputs=0,
)
def history(stored: StoredRuns, options: HistoryOptions, *, judge: Judge | None = None) -> History:
    """`judge` makes the comparisons (default: :func:`compare_many` in this process; `etprof
    history --cluster` passes one that judges whole series on Dask workers)."""
    options.check()
    selected = _select(stored, options)
    runs = selected.sort_values([*SERIES, "when", "stored_at", "run_id"], kind="stable")
    runs = runs.reset_index(drop=True)
    samples = SampleIndex(stored["iterations"])
    method = options.method()
    ids = runs["run_id"].astype(str).tolist()
    methods = runs["method"].astype(str).tolist()
    shares = [as_float(v) for v in runs["cpu_share_pct"]]
    series = runs.groupby(list(SERIES), sort=False).ngroup().to_numpy()
    first = np.r_[True, series[1:] != series[:-1]] if len(runs) else np.zeros(0, bool)
    start = np.maximum.accumulate(np.where(first, np.arange(len(runs)), 0))
    baselines: dict[int, list[int]] = {}
    missing: set[int] = set()
    pairs: list[Pair] = []
    key = judge_key(method, options.window)
    cached = known(stored.tables.get("verdicts"), key, method)
    comparisons: dict[int, Comparison] = {}
    to_judge: list[int] = []
    keys: list[Key] = []
    for i in np.flatnonzero(~first).tolist():
        base = list(range(max(int(start[i]), i - options.window), i))
        baselines[i] = base
        this = (ids[i], methods[i], ",".join(ids[k] for k in base))
        if this in cached:  # judged before, under the same method and code version
            comparisons[i] = cached[this]
            continue
        before = [samples.get(ids[k], methods[i]) for k in base]
        after = samples.get(ids[i], methods[i])
        if after is None or any(b is None for b in before):
            missing.add(i)
            continue
        to_judge.append(i)
        keys.append(this)
        pairs.append(
            pair(
                [b for b in before if b is not None],
                after,
                [shares[k] for k in base] + [shares[i]],
                method,
            )
        )
    made = (judge or _judge_here)(pairs, [int(series[i]) for i in to_judge])
    comparisons.update(zip(to_judge, made, strict=True))
    frame = _rows(
        runs,
        baselines,
        missing,
        comparisons,
        Parts.of(stored["buckets"], stored["operators"], set(ids)),
    )
    gates = []
    if options.fail_if_slower is not None or options.fail_if_faster is not None:
        last = np.r_[first[1:], True] if len(runs) else np.zeros(0, bool)
        for i in np.flatnonzero(last).tolist():
            gates.append((_label(frame.iloc[i]), _gate(comparisons.get(i), options)))
    filters = {"model": options.model, "tags": dict(options.tags)}
    bucket_rows = stored["buckets"][stored["buckets"]["run_id"].isin(set(ids))]
    return History(
        frame,
        filters,
        options.window,
        selected.reset_index(drop=True),
        bucket_rows.reset_index(drop=True),
        tuple(gates),
        verdict_rows(keys, made, key),
    )


def _judge_here(pairs: Sequence[Pair], series: Sequence[int]) -> list[Comparison]:
    return compare_many(pairs)


COLUMNS = [
    "model",
    "variant",
    "device",
    "method",
    "run",
    "when",
    "commit",
    "sessions",
    "measured",
    "mean_ms",
    "baseline",
    "baseline_ms",
    "change_pct",
    "ci_low_pct",
    "ci_high_pct",
    "p_value",
    "verdict",
    "moved",
    "moved_detail",
]


def _rows(
    runs: pd.DataFrame,
    baselines: dict[int, list[int]],
    missing: set[int],
    comparisons: dict[int, Comparison],
    parts: Parts,
) -> pd.DataFrame:
    """One row per run: its identity, then its comparison (NaN and "first run" for none)."""
    n = len(runs)
    ids = runs["run_id"].astype(str).tolist()
    out: dict[str, Any] = {k: runs[k].to_numpy() for k in SERIES}
    out["run"] = [r[:12] for r in ids]
    out["when"] = iso_seconds(runs["when"])
    out["commit"] = [c or "" for c in runs["commit"].where(runs["commit"].notna(), "")]
    out["sessions"] = runs["sessions"].astype(int).to_numpy()
    out["measured"] = runs["measured"].astype(int).to_numpy()
    out["mean_ms"] = runs["mean_ms"].astype(float).to_numpy()
    numbers = {
        k: np.full(n, math.nan)
        for k in ("baseline_ms", "change_pct", "ci_low_pct", "ci_high_pct", "p_value")
    }
    text = {k: [""] * n for k in ("baseline", "moved", "moved_detail")}
    verdict = ["first run"] * n
    for i in missing:
        verdict[i] = "no iterations stored"
    for i, c in comparisons.items():
        base = [ids[k] for k in baselines[i]]
        text["baseline"][i] = ", ".join(r[:12] for r in base)
        for key, value in (
            ("baseline_ms", c.mean_a_ms),
            ("change_pct", c.change_pct),
            ("ci_low_pct", c.ci_low_pct),
            ("ci_high_pct", c.ci_high_pct),
            ("p_value", c.p_value),
        ):
            numbers[key][i] = value
        verdict[i] = c.verdict
        if c.verdict != NO_CHANGE:
            moved = parts.moved(base, ids[i], str(out["method"][i]), c.mean_delta_ms)
            text["moved"][i] = ", ".join(name for name, _ in moved[:3])
            text["moved_detail"][i] = ", ".join(t for _, t in moved)
    out.update(
        baseline=text["baseline"],
        **numbers,
        verdict=verdict,
        moved=text["moved"],
        moved_detail=text["moved_detail"],
    )
    return pd.DataFrame({k: out[k] for k in COLUMNS}, columns=COLUMNS)


def _gate(c: Comparison | None, options: HistoryOptions) -> Gate:
    if c is not None:
        gate = judge(
            c,
            slower=options.fail_if_slower,
            faster=options.fail_if_faster,
            min_sessions=options.min_sessions,
        )
        assert gate is not None
        return gate
    checks = tuple(
        GateCheck(d, t, INCONCLUSIVE, "no earlier run of the series to compare with")
        for d, t in (("slower", options.fail_if_slower), ("faster", options.fail_if_faster))
        if t is not None
    )
    return Gate(checks, options.min_sessions)


def _select(stored: StoredRuns, options: HistoryOptions) -> pd.DataFrame:
    runs = stored["runs"].copy()
    if options.model is not None:
        runs = runs[runs["model"] == options.model]
    tags = stored["tags"]
    for key, value in options.tags:
        ids = set(tags.loc[(tags["key"] == key) & (tags["value"] == value), "run_id"])
        runs = runs[runs["run_id"].isin(ids)]
    runs["when"] = runs["started"].where(runs["started"].notna(), runs["stored_at"])
    return runs


def _label(row: pd.Series) -> str:
    variant = f" {row['variant']}" if row["variant"] else ""
    commit = f" @{row['commit']}" if row["commit"] else ""
    method = f" ({row['method']})" if row["method"] != "forward" else ""
    return f"{row['model']}{variant}{method} on {row['device']}: run {row['run']}{commit}"
