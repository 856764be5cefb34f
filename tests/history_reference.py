"""REFERENCE ONLY: etprof's history analyzer as it was before it was vectorised (commit aa83642,
analyzers/history.py; imports as moved by the house commits), kept verbatim but for this paragraph and the registration (it is a plain
function here, not a registered analyzer), so tests/test_store_scale.py can check that the
vectorised history gives the same verdicts.

`history`: runs of each series over time, each judged against the runs before it.

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
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from etprof.analyzers.stats.gate import (
    DEFAULT_MIN_SESSIONS,
    INCONCLUSIVE,
    Gate,
    GateCheck,
    check_thresholds,
    judge,
)
from etprof.analyzers.stats.significance import (
    NO_CHANGE,
    Comparison,
    Method,
    check_method,
    compare,
    contention_pct,
)
from etprof.errors import InputError
from etprof.result import records

MOVED_SHARE_PCT = 10.0  # a bucket or operator named as moved carries at least this share
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


def history(stored: StoredRuns, options: HistoryOptions) -> History:
    options.check()
    runs = _select(stored, options)
    its = stored["iterations"]
    samples = {
        (str(k[0]), str(k[1])): (
            f["run_model_ms"].to_numpy(np.float64),
            f["session"].to_numpy(np.int64),
        )
        for k, f in its.groupby(["run_id", "method"], sort=False)
    }
    rows = []
    gates = []
    for _, series in runs.groupby(list(SERIES), sort=True):
        series = series.sort_values(["when", "stored_at", "run_id"])
        latest: Comparison | None = None
        for i in range(len(series)):
            row, latest = _judge(stored, samples, series, i, options)
            rows.append(row)
        if options.fail_if_slower is not None or options.fail_if_faster is not None:
            gates.append((_label(pd.Series(rows[-1])), _gate(latest, options)))
    columns = [
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
    frame = pd.DataFrame(rows, columns=columns)
    filters = {"model": options.model, "tags": dict(options.tags)}
    bucket_rows = stored["buckets"][stored["buckets"]["run_id"].isin(set(runs["run_id"]))]
    return History(
        frame,
        filters,
        options.window,
        runs.reset_index(drop=True),
        bucket_rows.reset_index(drop=True),
        tuple(gates),
    )


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


Samples = dict[tuple[str, str], tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]]


def _judge(
    stored: StoredRuns, samples: Samples, series: pd.DataFrame, i: int, options: HistoryOptions
) -> tuple[dict[str, Any], Comparison | None]:
    run = series.iloc[i]
    row: dict[str, Any] = {k: run[k] for k in SERIES}
    row.update(
        run=str(run["run_id"])[:12],
        when=_iso(run["when"]),
        commit=run["commit"] or "",
        sessions=int(run["sessions"]),
        measured=int(run["measured"]),
        mean_ms=float(run["mean_ms"]),
        baseline="",
        baseline_ms=math.nan,
        change_pct=math.nan,
        ci_low_pct=math.nan,
        ci_high_pct=math.nan,
        p_value=math.nan,
        verdict="first run",
        moved="",
        moved_detail="",
    )
    if i == 0:
        return row, None
    base = series.iloc[max(0, i - options.window) : i]
    method_name = str(run["method"])
    before = [(str(r), samples.get((str(r), method_name))) for r in base["run_id"]]
    after = samples.get((str(run["run_id"]), method_name))
    if after is None or any(s is None for _, s in before):
        row["verdict"] = "no iterations stored"
        return row, None
    a_ms = np.concatenate([s[0] for _, s in before if s is not None])
    a_sessions = np.concatenate(
        [np.char.add(f"{r}:", s[1].astype(str)) for r, s in before if s is not None]
    )
    shares = [
        None if pd.isna(s) else float(s) for s in [*base["cpu_share_pct"], run["cpu_share_pct"]]
    ]
    method = options.method()
    method = Method(**{**method.__dict__, "contention_pct": round(contention_pct(*shares), 2)})
    c = compare(a_ms, after[0], method, sessions_a=a_sessions, sessions_b=after[1])
    row.update(
        baseline=", ".join(str(r)[:12] for r in base["run_id"]),
        baseline_ms=c.mean_a_ms,
        change_pct=c.change_pct,
        ci_low_pct=c.ci_low_pct,
        ci_high_pct=c.ci_high_pct,
        p_value=c.p_value,
        verdict=c.verdict,
    )
    if c.verdict != NO_CHANGE:
        moved = _moved(
            stored, list(base["run_id"]), str(run["run_id"]), str(run["method"]), c.mean_delta_ms
        )
        row["moved"] = ", ".join(name for name, _ in moved[:3])
        row["moved_detail"] = ", ".join(text for _, text in moved)
    return row, c


def _moved(
    stored: StoredRuns, base_ids: list[str], run_id: str, method: str, total_ms: float
) -> list[tuple[str, str]]:
    """The buckets and operators carrying >= 10% of the mean delta, in its direction."""
    buckets = stored["buckets"]
    buckets = buckets[(buckets["bucket"] != "run_model") & (buckets["method"] == method)]
    buckets = buckets.assign(name=lambda f: f["label"])
    ops = stored["operators"]
    ops = ops[ops["method"] == method].assign(
        name=lambda f: f["op"] + " (" + f["side"] + ")", mean_ms=lambda f: f["per_iter_ms"]
    )
    parts: list[tuple[str, str]] = []
    for frame in (buckets, ops):
        before = frame[frame["run_id"].isin(base_ids)].groupby("name")["mean_ms"].sum() / max(
            1, len(base_ids)
        )
        after = frame[frame["run_id"] == run_id].groupby("name")["mean_ms"].sum()
        delta = after.sub(before, fill_value=0.0)
        if not total_ms:
            continue
        share = 100.0 * delta / total_ms
        main = share[share >= MOVED_SHARE_PCT].sort_values(ascending=False)
        parts += [(str(k), f"{k} {delta[k]:+.3f} ms ({share[k]:.0f}%)") for k in main.index]
    return sorted(parts, key=lambda p: -float(p[1].rsplit("(", 1)[1].rstrip("%)")))


def _iso(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)) or pd.isna(value):
        return ""
    return str(pd.Timestamp(value).isoformat(timespec="seconds"))


def _label(row: pd.Series) -> str:
    variant = f" {row['variant']}" if row["variant"] else ""
    commit = f" @{row['commit']}" if row["commit"] else ""
    method = f" ({row['method']})" if row["method"] != "forward" else ""
    return f"{row['model']}{variant}{method} on {row['device']}: run {row['run']}{commit}"
