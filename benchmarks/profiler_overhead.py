"""What does ETDump profiling cost? Traced vs untraced run-model time, side by side.

    python benchmarks/profiler_overhead.py [--models mv2,mv3] [--variants xnnpack_fp32,xnnpack_q8]
        [--iters 60] [--warmup 10] [--sessions 3] [--work DIR]

For each model and variant (exported once into `etprof bench`'s cache), runs `etprof run`'s
sessions in this process (`etprof.record.runner.run_program`): every session loads the program with
ETDump and a second time without, and times each measured iteration on both, back to back,
taking turns which goes first (docs/memory.md). Prints per program the traced run model (what
the attribution explains), the untraced estimate, the mean wall time per call both ways, and the
overhead with its 95% interval. Portable variants are slow (mv2 portable: seconds per iteration)
and are only run when named. Not a test: its figures depend on how busy the machine is (the
load average is printed beside them).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from etprof import zoo
from etprof.analyzers.overhead import OverheadOptions, overhead
from etprof.jobs.bench import cache_entry, default_cache_dir, ensure_program
from etprof.record.request import RunRequest
from etprof.record.runner import run_program
from etprof.trace.loading import load_trace


def program(model: str, variant: str) -> Path:
    spec = zoo.parse(model)
    entry, material = cache_entry(default_cache_dir(), spec, variant)
    ensure_program(entry, material, spec, variant)
    return entry.pte


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="mv2,mv3")
    parser.add_argument("--variants", default="xnnpack_fp32,xnnpack_q8")
    parser.add_argument("--iters", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--sessions", type=int, default=3)
    parser.add_argument("--work", type=Path, default=Path("/tmp/etprof-overhead"))
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    head = (
        f"{'program':<28} {'traced ms':>10} {'untraced ms':>12} {'call traced':>12} "
        f"{'call untraced':>14} {'overhead':>9}  95% CI             load avg"
    )
    print(head)
    for model in args.models.split(","):
        for variant in args.variants.split(","):
            pte = program(model, variant)
            out = args.work / f"{model}_{variant}.etdp"
            run_program(
                RunRequest(
                    pte=pte,
                    out=out,
                    iters=args.iters,
                    warmup=args.warmup,
                    sessions=args.sessions,
                    spread_s=0.0,
                )
            )
            o = overhead(load_trace(out), OverheadOptions())
            f = o.figures()
            if f["overhead_pct"] is None:
                print(f"{model}_{variant:<22} no untraced timings recorded")
                continue
            print(
                f"{model + '_' + variant:<28} {f['run_model_traced_ms']:>10.3f} "
                f"{f['run_model_untraced_ms']:>12.3f} {f['call_traced_ms']:>12.3f} "
                f"{f['call_untraced_ms']:>14.3f} {f['overhead_pct']:>+8.1f}%  "
                f"{f['overhead_ci_low_pct']:+.1f}% .. {f['overhead_ci_high_pct']:+.1f}%"
                f"   {os.getloadavg()[0]:.2f}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
