"""ExecuTorch's benchmark database rows (the "v3" JSON its benchmark infrastructure uploads):
a list of records ``{benchmark, model, metric, runners}``, one per run and metric.

The record layout follows ExecuTorch's ``.github/scripts/extract_benchmark_results.py``
(``transform``): ``benchmark {name, mode, extra_info}``, ``model {name, type, backend}``,
``metric {name, benchmark_values, target_value, extra_info {method}}``, ``runners [{name, type,
avail_mem_in_gb, total_mem_in_gb}]``. Run-model latency is ExecuTorch's own metric name,
``avg_inference_latency(ms)``; each breakdown bucket adds ``etprof_<bucket>(ms)``, the per-part
data ExecuTorch's rows lack. Only a history (``etprof history``) can be written this way.
"""

from __future__ import annotations

import json
import math
from typing import Any

from etprof.errors import InputError
from etprof.result import Result

LATENCY = "avg_inference_latency(ms)"


def render(result: Result, *, width: int = 100, table: str | None = None) -> str:
    from etprof.analyzers.history import History

    if not isinstance(result, History):
        raise InputError(
            f"--format executorch-v3 writes stored runs, not {result.schema}",
            "use etprof history --format executorch-v3",
        )
    return json.dumps(records(result), indent=1) + "\n"


def records(result: Any) -> list[dict[str, Any]]:
    runs, buckets = result.stored_runs, result.stored_buckets
    judged = result.runs.set_index(["run", "method"])
    out = []
    for _, run in runs.iterrows():
        rid = str(run["run_id"])
        key = (rid[:12], run["method"])
        verdict = judged.loc[key] if key in judged.index else None
        metrics = [(LATENCY, float(run["mean_ms"]))]
        rows = buckets[
            (buckets["run_id"] == rid)
            & (buckets["method"] == run["method"])
            & (buckets["bucket"] != "run_model")
        ]
        metrics += [
            (f"etprof_{b}(ms)", float(v))
            for b, v in zip(rows["bucket"], rows["mean_ms"], strict=False)
        ]
        extra = {
            "app_type": "etprof",
            "run_id": rid,
            "commit": run["commit"] or "",
            "program_sha256": run["program_sha256"] or "",
            "sessions": int(run["sessions"]),
            "measured_iterations": int(run["measured"]),
            "executorch_version": run["executorch_version"] or "",
            "etprof_version": run["etprof_version"] or "",
            "verdict": "" if verdict is None else str(verdict["verdict"]),
            "change_pct": None if verdict is None else _num(verdict["change_pct"]),
        }
        for name, value in metrics:
            out.append(
                {
                    "benchmark": {"name": "ExecuTorch", "mode": "inference", "extra_info": extra},
                    "model": {
                        "name": run["model"],
                        "type": "OSS model",
                        "backend": run["variant"] or run["backends"] or "",
                    },
                    "metric": {
                        "name": name,
                        "benchmark_values": [value],
                        "target_value": 0,
                        "extra_info": {"method": run["method"] or ""},
                    },
                    "runners": [
                        {
                            "name": run["device"],
                            "type": run["host_platform"] or "",
                            "avail_mem_in_gb": "",
                            "total_mem_in_gb": "",
                        }
                    ],
                }
            )
    return out


def _num(value: Any) -> float | None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None
