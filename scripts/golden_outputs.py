"""Write every read-only command's output, in every format, for a set of traces, into one folder.

A behaviour-preserving change (a restructure, a formatter run) is checked by running this before
and after it and comparing the two folders byte for byte:

    python scripts/golden_outputs.py OUT_BEFORE [TRACE[:PTE[:ETRECORD]] ...]
    ... change ...
    python scripts/golden_outputs.py OUT_AFTER  [same traces]
    diff -r OUT_BEFORE OUT_AFTER

Without traces it uses the checked-in samples and the tests' small traces. Each command runs as
`etprof ...` in a child process, so the output is what a user gets, exit status included
(`<name>.rc`, with stderr's lines that do not name a temporary path in `<name>.err`). The
commands run in the checkout's root, the default traces named relative to it, so that two
checkouts give the same bytes. OUT is best given as an absolute path.
"""

from __future__ import annotations

import itertools
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# relative to ROOT, where the commands run: outputs that name a trace are the same in any checkout
SAMPLES = sorted(p.relative_to(ROOT) for p in (ROOT / "sample_traces").glob("*.etdp"))
TESTS_DATA = Path("tests") / "data"
SMALL = TESTS_DATA / "small_xnnpack"
DEFAULT = [str(p) for p in SAMPLES] + [
    str(TESTS_DATA / "small_pair_a.etdp"),
    str(TESTS_DATA / "small_pair_b.etdp"),
    f"{SMALL}.etdp:{SMALL}.pte:{SMALL}_etrecord.bin",
]
FORMATS = {"table": "txt", "json": "json", "csv": "csv", "markdown": "md", "html": "html"}


def _etprof(out: Path, name: str, args: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "etprof.cli", *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        env={
            "COLUMNS": "120",
            "PATH": "/usr/bin:/bin",
            "PYTHONPATH": str(ROOT / "src"),  # this checkout's etprof, whatever is installed
            "TZ": "UTC",
            "LC_ALL": "C.UTF-8",
        },
    )
    (out / f"{name}.rc").write_text(f"{done.returncode}\n")
    (out / f"{name}.stdout").write_text(done.stdout)
    # the output folder differs between the two runs compared; the store's own time of storing
    # (history's `stored` column) differs too, and is the one figure expected to
    err = [
        line.replace(str(out), "<OUT>") for line in done.stderr.splitlines() if "wrote " not in line
    ]
    (out / f"{name}.err").write_text("\n".join(err) + "\n")


def _program_args(pte: str | None, etrecord: str | None, suffix: str = "") -> list[str]:
    args = [f"--pte{suffix}", pte] if pte else []
    return args + ([f"--etrecord{suffix}", etrecord] if etrecord else [])


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    out = Path(argv[0])
    out.mkdir(parents=True, exist_ok=True)
    specs = [[*s.split(":"), None, None] for s in (argv[1:] or DEFAULT)]
    traces = [(Path(s[0]), s[1] or None, s[2] or None) for s in specs]
    for trace, pte, etrecord in traces:
        stem = trace.stem
        prog = _program_args(pte, etrecord)
        for fmt, ext in FORMATS.items():
            name = f"breakdown-{stem}.{ext}"
            _etprof(out, name, ["breakdown", str(trace), *prog, "-f", fmt, "-o", str(out / name)])
        for by in ("op", "block", "module", "iteration"):
            name = f"breakdown-{stem}-by-{by}.json"
            _etprof(out, name, ["breakdown", str(trace), *prog, "--by", by, "-o", str(out / name)])
        _etprof(out, f"breakdown-{stem}-stdout", ["breakdown", str(trace), *prog])
        name = f"timeline-{stem}.json"
        _etprof(out, name, ["timeline", str(trace), *prog, "-o", str(out / name)])
        name = f"timeline-{stem}-all.json"
        _etprof(out, name, ["timeline", str(trace), *prog, "--all", "-o", str(out / name)])
        name = f"report-{stem}.html"
        _etprof(out, name, ["report", str(trace), *prog, "-o", str(out / name)])
    for (a, pte_a, rec_a), (b, pte_b, rec_b) in itertools.pairwise(traces):
        stem = f"{a.stem}--{b.stem}"
        prog = _program_args(pte_a, rec_a, "-a") + _program_args(pte_b, rec_b, "-b")
        for fmt, ext in FORMATS.items():
            name = f"diff-{stem}.{ext}"
            _etprof(out, name, ["diff", str(a), str(b), *prog, "-f", fmt, "-o", str(out / name)])
        name = f"report-{stem}.html"
        _etprof(out, name, ["report", str(a), str(b), *prog, "--force", "-o", str(out / name)])
    db = out / "store.duckdb"
    db.unlink(missing_ok=True)
    for trace, pte, _ in traces:
        args = ["store", str(trace), "--db", str(db), "--tag", "device=golden"]
        _etprof(out, f"store-{trace.stem}", args + (["--pte", pte] if pte else []))
    for fmt, ext in FORMATS.items():
        name = f"history.{ext}"
        _etprof(out, name, ["history", "--db", str(db), "-f", fmt, "-o", str(out / name)])
    db.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
