"""History's inputs at store scale: every run's samples found by index, every run's
comparison described as a :class:`Pair`, and what moved computed from per-run sums.

One pass over the iterations table sorts it by run and method once (instead of one groupby
group per run), and one groupby over the bucket and operator tables sums each run's parts once
(instead of filtering the whole table for every significant change): the cost of history grows
with the number of runs, not with its square.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from etprof.analyzers.stats.significance import Method, contention_pct
from etprof.analyzers.stats.significance_batch import Pair

MOVED_SHARE_PCT = 10.0  # a bucket or operator named as moved carries at least this share
_SESSION_SPAN = 1 << 32  # labels a baseline session as (position in the window, session)

Samples = tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]


class SampleIndex:
    """Each (run_id, method)'s per-iteration run-model times and sessions, in stored order."""

    def __init__(self, iterations: pd.DataFrame) -> None:
        ms = iterations["run_model_ms"].to_numpy(np.float64)
        sessions = iterations["session"].to_numpy(np.int64)
        run_codes, runs = pd.factorize(iterations["run_id"], sort=False)
        method_codes, methods = pd.factorize(iterations["method"], sort=False)
        key = run_codes.astype(np.int64) * max(1, len(methods)) + method_codes
        order = np.argsort(key, kind="stable")  # stored order kept inside each run
        key = key[order]
        starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]]) if key.size else key[:0]
        ends = np.r_[starts[1:], key.size] if key.size else key[:0]
        self._ms, self._sessions = ms[order], sessions[order]
        self._slices: dict[tuple[str, str], tuple[int, int]] = {}
        n_methods = max(1, len(methods))
        for s, e in zip(starts.tolist(), ends.tolist(), strict=True):
            k = int(key[s])
            self._slices[(str(runs[k // n_methods]), str(methods[k % n_methods]))] = (s, e)

    def get(self, run_id: str, method: str) -> Samples | None:
        where = self._slices.get((run_id, method))
        if where is None:
            return None
        s, e = where
        return self._ms[s:e], self._sessions[s:e]


def pair(
    before: Sequence[Samples], after: Samples, shares: list[float | None], method: Method
) -> Pair:
    """The comparison history makes for one run: its baseline runs pooled, each of their
    sessions a session of the baseline (labelled by window position and session)."""
    a = np.concatenate([s[0] for s in before])
    sessions_a = np.concatenate([k * _SESSION_SPAN + s[1] for k, s in enumerate(before)])
    contention = round(contention_pct(*shares), 2)
    return Pair(
        a,
        after[0],
        Method(**{**method.__dict__, "contention_pct": contention}),
        _labels(sessions_a),
        _labels(after[1]),
    )


def _labels(sessions: npt.NDArray[np.int64]) -> npt.NDArray[np.int64] | None:
    """None for a side of one session: its one session's statistic is the side's, computed
    from the same values in the same order, so the comparison is the same, only cheaper."""
    return None if sessions.size == 0 or (sessions == sessions[0]).all() else sessions


@dataclass(frozen=True)
class Parts:
    """Each (run_id, method)'s bucket labels and operator names with their summed means."""

    buckets: dict[tuple[str, str], dict[str, float]]
    operators: dict[tuple[str, str], dict[str, float]]

    @classmethod
    def of(cls, buckets: pd.DataFrame, operators: pd.DataFrame, run_ids: set[str]) -> Parts:
        b = buckets[(buckets["bucket"] != "run_model") & buckets["run_id"].isin(run_ids)]
        b = b.assign(name=b["label"])
        o = operators[operators["run_id"].isin(run_ids)]
        o = o.assign(name=o["op"] + " (" + o["side"] + ")", mean_ms=o["per_iter_ms"])
        return cls(_sums(b), _sums(o))

    def moved(
        self, base_ids: Sequence[str], run_id: str, method: str, total_ms: float
    ) -> list[tuple[str, str]]:
        """The buckets and operators carrying >= 10% of the mean delta, in its direction."""
        parts: list[tuple[str, str]] = []
        if not total_ms:
            return parts
        for table in (self.buckets, self.operators):
            before: dict[str, float] = {}
            for b in base_ids:
                for name, v in table.get((b, method), {}).items():
                    before[name] = before.get(name, 0.0) + v
            after = table.get((run_id, method), {})
            n = max(1, len(base_ids))
            delta = {
                k: after.get(k, 0.0) - before.get(k, 0.0) / n for k in sorted({*after, *before})
            }
            share = {k: 100.0 * d / total_ms for k, d in delta.items()}
            main = sorted(
                (k for k, s in share.items() if s >= MOVED_SHARE_PCT), key=lambda k: -share[k]
            )
            parts += [(k, f"{k} {delta[k]:+.3f} ms ({share[k]:.0f}%)") for k in main]
        return sorted(parts, key=lambda p: -float(p[1].rsplit("(", 1)[1].rstrip("%)")))


def _sums(frame: pd.DataFrame) -> dict[tuple[str, str], dict[str, float]]:
    out: dict[tuple[str, str], dict[str, float]] = {}
    if frame.empty:
        return out
    sums = frame.groupby(["run_id", "method", "name"], sort=False)["mean_ms"].sum()
    for (run_id, method, name), value in sums.items():
        out.setdefault((str(run_id), str(method)), {})[str(name)] = float(value)
    return out


def iso_seconds(when: pd.Series) -> list[str]:
    """Each timestamp as ISO 8601 to the second ("" when missing)."""
    text = pd.to_datetime(when).dt.strftime("%Y-%m-%dT%H:%M:%S")
    return [t if isinstance(t, str) else "" for t in text]


def as_float(value: Any) -> float | None:
    return None if value is None or pd.isna(value) else float(value)
