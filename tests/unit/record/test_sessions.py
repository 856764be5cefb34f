"""Sessions: `etprof run --sessions K` loads the program K times, joins the ETDumps, and `etprof
diff` judges a change against the spread between sessions.

Real runs of tests/data/small_xnnpack.pte; the joined file is checked against ExecuTorch's own
deserializer, and the session interval against a hand computation.
"""

from __future__ import annotations

import faulthandler
import itertools
import json
import math
import os
import shutil
import signal
import time
from pathlib import Path

import numpy as np
import pytest
from executorch_reads import execute_durations_ns
from scipy import stats

from etprof.analyzers.diff import DiffOptions, diff_traces
from etprof.analyzers.runmodel import run_model_samples
from etprof.analyzers.stats.significance import (
    NO_CHANGE,
    SLOWER,
    compare,
    session_interval,
    session_stats,
)
from etprof.errors import InputError, MismatchError, RuntimeUnavailableError
from etprof.record.runner import auto_sessions, session_pause
from etprof.record.session import SessionResult, forking, run_session
from etprof.trace.etdump.merge import merge_dumps
from etprof.trace.etdump.reader import parse_dump, read_dump
from etprof.trace.loading import load_trace
from etprof.trace.sidecar import TraceMeta, sidecar_path
from etprof.util.methodology import AUTO_BUDGET_S, AUTO_SESSIONS

from conftest import DATA, ROOT, assert_one_line_error, run_cli

SAMPLES = ROOT / "sample_traces"
SESSIONS, ITERS, WARMUP, SPREAD = 3, 12, 2, 2.0


@pytest.fixture(scope="module")
def sessions_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, object]]:
    """A real run of the small XNNPACK program in 3 sessions of 12 iterations (2 warm-up)."""
    work = tmp_path_factory.mktemp("sessions")
    pte = work / "small_xnnpack.pte"
    shutil.copy(DATA / "small_xnnpack.pte", pte)
    result = run_cli(
        "run",
        pte,
        "--sessions",
        SESSIONS,
        "--iters",
        ITERS,
        "--warmup",
        WARMUP,
        "--spread",
        SPREAD,
        "--json",
    )
    assert result.returncode == 0, result.stderr
    assert (
        f"{SESSIONS} sessions x {ITERS} iterations, first {WARMUP} of each dropped" in result.stderr
    )
    return work / "small_xnnpack.etdp", json.loads(result.stdout)


# -- joining ETDumps -------------------------------------------------------------------------------


def test_merge_keeps_every_run_and_event_in_order() -> None:
    a = (SAMPLES / "mv3_xnnpack_fp32.etdp").read_bytes()
    b = (SAMPLES / "mv2_xnnpack_q8.etdp").read_bytes()
    ra, rb, rm = parse_dump(a), parse_dump(b), parse_dump(merge_dumps([a, b, a]))
    assert rm.run_names == ra.run_names + rb.run_names + ra.run_names
    for column in ("start", "end", "instruction_id", "delegate_id_int", "chain_index", "seq"):
        joined = np.concatenate([getattr(ra, column), getattr(rb, column), getattr(ra, column)])
        assert np.array_equal(getattr(rm, column), joined), column
    runs_a, runs_b = len(ra.run_names), len(rb.run_names)
    assert np.array_equal(
        rm.run, np.concatenate([ra.run, rb.run + runs_a, ra.run + runs_a + runs_b])
    )
    names = [rm.names[c] for c in rm.name_codes.tolist()]
    assert names == [ra.names[c] for c in ra.name_codes.tolist()] + [
        rb.names[c] for c in rb.name_codes.tolist()
    ] + [ra.names[c] for c in ra.name_codes.tolist()]


def test_merge_of_one_dump_reads_the_same() -> None:
    data = (SAMPLES / "mv2_xnnpack_fp32.etdp").read_bytes()
    one, merged = parse_dump(data), parse_dump(merge_dumps([data]))
    assert merged.run_names == one.run_names and np.array_equal(merged.end, one.end)


def test_merge_refuses_what_is_not_an_etdump() -> None:
    with pytest.raises(ValueError, match="ED00"):
        merge_dumps([(SAMPLES / "mv2_xnnpack_fp32.etdp").read_bytes(), b"not an etdump at all"])


def test_joined_trace_reads_the_same_with_executorchs_deserializer(
    sessions_run: tuple[Path, dict[str, object]],
) -> None:
    trace, _ = sessions_run
    durations = execute_durations_ns(trace)  # executorch's own flatc path
    assert len(durations) == SESSIONS * ITERS
    ours = load_trace(trace).of_kind("run_model")["duration_ns"].tolist()
    assert ours == durations


# -- the runner ------------------------------------------------------------------------------------


def test_each_session_drops_its_own_warmup(sessions_run: tuple[Path, dict[str, object]]) -> None:
    trace, doc = sessions_run
    durations = execute_durations_ns(trace)
    kept = [d for i, d in enumerate(durations) if i % ITERS >= WARMUP]
    run_model = doc["run_model"]
    assert isinstance(run_model, dict)
    assert run_model["measured"] == SESSIONS * (ITERS - WARMUP) == len(kept)
    assert run_model["mean_ms"] == pytest.approx(float(np.mean(kept)) / 1e6, rel=1e-12)
    assert run_model["samples_ms"] == pytest.approx([d / 1e6 for d in kept])
    loaded = load_trace(trace)
    assert loaded.sessions == SESSIONS and loaded.session_length == ITERS
    assert loaded.session_of([0, 11, 12, 35]).tolist() == [0, 0, 1, 2]
    assert loaded.is_warmup([0, 1, 2, 12, 13, 14]).tolist() == [
        True,
        True,
        False,
        True,
        True,
        False,
    ]


def test_sidecar_records_the_sessions(sessions_run: tuple[Path, dict[str, object]]) -> None:
    trace, _ = sessions_run
    meta = TraceMeta.from_json(sidecar_path(trace).read_text())
    assert meta.run.sessions == SESSIONS and meta.run.iters == ITERS
    assert meta.run.spread_s == SPREAD  # the pauses it made: test_the_pauses_fill_the_spread
    assert meta.run.cpu_share_pct is not None and 0 < meta.run.cpu_share_pct <= 100
    # one "Default" (loading) block per session, then its Execute runs
    names = read_dump(trace).run_names
    assert names.count("Execute") == SESSIONS * ITERS
    assert [i for i, n in enumerate(names) if n != "Execute"] == [
        k * (ITERS + 1) for k in range(SESSIONS)
    ]


def test_breakdown_and_timeline_of_a_sessions_trace(
    sessions_run: tuple[Path, dict[str, object]],
    tmp_path: Path,
) -> None:
    trace, _ = sessions_run
    result = run_cli("breakdown", trace, "--format", "json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["settings"]["sessions"] == SESSIONS
    assert doc["settings"]["measured"] == SESSIONS * (ITERS - WARMUP)
    rows = doc["iterations"]["rows"]
    assert [r["iteration"] for r in rows if r["dropped"]] == [
        k * ITERS + w for k in range(SESSIONS) for w in range(WARMUP)
    ]
    table = run_cli("breakdown", trace)
    assert f"{SESSIONS} sessions x {ITERS} recorded, first {WARMUP} of each dropped" in " ".join(
        table.stdout.split()
    )
    out = tmp_path / "t.json"
    assert run_cli("timeline", trace, "--output", out).returncode == 0
    assert out.stat().st_size > 0


def test_a_sidecar_that_does_not_match_the_sessions_is_refused(
    sessions_run: tuple[Path, dict[str, object]],
    tmp_path: Path,
) -> None:
    trace, _ = sessions_run
    copy = tmp_path / "x.etdp"
    shutil.copy(trace, copy)
    doc = json.loads(sidecar_path(trace).read_text())
    doc["run"]["sessions"] = SESSIONS + 1
    sidecar_path(copy).write_text(json.dumps(doc))
    with pytest.raises(MismatchError, match="metadata says 4 sessions of 12"):
        load_trace(copy)
    assert_one_line_error(run_cli("breakdown", copy), "sessions")


def test_too_few_iterations_per_session(sessions_run: tuple[Path, dict[str, object]]) -> None:
    trace, _ = sessions_run
    result = run_cli("breakdown", trace, "--warmup", ITERS)
    assert_one_line_error(result, f"{ITERS} iterations per session", "--warmup")


@pytest.mark.parametrize("value", ["0", "-2", "some"])
def test_bad_session_counts(value: str, tmp_path: Path) -> None:
    result = run_cli(
        "run", DATA / "small_xnnpack.pte", "--sessions", value, "--out", tmp_path / "x.etdp"
    )
    assert_one_line_error(result, "--sessions")
    assert not list(tmp_path.iterdir())


def test_bad_spread(tmp_path: Path) -> None:
    result = run_cli(
        "run", DATA / "small_xnnpack.pte", "--spread", "-1", "--out", tmp_path / "x.etdp"
    )
    assert_one_line_error(result, "--spread -1")
    assert not list(tmp_path.iterdir())


def test_session_pause_fills_the_spread() -> None:
    assert session_pause(5, 0.5, 10.0) == pytest.approx(1.875)  # 5 x 0.5 s + 4 x 1.875 s = 10 s
    assert session_pause(5, 3.0, 10.0) == 0.0  # already longer than the spread
    assert session_pause(1, 0.5, 10.0) == 0.0


class _RecordingTime:
    """The runner's `time`: its pauses and the perf_counter readings of this process (not of the
    session children it forks) recorded, everything else the real module's."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.slept: list[float] = []
        self.read: list[float] = []

    def __getattr__(self, name: str) -> object:
        return getattr(time, name)

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        time.sleep(seconds)

    def perf_counter(self) -> float:
        now = time.perf_counter()
        if os.getpid() == self.pid:
            self.read.append(now)
        return now


@pytest.mark.skipif(not forking(), reason="sessions fork only on Linux")
def test_the_pauses_fill_the_spread(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The pause between sessions is what session_pause makes of the first session's measured
    time, slept before each later session, and the trace shows it: each session's executes
    begin at least that long after the previous one's end. (How long the sessions span in all
    depends on how long each took, which a busy machine changes from one to the next.)"""
    from etprof.record import request, runner

    clock = _RecordingTime()
    monkeypatch.setattr(runner, "time", clock)
    out, spread = tmp_path / "spread.etdp", SPREAD
    runner.run_program(
        request.RunRequest(
            pte=DATA / "small_xnnpack.pte", out=out, iters=4, warmup=1, sessions=3, spread_s=spread
        )
    )
    began, ended = clock.read[:2]  # the first session, timed by the runner
    pause = session_pause(3, ended - began, spread)
    assert clock.slept == [pause, pause]
    assert pause > 0, ended - began  # a small program's session takes milliseconds
    t = load_trace(out)
    runs = t.of_kind("run_model")
    session = t.session_of(runs["iteration"].to_numpy())
    starts = [int(runs.loc[session == k, "start_ns"].min()) for k in range(3)]
    ends = [int(runs.loc[session == k, "end_ns"].max()) for k in range(3)]
    for k in (1, 2):
        assert starts[k] - ends[k - 1] >= pause * 1e9, (starts, ends, pause)


def test_auto_sessions_fit_the_budget() -> None:
    assert auto_sessions(0.5) == AUTO_SESSIONS
    assert auto_sessions(AUTO_BUDGET_S / 2) == 2
    assert auto_sessions(3 * AUTO_BUDGET_S) == 1


def test_auto_runs_five_sessions_of_a_fast_program(tmp_path: Path) -> None:
    out = tmp_path / "auto.etdp"
    result = run_cli(
        "run",
        DATA / "small_xnnpack.pte",
        "--iters",
        "11",
        "--warmup",
        "1",
        "--spread",
        "0",
        "--out",
        out,
    )
    assert result.returncode == 0, result.stderr
    assert load_trace(out).sessions == AUTO_SESSIONS


# -- sessions in children --------------------------------------------------------------------------

needs_fork = pytest.mark.skipif(not forking(), reason="sessions fork only on Linux")


@needs_fork
def test_a_session_runs_in_a_child_and_reports_its_ticks() -> None:
    parent = os.getpid()
    ticks: list[int] = []

    def body(tick: object) -> SessionResult:
        assert callable(tick)
        for _ in range(7):
            tick()
        return SessionResult(cpu_s=float(os.getpid() != parent), wall_s=2.0, inputs="x")

    result = run_session(body, lambda: ticks.append(1), "session 1")
    assert result == SessionResult(cpu_s=1.0, wall_s=2.0, inputs="x")  # ran in another process
    assert len(ticks) == 7


@needs_fork
def test_a_session_error_is_raised_in_the_parent() -> None:
    def body(tick: object) -> SessionResult:
        raise InputError("input 0 is the wrong shape", "save inputs of the shape shown")

    with pytest.raises(InputError, match="wrong shape") as info:
        run_session(body, lambda: None, "session 1")
    assert info.value.fix == "save inputs of the shape shown"


@needs_fork
def test_a_crashed_session_is_one_error_not_a_dead_runner() -> None:
    def body(tick: object) -> SessionResult:
        faulthandler.disable()  # pytest's handler would print the child's stack
        os.kill(os.getpid(), signal.SIGSEGV)
        raise AssertionError("unreachable")

    with pytest.raises(
        RuntimeUnavailableError,
        match="session 2 ended without a result "
        r"\(killed by SIGSEGV\)",
    ):
        run_session(body, lambda: None, "session 2")


# -- the between-session interval -----------------------------------------------------------------


def test_session_stats_follow_first_appearance() -> None:
    values = np.array([1.0, 3.0, 10.0, 20.0, 5.0])
    labels = np.array([7, 7, 2, 2, 9])
    assert session_stats(values, labels, "mean").tolist() == [2.0, 15.0, 5.0]
    assert session_stats(values, None, "median").tolist() == [5.0]


def test_session_interval_is_welch_t_on_the_log_ratio() -> None:
    a = np.array([10.0, 10.2, 9.9, 10.1])
    b = np.array([11.0, 11.3, 10.8])
    base, new = float(a.mean()), float(b.mean())
    low, high = session_interval(a, b, base, new, 0.95)
    va = np.var(a / base, ddof=1) / 4
    vb = np.var(b / new, ddof=1) / 3
    dof = (va + vb) ** 2 / (va**2 / 3 + vb**2 / 2)
    half = stats.t.ppf(0.975, dof) * math.sqrt(va + vb)
    centre = math.log(new / base)
    assert low == pytest.approx(100 * (math.exp(centre - half) - 1))
    assert high == pytest.approx(100 * (math.exp(centre + half) - 1))


def test_a_one_session_side_borrows_the_other_sides_spread() -> None:
    many = np.array([10.0, 10.4, 9.8, 10.2, 9.6])
    low, high = session_interval(np.array([10.0]), many, 10.0, float(many.mean()), 0.95)
    rel = np.var(many / many.mean(), ddof=1)
    half = stats.t.ppf(0.975, 4) * math.sqrt(rel / 1 + rel / 5)
    assert high - low == pytest.approx(100 * (math.exp(half) - math.exp(-half)), rel=1e-9)
    assert math.isnan(session_interval(np.array([1.0]), np.array([2.0]), 1.0, 2.0, 0.95)[0])


def test_sessions_that_disagree_keep_a_shift_from_being_called() -> None:
    """Two runs whose iterations alone say +3% (p tiny), but whose sessions spread +/-2%."""
    rng = np.random.default_rng(1)
    levels_a, levels_b = [10.0, 10.2, 9.8, 10.1, 9.9], [10.35, 10.1, 10.5, 10.2, 10.45]
    a = np.concatenate([lvl + rng.normal(0, 0.05, 50) for lvl in levels_a])
    b = np.concatenate([lvl + rng.normal(0, 0.05, 50) for lvl in levels_b])
    la, lb = np.repeat(np.arange(5), 50), np.repeat(np.arange(5), 50)
    alone = compare(a, b)  # what the iterations alone would say
    assert alone.verdict == SLOWER
    judged = compare(a, b, sessions_a=la, sessions_b=lb)
    assert judged.verdict == NO_CHANGE and judged.sessions_a == judged.sessions_b == 5
    assert judged.ci_low_pct <= min(alone.ci_low_pct, judged.session_ci_low_pct)
    assert judged.ci_high_pct >= max(alone.ci_high_pct, judged.session_ci_high_pct)
    # a real change well beyond the spread is still called
    c = compare(a, b * 1.3, sessions_a=la, sessions_b=lb)
    assert c.verdict == SLOWER and c.session_ci_low_pct > 20


def test_diff_of_a_sessions_trace_with_itself(sessions_run: tuple[Path, dict[str, object]]) -> None:
    trace = load_trace(sessions_run[0])
    result = diff_traces(trace, trace, DiffOptions())
    c = result.comparison
    assert c.delta_ms == 0 and c.verdict == NO_CHANGE
    assert c.sessions_a == c.sessions_b == SESSIONS
    # symmetric about no change on the log scale it is computed on
    assert math.log1p(c.session_ci_low_pct / 100) == pytest.approx(
        -math.log1p(c.session_ci_high_pct / 100), rel=1e-9
    )
    assert "in 3 vs 3 sessions" in result.notes()[-1]
    assert not any("one session" in w for w in result.warnings)
    samples = run_model_samples(trace.measured()).to_numpy()
    assert c.n_a == samples.size == SESSIONS * (ITERS - WARMUP)


# -- several programs, interleaved ----------------------------------------------------------------


def test_two_programs_take_turns(tmp_path: Path) -> None:
    """`etprof run A B`: sessions alternate A1 B1 A2 B2, one trace per program."""
    a, b = tmp_path / "small_a.pte", tmp_path / "small_b.pte"
    shutil.copy(DATA / "small_xnnpack.pte", a)
    shutil.copy(DATA / "small_xnnpack.pte", b)
    result = run_cli(
        "run", a, b, "--sessions", "2", "--iters", "6", "--warmup", "1", "--spread", "0", "--json"
    )
    assert result.returncode == 0, result.stderr
    docs = json.loads(result.stdout)
    assert [d["run_model"]["model"] for d in docs] == ["small_a", "small_b"]
    assert (
        f"compare: etprof diff {a.with_suffix('.etdp')} {b.with_suffix('.etdp')}" in result.stderr
    )
    traces = [load_trace(p.with_suffix(".etdp")) for p in (a, b)]
    assert traces[0].meta.run.interleaved_with == (str(b),)
    assert traces[1].meta.run.interleaved_with == (str(a),)
    spans = []  # (start, end, program) of every session
    for which, t in enumerate(traces):
        runs = t.of_kind("run_model")
        session = t.session_of(runs["iteration"].to_numpy())
        for k in range(t.sessions):
            mine = runs[session == k]
            spans.append((int(mine["start_ns"].min()), int(mine["end_ns"].max()), which))
    spans.sort()
    assert [w for _, _, w in spans] == [0, 1, 0, 1]
    assert all(end < nxt for (_, end, _), (nxt, _, _) in itertools.pairwise(spans))


def test_several_programs_refuse_one_output(tmp_path: Path) -> None:
    pte = DATA / "small_xnnpack.pte"
    assert_one_line_error(run_cli("run", pte, pte, "--out", tmp_path / "x.etdp"), "--out")
    assert_one_line_error(run_cli("run", pte, pte, "--spread", "0"), "same trace")
    assert not list(tmp_path.iterdir())


def test_auto_stops_at_one_session_when_over_budget(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The auto count is decided after the first session and ends the run there."""
    from etprof.record import request, runner

    monkeypatch.setattr(runner, "AUTO_BUDGET_S", 1e-6)
    out = tmp_path / "one.etdp"
    meta = runner.run_program(
        request.RunRequest(
            pte=DATA / "small_xnnpack.pte", out=out, iters=4, warmup=1, sessions=None
        )
    )
    assert meta.run.sessions == 1 and load_trace(out).iterations == 4
