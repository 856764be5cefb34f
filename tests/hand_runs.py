"""Hand-built runs of a trace (events of one Method::execute) written as an ETDump with
tests/etdump_builder.py: no torch. Shared by the attribution, breakdown and diff tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from etprof.program.types import Instruction, ProgramInfo
from etprof.trace.sidecar import RunSettings, TraceMeta, sidecar_path

import etdump_builder


@dataclass(frozen=True)
class Ev:
    name: str | None
    instruction: int
    start: int
    end: int
    delegate: str | None = None  # delegate_debug_id_str (XNNPACK's "Convolution ... #1")
    chain: int = 0


@dataclass(frozen=True)
class Run:
    name: str
    events: list[Ev] = field(default_factory=list)


def write_etdump(path: Path, runs: list[Run]) -> Path:
    body = etdump_builder.build(
        [
            etdump_builder.Run(
                run.name,
                [
                    etdump_builder.Prof(
                        e.name, e.instruction, e.start, e.end, delegate=e.delegate, chain=e.chain
                    )
                    for e in run.events
                ],
            )
            for run in runs
        ]
    )
    path.write_bytes(body)
    return path


def default_run() -> Run:
    return Run(
        "Default",
        [
            Ev("Method::init", 0, 100, 900, chain=-1),
            Ev("Program::load_method", 0, 50, 950, chain=-1),
        ],
    )


def xnnpack_ops(instruction: int, start: int, ops: list[tuple[str, int]]) -> list[Ev]:
    """XNNPACK's events: whole-microsecond durations laid end to end from the call's start."""
    out, t = [], start
    for name, us in ops:
        out.append(Ev(None, instruction, t, t + 1000 * us, delegate=name))
        t += 1000 * us
    return out


# Per iteration i of the hand-built "model" trace (times in ns):
#   instruction 0: DELEGATE_CALL of 45_000 + 1_000*i around Convert 2us, Conv 30us, Transpose 5us
#   instruction 1: OPERATOR_CALL of 20_000 around native_call_mean.out of 18_500
#   instruction 2: DELEGATE_CALL of 6_500 around Convert #1 3us and Fully Connected #1 4us:
#                  the operators (7 us) exceed the call: overhead -500
#   Method::execute: 80_000 + 1_000*i


MODEL_ITERS = 4
MODEL_WARMUP = 1


def model_runs(iters: int = MODEL_ITERS) -> list[Run]:
    runs = [default_run()]
    for i in range(iters):
        t = 1_000_000 * (i + 1)
        ev = xnnpack_ops(
            0,
            t + 1_000,
            [
                ("Convert (NC) #1", 2),
                ("Convolution (NHWC, QC8) IGEMM #1", 30),
                ("Transpose (ND, X8) #1", 5),
            ],
        )
        ev.append(Ev("DELEGATE_CALL", 0, t + 500, t + 45_500 + 1_000 * i))
        ev.append(Ev("native_call_mean.out", 1, t + 50_500, t + 69_000))
        ev.append(Ev("OPERATOR_CALL", 1, t + 50_000, t + 70_000))
        ev += xnnpack_ops(
            2, t + 71_000, [("Convert (NC) #1", 3), ("Fully Connected (NC, QS8, QC8W) GEMM #1", 4)]
        )
        ev.append(Ev("DELEGATE_CALL", 2, t + 71_000, t + 77_500))
        ev.append(Ev("Method::execute", 0, t, t + 80_000 + 1_000 * i, chain=-1))
        runs.append(Run("Execute", ev))
    return runs


MODEL_META = TraceMeta(
    program=ProgramInfo(
        path="model.pte",
        model="model",
        instructions=(
            Instruction(0, "delegate", "XnnpackBackend", 0, ("features.0.0", "features.0.1")),
            Instruction(1, "operator", "aten::mean.out", -1, ("avgpool",)),
            Instruction(2, "delegate", "XnnpackBackend", 1, ("classifier.0",)),
        ),
        delegates=("XnnpackBackend", "XnnpackBackend"),
    ),
    run=RunSettings(iters=MODEL_ITERS, warmup=MODEL_WARMUP, threads=1),
)


def write_model_trace(folder: Path, with_meta: bool = True) -> Path:
    path = write_etdump(folder / "model.etdp", model_runs())
    if with_meta:
        sidecar_path(path).write_text(MODEL_META.to_json(), encoding="utf-8")
    return path


def write_empty_trace(folder: Path, iters: int = 12) -> Path:
    """Execute runs holding only Method::execute: no operator or delegate events at all."""
    runs = [default_run()] + [
        Run(
            "Execute",
            [Ev("Method::execute", 0, 10_000 * (i + 1), 10_000 * (i + 1) + 3_000 + i, chain=-1)],
        )
        for i in range(iters)
    ]
    return write_etdump(folder / "empty.etdp", runs)
