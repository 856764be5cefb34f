"""The run as shipped (analyzers/shipped.py) on real programs exported with ExecuTorch's APIs: the
shipped buckets sum to the untraced estimate, the traced ones to the traced run model, and no
shipped figure or bound exceeds the shipped run; the estimate is recomputed from the raw
ETDump and the sidecar's wall times; a program of a few microseconds gets a positive figure that
agrees with a batched timing of the same program made here with ExecuTorch's pybindings, or
none is given."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from etprof.trace.sidecar import TraceMeta, sidecar_path

from conftest import run_cli
from programs import program_copy

RUN = ("--sessions", "2", "--iters", "70", "--warmup", "10", "--spread", "0")


def _record(tmp: Path, model: str, variant: str | None = None) -> tuple[Path, dict[str, Any]]:
    pte = program_copy(tmp, model, variant)
    out = pte.with_suffix(".etdp")
    result = run_cli("run", pte, *RUN, "--out", out)
    assert result.returncode == 0, result.stderr
    assert " shipped " in result.stdout.split("\n\n")[0]  # the headline leads with it
    doc = json.loads(run_cli("breakdown", out, "-f", "json").stdout)
    return out, doc


@pytest.fixture(scope="module", params=["lstm", "kv_decoder_step"])
def recorded(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, dict[str, Any]]:
    return _record(tmp_path_factory.mktemp(request.param), f"etprof_tiny_models:{request.param}")


def check_sums_and_bounds(shipped: dict[str, Any]) -> None:
    assert shipped["status"] in ("shipped", "no measurable cost"), shipped
    rows = [r for r in shipped["buckets"] if r["bucket"] != "profiler"]
    (profiler,) = [r for r in shipped["buckets"] if r["bucket"] == "profiler"]
    whole = shipped["shipped_ms"]
    assert 0 < shipped["ci_low_ms"] <= whole <= shipped["ci_high_ms"] <= shipped["traced_ms"]
    assert sum(r["traced_ms"] for r in rows) == pytest.approx(shipped["traced_ms"], rel=1e-9)
    assert sum(r["shipped_ms"] for r in rows) == pytest.approx(whole, rel=1e-9)
    assert profiler["etdump_ms"] == pytest.approx(shipped["traced_ms"] - whole, rel=1e-9)
    for r in rows:
        assert 0 <= r["shipped_low_ms"] <= r["shipped_ms"] + 1e-12, r
        assert r["shipped_ms"] <= r["shipped_high_ms"] + 1e-12, r
        assert r["shipped_high_ms"] <= whole + 1e-12, r  # no row above the whole shipped run
        assert r["shipped_ms"] <= r["traced_ms"] + 1e-12, r


def independent_estimate(trace: Path, set_aside: np.ndarray | None = None) -> float:
    """Mean over the measured iterations of execute - (traced wall - untraced wall), execute
    read from the raw ETDump by etprof's reader (no analyzer)."""
    from etprof.trace.etdump.reader import read_dump

    meta = TraceMeta.from_json(sidecar_path(trace).read_text())
    raw = read_dump(trace)
    execute = [i for i, n in enumerate(raw.names) if n == "Method::execute"]
    durations = [
        int(raw.end[row] - raw.start[row])
        for row in np.flatnonzero(np.isin(raw.name_codes, execute))
        if raw.run_names[int(raw.run[row])] == "Execute"
    ]
    per = meta.run.iters
    x = []
    for k, u in enumerate(meta.run.untraced):
        e = np.asarray(durations[k * per + meta.run.warmup : (k + 1) * per]) / 1e6
        x.append(e - (np.asarray(u.traced_ms) - np.asarray(u.untraced_ms)))
    values = np.concatenate(x)
    keep = np.ones(values.size, bool) if set_aside is None else ~set_aside
    return float(values[keep].mean())


@pytest.mark.slow
def test_shipped_buckets_sum_and_stay_within_the_run(recorded: tuple[Path, dict[str, Any]]) -> None:
    _, doc = recorded
    check_sums_and_bounds(doc["shipped"])


@pytest.mark.slow
def test_shipped_figure_is_the_paired_estimate(recorded: tuple[Path, dict[str, Any]]) -> None:
    from etprof import analyzers
    from etprof.analyzers._outliers import far_out
    from etprof.analyzers.buckets import measured_buckets
    from etprof.trace.loading import load_trace

    trace_path, doc = recorded
    trace = load_trace(trace_path)
    b = measured_buckets(trace, None)
    meta = trace.meta
    t = np.concatenate([u.traced_ms for u in meta.run.untraced])
    u = np.concatenate([u.untraced_ms for u in meta.run.untraced])
    sessions = np.repeat(np.arange(len(meta.run.untraced)), len(meta.run.untraced[0].traced_ms))
    aside = ~b.kept | far_out(t, sessions) | far_out(u, sessions)
    assert doc["shipped"]["set_aside"] == int(aside.sum())
    assert doc["shipped"]["shipped_ms"] == pytest.approx(
        independent_estimate(trace_path, aside), rel=1e-9
    )
    assert analyzers.run("shipped", trace).shipped_ms == doc["shipped"]["shipped_ms"]


@pytest.mark.slow
def test_llama_decode_step_shipped(tmp_path: Path) -> None:
    """A KV-cache decode step of the zoo's tiny Llama (dq8): per phase, from the untraced
    sequences (`Trace.for_phase` keeps each phase's own untraced timings)."""
    pte = program_copy(tmp_path, "llama", "dq8")
    out = pte.with_suffix(".etdp")
    result = run_cli(
        "run",
        pte,
        "--prefill",
        "16",
        "--decode",
        "24",
        "--iters",
        "3",
        "--sessions",
        "2",
        "--spread",
        "0",
        "--out",
        out,
    )
    assert result.returncode == 0, result.stderr
    for phase in ("decode", "prefill"):
        doc = json.loads(run_cli("breakdown", out, "--phase", phase, "-f", "json").stdout)
        if phase == "prefill" and doc["shipped"]["status"] != "shipped":
            continue  # 6 prefill runs may not resolve on a busy machine; decode must
        check_sums_and_bounds(doc["shipped"])


def _batched(pte: Path, calls: int = 2000, repeats: int = 5) -> list[float]:
    """Independently of etprof: ExecuTorch's pybindings, a traced and an untraced load, each
    timed over `calls` back-to-back calls; execute from the traced load's own ETDump; per
    repeat, execute - (traced wall - untraced wall) per call, in ms."""
    import torch
    from executorch.extension.pybindings import portable_lib

    from etprof.trace.etdump.reader import read_dump

    portable_lib._unsafe_reset_threadpool(1)
    inputs = (torch.randn(4, 4), torch.randn(4, 4))
    out = []
    for r in range(repeats):
        traced = portable_lib._load_for_executorch(str(pte), enable_etdump=True)
        untraced = portable_lib._load_for_executorch(str(pte), enable_etdump=False)
        for m in (traced, untraced):
            for _ in range(50):
                m.run_method("forward", inputs)
        walls = {}
        for name, m in (
            (("t", traced), ("u", untraced)) if r % 2 else (("u", untraced), ("t", traced))
        ):
            began = time.perf_counter()
            for _ in range(calls):
                m.run_method("forward", inputs)
            walls[name] = 1e3 * (time.perf_counter() - began) / calls
        dump = pte.with_name(f"batched{r}.etdp")
        traced.write_etdump_result_to_file(str(dump))
        raw = read_dump(dump)
        execute = [i for i, n in enumerate(raw.names) if n == "Method::execute"]
        rows = np.flatnonzero(np.isin(raw.name_codes, execute))
        ns = (raw.end[rows] - raw.start[rows])[-calls:]
        out.append(float(ns.mean()) / 1e6 - (walls["t"] - walls["u"]))
    return out


@pytest.mark.slow
def test_a_microsecond_program_never_gets_an_impossible_figure(tmp_path: Path) -> None:
    """An add and a mul (execute about a microsecond): the shipped figure is positive and
    agrees with a batched timing of the same program (within that timing's own spread over
    repeats), or, where the paired calls cannot resolve it (on a busy machine ETDump's cost per
    call is as large as the program), none is given and the headline says so -- never a
    negative, zero or larger-than-traced one."""
    trace, doc = _record(tmp_path, "etprof_micro_models:add_mul", "portable")
    s = doc["shipped"]
    meta = TraceMeta.from_json(sidecar_path(trace).read_text())
    headline = run_cli("breakdown", trace).stdout.splitlines()[0]
    if s["status"] == "unresolved":
        assert s["shipped_ms"] is None and s["ci_low_ms"] is None
        assert "shipped figure not resolved" in headline, headline
        assert any("interval reaches 0" in n for n in doc["notes"])
        return
    assert s["status"] in ("shipped", "no measurable cost"), s
    assert 0 < s["ci_low_ms"] <= s["shipped_ms"] <= s["traced_ms"]
    check_sums_and_bounds(s)
    batched = _batched(Path(meta.program.path))
    spread = max(batched) - min(batched)
    assert s["ci_low_ms"] - spread <= float(np.median(batched)) <= s["ci_high_ms"] + spread, (
        s,
        batched,
    )
