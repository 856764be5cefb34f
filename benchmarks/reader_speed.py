"""Benchmark: `etprof breakdown` with the fast reader against ExecuTorch's Inspector engine.

Makes (once, cached under --workdir, outside the repo) a 1000-iteration trace of MobileNetV3
quantized with the quant-only partitioner -- about 480,000 events and 35 MB -- and a 60-iteration
one, then runs `etprof breakdown` on each with `--engine fast` and `--engine inspector` in fresh
processes, side by side, and prints whole-process wall time, CPU time and peak RSS (from the
child's own rusage), their ratios, and whether both engines printed the same JSON document. A
"load only" row times a process that only loads the trace (imports included): the reader's part.

    python benchmarks/reader_speed.py [--workdir DIR] [--pte mv3_xnnpack_q8_quantonly.pte]

Goals (issue 5): on the 480k-event trace the fast engine is at least 30x faster than the
Inspector, within 1.5 s wall and 300 MB peak RSS; on a 60-iteration trace within 1 s wall. The
machine is shared: the load average is printed with the figures, and CPU time is shown because
wall time grows with other people's work while CPU time mostly does not.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STEM = "mv3_xnnpack_q8_quantonly"
GOAL_RATIO, GOAL_WALL_BIG, GOAL_RSS_MB, GOAL_WALL_SMALL = 30.0, 1.5, 300.0, 1.0

# The reader's share: a process that only loads the trace into etprof's event table.
LOAD_ONLY = """
import sys
from etprof.trace.loading import load_trace
print(len(load_trace(sys.argv[1], engine=sys.argv[2]).events))
"""


@dataclass(frozen=True)
class Measure:
    wall: float  # seconds, whole process
    cpu: float  # user + system seconds of the child
    rss_mb: float  # peak resident set size of the child
    stdout: str


def etprof(*args: str) -> list[str]:
    return [sys.executable, "-m", "etprof.cli", *args]


def run_checked(cmd: list[str], what: str) -> None:
    print(f"[{what}] {' '.join(cmd)}", file=sys.stderr, flush=True)
    proc = subprocess.run(
        cmd, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    if proc.returncode != 0:
        sys.exit(f"{what} failed:\n{proc.stderr}")


def measure_rusage(cmd: list[str]) -> Measure:
    """Run `cmd` once: wall clock around the child; CPU and peak RSS from the child's own
    rusage (os.wait4), so no other child of this process is counted."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            err.seek(0)
            sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{err.read()}")
        out.seek(0)
        rss_mb = usage.ru_maxrss / (2**20 if sys.platform == "darwin" else 2**10)
        return Measure(wall, usage.ru_utime + usage.ru_stime, rss_mb, out.read())


def byte_compile() -> None:
    """Compile etprof's modules as `pip install` of a wheel does. An editable install under
    PYTHONDONTWRITEBYTECODE=1 (set on this machine) would otherwise recompile them in every
    process, ~60 ms that no installed user pays."""
    import compileall

    for folder in (ROOT / "src" / "etprof", ROOT / "analyzers"):
        compileall.compile_dir(folder, quiet=1)


def breakdown_cmd(trace: Path, engine: str, load_only: bool = False) -> list[str]:
    if load_only:
        return [sys.executable, "-c", LOAD_ONLY, str(trace), engine]
    return etprof("breakdown", str(trace), "--engine", engine, "--format", "json")


def find_pte(args: argparse.Namespace) -> Path:
    if args.pte is not None:
        if not args.pte.is_file():
            sys.exit(f"no such program: {args.pte}")
        return args.pte
    for candidate in (
        args.workdir / f"{STEM}.pte",
        ROOT / "artifacts" / f"{STEM}.pte",
        Path("/work/artifacts") / f"{STEM}.pte",
    ):
        if candidate.is_file():
            return candidate
    run_checked(
        etprof(
            "export", "mv3", "--quantize", "--partitioner", "quant-only", "-o", str(args.workdir)
        ),
        "export",
    )
    return args.workdir / f"{STEM}.pte"


def trace_of(pte: Path, iters: int, workdir: Path) -> Path:
    out = workdir / f"{STEM}_{iters}.etdp"
    if not out.is_file():
        run_checked(
            etprof("run", str(pte), "--iters", str(iters), "--out", str(out)),
            f"record {iters} iterations",
        )
    return out


def sample_trace(pte: Path, workdir: Path) -> Path:
    checked_in = ROOT / "sample_traces" / f"{STEM}.etdp"
    return checked_in if checked_in.is_file() else trace_of(pte, 60, workdir)


def bench(trace: Path, engine: str, repeat: int, load_only: bool = False) -> list[Measure]:
    runs = []
    for i in range(repeat):
        print(f"[{trace.name}] {engine} run {i + 1}/{repeat}", file=sys.stderr, flush=True)
        runs.append(measure_rusage(breakdown_cmd(trace, engine, load_only)))
    return runs


def best(runs: list[Measure]) -> Measure:
    return min(runs, key=lambda m: m.wall)


def row(label: str, engine: str, runs: list[Measure]) -> str:
    b = best(runs)
    median = statistics.median(m.wall for m in runs)
    return (
        f"{label:<36} {engine:<10} {b.wall:>9.2f} {median:>9.2f} {b.cpu:>8.2f} "
        f"{max(m.rss_mb for m in runs):>9.0f} {len(runs):>4}"
    )


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    parser.add_argument(
        "--workdir",
        type=Path,
        default=cache / "etprof" / "reader_speed",
        help="where the program and traces are made and kept (default: %(default)s)",
    )
    parser.add_argument(
        "--pte",
        type=Path,
        help=f"the {STEM}.pte to record (default: found in "
        "--workdir or artifacts/, else exported there)",
    )
    parser.add_argument("--iters", type=int, default=1000, help="iterations of the large trace")
    parser.add_argument("--repeat", type=int, default=3, help="runs per fast measurement")
    parser.add_argument(
        "--inspector-repeat",
        type=int,
        default=1,
        help="runs per Inspector measurement (each takes tens of seconds)",
    )
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)

    pte = find_pte(args)
    big = trace_of(pte, args.iters, args.workdir)
    small = sample_trace(pte, args.workdir)
    byte_compile()
    command = "etprof breakdown --format json"

    results: dict[tuple[str, str], list[Measure]] = {}
    for trace in (big, small):
        results[(trace.name, "fast")] = bench(trace, "fast", args.repeat)
        results[(trace.name, "inspector")] = bench(trace, "inspector", args.inspector_repeat)
    load_only = {
        trace.name: bench(trace, "fast", args.repeat, load_only=True) for trace in (big, small)
    }
    help_runs = [measure_rusage(etprof("--help")) for _ in range(args.repeat)]

    from etprof.trace.etdump.reader import read_dump

    print(
        f"\ncommand: {command}; load average {os.getloadavg()[0]:.1f} on "
        f"{os.cpu_count()} cores (a busy machine inflates wall time, not CPU time)"
    )
    print(
        f"{'trace':<36} {'engine':<10} {'best wall':>9} {'median':>9} {'cpu s':>8} "
        f"{'peak MB':>9} {'runs':>4}"
    )
    for trace in (big, small):
        for engine in ("fast", "inspector"):
            print(row(trace.name, engine, results[(trace.name, engine)]))
        print(row(trace.name, "load only", load_only[trace.name]))
    print(row("etprof --help", "", help_runs))

    print()
    for trace in (big, small):
        fast, insp = best(results[(trace.name, "fast")]), best(results[(trace.name, "inspector")])
        raw = read_dump(trace)
        same = fast.stdout == insp.stdout
        print(
            f"{trace.name}: {raw.run.size:,} events, {trace.stat().st_size / 2**20:.1f} MiB; "
            f"inspector/fast wall {insp.wall / fast.wall:.1f}x, cpu {insp.cpu / fast.cpu:.1f}x, "
            f"peak RSS {insp.rss_mb / fast.rss_mb:.1f}x; identical output: "
            f"{'yes' if same else 'NO'}"
        )
    fast_big, insp_big = best(results[(big.name, "fast")]), best(results[(big.name, "inspector")])
    fast_small = best(results[(small.name, "fast")])
    print(
        f"\ngoal >= {GOAL_RATIO:.0f}x faster than the Inspector on {big.name}: "
        f"{verdict(insp_big.wall / fast_big.wall >= GOAL_RATIO)}"
    )
    print(
        f"goal <= {GOAL_WALL_BIG} s wall on {big.name}: {verdict(fast_big.wall <= GOAL_WALL_BIG)}"
        f" (cpu {fast_big.cpu:.2f} s)"
    )
    print(
        f"goal <= {GOAL_RSS_MB:.0f} MB peak RSS on {big.name}: "
        f"{verdict(fast_big.rss_mb <= GOAL_RSS_MB)}"
    )
    print(
        f"goal <= {GOAL_WALL_SMALL} s wall on {small.name}: "
        f"{verdict(fast_small.wall <= GOAL_WALL_SMALL)} (cpu {fast_small.cpu:.2f} s)"
    )


if __name__ == "__main__":
    main()
