"""How often does `etprof diff` call two fresh runs of the same program different?

    python benchmarks/diff_false_alarm.py MODEL.pte [--pairs 20] [--iters 60] [--warmup 10]
        [--sessions auto] [--noise 1.0] [--work DIR] [--reuse] [--processes] [--interleave]

Runs the program 2 x pairs times (the seed's methodology: ITERS iterations, WARMUP dropped, 1
thread, in SESSIONS sessions as `etprof run` does by default), diffs run 2k+1 against run 2k with
the default options, and prints each pair's verdict and the false-alarm rate (pairs not called "no
significant change") with its 95% interval; the target is at most 5%. With --processes every run
is a fresh `etprof run` process, as a user makes two traces; without, the runs share this process
(`etprof.record.runner.run_program`), which is faster. Not a test: it takes minutes and its answer
depends on how busy the machine is.

With --interleave each pair is recorded by one `etprof run A.pte B.pte` (two copies of the
program taking turns session by session) instead of two runs one after the other.

Side by side on the same traces it also judges each pair as if it had been recorded in one
session (the first session of each trace, the `--sessions 1` of before), so the output shows what
the sessions buy.

The traces stay in --work, so the same pairs are then re-judged under other settings side by side
(median instead of mean, wider noise bands), and the script prints the smallest noise band that
would have kept this machine's false alarms at or under 5%: the honest input to choosing --noise.
"""

from __future__ import annotations

import argparse
import math
import shutil
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from etprof.analyzers.diff import DiffOptions, diff_traces
from etprof.analyzers.runmodel import run_model_samples
from etprof.analyzers.stats.significance import NO_CHANGE, Comparison, Method, compare
from etprof.commands.run import parse_sessions
from etprof.record.request import RunRequest
from etprof.record.runner import run_program, run_programs
from etprof.trace.loading import load_trace

TARGET_PCT = 5.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pte", type=Path)
    parser.add_argument("--pairs", type=int, default=20)
    parser.add_argument("--iters", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--sessions", default="auto", help="as `etprof run --sessions`")
    parser.add_argument("--spread", type=float, default=10.0, help="as `etprof run --spread`")
    parser.add_argument("--noise", type=float, default=DiffOptions.noise_pct)
    parser.add_argument("--work", type=Path, default=Path("/tmp/etprof-false-alarm"))
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="re-judge traces already in --work instead of running again",
    )
    parser.add_argument(
        "--processes",
        action="store_true",
        help="record each trace with a fresh `etprof run` process",
    )
    parser.add_argument(
        "--interleave",
        action="store_true",
        help="record each pair in one run, the two copies taking turns",
    )
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    options = DiffOptions(noise_pct=args.noise)
    # A copy without the ETRecord beside it: module paths do not change timing, and attaching a
    # 40 MB ETRecord to every run would only make the benchmark slower.
    pte = args.work / args.pte.name
    if pte.resolve() != args.pte.resolve():
        shutil.copyfile(args.pte, pte)

    pairs = []  # run-model samples (ms) of each pair
    labels = []  # the session of each sample
    flagged = []  # did the diff warn that the machine was busy?
    methods = []
    started = time.perf_counter()
    for i in range(args.pairs):
        paths = [args.work / f"{args.pte.stem}_pair{i:02d}_{side}.etdp" for side in "ab"]
        if args.interleave:
            if not (args.reuse and all(p.is_file() for p in paths)):
                record_pair(pte, paths, args)
        else:
            for path in paths:
                if not (args.reuse and path.is_file()):
                    record(pte, path, args)
        a, b = (load_trace(p) for p in paths)
        result = diff_traces(a, b, options)  # the real pipeline, as `etprof diff` runs it
        rms = [run_model_samples(t.measured()) for t in (a, b)]
        pairs.append(tuple(rm.to_numpy() / 1e6 for rm in rms))
        labels.append(
            tuple(t.session_of(rm.index.to_numpy()) for t, rm in zip((a, b), rms, strict=False))
        )
        methods.append(result.comparison.method)  # with this pair's CPU-contention widening
        flagged.append(any("machine was busy" in w for w in result.warnings))
        print(
            f"pair {i + 1:2d}/{args.pairs}: {_line(result.comparison)}"
            f"{'  [busy]' if flagged[-1] else ''}",
            flush=True,
        )
    elapsed = time.perf_counter() - started

    # Re-judged with the same function diff_traces uses, on the same samples.
    judged = [
        _judge(a, b, m, la, lb) for (a, b), m, (la, lb) in zip(pairs, methods, labels, strict=False)
    ]
    rate = _rate(judged)
    alarms = [c.verdict != NO_CHANGE for c in judged]
    sessions = sorted({c.sessions_a for c in judged} | {c.sessions_b for c in judged})
    print()
    how = "interleaved pairs" if args.interleave else "pairs"
    print(
        f"{args.pte.name}: {len(pairs)} {how} of runs of {'/'.join(map(str, sessions))} "
        f"session(s) x {args.iters} iterations ({args.warmup} of each dropped), "
        f"{elapsed:.0f} s"
    )
    low, high = wilson(sum(alarms), len(judged))
    print(
        f"false-alarm rate (default options, noise +/-{args.noise:g}%, mean, sessions and "
        f"block bootstrap): {rate:.0f}% ({sum(alarms)} of {len(judged)}; 95% interval "
        f"{low:.0f}% .. {high:.0f}%); target <= {TARGET_PCT:g}%: "
        f"{'met' if rate <= TARGET_PCT else 'NOT met'}"
    )
    single = [
        compare(*(_first_session(x, lab) for x, lab in ((a, la), (b, lb))), m)
        for (a, b), m, (la, lb) in zip(pairs, methods, labels, strict=False)
    ]
    hits = sum(c.verdict != NO_CHANGE for c in single)
    low1, high1 = wilson(hits, len(single))
    print(
        f"the same pairs judged on their first session only (as one-session runs): "
        f"{_rate(single):.0f}% ({hits} of {len(single)}; 95% interval {low1:.0f}% .. "
        f"{high1:.0f}%)"
    )
    powers = [
        c.session_ci_high_pct - c.session_ci_low_pct
        for c in judged
        if math.isfinite(c.session_ci_low_pct)
    ]
    if powers:
        powers.sort()
        print(
            f"width of the between-session interval: median {powers[len(powers) // 2]:.1f} "
            f"points, max {powers[-1]:.1f} (the smallest change it can call is about half "
            "that plus the band)"
        )
    widened = sum(m.contention_pct > 0 for m in methods)
    print(f"pairs whose band was widened for CPU contention: {widened} of {len(methods)}")
    print(
        f"pairs with the busy-machine warning: {sum(flagged)} of {len(flagged)}; "
        f"false alarms among them: {sum(a and f for a, f in zip(alarms, flagged, strict=False))} of "
        f"{sum(alarms)}"
    )

    print()
    print("the same pairs under other settings:")
    print(f"  {'statistic':<9} {'noise':>7} {'blocks':>8} {'iterations':>11}   (resampling)")
    for stat in ("mean", "median"):
        for noise in sorted({args.noise, 1.0, 2.0, 3.0, 5.0}):
            rates = [
                _rate(
                    [
                        _judge(
                            a,
                            b,
                            replace(m, statistic=stat, noise_pct=noise, resampling=how),
                            la,
                            lb,
                        )
                        for (a, b), m, (la, lb) in zip(pairs, methods, labels, strict=False)
                    ]
                )
                for how in ("blocks", "iterations")
            ]
            print(f"  {stat:<9} {noise:>6g}% {rates[0]:>7.0f}% {rates[1]:>10.0f}%")
    for stat in ("mean", "median"):
        needed = _band_needed(
            [
                _judge(a, b, replace(m, statistic=stat, contention_pct=0.0), la, lb)
                for (a, b), m, (la, lb) in zip(pairs, methods, labels, strict=False)
            ]
        )
        print(
            f"smallest noise band with <= {TARGET_PCT:g}% false alarms ({stat}, without "
            f"contention widening): just over +/-{needed:.1f}%"
        )
    changes = sorted(abs(c.change_pct) for c in judged)
    print(
        f"|mean change| between same-program runs: median {changes[len(changes) // 2]:.1f}%, "
        f"max {changes[-1]:.1f}%"
    )
    return 0


def _judge(a: Any, b: Any, method: Method, la: Any, lb: Any) -> Comparison:
    return compare(a, b, method, sessions_a=la, sessions_b=lb)


def _first_session(samples: Any, sessions: Any) -> Any:
    return samples[sessions == sessions[0]]


def record_pair(pte: Path, outs: list[Path], args: argparse.Namespace) -> None:
    """Both traces of a pair from one run: copies of the program, named after the traces."""
    copies = [out.with_suffix(".pte") for out in outs]
    for copy in copies:
        shutil.copyfile(pte, copy)
    try:
        if not args.processes:
            run_programs([request(c, o, args) for c, o in zip(copies, outs, strict=False)])
            return
        etprof_run(copies, [], args)
    finally:
        for copy in copies:
            copy.unlink(missing_ok=True)


def record(pte: Path, out: Path, args: argparse.Namespace) -> None:
    if not args.processes:
        run_program(request(pte, out, args))
        return
    etprof_run([pte], ["--out", str(out)], args)


def request(pte: Path, out: Path, args: argparse.Namespace) -> RunRequest:
    """The in-process run of one program with the benchmark's settings."""
    return RunRequest(
        pte=pte,
        out=out,
        iters=args.iters,
        warmup=args.warmup,
        sessions=parse_sessions(args.sessions),
        spread_s=args.spread,
    )


def etprof_run(ptes: list[Path], extra: list[str], args: argparse.Namespace) -> None:
    """`etprof run PTES...` in a fresh process with the benchmark's settings; exit on failure."""
    cmd = [
        sys.executable,
        "-m",
        "etprof.cli",
        "run",
        *map(str, ptes),
        "--iters",
        str(args.iters),
        "--warmup",
        str(args.warmup),
        "--sessions",
        args.sessions,
        "--spread",
        str(args.spread),
        *extra,
    ]
    proc = subprocess.run(cmd, check=False, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{proc.stderr}")


def wilson(hits: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a rate, in percent: 20 pairs cannot pin 5% down."""
    if n == 0:
        return math.nan, math.nan
    p = hits / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return 100.0 * max(0.0, centre - half), 100.0 * min(1.0, centre + half)


def _line(c: Comparison) -> str:
    return (
        f"{c.verdict:<22} mean {c.mean_a_ms:7.3f} -> {c.mean_b_ms:7.3f} ms "
        f"({c.change_pct:+5.1f}%, CI {c.ci_low_pct:+5.1f}% .. {c.ci_high_pct:+5.1f}%), "
        f"median {c.median_a_ms:7.3f} -> {c.median_b_ms:7.3f}, p={c.p_value:.2g}"
    )


def _rate(judged: list[Comparison]) -> float:
    alarms = sum(c.verdict != NO_CHANGE for c in judged)
    return 100.0 * alarms / len(judged) if judged else math.nan


def _band_needed(judged: list[Comparison]) -> float:
    """Smallest band under which at most TARGET_PCT% of the pairs are called a change."""
    needed = []
    for c in judged:
        if c.p_value >= c.method.alpha or not math.isfinite(c.ci_low_pct):
            needed.append(0.0)  # the rank test alone already keeps it quiet
        else:  # the band must reach the interval's end nearest zero
            needed.append(
                max(
                    0.0,
                    min(abs(c.ci_low_pct), abs(c.ci_high_pct))
                    if c.ci_low_pct * c.ci_high_pct > 0
                    else 0.0,
                )
            )
    needed.sort()
    allowed = math.floor(len(needed) * TARGET_PCT / 100.0)
    return needed[len(needed) - 1 - allowed] if len(needed) > allowed else 0.0


if __name__ == "__main__":
    sys.exit(main())
