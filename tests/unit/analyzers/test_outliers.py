"""Preempted iterations are not the program: a hand-built trace with a few iterations stretched by
milliseconds inside a delegate call (where a time slice lost to another process shows up) keeps
the bucket shares of the clean trace within 2 points, and says how many it set aside;
`--keep-outliers` counts them (analyzers/_outliers.py, docs/attribution.md)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from etprof import analyzers
from etprof.analyzers._outliers import far_out
from etprof.trace.loading import load_trace

from conftest import run_cli
from hand_traces import Call, execute_run, loading, method, write_trace

ITERS, WARMUP = 60, 10
PREEMPTED = {17: 8160, 33: 3750, 51: 5000}  # iteration -> µs stolen inside the delegate call
TABLE = method(
    "forward",
    [("delegate", "XnnpackBackend"), ("operator", "aten::add.out")],
    ("XnnpackBackend",),
)


def run_of(j: int, stolen: int = 0) -> list[Call]:
    """A delegate call of 40 µs (3 operators, 34 µs) and a portable add of 6 µs; the
    operators vary a little from run to run, as real ones do."""
    wobble = j % 3
    return [
        Call(
            0,
            40 + wobble + stolen,
            (
                ("Fully Connected (NC, F32) GEMM #1", 20 + wobble),
                ("Add (ND) #1", 8),
                ("Convert (NC) #1", 6),
            ),
        ),
        Call(1, 6, (("add.out", 5),), delegate=False),
    ]


def write(path: Path, preempted: dict[int, int]) -> Path:
    runs = [loading(1)]
    for j in range(ITERS):
        stolen = preempted.get(j, 0)
        runs.append(execute_run(run_of(j, stolen), 52 + j % 3 + stolen))
    return write_trace(path, runs, (TABLE,), warmup=WARMUP, iters=ITERS, model="hand")


def shares(path: Path, *flags: str) -> tuple[dict[str, float], list[str]]:
    result = run_cli("breakdown", path, "-f", "json", *flags)
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    return {r["bucket"]: r["share_pct"] for r in doc["buckets"]}, doc["notes"]


def test_preempted_iterations_are_set_aside_from_the_shares(tmp_path: Path) -> None:
    clean, clean_notes = shares(write(tmp_path / "clean.etdp", {}))
    dirty, notes = shares(write(tmp_path / "dirty.etdp", PREEMPTED))
    kept, kept_notes = shares(tmp_path / "dirty.etdp", "--keep-outliers")
    assert set(clean) == set(dirty)
    for bucket, pct in clean.items():
        assert abs(dirty[bucket] - pct) <= 2.0, (bucket, pct, dirty[bucket])
    # counted in, the stolen milliseconds are most of the run: the overhead dwarfs the rest
    assert kept["delegate_overhead"] - clean["delegate_overhead"] > 50
    aside = [n for n in notes if n.startswith("set aside from the shares as preempted")]
    assert len(aside) == 1 and "3 of 50" in aside[0] and "8.21 ms" in aside[0], notes
    assert not any("set aside" in n for n in clean_notes + kept_notes)


def test_means_stay_over_every_measured_iteration(tmp_path: Path) -> None:
    """Only the shares change: the traced means (what the samples' figures are) do not."""
    path = write(tmp_path / "dirty.etdp", PREEMPTED)
    a = analyzers.run("buckets", load_trace(path))
    from etprof.analyzers.buckets import BucketOptions

    b = analyzers.run("buckets", load_trace(path), BucketOptions(keep_outliers=True))
    assert a.table()["mean_ms"].tolist() == b.table()["mean_ms"].tolist()
    assert a.set_aside == 3 and b.set_aside == 0


def test_the_fence_is_the_sessions_own() -> None:
    """A session that is slower as a whole is not preempted; a far value within one is."""
    fast = np.r_[np.full(20, 1.0) + np.arange(20) * 0.01, 9.0]
    slow = np.r_[np.full(20, 3.0) + np.arange(20) * 0.01, 3.1]
    mask = far_out(np.r_[fast, slow], np.r_[np.zeros(21), np.ones(21)])
    assert mask.tolist() == [False] * 20 + [True] + [False] * 21
    assert not far_out([1.0, 9.0, 1.0]).any()  # too few to judge


@pytest.mark.parametrize("flag", ["--keep-outliers"])
def test_run_and_diff_take_the_flag(flag: str) -> None:
    for command in ("breakdown", "run", "diff"):
        assert flag in run_cli(command, "--help").stdout
