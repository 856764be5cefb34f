"""History's verdicts kept with the runs, so each run is judged once (docs/store.md).

A stored run never changes (it is keyed by its trace's bytes), so a run's comparison is fixed by
the run, its baseline runs and the method: the window, noise band, statistic, seed and the
version of the judging code (:data:`JUDGE_VERSION`). `etprof history --db` stores each
comparison it makes in the store's ``verdicts`` table under that key and reads it back next
time instead of judging again; a run whose baseline changed (a run recorded earlier was stored
later), another method or a new judging version is judged afresh.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import pandas as pd

from etprof.analyzers.stats.significance import Comparison, Method
from etprof.analyzers.stats.significance_batch import JUDGE_VERSION

# the verdicts table: the key, then every field of the Comparison (DuckDB types)
COLUMNS: tuple[tuple[str, str], ...] = (
    ("run_id", "VARCHAR"),
    ("method", "VARCHAR"),
    ("baseline", "VARCHAR"),  # the baseline runs' full ids, comma-separated, in window order
    ("judge", "VARCHAR"),  # the judging method and code version (judge_key)
    ("n_a", "INTEGER"),
    ("n_b", "INTEGER"),
    ("mean_a_ms", "DOUBLE"),
    ("mean_b_ms", "DOUBLE"),
    ("median_a_ms", "DOUBLE"),
    ("median_b_ms", "DOUBLE"),
    ("delta_ms", "DOUBLE"),
    ("change_pct", "DOUBLE"),
    ("ci_low_pct", "DOUBLE"),
    ("ci_high_pct", "DOUBLE"),
    ("p_value", "DOUBLE"),
    ("verdict", "VARCHAR"),
    ("reason", "VARCHAR"),
    ("contention_pct", "DOUBLE"),
    ("sessions_a", "INTEGER"),
    ("sessions_b", "INTEGER"),
    ("session_ci_low_pct", "DOUBLE"),
    ("session_ci_high_pct", "DOUBLE"),
)
Key = tuple[str, str, str]  # run_id, method, baseline


def judge_key(method: Method, window: int) -> str:
    return (
        f"v{JUDGE_VERSION};window={window};noise={method.noise_pct!r};"
        f"statistic={method.statistic};seed={method.seed};resamples={method.resamples};"
        f"confidence={method.confidence!r};alpha={method.alpha!r}"
    )


def known(frame: pd.DataFrame | None, key: str, method: Method) -> dict[Key, Comparison]:
    """The stored comparisons made under `key`."""
    if frame is None or frame.empty:
        return {}
    rows = frame[frame["judge"] == key]
    out: dict[Key, Comparison] = {}
    for r in rows.itertuples(index=False):
        m = Method(**{**method.__dict__, "contention_pct": float(r.contention_pct)})
        out[(str(r.run_id), str(r.method), str(r.baseline))] = Comparison(
            n_a=int(r.n_a),
            n_b=int(r.n_b),
            mean_a_ms=_f(r.mean_a_ms),
            mean_b_ms=_f(r.mean_b_ms),
            median_a_ms=_f(r.median_a_ms),
            median_b_ms=_f(r.median_b_ms),
            delta_ms=_f(r.delta_ms),
            change_pct=_f(r.change_pct),
            ci_low_pct=_f(r.ci_low_pct),
            ci_high_pct=_f(r.ci_high_pct),
            p_value=_f(r.p_value),
            significant=str(r.verdict) != "no significant change",
            verdict=str(r.verdict),
            reason=str(r.reason or ""),
            method=m,
            sessions_a=int(r.sessions_a),
            sessions_b=int(r.sessions_b),
            session_ci_low_pct=_f(r.session_ci_low_pct),
            session_ci_high_pct=_f(r.session_ci_high_pct),
        )
    return out


def rows(keys: Sequence[Key], comparisons: Sequence[Comparison], key: str) -> pd.DataFrame:
    """The verdicts table's rows for comparisons just made."""
    out: dict[str, list[Any]] = {name: [] for name, _ in COLUMNS}
    for (run_id, method, baseline), c in zip(keys, comparisons, strict=True):
        values = {
            "run_id": run_id,
            "method": method,
            "baseline": baseline,
            "judge": key,
            "contention_pct": c.method.contention_pct,
        }
        for name, _ in COLUMNS:
            out[name].append(values[name] if name in values else getattr(c, name))
    return pd.DataFrame(out, columns=[name for name, _ in COLUMNS])


def _f(value: Any) -> float:
    return math.nan if value is None or pd.isna(value) else float(value)
