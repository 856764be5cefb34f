"""Export a model to an ExecuTorch program (.pte) and its ETRecord, as ExecuTorch's XNNPACK
example does (examples/xnnpack/aot_compiler.py): torch.export, optional static per-channel
8-bit quantization (PT2E, calibrated on the example input), re-export, lowering to XNNPACK
(or none: the portable variant), to_executorch.

The two partitioners are the story of ExecuTorch's 2023 MobileNet benchmarks: "quant-only"
delegates only quantized operators, so MobileNetV3's float hardswish and hardsigmoid stay on
portable kernels; "mixed" (today's default XnnpackPartitioner) delegates those too.

torch and executorch are imported only inside `export_model`, so importing this module is cheap.
"""

from __future__ import annotations

import os
import re
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from etprof import zoo
from etprof.backends.graphs import read_program
from etprof.errors import EtprofError, InputError
from etprof.program.types import ProgramInfo
from etprof.util.output import atomic_path
from etprof.util.quiet import silenced

if TYPE_CHECKING:
    import torch

PARTITIONERS = ("mixed", "quant-only")
# what --backend lowers to (openvino: etprof.zoo.export_openvino); "xnnpack+openvino": XNNPACK's
# partitioner first, OpenVINO's takes what it left (a program split between two backends)
BACKENDS = ("xnnpack", "openvino", "xnnpack+openvino")
ETRECORD_SUFFIX = ".etrecord"


class ExportError(EtprofError):
    """A model could not be exported (torch.export or lowering failed)."""


@dataclass(frozen=True)
class ExportOptions:
    quantize: bool = False
    delegate: bool = True
    partitioner: str = "mixed"  # "mixed" | "quant-only"; only used with delegate
    backend: str = "xnnpack"  # one of BACKENDS; only used with delegate


# The four variants `etprof bench` compares, in the order of the 2023 tables (plus quant-only).
STANDARD_VARIANTS: dict[str, ExportOptions] = {
    "portable": ExportOptions(quantize=False, delegate=False),
    "xnnpack_fp32": ExportOptions(quantize=False, delegate=True, partitioner="mixed"),
    "xnnpack_q8": ExportOptions(quantize=True, delegate=True, partitioner="mixed"),
    "xnnpack_q8_quantonly": ExportOptions(quantize=True, delegate=True, partitioner="quant-only"),
}


@dataclass(frozen=True)
class ProgramSummary:
    """What ran where in a program: delegate calls, and operators left on portable kernels."""

    instructions: int
    delegate_calls: int
    portable_ops: Counter[str]  # operator name ("aten::hardswish.out") -> instruction count
    backends: tuple[str, ...]

    @property
    def portable_calls(self) -> int:
        return sum(self.portable_ops.values())


@dataclass(frozen=True)
class ExportResult:
    pte: Path
    etrecord: Path | None
    summary: ProgramSummary
    seconds: float  # wall time of the whole export, model building included


def check_options(options: ExportOptions) -> None:
    """Refuse combinations that cannot give a useful program, before any slow work."""
    if options.backend not in BACKENDS:
        raise InputError(
            f"unknown backend '{options.backend}'", f"use one of {', '.join(BACKENDS)}"
        )
    if "openvino" in options.backend:
        if not options.delegate:
            raise InputError(
                f"--backend {options.backend} needs --delegate",
                "drop --backend or drop --no-delegate",
            )
        if options.quantize and options.backend != "openvino":
            raise InputError(
                f"etprof quantizes for one backend, not {options.backend}",
                "drop --quantize or use --backend openvino",
            )
        if options.partitioner != "mixed":
            raise InputError(
                "--partitioner chooses among XNNPACK's partitioners",
                f"drop --partitioner with --backend {options.backend}",
            )
        from etprof.zoo.export_openvino import check_available

        check_available()
    if options.partitioner not in PARTITIONERS:
        raise InputError(
            f"unknown partitioner '{options.partitioner}'", f"use one of {', '.join(PARTITIONERS)}"
        )
    if options.partitioner == "quant-only" and not options.delegate:
        raise InputError(
            "--partitioner quant-only needs --delegate", "drop --partitioner or drop --no-delegate"
        )
    if options.partitioner == "quant-only" and not options.quantize:
        raise InputError(
            "the quant-only partitioner delegates only quantized operators and the model is "
            "not quantized, so nothing would be delegated",
            "add --quantize or use --partitioner mixed",
        )


def check_llm_options(spec: zoo.ModelSpec, options: ExportOptions) -> None:
    if spec.llm and options.backend != "xnnpack":
        raise InputError(
            f"{spec.name} is an LLM, which etprof exports the way ExecuTorch's "
            "LLM export does: to XNNPACK only",
            "drop --backend",
        )
    if spec.llm and options.partitioner == "quant-only":
        raise InputError(
            f"{spec.name} is quantized with dynamic 8-bit linears, which the quant-only "
            "partitioner (static quantization only) would not delegate",
            "drop --partitioner quant-only",
        )


def variant_name(
    model: str,
    quantize: bool,
    delegate: bool,
    partitioner: str = "mixed",
    *,
    llm: bool = False,
    backend: str = "xnnpack",
) -> str:
    """File stem as ExecuTorch's examples name it: mv2_portable, mv3_xnnpack_q8,
    mv3_openvino_fp32, ...; an LLM model's 8-bit dynamically quantized linears are `dq8`
    (llama_xnnpack_dq8)."""
    check_options(ExportOptions(quantize, delegate, partitioner, backend))
    q8 = "dq8" if llm else "q8"
    if not delegate:
        return f"{model}_portable_{q8}" if quantize else f"{model}_portable"
    stem = f"{model}_{backend.replace('+', '_')}_{q8 if quantize else 'fp32'}"
    return f"{stem}_quantonly" if partitioner == "quant-only" else stem


_VARIANT = re.compile(r"^(?P<model>.+?)_(portable|xnnpack|openvino)(_.*)?$")


def model_of_variant(stem: str) -> str:
    """The model of a file stem `variant_name` wrote: "mv3_xnnpack_q8_quantonly" -> "mv3";
    any other name unchanged."""
    m = _VARIANT.match(stem)
    return m.group("model") if m else stem


def output_paths(
    out_dir: Path, model: str, options: ExportOptions, *, llm: bool = False
) -> tuple[Path, Path]:
    stem = variant_name(
        model,
        options.quantize,
        options.delegate,
        options.partitioner,
        llm=llm,
        backend=options.backend,
    )
    return out_dir / f"{stem}.pte", out_dir / f"{stem}{ETRECORD_SUFFIX}"


def check_output_dir(out_dir: Path) -> None:
    """Fail before the slow export when the folder cannot take the files.

    Writing a probe file is the only reliable test: os.access says yes to root on read-only
    mounts.
    """
    if not out_dir.exists():
        raise InputError(
            f"output folder {out_dir} does not exist", "create it or choose another folder with -o"
        )
    if not out_dir.is_dir():
        raise InputError(f"output folder {out_dir} is a file", "give a folder with -o")
    try:
        fd, probe = tempfile.mkstemp(prefix=".etprof-probe-", dir=out_dir)
    except OSError as exc:
        raise InputError(
            f"cannot write in {out_dir} ({exc.strerror})", "choose a folder you can write with -o"
        ) from None
    os.close(fd)
    os.unlink(probe)


def summarize(program: ProgramInfo) -> ProgramSummary:
    delegate_calls = 0
    portable: Counter[str] = Counter()
    for instr in program.instructions:
        if instr.kind == "delegate":
            delegate_calls += 1
        elif instr.kind == "operator":
            portable[instr.name] += 1
    return ProgramSummary(
        instructions=len(program.instructions),
        delegate_calls=delegate_calls,
        portable_ops=portable,
        backends=tuple(dict.fromkeys(program.delegates)),
    )


def export_model(
    model: str | zoo.ModelSpec,
    options: ExportOptions,
    out_dir: Path,
    *,
    etrecord: bool = True,
    verbose: bool = False,
) -> ExportResult:
    """Export `model` with `options` into `out_dir`; returns the paths and what the program does.

    Both files appear atomically, and only if the whole export succeeds.
    """
    spec = zoo.parse(model) if isinstance(model, str) else model
    check_options(options)
    check_llm_options(spec, options)
    check_output_dir(out_dir)
    pte_path, etrecord_path = output_paths(out_dir, spec.name, options, llm=spec.llm)
    started = time.perf_counter()
    with silenced(enabled=not verbose):
        recipe = zoo.build(spec)
        program = _lower(spec, recipe, options)
        with atomic_path(pte_path) as tmp_pte:
            with tmp_pte.open("wb") as f:
                program.write_to_file(f)
            _readable_by_all(tmp_pte)
            if etrecord:
                with atomic_path(etrecord_path) as tmp_etrecord:
                    program.get_etrecord().save(str(tmp_etrecord))
                    _readable_by_all(tmp_etrecord)
    seconds = time.perf_counter() - started
    return ExportResult(
        pte=pte_path,
        etrecord=etrecord_path if etrecord else None,
        summary=summarize(read_program(pte_path)),
        seconds=seconds,
    )


def _lower(spec: zoo.ModelSpec, recipe: zoo.Recipe, options: ExportOptions) -> Any:
    """The ExecuTorch pipeline; returns an ExecutorchProgramManager with an ETRecord.

    Runs under torch.no_grad with every parameter's requires_grad off, as ExecuTorch's LLM export
    does: a model updating a buffer in place (a KV cache) with parameters that require grad, as
    nn.Module makes them, otherwise fails ("a leaf Variable that requires grad is being used in an
    in-place operation"). Attention runs in its math form, which export traces into plain ops.
    """
    import torch
    from torch.nn.attention import SDPBackend, sdpa_kernel

    methods = {"forward": (recipe.module, recipe.inputs), **recipe.methods}
    if options.quantize and len(methods) > 1:
        raise InputError(
            f"{spec.name} has several methods, which etprof cannot quantize", "drop --quantize"
        )
    programs = {}
    with torch.no_grad(), sdpa_kernel([SDPBackend.MATH]):
        for name, (module, inputs) in methods.items():
            module.requires_grad_(False)
            dynamic = recipe.dynamic_shapes if name == "forward" else None
            ep = _export(spec, module, inputs, dynamic)
            if options.quantize and options.backend == "openvino":
                from etprof.zoo.export_openvino import quantize

                ep = _export(spec, quantize(ep.module(), inputs), inputs, dynamic)
            elif options.quantize:
                quantized = _quantize(ep.module(), inputs, dynamic=_dynamic_quant(recipe))
                ep = _export(spec, quantized, inputs, dynamic)
                # Registers the out variants of quantize/dequantize, which to_executorch needs
                # for the ones left outside a delegate (all of them with --no-delegate).
                import executorch.kernels.quantized  # noqa: F401
            programs[name] = ep
        return _to_executorch(
            programs if len(programs) > 1 else programs["forward"], recipe, options
        )


def _dynamic_quant(recipe: zoo.Recipe) -> bool:
    return recipe.llm or recipe.dynamic_linears


def _export(
    spec: zoo.ModelSpec, module: torch.nn.Module, inputs: tuple[Any, ...], dynamic_shapes: Any
) -> Any:
    import torch

    try:
        return torch.export.export(module, inputs, dynamic_shapes=dynamic_shapes, strict=False)
    except Exception as exc:
        if spec.builtin:
            raise
        raise ExportError(
            f"torch.export cannot export {spec.module}:{spec.attr} "
            f"({type(exc).__name__}: {_first_line(exc)})",
            "make the model torch.export-able (run with --verbose for details)",
        ) from exc


def _to_executorch(ep: Any, recipe: zoo.Recipe, options: ExportOptions) -> Any:
    from executorch.exir import (
        EdgeCompileConfig,
        ExecutorchBackendConfig,
        to_edge,
        to_edge_transform_and_lower,
    )
    from executorch.exir.passes import MemoryPlanningPass
    from executorch.exir.passes.sym_shape_eval_pass import ConstraintBasedSymShapeEvalPass

    # As in ExecuTorch's examples: quantized graphs (and LLM graphs) fail the edge IR check, and
    # XNNPACK does not take dim-order ops.
    config = EdgeCompileConfig(
        _check_ir_validity=not (options.quantize or recipe.llm), _skip_dim_order=True
    )
    methods = recipe.constant_methods or None
    if options.delegate and "openvino" in options.backend:
        from etprof.zoo.export_openvino import partitioners

        first = [_partitioner("mixed")] if options.backend.startswith("xnnpack") else []
        edge = to_edge_transform_and_lower(
            ep,
            partitioner=first + partitioners(),
            compile_config=config,
            constant_methods=methods,
            generate_etrecord=True,
        )
    elif options.delegate:
        from executorch.backends.xnnpack.utils.configs import get_transform_passes

        edge = to_edge_transform_and_lower(
            ep,
            partitioner=_partitioners(options, _dynamic_quant(recipe)),
            transform_passes=get_transform_passes(),
            compile_config=config,
            constant_methods=methods,
            generate_etrecord=True,
        )
    else:
        edge = to_edge(ep, constant_methods=methods, compile_config=config, generate_etrecord=True)
    backend: dict[str, Any] = {"extract_delegate_segments": recipe.llm}
    if recipe.dynamic_shapes is not None:
        # plan memory for the upper bounds, not the example inputs' sizes
        backend["sym_shape_eval_pass"] = ConstraintBasedSymShapeEvalPass()
    if recipe.llm:
        from executorch.backends.xnnpack._passes.convert_to_linear import ConvertToLinearPass

        edge = edge.transform([ConvertToLinearPass()])
        backend.update(
            do_quant_fusion_and_const_prop=True,
            memory_planning_pass=MemoryPlanningPass(alloc_graph_input=False),
        )
    return edge.to_executorch(config=ExecutorchBackendConfig(**backend))


def _quantize(graph: torch.nn.Module, inputs: tuple[Any, ...], *, dynamic: bool) -> torch.nn.Module:
    """8-bit, per-channel symmetric weights: static (activations calibrated on the example
    input), what the examples use for CNNs; or dynamic (activations quantized at run time,
    linears only), what ExecuTorch's LLM export uses (`--pt2e_quantize xnnpack_dynamic`)."""
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        XNNPACKQuantizer,
        get_symmetric_quantization_config,
    )
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    quantizer = XNNPACKQuantizer().set_global(
        get_symmetric_quantization_config(is_per_channel=True, is_dynamic=dynamic)
    )
    prepared = prepare_pt2e(graph, quantizer)
    prepared(*inputs)  # calibration on the example input
    converted: torch.nn.Module = convert_pt2e(prepared)
    return converted


def _partitioners(options: ExportOptions, dynamic: bool) -> list[Any]:
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import (
        XnnpackDynamicallyQuantizedPartitioner,
    )

    if dynamic and options.quantize:  # export_llama's order: dynamic linears first, then the rest
        return [XnnpackDynamicallyQuantizedPartitioner(), _partitioner("mixed")]
    return [_partitioner(options.partitioner)]


def _partitioner(kind: str) -> Any:
    from executorch.backends.xnnpack.partition.config.xnnpack_config import ConfigPrecisionType
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner

    if kind == "quant-only":
        return XnnpackPartitioner(config_precisions=ConfigPrecisionType.STATIC_QUANT)
    return XnnpackPartitioner()


def _readable_by_all(path: Path) -> None:
    """Temporary files are created 0600; a program is shared like any file (0644 under umask)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else "no message"
