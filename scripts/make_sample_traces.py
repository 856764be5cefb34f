"""Regenerate sample_traces/: real 60-iteration traces of mv2 and mv3 in the four variants.

    python scripts/make_sample_traces.py [--models mv2 mv3] [--variants ...] [--work DIR]

Exports each program (ETRecord beside it) into the work folder, profiles it with `etprof run`'s
library (seed methodology: 60 iterations, 10 dropped, 1 thread), and copies the trace and its
metadata into sample_traces/. The .pte and ETRecord stay in the work folder: the samples must be
analysable without them. Slow: the portable variants run the whole model on portable kernels.
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import sys
import time
from pathlib import Path

from etprof.record.request import RunRequest
from etprof.record.runner import run_program
from etprof.trace.sidecar import TraceMeta, sidecar_path
from etprof.zoo.export import STANDARD_VARIANTS, export_model, output_paths

ROOT = Path(__file__).resolve().parent.parent
MAX_BYTES = 3 * 1024 * 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["mv2", "mv3"])
    parser.add_argument("--variants", nargs="+", default=list(STANDARD_VARIANTS))
    parser.add_argument("--work", type=Path, default=Path("/tmp/etprof-samples"))
    parser.add_argument("--out", type=Path, default=ROOT / "sample_traces")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    args.out.mkdir(parents=True, exist_ok=True)
    for model in args.models:
        for variant in args.variants:
            options = STANDARD_VARIANTS[variant]
            pte, _ = output_paths(args.work, model, options)
            if not pte.is_file():
                t0 = time.perf_counter()
                export_model(model, options, args.work)
                print(f"exported {pte.name} in {time.perf_counter() - t0:.0f} s", flush=True)
            trace = args.work / f"{pte.stem}.etdp"
            t0 = time.perf_counter()
            meta = run_program(RunRequest(pte=pte, out=trace))
            print(f"ran {pte.name} in {time.perf_counter() - t0:.0f} s", flush=True)
            # Record the program by name only: the work folder is not part of the sample.
            program = dataclasses.replace(
                meta.program,
                path=pte.name,
                etrecord=Path(meta.program.etrecord).name if meta.program.etrecord else "",
            )
            meta = dataclasses.replace(meta, program=program)
            dest = args.out / trace.name
            shutil.copy(trace, dest)
            sidecar_path(dest).write_text(meta.to_json(), encoding="utf-8")
            size = dest.stat().st_size
            print(f"  {dest}: {size / 1e6:.2f} MB", flush=True)
            if size > MAX_BYTES:
                print(f"  warning: {dest.name} is over {MAX_BYTES / 1e6:.0f} MB", file=sys.stderr)
            assert TraceMeta.from_json(sidecar_path(dest).read_text()).run.iters == 60
    return 0


if __name__ == "__main__":
    sys.exit(main())
