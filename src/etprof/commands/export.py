"""`etprof export MODEL`: write MODEL as an ExecuTorch program (.pte) plus its ETRecord, named as
ExecuTorch's examples name them (mv3_xnnpack_q8.pte), and say what ended up where."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:  # imported when the command runs: other commands start without it
    from etprof.zoo.export import ExportResult

OutDirOption = typer.Option(".", "--output-dir", "-o", help="folder for the files")


def export(
    model: str = typer.Argument(
        ...,
        help="zoo name (mv2, mv3, mv3-large, llama) or package.module:callable returning "
        "(nn.Module, example_inputs[, dynamic_shapes])",
    ),
    quantize: bool = typer.Option(
        False,
        "--quantize/--no-quantize",
        help="8-bit quantization, per-channel weights (static; "
        "llama: dynamically quantized linears, as ExecuTorch's LLM export)",
    ),
    delegate: bool = typer.Option(
        True,
        "--delegate/--no-delegate",
        help="lower to --backend (--no-delegate: portable kernels)",
    ),
    backend: str = typer.Option(
        "xnnpack",
        "--backend",
        help="xnnpack; openvino (ExecuTorch's OpenVINO example: "
        "NNCF 8-bit with --quantize; needs pip install 'etprof[openvino]'); xnnpack+openvino "
        "(XNNPACK's partitioner first, OpenVINO takes the rest)",
    ),
    partitioner: str = typer.Option(
        "mixed",
        "--partitioner",
        help="mixed (delegate float and quantized operators) or "
        "quant-only (quantized operators only, ExecuTorch's 2023 behaviour)",
    ),
    out_dir: Path = OutDirOption,
    verbose: bool = typer.Option(False, "--verbose", "-v", help="show torch/executorch logs"),
) -> None:
    """Export MODEL to a .pte program and an .etrecord, the way ExecuTorch's XNNPACK example does."""
    from etprof import zoo
    from etprof.zoo.export import (
        ExportOptions,
        check_llm_options,
        check_options,
        check_output_dir,
        export_model,
        output_paths,
    )

    # Everything that can be refused is refused here, before tens of seconds of exporting.
    spec = zoo.parse(model)
    if not spec.builtin:
        zoo.resolve(spec)  # a typo in the user's module path fails now, not after the banner
    options = ExportOptions(
        quantize=quantize, delegate=delegate, partitioner=partitioner, backend=backend
    )
    check_options(options)
    check_llm_options(spec, options)
    check_output_dir(out_dir)
    pte, _ = output_paths(out_dir, spec.name, options, llm=spec.llm)
    typer.echo(f"exporting {model} to {pte.name} (this takes a minute or so)", err=True)
    result = export_model(spec, options, out_dir, verbose=verbose)
    typer.echo(describe(result), nl=False)


def describe(result: ExportResult) -> str:
    s = result.summary
    written = f"wrote {result.pte} ({_size(result.pte.stat().st_size)})"
    if result.etrecord is not None:
        written += f" and {result.etrecord.name}"
    lines = [f"{written} in {result.seconds:.1f} s"]
    backends = f" ({', '.join(s.backends)})" if s.backends else ""
    lines.append(f"delegate calls: {s.delegate_calls}{backends}")
    if s.portable_ops:
        lines.append(f"portable operators: {s.portable_calls} calls")
        width = max(len(name) for name in s.portable_ops)
        lines += [f"  {name:<{width}} x {n}" for name, n in s.portable_ops.most_common()]
    else:
        lines.append("portable operators: none")
    return "\n".join(lines) + "\n"


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    return f"{n / 1024:.1f} KB" if n < 1024**2 else f"{n / 1024**2:.1f} MB"


def register(app: typer.Typer) -> None:
    app.command("export")(export)
