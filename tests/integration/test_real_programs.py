"""`etprof run` on programs as people export them: a transformer encoder (fp32 and dynamically
quantized linears), int64 token ids with a float mask, a KV-cache decoder step, a two-method
program, an LSTM taking nested inputs, and the zoo's tiny Llama with its metadata methods.

Every program comes from the shared export cache (tests/programs.py: exported once per cache,
tiny); every run's breakdown must sum exactly to run model in every iteration.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from chrome_checks import check_chrome_trace

from etprof.trace.etdump.reader import read_dump
from etprof.trace.sidecar import TraceMeta, sidecar_path

from conftest import assert_one_line_error, run_cli
from programs import program_copy

pytestmark = pytest.mark.slow
QUICK = ("--iters", "6", "--warmup", "1", "--sessions", "1", "--spread", "0")
_NOT_BUCKETS = {"iteration", "run_model", "session", "position", "run", "index"}

Exporter = Callable[[str], Path]
Run = tuple[Path, TraceMeta, str]


@pytest.fixture(scope="session")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Exporter:
    """A model of tests/etprof_tiny_models.py (or the zoo's llama, in its dq8 variant, shared
    with tests/integration/test_llm.py) from the shared export cache (tests/programs.py), copied into a
    folder of this session so each run's trace lands beside it; `name` ending in `+q` is
    exported with --quantize."""
    folder = tmp_path_factory.mktemp("real")
    done: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in done:
            model, _, q = name.partition("+")
            sub = folder / name.replace("+", "_")
            if model == "llama":
                done[name] = program_copy(sub, "llama", "dq8")
            else:
                done[name] = program_copy(sub, f"etprof_tiny_models:{model}", quantize=bool(q))
        return done[name]

    return get


def run_ok(pte: Path, *args: str | Path) -> tuple[Path, TraceMeta, str]:
    result = run_cli("run", pte, *QUICK, *args)
    assert result.returncode == 0, result.stderr
    return _ran(pte, result.stderr)


def _ran(pte: Path, stderr: str) -> tuple[Path, TraceMeta, str]:
    trace = Path(
        next(line.split()[1] for line in stderr.splitlines() if line.startswith("trace: "))
    )
    trace = trace if trace.is_absolute() else pte.parent / trace.name
    return trace, TraceMeta.from_json(sidecar_path(trace).read_text()), stderr


class Traced:
    """One `etprof run` per program, shared by every test reading its trace: the default inputs,
    except the LSTM's nested state (a file), the two methods taking turns and the Llama with an
    8-token prompt. `traced(name)` -> (trace, metadata, stderr); `traced.stdout(name)`."""

    def __init__(self, exported: Exporter, folder: Path) -> None:
        self.exported, self.folder = exported, folder
        self.done: dict[str, tuple[Run, str]] = {}

    def _run(self, name: str) -> tuple[Run, str]:
        if name not in self.done:
            pte = self.exported(name)
            args: tuple[str | Path, ...] = ()
            if name == "lstm":
                import torch

                state = self.folder / "state.pt"
                torch.save(
                    (torch.randn(1, 5, 8), (torch.zeros(1, 1, 16), torch.zeros(1, 1, 16))), state
                )
                # its own trace: a default run of the LSTM writes lstm_xnnpack_fp32.etdp
                args = ("--inputs", state, "--out", pte.parent / "lstm_state.etdp")
            elif name == "two_methods":
                args = ("--method", "forward", "--method", "encode")
            elif name == "llama":
                args = ("--shape", "tokens=1x8", "--out", pte.parent / "prompt8.etdp")
            result = run_cli("run", pte, *QUICK, *args)
            assert result.returncode == 0, result.stderr
            self.done[name] = (_ran(pte, result.stderr), result.stdout)
        return self.done[name]

    def __call__(self, name: str) -> Run:
        return self._run(name)[0]

    def stdout(self, name: str) -> str:
        return self._run(name)[1]


@pytest.fixture(scope="session")
def traced(exported: Exporter, tmp_path_factory: pytest.TempPathFactory) -> Traced:
    return Traced(exported, tmp_path_factory.mktemp("inputs"))


_BREAKDOWNS: dict[tuple[Path, int, int, tuple[str, ...]], Any] = {}


def assert_breakdown_sums(trace: Path, *args: str) -> dict[str, object]:
    """`etprof breakdown` of the trace: in every measured iteration, the buckets add up to the
    run-model time exactly (integer nanoseconds)."""
    st = trace.stat()
    key = (trace, st.st_mtime_ns, st.st_size, args)  # a re-run writing the same path runs again
    if key not in _BREAKDOWNS:  # one `etprof breakdown` per trace and options
        result = run_cli("breakdown", trace, "-f", "json", *args)
        assert result.returncode == 0, result.stderr
        _BREAKDOWNS[key] = json.loads(result.stdout)
    doc = _BREAKDOWNS[key]
    rows = doc["buckets_per_iteration_ns"]
    assert rows
    for row in rows:
        parts = [v for k, v in row.items() if k not in _NOT_BUCKETS and isinstance(v, int)]
        assert sum(parts) == row["run_model"], row
    assert isinstance(doc, dict)
    return doc


def execute_runs(trace: Path) -> int:
    return sum(1 for name in read_dump(trace).run_names if name == "Execute")


@pytest.mark.parametrize("name", ["encoder", "encoder_dq+q"])
def test_transformer_encoder(traced: Traced, name: str) -> None:
    trace, meta, _ = traced(name)
    assert meta.run.inputs.startswith("random:seed=0; forward: input 0 'x' float32 [1, 8, 32]")
    doc = assert_breakdown_sums(trace)
    ops = {str(o["op"]) for o in doc["operators"]}  # type: ignore[attr-defined]
    # dynamically quantized linears: 8-bit activations quantized at run time, 8-bit weights
    gemm = "QC8W) GEMM" if name.endswith("+q") else "Fully Connected (NC, F32) GEMM"
    assert any(gemm in op for op in ops), ops


def test_encoder_fp32_against_dynamic_quant_pairs_its_linears(traced: Traced) -> None:
    """Issue 12 items 2 and 3 on a transformer encoder: its fp32 and dynamically quantized
    programs are one model (they share their module paths; by name "encoder_dq" was another
    model), and each linear kind is one row whose precision says what changed."""
    fp32, _, _ = traced("encoder")
    dq, _, _ = traced("encoder_dq+q")
    result = run_cli("diff", fp32, dq, "--top", "10000", "-f", "json")
    assert result.returncode == 0, result.stderr
    d = json.loads(result.stdout)
    (model,) = [c for c in d["checks"] if c["setting"] == "model"]
    assert model["status"] == "same" and "module paths" in model["basis"]
    assert d["match"] == "operator"
    ops = [r for r in d["contributors"] if r["kind"] == "operator"]
    gemms = [r for r in ops if r["contributor"].startswith("Fully Connected")]
    assert gemms and all(r["calls_a"] == r["calls_b"] > 0 for r in gemms), gemms
    # 8-bit weights, activations quantized at run time ("F32 -> QDU8, F32, QC8W")
    assert any(r["precision"].startswith("F32 -> ") and "QC8W" in r["precision"] for r in gemms), (
        gemms
    )
    (mean,) = [r for r in d["run_model"] if r["statistic"] == "mean"]
    assert sum(r["delta_ms"] for r in d["contributors"]) == pytest.approx(
        mean["delta_ms"], abs=1e-9
    )


def test_token_ids_with_a_float_mask(traced: Traced) -> None:
    trace, meta, stderr = traced("masked_tokens")
    assert (
        "input 0 'ids' int64 [1, 8]: zeros (the program states no vocabulary size"
        in meta.run.inputs
    )
    assert "input 1 'mask' float32 [1, 8]: random normal" in meta.run.inputs
    assert f"inputs: {meta.run.inputs}" in stderr
    assert_breakdown_sums(trace)


def test_kv_cache_decoder_step_exports_and_runs(
    exported: Exporter, traced: Traced, tmp_path: Path
) -> None:
    """Parameters requiring grad plus an in-place cache update: exported as users write it."""
    import torch

    pte = exported("kv_decoder_step")
    trace, meta, _ = traced("kv_decoder_step")
    assert "'input_pos' int64 [1]: zeros (the program states no cache length" in meta.run.inputs
    assert_breakdown_sums(trace)
    given = tmp_path / "step.pt"
    torch.save((torch.randn(1, 1, 16), torch.tensor([5])), given)
    trace, meta, _ = run_ok(pte, "--inputs", given, "--out", tmp_path / "given.etdp")
    assert meta.run.inputs == "file:step.pt"
    assert_breakdown_sums(trace)


def test_two_methods_take_turns_in_one_trace(exported: Exporter, traced: Traced) -> None:
    pte = exported("two_methods")
    trace, meta, stderr = traced("two_methods")
    assert trace.name == "two_methods_xnnpack_fp32.forward+encode.etdp"
    assert meta.run.schedule == ("forward", "encode") * 6
    assert execute_runs(trace) == 12
    assert "forward and encode taking turns" in stderr
    assert "| encode: input 0 'x' float32 [4, 16]" in meta.run.inputs
    from etprof.analyzers.buckets import bucket_frame
    from etprof.trace.loading import load_trace

    loaded = load_trace(trace)
    for method in ("forward", "encode"):  # each method's runs alone, never a blend
        frame = bucket_frame(loaded.for_method(method))
        assert len(frame) == 6
        parts = frame.drop(columns="run_model").sum(axis=1)
        assert (parts == frame["run_model"]).all(), frame
    printed = traced.stdout("two_methods")
    assert "method forward\n" in printed and "method encode\n" in printed
    assert "untraced -" not in printed  # no untraced copy beside methods taking turns
    # one method other than forward names its own trace and leaves forward's alone
    alone, meta, _ = run_ok(pte, "--method", "encode")
    assert alone.name == "two_methods_xnnpack_fp32.encode.etdp" and alone != trace
    assert meta.program.method == "encode" and meta.run.schedule == ("encode",) * 6
    assert execute_runs(alone) == 6
    assert trace.is_file()


def test_lstm_takes_nested_inputs(exported: Exporter, traced: Traced, tmp_path: Path) -> None:
    import torch

    pte = exported("lstm")
    trace, meta, _ = traced("lstm")  # with its (x, (h0, c0)) in state.pt
    assert meta.run.inputs == "file:state.pt"
    assert_breakdown_sums(trace)
    flat = tmp_path / "flat.pt"
    torch.save((torch.randn(1, 5, 8), torch.zeros(1, 1, 16)), flat)
    assert_one_line_error(
        run_cli("run", pte, *QUICK, "--inputs", flat), "has 2 tensors, forward takes 3 inputs"
    )


# --- the zoo's tiny Llama -------------------------------------------------------------------


def test_llama_zoo_runs_with_its_metadata(
    exported: Exporter, traced: Traced, tmp_path: Path
) -> None:
    """With --shape the zoo's Llama runs as any program (without, it is run as an LLM:
    tests/integration/test_llm.py): ids within get_vocab_size, positions within the KV cache."""
    pte = exported("llama")
    trace, meta, _ = traced("llama")  # --shape tokens=1x8
    assert (
        "input 0 'tokens' int64 [1, 8] (--shape; bound [1, 63]): token ids in [0, 256) "
        "(get_vocab_size)"
    ) in meta.run.inputs
    assert (
        "'attn_options_input_pos' int64 [1]: position advancing 8 per run, wrapping "
        "within 64 (get_max_context_len)"
    ) in meta.run.inputs
    assert_breakdown_sums(trace)
    trace, meta, _ = run_ok(pte, "--shape", "0=1x1", "--out", tmp_path / "decode.etdp")
    assert "position advancing 1 per run" in meta.run.inputs
    assert_breakdown_sums(trace)


def test_llama_smaller_inputs_file_is_legal(exported: Exporter, tmp_path: Path) -> None:
    import torch

    pte = exported("llama")
    prompt = tmp_path / "prompt.pt"
    torch.save((torch.randint(0, 256, (1, 16)), torch.tensor([0])), prompt)
    trace, meta, _ = run_ok(pte, "--inputs", prompt, "--out", tmp_path / "prompt.etdp")
    assert meta.run.inputs == "file:prompt.pt"
    assert_breakdown_sums(trace)


def test_llama_bad_requests_are_one_line(exported: Exporter, tmp_path: Path) -> None:
    import torch

    pte = exported("llama")
    assert_one_line_error(
        run_cli("run", pte, *QUICK, "--shape", "tokens=1x200"),
        "--shape tokens=1x200: forward input 0 takes shapes up to [1, 63]",
    )
    assert_one_line_error(run_cli("run", pte, *QUICK, "--shape", "1=2"), "has the static shape [1]")
    assert_one_line_error(
        run_cli("run", pte, *QUICK, "--method", "get_vocab_size"),
        "method 'get_vocab_size'",
        "only returns a constant 256",
        "runnable methods: forward",
    )
    bad = tmp_path / "bad.pt"
    torch.save((torch.tensor([[1000, 3]]), torch.tensor([0])), bad)
    out = tmp_path / "bad.etdp"
    assert_one_line_error(
        run_cli("run", pte, *QUICK, "--inputs", bad, "--out", out),
        "run 1 of forward failed",
        "error: 0x12",
        "the inputs from",
        "are the likely cause",
    )
    assert not out.exists() and not sidecar_path(out).exists()


# --- operators below XNNPACK's timer resolution (issue 12 item 1) ------------------------------


def test_lstm_operators_below_timer_resolution_are_not_delegate_overhead(traced: Traced) -> None:
    """Most of the LSTM's XNNPACK operators take under 1 µs and read 0 ns. Their possible time
    (at most 1 µs each, within what their call holds beyond its operators) is its own bucket, not
    delegate overhead; the breakdown warns, and the fallback cost is given as a range."""
    import numpy as np

    from etprof import analyzers
    from etprof.analyzers.breakdown import BreakdownOptions
    from etprof.trace.loading import load_trace
    from etprof.trace.model import DELEGATE_CALL, DELEGATE_OP

    trace_path, _, _ = traced("lstm")
    assert_breakdown_sums(trace_path)  # the command line's JSON: exact sums in every iteration
    trace = load_trace(trace_path)
    doc = json.loads(
        json.dumps(analyzers.run("breakdown", trace, BreakdownOptions()).to_dict(), default=str)
    )
    rows = {r["bucket"]: r for r in doc["buckets"]}
    res = doc["resolution"][0]
    assert res["backend"] == "XnnpackBackend" and res["resolution_ns"] == 1000

    # the bound, recomputed from the events: per call, min(max(call - ops, 0), 1 µs x zeros)
    measured = trace.measured()
    calls, ops = measured.of_kind(DELEGATE_CALL), measured.of_kind(DELEGATE_OP)
    key = ["iteration", "instruction_id"]
    call_ns = calls.groupby(key)["duration_ns"].sum()
    op_ns = ops.groupby(key)["duration_ns"].sum().reindex(call_ns.index, fill_value=0)
    zeros = (
        (ops["duration_ns"] < 1000)
        .groupby([ops[k] for k in key])
        .sum()
        .reindex(call_ns.index, fill_value=0)
    )
    bound = np.minimum((call_ns - op_ns).clip(lower=0), 1000 * zeros)
    n = measured.iterations_present()
    assert rows["delegate_unresolved"]["mean_ms"] * 1e6 == pytest.approx(bound.sum() / n)
    assert res["below_resolution"] == pytest.approx(float(zeros.sum()) / n)
    per_iter = doc["buckets_per_iteration_ns"]
    assert sum(r["delegate_unresolved"] for r in per_iter) == int(bound.sum())
    # overhead is what is left of the calls: compute + glue + unresolved + overhead = calls
    parts = sum(
        rows[b]["mean_ms"]
        for b in ("delegate_compute", "delegate_glue", "delegate_unresolved", "delegate_overhead")
    )
    assert parts * 1e6 == pytest.approx(call_ns.sum() / n)

    # Whether it warns follows from what it measured: most of the LSTM's operators read 0 here,
    # but one preempted operator can read milliseconds and outweigh them all. So the flag is
    # recomputed from the figures beside it, and the text follows the flag, either way.
    unresolved, resolved = res["unresolved_ms"], res["resolved_ms"]
    assert unresolved == pytest.approx(rows["delegate_unresolved"]["mean_ms"])
    assert resolved == pytest.approx(
        rows["delegate_compute"]["mean_ms"] + rows["delegate_glue"]["mean_ms"]
    )
    others = sorted(
        (
            r["mean_ms"]
            for r in doc["buckets"]
            if r["bucket"] not in ("run_model", "delegate_unresolved")
        ),
        reverse=True,
    )
    flips = unresolved >= others[0] - others[1]  # the largest bucket could change
    assert res["warn"] == (
        unresolved > 0 and (res["unresolved_share_pct"] >= 10 or unresolved > resolved or flips)
    ), res
    text = run_cli("breakdown", trace_path)
    assert text.returncode == 0, text.stderr
    assert "XNNPACK operators below timer resolution" in text.stdout  # its own row, always
    words = " ".join(text.stdout.split())
    warning = (
        f"warning: {res['below_resolution_pct']:.1f}% of the XNNPACK operator events "
        f"({res['below_resolution']:.1f} of {res['operators']:.1f} per run) are shorter "
        "than its timer resolution (1 µs)"
    )
    assert (warning in words) == res["warn"], words
    headline = " ".join(text.stdout.split("\n\n")[0].split())  # its first paragraph
    assert ("% below timer resolution)" in headline) == res["warn"], headline
    # the extra delegate calls are one call's fixed cost each, never the calls' whole overhead
    # (which holds the sub-resolution operators): the bound is said (issue 22)
    fb = doc["fallback"]
    cost = next(line for line in fb["explanation"] if "fallback and boundary" in line)
    k = fb["call_cost"]
    assert k["fixed_us"] <= k["smallest_us"] and "the extra delegate calls are" in cost.lower()
    assert f"{fb['breaks']} x {k['smallest_us']:.1f} µs" in cost, cost


# --- --by module inside a delegate (issue 12 item 6) -------------------------------------------


def test_conv_norm_gelu_delegate_operators_go_to_their_own_modules(traced: Traced) -> None:
    """XNNPACK's blob keeps each node's debug handle, which the ETRecord ties to a module: a
    delegate covering several modules (act + proj) charges its operators to their own modules
    and says how much (its overhead) stays on their common module."""
    trace_path, meta, _ = traced("conv_norm_gelu")
    delegates = [i for i in meta.program.instructions if i.kind == "delegate"]
    spanning = [i for i in delegates if len({m for m in i.modules if m}) > 1]
    assert spanning  # the GELU + 1x1 conv delegate
    for i in delegates:
        assert len(i.graph_modules) == len(i.graph_handles) == len(i.graph)
        assert {m for m in i.graph_modules if m} == {m for m in i.modules if m}
    doc = assert_breakdown_sums(trace_path, "--by", "module")
    modules = doc["modules"]
    rows = {r["module"]: r for r in modules["rows"]}
    delegated = sum(r["delegated_ms"] for r in modules["rows"])
    calls = sum(b["call_ms"] for b in doc["blocks"])
    assert delegated == pytest.approx(calls)  # moved between rows, never created or lost
    span_ms = sum(
        b["call_ms"] for b in doc["blocks"] if b["instruction"] in {i.id for i in spanning}
    )
    # what stayed on the common module of the spanning delegate, plus what went to its own
    # modules, is that delegate's time
    assert modules["unplaced_ms"] + modules["placed_ms"] == pytest.approx(span_ms)
    # The spanning delegate's GELU (act) and 1x1 convolution (proj, a GEMM) are tied to their
    # modules; its transposes (the permutes in forward) to none. Each of those two operators
    # takes about a microsecond, XNNPACK's timer resolution, so the time moved is the trace's
    # own: 0 where they read 0, never a guess.
    from etprof.trace.loading import load_trace
    from etprof.trace.model import DELEGATE_OP

    measured = load_trace(trace_path).measured()
    ops = measured.of_kind(DELEGATE_OP)
    ops = ops[ops["instruction_id"].isin({i.id for i in spanning})]
    kind = ops["delegate_op"].astype(str)
    n = measured.iterations_present()
    own = {"act": kind.str.startswith("GELU"), "proj": kind.str.startswith("Fully Connected")}
    assert all(mine.sum() == n for mine in own.values()), kind.value_counts()  # one per run
    assert (kind[~(own["act"] | own["proj"])].str.startswith("Transpose")).all()
    moved_ns = {m: float(ops.loc[mine, "duration_ns"].sum()) / n for m, mine in own.items()}
    assert modules["placed_ms"] * 1e6 == pytest.approx(sum(moved_ns.values()))
    for module, ns in moved_ns.items():  # a row of its own, whatever its operator read
        assert rows[module]["delegated_ms"] * 1e6 == pytest.approx(ns), rows
    assert rows["(root)"]["delegated_ms"] == pytest.approx(span_ms - modules["placed_ms"])
    text = run_cli("breakdown", trace_path, "--by", "module")
    assert "could not be placed below the common module" in text.stdout


# --- diff, report and timeline on every program's trace (issue 11) ------------------------------

PROGRAMS = [
    "encoder",
    "encoder_dq+q",
    "masked_tokens",
    "kv_decoder_step",
    "two_methods",
    "lstm",
    "llama",
]


@pytest.mark.parametrize("name", PROGRAMS)
def test_diff_report_and_timeline_read_the_trace(traced: Traced, name: str, tmp_path: Path) -> None:
    """The run tests' own trace, per method: diffed against itself every operator pairs up and
    nothing is significant; the Chrome timeline nests and its Method::execute is that
    iteration's run model; the HTML report names every method and bucket."""
    import html

    trace, meta, _ = traced(name)
    methods = list(dict.fromkeys(meta.run.schedule)) or [meta.program.method]
    labels: set[str] = set()
    for method in methods:
        pick = ("--method", method) if len(methods) > 1 else ()
        doc = assert_breakdown_sums(trace, *pick)
        labels |= {str(b["label"]) for b in doc["buckets"]}
        diff = run_cli("diff", trace, trace, "--top", "10000", "-f", "json", *pick)
        assert diff.returncode == 0, diff.stderr
        d = json.loads(diff.stdout)
        c = d["comparison"]
        assert (c["significant"], c["verdict"], c["delta_ms"]) == (
            False,
            "no significant change",
            0.0,
        ), d["headline"]
        assert c["n_a"] == c["n_b"] == len(doc["buckets_per_iteration_ns"])
        assert d["contributors"] and d["contributors_sum_ms"] == 0.0
        for row in d["contributors"]:  # every operator paired with itself
            assert row["a_ms"] == row["b_ms"], row
            if row["kind"] == "operator":
                assert row["calls_a"] == row["calls_b"] > 0, row
        assert any(row["kind"] == "operator" for row in d["contributors"])
        for row in d["buckets"]:
            assert row["a_ms"] == row["b_ms"], row
        out = tmp_path / f"{method}.json"
        made = run_cli("timeline", trace, "-o", out, *pick)
        assert made.returncode == 0, made.stderr
        slices = check_chrome_trace(json.loads(out.read_text()))
        (execute,) = [e for e in slices if e["args"]["kind"] == "run_model"]
        (row,) = [
            r
            for r in doc["buckets_per_iteration_ns"]
            if r["iteration"] == execute["args"]["iteration"]
        ]
        assert round(execute["dur"] * 1000) == row["run_model"]
    report = tmp_path / "report.html"
    made = run_cli("report", trace, "-o", report)
    assert made.returncode == 0, made.stderr
    page = report.read_text(encoding="utf-8")
    for label in labels | set(methods):
        assert html.escape(label) in page, label


def test_per_method_means_equal_the_inspectors(traced: Traced) -> None:
    """The two methods' run-model and delegate-call means, each over its own runs after its
    warm-up, against ExecuTorch's Inspector's blocks (one per method's event signature)."""
    pytest.importorskip("executorch.devtools")
    from etprof.trace.etdump.inspector_engine import inspector_blocks
    from etprof.trace.loading import load_trace

    trace, meta, _ = traced("two_methods")
    loaded = load_trace(trace)
    blocks = inspector_blocks(trace)
    assert len(blocks) == 2
    # both methods are one DELEGATE_CALL: a block is the method's whose run-model durations are
    # that method's runs (never a blend of both)
    execute = [next(v for k, v in b.items() if k[0] == "Method::execute") for b in blocks]
    owner = []
    for method in ("forward", "encode"):
        runs = loaded.for_method(method).events
        mine = set(runs.loc[runs["kind"] == "run_model", "duration_ns"].astype(float))
        owner.append([i for i, d in enumerate(execute) if mine and mine <= set(d)])
    assert sorted(owner) == [[0], [1]], owner
    for method, (i,) in zip(("forward", "encode"), owner, strict=False):
        block = blocks[i]
        doc = assert_breakdown_sums(trace, "--method", method)
        warmup = meta.run.warmup
        durations = execute[i]
        assert len(durations) == meta.run.schedule.count(method)
        mean_ns = sum(durations[warmup:]) / len(durations[warmup:])
        assert doc["run_model"]["mean_ms"] * 1e6 == pytest.approx(mean_ns, rel=1e-12)
        for b in doc["blocks"]:
            theirs = block[("DELEGATE_CALL", int(b["instruction"]))][warmup:]
            assert b["call_ms"] * 1e6 == pytest.approx(sum(theirs) / len(theirs), rel=1e-12)


# --- fallback explanations on real programs (issue 12 item 4) ------------------------------------

_VAGUE = "replace them in the model"


def fallback_of(trace: Path) -> dict[str, Any]:
    result = run_cli("breakdown", trace, "-f", "json")
    assert result.returncode == 0, result.stderr
    fallback: dict[str, Any] = json.loads(result.stdout)["fallback"]
    return fallback


def test_fallbacks_get_their_reasons_and_fixes(exported: Exporter, traced: Traced) -> None:
    """SDPA's decomposition, chunk, an explicit expand, select, unsqueeze and squeeze: each with
    the reason XNNPACK's configs give and a fix; and the fixes applied (FallbacksFixed, the same
    function) make a program XNNPACK takes whole."""
    fb = fallback_of(traced("fallbacks")[0])
    text = " ".join(fb["explanation"])
    assert _VAGUE not in text
    assert "no partitioner config for mul" not in text
    causes = {c["op"]: c for c in fb["causes"]}
    sdpa = {
        "aten::mul.Scalar_out",
        "aten::eq.Scalar_out",
        "aten::logical_not.out",
        "aten::any.out",
        "aten::where.self_out",
    }
    assert sdpa <= set(causes), sorted(causes)
    assert {causes[op]["decomposed_from"] for op in sdpa} == {"scaled_dot_product_attention"}
    line = next(x for x in fb["explanation"] if "pieces of scaled_dot_product_attention" in x)
    assert "mul.Tensor" in line and "bool tensors" in line and "torch.softmax(q @ k" in line
    for op, fix in [
        ("split_with_sizes_copy", "slice instead"),
        ("expand_copy", "let the element-wise operator broadcast"),
        ("select_copy", "index with a slice and reshape"),
        ("squeeze_copy", "reshape instead"),
        ("unsqueeze_copy", "trailing dimension"),
    ]:
        mine = [x for x in fb["explanation"] if x.startswith(f"aten::{op}.")]
        assert len(mine) == 1 and fix in mine[0], (op, mine)
    # a shape operator is a cause of its own, never glue serving itself
    glue = {row["op"] for row in fb["instructions"] if row["class"] == "glue"}
    assert not glue & {"aten::select_copy.int_out", "aten::squeeze_copy.dims_out"}, glue

    from etprof.backends.graphs import read_program
    from etprof.zoo.export import summarize

    fixed = summarize(read_program(exported("fallbacks_fixed")))
    assert (fixed.delegate_calls, fixed.portable_calls) == (1, 0), fixed.portable_ops


def test_kv_cache_fallbacks_point_at_the_in_place_update(traced: Traced) -> None:
    fb = fallback_of(traced("kv_decoder_step")[0])
    text = " ".join(fb["explanation"])
    assert _VAGUE not in text
    for op in ("aten::index_put.out", "aten::copy_"):
        line = next(x for x in fb["explanation"] if x.startswith(op))
        assert "run_reinplace_pass=True" in line, line
    assert "write-back of a mutated buffer" in text


def test_lstm_shape_operators_are_causes_not_glue_serving_themselves(traced: Traced) -> None:
    fb = fallback_of(traced("lstm")[0])
    rows = fb["instructions"]
    for op in ("aten::squeeze_copy.dims_out", "aten::select_copy.int_out"):
        classes = {r["class"] for r in rows if r["op"] == op}
        assert classes and "glue" not in classes, (op, classes)
    assert _VAGUE not in " ".join(fb["explanation"])


# --- advice whose precondition is checked against the program (issue 22) -----------------------


def explanation(traced: Traced, name: str) -> list[str]:
    lines: list[str] = fallback_of(traced(name)[0])["explanation"]
    return lines


def line_of(lines: list[str], op: str) -> str:
    (line,) = [x for x in lines if x.startswith(f"aten::{op}.")]
    return line


def test_a_bf16_program_is_told_it_is_bf16_not_to_write_the_attention_out(
    exported: Exporter, traced: Traced
) -> None:
    """The wheel's SdpaModule with bfloat16 inputs: written out in bf16 the attention lowers to
    0 XNNPACK partitions (worse than SDPA's 3), so the fix is float32 first; in float32 the
    written-out attention's matmuls and softmax are XNNPACK's (both lowerings checked here)."""
    from etprof.backends.graphs import read_program
    from etprof.zoo.export import summarize

    lines = explanation(traced, "sdpa_bf16")
    assert any("computes in bfloat16" in x for x in lines), lines
    sdpa = next(x for x in lines if "pieces of scaled_dot_product_attention" in x)
    assert "Fix (checked: " in sdpa and "compute in float32 first" in sdpa
    assert "lowers to 0 XNNPACK partitions" in sdpa
    assert not [x for x in lines if "Fix (checked: the program computes in float32)" in x]
    bf16 = summarize(read_program(exported("attention_written_bf16")))
    fp32 = summarize(read_program(exported("attention_written")))
    assert bf16.delegate_calls == 0 and "aten::bmm.out" in bf16.portable_ops
    assert fp32.delegate_calls >= 1
    assert not {"aten::bmm.out", "aten::_softmax.out", "aten::mul.out"} & set(fp32.portable_ops)


def test_a_mean_without_keepdim_is_told_to_keep_the_dims(
    exported: Exporter, traced: Traced
) -> None:
    """ConvHardswish's final `y.mean((2, 3))`: keepdim=False is what XNNPACK refuses; with
    keepdim=True and a flatten the same model is one partition with no portable mean."""
    from etprof.backends.graphs import read_program
    from etprof.zoo.export import summarize

    line = line_of(explanation(traced, "tiny"), "mean")
    assert "no known fix" not in line
    assert "Fix (checked: every instance is a mean over dims (2, 3) of a 4-D tensor" in line
    assert "keepdim=True).flatten(1)" in line
    fixed = summarize(read_program(exported("pooled_keepdim")))
    assert "aten::mean.out" not in fixed.portable_ops, fixed.portable_ops


def test_comparisons_compare_and_output_bool(traced: Traced) -> None:
    lines = explanation(traced, "compare")
    for op in ("le", "ge"):
        line = line_of(lines, op)
        assert "compares float32 tensors and outputs a bool tensor" in line, line
        assert "computes on bool tensors" not in line


def test_an_expand_feeding_a_matmul_is_not_the_element_wise_fix(traced: Traced) -> None:
    """The Llama's repeat_kv broadcasts a matmul operand's batch dimensions; the fallbacks
    model's explicit expand feeds a multiplication. Only the second gets "drop the expand"."""
    llama = line_of(explanation(traced, "llama"), "expand_copy")
    assert "batch dimensions of a matmul operand" in llama and "no known fix" in llama
    assert "let the element-wise operator broadcast" not in llama
    mine = line_of(explanation(traced, "fallbacks"), "expand_copy")
    assert "Fix (checked: the program computes in float32)" in mine
    assert "let the element-wise operator broadcast" in mine


def test_select_and_squeeze_are_lstm_pieces_only_in_an_lstm(traced: Traced) -> None:
    for name in ("encoder", "llama"):
        lines = explanation(traced, name)
        for op in ("select_copy", "squeeze_copy"):
            assert "LSTM" not in line_of(lines, op), (name, op)
    lstm = explanation(traced, "lstm")
    assert all("nn.LSTM" in line_of(lstm, op) for op in ("select_copy", "squeeze_copy"))
    # the Llama's selects of its int64 position are index arithmetic, with no fix
    select = line_of(explanation(traced, "llama"), "select_copy")
    assert "on integer tensors (int64[1]: index arithmetic) have no fix" in select, select


def test_no_fix_is_called_measured_without_a_comparison(traced: Traced) -> None:
    for name in ("fallbacks", "llama", "encoder", "lstm", "tiny", "sdpa_bf16", "compare"):
        for line in explanation(traced, name):
            assert "measured" not in line, (name, line)
            if "Fix (untested" in line:
                assert "Fix (untested: " in line, line  # with its condition
