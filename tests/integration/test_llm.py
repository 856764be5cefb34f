"""LLM programs: recognised from the .pte, run as prefill + decode sequences, phases in the trace,
the llama-bench headline checked against the trace's own Method::execute durations.

The zoo's tiny Llama (ExecuTorch's definition, KV cache, dynamic prompt) is exported and run
once per test session (P=16, G=8, 2 sessions).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from etprof.errors import InputError
from etprof.program.llm import DECODE, PREFILL, LlmInfo, Step, check_lengths, plan_steps
from etprof.program.methods import MethodShape
from etprof.trace.sidecar import RunSettings, TraceMeta, sidecar_path

from conftest import DATA, assert_one_line_error, run_cli
from programs import program_copy

P, G, SESSIONS = 16, 8, 2
RUN = ("--prefill", str(P), "--decode", str(G), "--sessions", str(SESSIONS), "--spread", "0")


@pytest.fixture(scope="session")
def llama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The zoo's Llama, dq8, from the shared export cache (tests/programs.py), copied here."""
    return program_copy(tmp_path_factory.mktemp("llama"), "llama", "dq8")


@pytest.fixture(scope="session")
def llama_fp32_trace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The zoo's tiny Llama without quantization (the shared export cache), run as
    `llama_trace` is: the fp32 side of the dq8-vs-fp32 tests."""
    pte = program_copy(tmp_path_factory.mktemp("llama_fp32"), "llama")
    out = pte.with_suffix(".etdp")
    result = run_cli("run", pte, *RUN, "--out", out)
    assert result.returncode == 0, result.stderr
    return out


@pytest.fixture(scope="session")
def llama_trace(llama: Path) -> Path:
    out = llama.with_suffix(".etdp")
    result = run_cli("run", llama, *RUN, "--out", out)
    assert result.returncode == 0, result.stderr
    assert "recognised: LLM program" in result.stderr
    return out


@pytest.mark.slow
def test_recognised_from_the_pte_without_torch(llama: Path) -> None:
    from etprof.program.llm import recognise
    from etprof.program.reader import Program

    info, why = recognise(Program.read(llama).shapes)
    assert why == ""
    assert info is not None
    assert (info.vocab_size, info.max_seq_len, info.max_context_len) == (256, 64, 64)
    assert info.use_kv_cache and info.dynamic_shape and info.max_prompt == 63
    assert info.bos_id == 1 and info.eos_ids == (2,)
    assert "get_vocab_size" in info.metadata_methods


@pytest.mark.slow
def test_sidecar_records_every_runs_phase(llama_trace: Path) -> None:
    meta = TraceMeta.from_json(sidecar_path(llama_trace).read_text())
    sequence = [Step(PREFILL, 0, P), *(Step(DECODE, P + i, 1) for i in range(G))]
    assert list(meta.run.phases) == sequence * 2  # one dropped, one measured
    assert (meta.run.iters, meta.run.warmup, meta.run.sessions) == (2 * (1 + G), 1 + G, SESSIONS)
    assert meta.program.llm is not None and meta.program.llm.vocab_size == 256


@pytest.mark.slow
def test_tokens_per_s_equal_the_traces_own_execute_durations(llama_trace: Path) -> None:
    """Independently of etprof's analyzers: the Method::execute events of each Execute block,
    in order, split per session, the first sequence dropped."""
    from etprof.trace.etdump.reader import read_dump

    result = run_cli("breakdown", llama_trace, "-f", "json")
    assert result.returncode == 0, result.stderr
    phases = json.loads(result.stdout)["phases"]
    raw = read_dump(llama_trace)
    per_block: dict[int, int] = {}
    for i, name in enumerate(raw.names):
        if name != "Method::execute":
            continue
        hits = np.flatnonzero(raw.name_codes == i)
        for row in hits:
            block = int(raw.run[row])
            if raw.run_names[block] == "Execute":
                per_block[block] = int(raw.end[row] - raw.start[row])
    durations = [per_block[b] for b in sorted(per_block)]
    runs = 2 * (1 + G)
    assert len(durations) == SESSIONS * runs
    pp, tg, ttft = [], [], []
    for s in range(SESSIONS):
        measured = durations[s * runs + 1 + G : (s + 1) * runs]
        pp.append(P / (measured[0] / 1e9))
        tg.append(G / (sum(measured[1:]) / 1e9))
        ttft.append(measured[0] / 1e6)
    assert phases["prefill"]["tokens_per_s"]["mean"] == pytest.approx(np.mean(pp), rel=1e-9)
    assert phases["decode"]["tokens_per_s"]["mean"] == pytest.approx(np.mean(tg), rel=1e-9)
    assert phases["prefill"]["tokens_per_s"]["sessions"] == pytest.approx(pp, rel=1e-9)
    assert phases["prefill"]["duration_ms"]["mean"] == pytest.approx(np.mean(ttft), rel=1e-9)
    decode_ms = [
        d / 1e6 for s in range(SESSIONS) for d in durations[s * runs + 2 + G : (s + 1) * runs]
    ]
    assert phases["decode"]["latency_ms"]["p50"] == pytest.approx(np.percentile(decode_ms, 50))


@pytest.mark.slow
@pytest.mark.parametrize("phase", [PREFILL, DECODE])
def test_each_phases_buckets_sum_to_its_run_model(llama_trace: Path, phase: str) -> None:
    result = run_cli("breakdown", llama_trace, "--phase", phase, "-f", "json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    rows = doc["buckets_per_iteration_ns"]
    assert len(rows) == SESSIONS * (1 if phase == PREFILL else G)
    for row in rows:
        parts = sum(v for k, v in row.items() if k not in ("iteration", "run_model"))
        assert parts == row["run_model"]
    assert doc["phase"] == phase


@pytest.mark.slow
def test_run_prints_the_llama_bench_table(llama_trace: Path) -> None:
    result = run_cli("breakdown", llama_trace)
    assert result.returncode == 0, result.stderr
    assert f"pp{P}" in result.stdout and f"tg{G}" in result.stdout
    assert "buckets by phase" in result.stdout


@pytest.mark.slow
def test_prefill_beyond_the_sequence_is_one_line(llama: Path, tmp_path: Path) -> None:
    out = tmp_path / "x.etdp"
    assert_one_line_error(
        run_cli("run", llama, "--prefill", "60", "--decode", "8", "--out", out),
        "beyond the 64 the program holds",
        "--prefill 32 --decode 32",
    )
    assert not out.exists()


def test_prefill_on_a_program_without_llm_metadata_is_one_line(tmp_path: Path) -> None:
    out = tmp_path / "x.etdp"
    assert_one_line_error(
        run_cli("run", DATA / "small_xnnpack.pte", "--prefill", "8", "--out", out),
        "not recognised as one",
        "none of the LLM metadata methods",
        "drop --prefill/--decode",
    )
    assert not out.exists()


def test_decode_without_a_kv_cache_is_refused() -> None:
    info = LlmInfo(
        vocab_size=100, max_seq_len=32, use_kv_cache=False, dynamic_shape=True, max_prompt=31
    )
    with pytest.raises(InputError, match="no KV cache") as err:
        check_lengths(info, 8, 4, "m.pte")
    assert "--decode 0" in err.value.one_line()
    check_lengths(info, 8, 0, "m.pte")  # prefill alone is fine


def test_prefill_without_dynamic_shapes_is_one_token_per_execute() -> None:
    info = LlmInfo(vocab_size=100, max_seq_len=32, use_kv_cache=True)
    steps = plan_steps(info, 3, 2)
    assert steps == (
        Step(PREFILL, 0, 1),
        Step(PREFILL, 1, 1),
        Step(PREFILL, 2, 1),
        Step(DECODE, 3, 1),
        Step(DECODE, 4, 1),
    )


def test_phases_and_llm_round_trip_the_sidecar() -> None:
    info = LlmInfo(
        vocab_size=100,
        max_seq_len=32,
        max_context_len=32,
        use_kv_cache=True,
        dynamic_shape=True,
        max_prompt=31,
        bos_id=1,
        eos_ids=(2, 3),
        metadata_methods=("get_vocab_size", "get_max_seq_len"),
    )
    steps = plan_steps(info, 4, 2)
    from dataclasses import replace

    meta = TraceMeta()
    meta = replace(
        meta,
        program=replace(meta.program, llm=info),
        run=RunSettings(iters=len(steps), warmup=0, phases=steps),
    )
    back = TraceMeta.from_json(meta.to_json())
    assert back.program.llm == info and back.run.phases == steps
    doc = json.loads(meta.to_json())
    doc["run"]["phases"][0]["phase"] = "generate"
    with pytest.raises(InputError, match=r"run.phases\[0\].phase"):
        TraceMeta.from_json(json.dumps(doc))


@pytest.mark.slow
def test_diff_of_llm_traces_compares_each_phase(llama_fp32_trace: Path, llama_trace: Path) -> None:
    """Without --phase: one section per phase, each the `--phase X` document, and the gate's
    exit code the one of every phase's checks together (docs/diff.md, "LLM traces")."""
    gate = ("--fail-if-slower", "5", "--same-model")
    result = run_cli("diff", llama_fp32_trace, llama_trace, *gate, "-f", "json")
    assert result.returncode in (0, 4, 5), result.stderr
    doc = json.loads(result.stdout)
    assert list(doc["phases"]) == [PREFILL, DECODE]
    codes = {}
    for phase in (PREFILL, DECODE):
        alone = run_cli(
            "diff", llama_fp32_trace, llama_trace, *gate, "--phase", phase, "-f", "json"
        )
        body = json.loads(alone.stdout)
        assert doc["phases"][phase] == {
            k: v for k, v in body.items() if k not in ("schema", "version")
        }
        codes[phase] = alone.returncode
        assert alone.returncode == body["gate"]["exit_code"]
    assert doc["phases"][DECODE]["a"]["measured"] == SESSIONS * G
    assert doc["phases"][PREFILL]["b"]["measured"] == SESSIONS
    # a fail anywhere fails, else an inconclusive phase makes it inconclusive
    worst = 4 if 4 in codes.values() else max(codes.values())
    assert result.returncode == worst == doc["gate"]["exit_code"]
    assert doc["gate"]["decided_by"] == [p for p, c in codes.items() if c == worst and worst]
    table = run_cli("diff", llama_fp32_trace, llama_trace, "--same-model").stdout
    assert table.startswith("prefill: llama")  # one headline paragraph per phase
    assert any(line.startswith("decode: llama") for line in table.splitlines())


def test_phase_of_a_trace_without_phases_is_one_line() -> None:
    assert_one_line_error(
        run_cli("breakdown", DATA / "small_xnnpack.etdp", "--phase", "decode"),
        "has no decode runs",
        "not an LLM run",
    )
    assert_one_line_error(
        run_cli("breakdown", DATA / "small_xnnpack.etdp", "--phase", "x"), "unknown --phase 'x'"
    )


@pytest.mark.slow
def test_timeline_labels_each_execute_with_its_phase(llama_trace: Path, tmp_path: Path) -> None:
    out = tmp_path / "t.json"
    result = run_cli("timeline", llama_trace, "--all", "-o", out)
    assert result.returncode == 0, result.stderr
    doc = json.loads(out.read_text())
    events = doc["traceEvents"] if isinstance(doc, dict) else doc
    names = [e["name"] for e in events if str(e.get("name", "")).startswith("Method::execute")]
    sequence = ["Method::execute (prefill)"] + ["Method::execute (decode)"] * G
    assert names == sequence * 2 * SESSIONS


@pytest.mark.slow
def test_report_has_a_prefill_decode_section(llama_trace: Path, tmp_path: Path) -> None:
    """The pp/tg cards, time to first token and decode percentiles of `breakdown -f json`, the
    phases' buckets, and one dot per measured decode step at its position, per session."""
    import re

    from etprof.units import ms_text

    out = tmp_path / "r.html"
    result = run_cli("report", llama_trace, "-o", out)
    assert result.returncode == 0, result.stderr
    html = out.read_text()
    assert html.count('<section class="card" id="llm">') == 1
    phases = json.loads(run_cli("breakdown", llama_trace, "-f", "json").stdout)["phases"]
    decode = phases["decode"]
    cards = {
        k: v
        for v, k in re.findall(r'<div class="stat"><b>([^<]*)</b><span>([^<]*)</span></div>', html)
    }
    # the headline cards are the shipped figures (the untraced sequences), labelled so
    prefill = phases["prefill"]["shipped"]
    assert cards["time to first token (shipped)"] == ms_text(prefill["duration_ms"]["mean"])
    for q in (50, 90, 99):
        assert cards[f"decode p{q} per token"] == ms_text(decode["latency_ms"][f"p{q}"])
    # the mean as the card rounds it: whole numbers from 1000 tokens/s, three significant
    # figures below (how many digits it shows depends on how fast the machine was)
    shown = cards[f"tg{G} tokens/s (decode, shipped)"].split(" \u00b1 ")[0]
    assert float(shown.replace(",", "")) == pytest.approx(
        decode["shipped"]["tokens_per_s"]["mean"], rel=1e-3, abs=5e-4
    ), shown
    assert f"pp{P} tokens/s (prefill, shipped)" in cards
    steps = re.findall(r'<circle class="step" data-position="(\d+)" data-session="(\d+)"', html)
    assert sorted((int(s), int(p)) for p, s in steps) == [
        (s, P + i) for s in range(SESSIONS) for i in range(G)
    ]
    assert html.count('<line class="fit"') == 1
    for phase in ("prefill", "decode"):  # each phase's stacked bar, its run model at the right
        assert f">{phase} (per run)</text>" in html
    assert "share of run-model time per bucket" in html


@pytest.mark.slow
def test_decode_time_per_token_by_layer_and_part(llama_trace: Path) -> None:
    """With the ETRecord's module paths: (layer, part) rows that sum, per phase, to the phase's
    run model per token; each layer's attention and feed-forward present; the portable kernels
    typical of LLM exports named, their cost per token the trace's own kernel time."""
    from etprof.trace.loading import load_trace
    from etprof.trace.model import KERNEL

    doc = json.loads(run_cli("breakdown", llama_trace, "-f", "json").stdout)
    assert doc["layers"]["known"] is True
    rows = doc["layers"]["rows"]
    phases = doc["phases"]
    decode_per_token_us = phases["decode"]["latency_ms"]["mean"] * 1e3  # one token per run
    prefill_per_token_us = phases["prefill"]["duration_ms"]["mean"] * 1e3 / P
    assert sum(r["decode_us_per_token"] for r in rows) == pytest.approx(
        decode_per_token_us, rel=1e-9
    )
    assert sum(r["prefill_us_per_token"] for r in rows) == pytest.approx(
        prefill_per_token_us, rel=1e-9
    )
    parts = {(r["layer"], r["part"]) for r in rows}
    for layer in ("layers.0", "layers.1"):
        assert (layer, "attention") in parts and (layer, "norm") in parts
    assert ("", "embedding") in parts and ("", "(runtime overhead)") in parts
    ops = {r["op"]: r for r in doc["operators_per_token"]}
    decode = load_trace(llama_trace).for_phase(DECODE).measured()
    kernels = decode.of_kind(KERNEL)
    for op, role in (
        ("index_put.out", "KV-cache write"),
        ("embedding.out", "embedding lookup"),
        ("expand_copy.out", "KV heads broadcast (GQA)"),
    ):
        assert ops[op]["typical"] == role and ops[op]["side"] == "portable"
        ns = int(kernels.loc[kernels["op"].astype(str) == op, "duration_ns"].sum())
        assert ops[op]["decode_us_per_token"] == pytest.approx(ns / 1e3 / (SESSIONS * G), rel=1e-9)
    table = run_cli("breakdown", llama_trace).stdout
    assert "time per token by layer and part" in table and "portable kernels per token" in table


@pytest.mark.slow
def test_without_module_paths_time_per_token_is_per_operator(
    llama_trace: Path, tmp_path: Path
) -> None:
    """The same trace, its sidecar's module paths removed (as recorded without an ETRecord)."""
    import shutil

    trace = tmp_path / "nopaths.etdp"
    shutil.copy(llama_trace, trace)
    meta = json.loads(sidecar_path(llama_trace).read_text())
    program = meta["program"]
    for instr in program["instructions"] + [
        i for m in program.get("methods", []) for i in m["instructions"]
    ]:
        instr["modules"] = []
    program["etrecord"] = ""
    sidecar_path(trace).write_text(json.dumps(meta))
    result = run_cli("breakdown", trace, "-f", "json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["layers"] == {"known": False, "rows": []}
    assert {r["op"] for r in doc["operators_per_token"]} >= {"index_put.out", "embedding.out"}
    table = run_cli("breakdown", trace).stdout
    assert "operators per token" in table and "time per token by layer" not in table
    assert "no module paths in this trace" in table


@pytest.mark.parametrize(
    ("module", "layer", "part"),
    [
        ("layers.0.attention.SDPA", "layers.0", "attention"),
        ("layers.1.attention.rope.apply_rotary_emb", "layers.1", "attention"),
        ("layers.0.attention_norm", "layers.0", "norm"),
        ("layers.1.ffn_norm", "layers.1", "norm"),
        ("layers.0.feed_forward.w2", "layers.0", "feed-forward"),
        ("layers.0", "layers.0", "(mixed)"),
        ("layers", "layers", "(other)"),
        ("tok_embeddings", "", "embedding"),
        ("norm", "", "norm"),
        ("output", "", "output head"),
        ("model.layers.3.self_attn.q_proj", "model.layers.3", "attention"),
        ("model.layers.3.mlp.down_proj", "model.layers.3", "feed-forward"),
        ("model.embed_tokens", "", "embedding"),
        ("lm_head", "", "output head"),
    ],
)
def test_module_paths_map_to_a_layer_and_a_part(module: str, layer: str, part: str) -> None:
    from etprof.analyzers._llm_layers import layer_of, part_of

    assert (layer_of(module), part_of(module)) == (layer, part)


@pytest.mark.slow
def test_iters_and_warmup_count_whole_sequences(llama: Path, tmp_path: Path) -> None:
    """--iters 2 --warmup 0: two measured sequences per session, none dropped, said on stderr;
    pp/tg name one sequence's tokens and time to first token is per sequence."""
    out = tmp_path / "two.etdp"
    result = run_cli(
        "run",
        llama,
        "--prefill",
        "4",
        "--decode",
        "3",
        "--iters",
        "2",
        "--warmup",
        "0",
        "--sessions",
        "1",
        "--spread",
        "0",
        "--no-untraced",
        "--out",
        out,
    )
    assert result.returncode == 0, result.stderr
    assert (
        "--iters/--warmup count whole prefill+decode sequences for an LLM program: 2 "
        "measured and 0 dropped per session (8 Execute runs of forward per session)"
        in result.stderr
    )
    meta = TraceMeta.from_json(sidecar_path(out).read_text())
    sequence = [Step(PREFILL, 0, 4), *(Step(DECODE, 4 + i, 1) for i in range(3))]
    assert list(meta.run.phases) == sequence * 2
    assert (meta.run.iters, meta.run.warmup) == (8, 0)
    doc = json.loads(run_cli("breakdown", out, "-f", "json").stdout)
    prefill = doc["phases"]["prefill"]
    assert prefill["runs"] == 2 and prefill["tokens"] == 8
    from etprof.analyzers.llm import LlmOptions, llm
    from etprof.trace.loading import load_trace

    result_llm = llm(load_trace(out), LlmOptions())
    assert (result_llm.prefill, result_llm.decode, result_llm.sequences) == (4, 3, 2)
    assert result_llm.ttft_ms == pytest.approx(prefill["duration_ms"]["mean"] / 2, rel=1e-12)
    assert "pp4" in result_llm.headline() and "tg3" in result_llm.headline()
    assert_one_line_error(
        run_cli(
            "run",
            llama,
            "--prefill",
            "4",
            "--decode",
            "3",
            "--iters",
            "0",
            "--out",
            tmp_path / "x.etdp",
        ),
        # every numeric option is range-checked before the LLM plan (docs/guarantees.md)
        "--iters 0 is outside 1 .. 10,000",
        "pass --iters between 1 and 10,000",
    )
    assert not (tmp_path / "x.etdp").exists()


@pytest.mark.slow
def test_dq8_against_fp32_names_the_linears(llama_fp32_trace: Path, llama_trace: Path) -> None:
    """`diff fp32 dq8 --phase decode`: the linears are XNNPACK's fp32 Fully Connected GEMMs in
    A and its dynamically quantized ones (QDU8 activations, QC8W weights) in B, all 15 of a
    decode step on both sides (7 per layer: wq, wk, wv, wo, w1, w2, w3; and the output head),
    paired by operator kind into one row whose precision says what changed (docs/diff.md)."""
    # every measured step on both sides, as the row below is recomputed (none set aside)
    result = run_cli(
        "diff", llama_fp32_trace, llama_trace, "--phase", "decode", "--keep-outliers", "-f", "json"
    )
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    rows = doc["contributors"]
    linear = [r for r in rows if "Fully Connected" in str(r["contributor"])]
    assert [r["contributor"] for r in linear] == ["Fully Connected (NC) GEMM"], linear
    assert linear[0]["precision"] == "F32 -> QDU8, F32, QC8W", linear[0]
    linears = 7 * 2 + 1
    assert sum(r["calls_a"] for r in linear) == linears
    assert sum(r["calls_b"] for r in linear) == linears
    # the row's times are each side's own GEMM events per decode step (whichever is faster:
    # most of them read 0 or 1 µs, XNNPACK's timer resolution)
    from etprof.trace.loading import load_trace
    from etprof.trace.model import DELEGATE_OP

    def gemm_ms_per_step(trace: Path, steps: int) -> float:
        ops = load_trace(trace).for_phase(DECODE).measured().of_kind(DELEGATE_OP)
        gemm = ops["op"].astype(str).str.startswith("Fully Connected")
        assert int(gemm.sum()) == linears * steps
        return float(ops.loc[gemm, "duration_ns"].sum()) / steps / 1e6

    assert doc["a"]["measured"] == doc["b"]["measured"] == SESSIONS * G
    a_ms = gemm_ms_per_step(llama_fp32_trace, SESSIONS * G)
    b_ms = gemm_ms_per_step(llama_trace, SESSIONS * G)
    assert linear[0]["a_ms"] == pytest.approx(a_ms, rel=1e-9, abs=1e-12)
    assert linear[0]["b_ms"] == pytest.approx(b_ms, rel=1e-9, abs=1e-12)
    assert linear[0]["delta_ms"] == pytest.approx(b_ms - a_ms, rel=1e-9, abs=1e-12)
    # every row by name (--top 100): the linears' delta is not always among the ten largest, as
    # on a fast machine both sides' GEMMs are mostly below XNNPACK's 1 µs timer resolution; and
    # Markdown, as the terminal table wraps a long name where its column ends
    table = run_cli(
        "diff", llama_fp32_trace, llama_trace, "--phase", "decode", "--top", "100", "-f", "markdown"
    ).stdout
    row = next(line for line in table.splitlines() if "Fully Connected" in line)
    assert "| F32 -> QDU8, F32, QC8W | 15 -> 15 |" in row, row


@pytest.mark.slow
def test_report_of_two_llm_traces_compares_each_phase(
    llama_fp32_trace: Path, llama_trace: Path, tmp_path: Path
) -> None:
    """Without --phase: one comparison card per phase, each with its `--phase` diff's verdict;
    with --phase decode: that one card, as before."""
    from html import escape

    out = tmp_path / "pair.html"
    result = run_cli("report", llama_fp32_trace, llama_trace, "-o", out)
    assert result.returncode == 0, result.stderr
    html = out.read_text()
    assert html.count("<h2>Comparison: B against A") == 2
    for phase in (PREFILL, DECODE):
        card = html.index(
            f'<section class="card" id="diff-{phase}">'
            f"<h2>Comparison: B against A ({phase} runs)</h2>"
        )
        alone = json.loads(
            run_cli("diff", llama_fp32_trace, llama_trace, "--phase", phase, "-f", "json").stdout
        )
        assert escape(alone["headline"]) in html[card : html.index("</section>", card)]
    assert html.count('<line class="fit"') == 2  # each side's decode latency chart
    result = run_cli("report", llama_fp32_trace, llama_trace, "--phase", "decode", "-o", out)
    assert result.returncode == 0, result.stderr
    html = out.read_text()
    assert "<h2>Comparison: B against A (decode runs)</h2>" in html
    assert html.count("<h2>Comparison: B against A") == 1
    assert html.count('<line class="fit"') == 2  # each side's decode latency chart
    assert html.count('<circle class="step"') == 2 * SESSIONS * G


def _methods(
    kv: bool, inputs: tuple[tuple[int, ...], ...], dynamic: bool = True
) -> tuple[MethodShape, ...]:
    """A forward taking `inputs` (int64, the first dynamic) and the LLM metadata methods."""
    from etprof.program.methods import TensorInput

    forward = MethodShape(
        "forward",
        tuple(TensorInput(i, 4, s, dynamic and i == 0) for i, s in enumerate(inputs)),
        instructions=10,
    )
    consts = {
        "get_vocab_size": 128,
        "get_max_seq_len": 32,
        "use_kv_cache": kv,
        "enable_dynamic_shape": dynamic,
    }
    return (forward, *(MethodShape(n, (), 0, v) for n, v in consts.items()))


def test_a_program_without_kv_cache_takes_tokens_only() -> None:
    """ExecuTorch's llama export without a KV cache writes forward(tokens [1, S]): recognised,
    the whole prompt in one execute, no decode by default, --decode refused in one line."""
    from etprof.program.llm import check_prompt, default_lengths, recognise

    info, why = recognise(_methods(False, ((1, 31),)))
    assert why == "" and info is not None
    assert not info.takes_position and not info.use_kv_cache and info.max_prompt == 31
    assert "forward(tokens);" in info.describe()
    assert default_lengths(info, None, None) == (16, 0)
    assert plan_steps(info, 16, 0) == (Step(PREFILL, 0, 16),)
    with pytest.raises(InputError, match="no KV cache"):
        check_lengths(info, 16, 4, "m.pte")
    with pytest.raises(InputError, match="at most 31 tokens"):
        check_prompt(info, 32, "m.pte")
    # with a KV cache, forward(tokens) alone is not an LLM signature
    info, why = recognise(_methods(True, ((1, 31),)))
    assert info is None and "forward takes ([1, 31] type 4)" in why


# -- programs exported by ExecuTorch's own LLM tooling (tests/data/make_llm_exports.sh) ---------

EL_DYNAMIC, EL_STATIC, EL_NOKV = (DATA / f"el_{n}.pte" for n in ("kv_dynamic", "kv_static", "nokv"))
EL_RUN = ("--sessions", "1", "--spread", "0", "--no-untraced")


def test_export_llama_programs_are_recognised_without_a_flag() -> None:
    """export_llama's metadata methods and signatures, read from the .pte without torch."""
    from etprof.program.llm import recognise
    from etprof.program.reader import Program

    infos = {}
    for pte in (EL_DYNAMIC, EL_STATIC, EL_NOKV):
        info, why = recognise(Program.read(pte).shapes)
        assert why == "" and info is not None, (pte, why)
        assert (info.vocab_size, info.max_seq_len, info.bos_id, info.eos_ids) == (128, 32, 1, (2,))
        assert {"get_max_seq_len", "get_vocab_size", "use_kv_cache", "enable_dynamic_shape"} <= set(
            info.metadata_methods
        )
        infos[pte] = info
    dynamic, static, nokv = (infos[p] for p in (EL_DYNAMIC, EL_STATIC, EL_NOKV))
    assert dynamic.use_kv_cache and dynamic.dynamic_shape and dynamic.takes_position
    assert dynamic.max_prompt == 31
    assert static.use_kv_cache and not static.dynamic_shape and static.max_prompt == 1
    assert not nokv.use_kv_cache and nokv.dynamic_shape and not nokv.takes_position


@pytest.mark.slow
def test_export_llama_program_runs_as_an_llm(tmp_path: Path) -> None:
    out = tmp_path / "d.etdp"
    result = run_cli("run", EL_DYNAMIC, "--prefill", "8", "--decode", "4", *EL_RUN, "--out", out)
    assert result.returncode == 0, result.stderr
    assert "recognised: LLM program (forward(tokens, input_pos);" in result.stderr
    assert "pp8" in result.stdout and "tg4" in result.stdout
    meta = TraceMeta.from_json(sidecar_path(out).read_text())
    assert (
        list(meta.run.phases)
        == [Step(PREFILL, 0, 8), *(Step(DECODE, 8 + i, 1) for i in range(4))] * 2
    )


@pytest.mark.slow
def test_a_static_shape_program_prefills_one_token_per_execute(tmp_path: Path) -> None:
    """export_llama --disable_dynamic_shape: the prompt goes token by token; pp tokens/s is
    the prompt's tokens over those executes' total duration."""
    out = tmp_path / "s.etdp"
    result = run_cli(
        "run", EL_STATIC, "--prefill", "6", "--decode", "3", *EL_RUN, "--out", out, "-f", "json"
    )
    assert result.returncode == 0, result.stderr
    assert "prefill: 6 single-token executes" in result.stderr
    meta = TraceMeta.from_json(sidecar_path(out).read_text())
    sequence = [
        *(Step(PREFILL, i, 1) for i in range(6)),
        *(Step(DECODE, 6 + i, 1) for i in range(3)),
    ]
    assert list(meta.run.phases) == sequence * 2
    doc = json.loads(result.stdout)
    prefill = doc["phases"]["prefill"]
    assert prefill["runs"] == 6 and prefill["tokens"] == 6
    assert prefill["tokens_per_s"]["mean"] == pytest.approx(
        6 / (prefill["duration_ms"]["mean"] / 1e3), rel=1e-9
    )
    assert doc["time_to_first_token_ms"] == pytest.approx(prefill["duration_ms"]["mean"])
    from etprof.analyzers.llm import LlmOptions, llm
    from etprof.trace.loading import load_trace

    assert any(
        "prefill ran one token per execute (6 executes per sequence)" in n
        for n in llm(load_trace(out), LlmOptions()).notes()
    )


@pytest.mark.slow
def test_a_program_without_a_kv_cache_runs_its_prompt(tmp_path: Path) -> None:
    """export_llama without -kv: forward(tokens); prefill alone by default, --decode refused."""
    out = tmp_path / "n.etdp"
    assert_one_line_error(
        run_cli("run", EL_NOKV, "--decode", "4", *EL_RUN, "--out", out),
        "has no KV cache",
        "--decode 0",
    )
    assert not out.exists()
    result = run_cli("run", EL_NOKV, "--prefill", "8", *EL_RUN, "--out", out, "-f", "json")
    assert result.returncode == 0, result.stderr
    assert (
        "recognised: LLM program (forward(tokens);" in result.stderr
        and "no KV cache" in result.stderr
    )
    meta = TraceMeta.from_json(sidecar_path(out).read_text())
    assert list(meta.run.phases) == [Step(PREFILL, 0, 8)] * 2
    doc = json.loads(result.stdout)
    assert list(doc["phases"]) == ["prefill"] and doc["prefill"] == 8 and doc["decode"] == 0


@pytest.mark.slow
def test_llm_custom_ops_are_portable_kernels_with_their_cost_per_token(tmp_path: Path) -> None:
    """export_llama --use_sdpa_with_kv_cache: llama::custom_sdpa and llama::update_cache run
    (their kernels registered before the load) and count as portable kernels, named, with
    their cost per token the trace's own events."""
    from etprof.trace.loading import load_trace
    from etprof.trace.model import KERNEL

    out = tmp_path / "sdpa.etdp"
    result = run_cli(
        "run", DATA / "el_kv_sdpa.pte", "--prefill", "8", "--decode", "4", *EL_RUN, "--out", out
    )
    assert result.returncode == 0, result.stderr
    doc = json.loads(run_cli("breakdown", out, "-f", "json").stdout)
    ops = {r["op"]: r for r in doc["operators_per_token"]}
    kernels = load_trace(out).for_phase(DECODE).measured().of_kind(KERNEL)
    for op, role, calls in (
        ("llama::custom_sdpa.out", "custom SDPA", 1),
        ("llama::update_cache.out", "KV-cache update", 2),
    ):
        assert ops[op]["typical"] == role and ops[op]["side"] == "portable"
        assert ops[op]["decode_calls_per_token"] == calls
        ns = int(kernels.loc[kernels["op"].astype(str) == op, "duration_ns"].sum())
        assert ns > 0
        assert ops[op]["decode_us_per_token"] == pytest.approx(ns / 1e3 / 4, rel=1e-9)
