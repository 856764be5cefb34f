"""A real program with two methods, run the way an app runs one (the methods taking turns), read
back per method: each method's means equal ExecuTorch's Inspector's, never one blended mean.

The program (tiny: a linear layer and its activations) is exported in the test with
``torch.export`` of each method and ``to_edge_transform_and_lower({"forward": ..., "encode":
...}, partitioner=[XnnpackPartitioner()])``, once per session; the trace is recorded with the
pybindings (``run_method`` alternating) and its schedule written into the sidecar here.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from etprof import analyzers
from etprof.analyzers.breakdown import BreakdownOptions, MethodBreakdowns
from etprof.backends.graphs import read_program
from etprof.trace.loading import load_trace
from etprof.trace.sidecar import RunSettings, TraceMeta, sidecar_path

pytestmark = pytest.mark.slow
ITERS, WARMUP = 12, 2  # runs of each method, and the first ones dropped


@pytest.fixture(scope="session")
def two_method_trace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch = pytest.importorskip("torch")
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower
    from executorch.extension.pybindings.portable_lib import _load_for_executorch

    class TwoMethods(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.proj = torch.nn.Linear(16, 16)
            self.head = torch.nn.Linear(16, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            # cumsum has no XNNPACK config: a portable kernel between two delegates
            return self.head(torch.cumsum(torch.relu(self.proj(x)), dim=1))

        def encode(self, x: torch.Tensor) -> torch.Tensor:
            return torch.tanh(self.proj(x)) * 2.0

    class Encode(torch.nn.Module):
        def __init__(self, m: TwoMethods) -> None:
            super().__init__()
            self.m = m

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.m.encode(x)

    torch.manual_seed(0)
    model = TwoMethods().eval()
    x = torch.randn(2, 16)
    programs = {
        "forward": torch.export.export(model, (x,)),
        "encode": torch.export.export(Encode(model), (x,)),
    }
    lowered = to_edge_transform_and_lower(
        programs, partitioner=[XnnpackPartitioner()], generate_etrecord=True
    )
    folder = tmp_path_factory.mktemp("two_methods")
    pte = folder / "two_methods.pte"
    program = lowered.to_executorch()
    pte.write_bytes(program.buffer)
    program.get_etrecord().save(str(folder / "two_methods.etrecord"))
    module = _load_for_executorch(str(pte), enable_etdump=True)
    for _ in range(ITERS):  # as an app does: the methods take turns
        module.run_method("forward", (x,))
        module.run_method("encode", (x,))
    trace = folder / "two_methods.etdp"
    module.write_etdump_result_to_file(str(trace))
    meta = TraceMeta(
        program=read_program(pte),
        run=RunSettings(
            iters=ITERS, warmup=WARMUP, threads=1, schedule=("forward", "encode") * ITERS
        ),
    )
    sidecar_path(trace).write_text(meta.to_json(), encoding="utf-8")
    return trace


def inspector_means(
    path: Path, methods: dict[str, set[tuple[str, int]]]
) -> dict[str, dict[tuple[str, int], float]]:
    """Per method, the Inspector's mean of each event over that method's runs after its
    warm-up; a block is matched to the method whose events it holds."""
    from etprof.trace.etdump.inspector_engine import inspector_blocks

    out: dict[str, dict[tuple[str, int], float]] = {}
    for block in inspector_blocks(path):
        keys = {k for k in block if k[0] in ("DELEGATE_CALL", "OPERATOR_CALL")}
        (method,) = [m for m, calls in methods.items() if calls == keys]
        assert method not in out  # one block per method: its runs share one signature
        out[method] = {k: float(np.mean(v[WARMUP:])) for k, v in block.items()}
        assert all(len(v) == ITERS for v in block.values())
    return out


def test_program_has_both_methods(two_method_trace: Path) -> None:
    program = read_program(two_method_trace.with_suffix(".pte"))
    assert sorted(program.method_names()) == ["encode", "forward"]  # the .pte sorts them
    assert program.method == "forward"
    for m in program.all_methods():
        assert any(i.kind == "delegate" and i.name == "XnnpackBackend" for i in m.instructions)


def test_per_method_means_equal_the_inspectors(two_method_trace: Path) -> None:
    trace = load_trace(two_method_trace)
    assert trace.methods == ("forward", "encode")
    result = analyzers.run("breakdown", trace, BreakdownOptions())
    assert isinstance(result, MethodBreakdowns)
    ev = trace.events
    calls = ev[ev["kind"].isin(["delegate_call", "operator_call"])]
    methods = {
        m: {(str(n), int(i)) for n, i in zip(g["name"], g["instruction_id"], strict=False)}
        for m, g in calls.groupby(calls["method"].astype(str))
        if m
    }
    assert methods["forward"] != methods["encode"]
    theirs = inspector_means(two_method_trace, methods)
    means = {}
    for section in result.sections:
        m = section.settings["method"]
        means[m] = section.stats.mean_ms
        assert section.stats.n == ITERS - WARMUP
        ref = theirs[m]
        assert section.stats.mean_ms * 1e6 == pytest.approx(
            ref[("Method::execute", -1)]
            if ("Method::execute", -1) in ref
            else ref[("Method::execute", 0)],
            rel=1e-12,
        )
        # every delegate call of the method, keyed by (method, instruction id)
        for r in section.blocks.blocks.itertuples():
            assert r.call_ms * 1e6 == pytest.approx(
                ref[("DELEGATE_CALL", r.instruction)], rel=1e-12
            )
        # buckets sum exactly to run model, per method and iteration
        b = section.buckets.per_iteration
        assert (b.drop(columns="run_model").sum(axis=1) == b["run_model"]).all()
    assert means["forward"] != means["encode"]  # two figures, not one blend


def test_methods_inferred_without_the_schedule_give_the_same_means(
    two_method_trace: Path, tmp_path: Path
) -> None:
    bare = tmp_path / "from_another_runner.etdp"
    shutil.copy(two_method_trace, bare)  # no sidecar: as from an app, read with --pte
    pte = two_method_trace.with_suffix(".pte")
    inferred = load_trace(bare, pte=pte).with_warmup(WARMUP)
    scheduled = load_trace(two_method_trace)
    assert inferred.methods == scheduled.methods
    a = inferred.events.loc[inferred.events["iteration"] >= 0, ["method", "iteration"]]
    b = scheduled.events.loc[scheduled.events["iteration"] >= 0, ["method", "iteration"]]
    assert a.astype(str).values.tolist() == b.astype(str).values.tolist()
    for m in scheduled.methods:
        x = analyzers.run("runmodel", inferred.for_method(m))
        y = analyzers.run("runmodel", scheduled.for_method(m))
        assert x.samples_ms == y.samples_ms


def test_every_method_gets_its_module_paths(two_method_trace: Path) -> None:
    from etprof.program.etrecord import attach_modules

    pte = two_method_trace.with_suffix(".pte")
    info = attach_modules(read_program(pte), two_method_trace.with_suffix(".etrecord"))
    modules = {m.name: {p for i in m.instructions for p in i.modules} for m in info.methods}
    assert "proj" in modules["forward"] and "head" in modules["forward"]
    # encode was exported through a wrapper holding the model as `m`
    assert "m.proj" in modules["encode"] and not any("head" in p for p in modules["encode"])
    trace = load_trace(
        two_method_trace, pte=pte, etrecord=two_method_trace.with_suffix(".etrecord")
    )
    for m in ("forward", "encode"):
        rows = analyzers.run("breakdown", trace, BreakdownOptions(method=m, by="module"))
        assert rows.modules.known, m


def test_the_summary_of_another_method_names_it(two_method_trace: Path) -> None:
    """`etprof run --method encode` prints the summary of encode: its headline says so (it read
    as the program's run model); forward, the default, keeps the plain headline."""
    trace = load_trace(two_method_trace)
    encode = analyzers.run("summary", trace.for_method("encode"))
    forward = analyzers.run("summary", trace.for_method("forward"))
    assert encode.headline().startswith(f"{trace.model} encode: run model ")
    assert forward.headline().startswith(f"{trace.model}: run model ")
