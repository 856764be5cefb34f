"""Write tests/golden/sample_figures.json: the breakdown figures of every checked-in sample trace
(and tests/data/small_xnnpack.etdp read with its .pte).

Made once on main before the buckets schema v2 (commit 620d3c7) and checked in, so that
tests/unit/analyzers/test_sample_figures.py can show that schema v2 renamed fields without changing a figure.
Keys use the v1 names; the test maps them to v2. Run: python scripts/sample_figures.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def figures(result: Any) -> dict[str, Any]:
    d = result.to_dict()
    buckets = {r["bucket"]: r["mean_ms"] for r in d["buckets"]}
    operators = sorted([r["op"], r["side"], r["per_iter_ms"], r["count"]] for r in d["operators"])
    blocks = [
        [r["instruction"], r["call_ms"], r["compute_ms"], r["glue_ms"], r["overhead_ms"]]
        for r in d["blocks"]
    ]
    iterations = [
        [
            r[k]
            for k in (
                "iteration",
                "dropped",
                "run_model_ms",
                "xnnpack_ms",
                "delegate_ovh_ms",
                "portable_ms",
                "dispatch_ms",
                "runtime_ms",
            )
        ]
        for r in d["iterations"]["rows"]
    ]
    fb = d["fallback"]
    return {
        "run_model_mean_ms": d["run_model"]["mean_ms"],
        "buckets": buckets,
        "operators": operators,
        "blocks": blocks,
        "iterations": iterations,
        "fallback_ms": None if fb is None else fb["fallback_ms"],
        "fallback_causes": None
        if fb is None
        else sorted([c["cause"], c["class"], c["total_ms"]] for c in fb["causes"]),
        "explanation": None if fb is None else fb["explanation"],
    }


def main() -> int:
    from etprof import analyzers
    from etprof.analyzers.breakdown import BreakdownOptions
    from etprof.trace.loading import load_trace

    out: dict[str, Any] = {}
    for path in sorted((ROOT / "sample_traces").glob("*.etdp")):
        out[path.name] = figures(analyzers.run("breakdown", load_trace(path), BreakdownOptions()))
    small = ROOT / "tests" / "data" / "small_xnnpack.etdp"
    trace = load_trace(small, pte=small.with_suffix(".pte"))
    out[small.name] = figures(analyzers.run("breakdown", trace, BreakdownOptions()))
    target = ROOT / "tests" / "golden" / "sample_figures.json"
    target.write_text(json.dumps(out, indent=0, sort_keys=True) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
