"""`etprof demo`: the quick start. Export a built-in MobileNet, profile it, explain the result.

No file of the user's is needed. By default it retells the seed's MobileNetV3 q8 story: the same
quantized model lowered with the 2023 quant-only partitioner and with today's mixed partitioner,
run taking turns session by session with the seed's methodology, then the breakdown of the slow
one and the diff.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from etprof.util import methodology

DEMO_VARIANTS = ("xnnpack_q8_quantonly", "xnnpack_q8")


def demo(
    model: str = typer.Argument(
        "mv3",
        help="zoo model: mv2, mv3 or mv3-large; llm: the tiny "
        "Llama, fp32 vs 8-bit dynamic linears, prefill and decode",
    ),
    workdir: Path = typer.Option(
        Path("etprof-demo"), "--dir", help="where programs and traces go (reused on a second run)"
    ),
    iters: int = typer.Option(
        methodology.ITERS, "--iters", help="iterations per run (the seed: 60)"
    ),
    warmup: int = typer.Option(10, "--warmup", help="iterations dropped (the seed: 10)"),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="show export/runtime logs"),
) -> None:
    """Export MobileNet (q8, quant-only and mixed partitioners), profile both, explain the gap."""
    from etprof.util.limits import check_iters

    check_iters(iters, warmup)  # before any work
    from rich.console import Console

    from etprof import analyzers, render
    from etprof.commands._common import terminal_width
    from etprof.record.request import RunRequest, default_trace_path
    from etprof.record.runner import run_programs
    from etprof.trace.loading import load_trace
    from etprof.util.methodology import SPREAD_S
    from etprof.util.quiet import terminal
    from etprof.util.runtime_log import status
    from etprof.zoo.export import STANDARD_VARIANTS, export_model, output_paths

    workdir.mkdir(parents=True, exist_ok=True)
    console = Console(file=terminal(), stderr=True)
    if model == "llm":
        demo_llm(workdir, console, verbose)
        return
    reqs = []
    for variant in DEMO_VARIANTS:
        options = STANDARD_VARIANTS[variant]
        pte, _ = output_paths(workdir, model, options)
        if pte.is_file():
            console.print(f"reusing {pte}")
        else:
            with status(console, f"exporting {model} as {variant} (about a minute)"):
                pte = export_model(model, options, workdir, verbose=verbose).pte
            console.print(f"exported {pte}")
        reqs.append(
            RunRequest(
                pte=pte,
                out=default_trace_path(pte),
                iters=iters,
                warmup=warmup,
                verbose=verbose,
                sessions=None,
                spread_s=SPREAD_S,
            )
        )
    with status(
        console, f"running both, taking turns: {iters} iterations in each of up to 5 sessions"
    ):
        run_programs(reqs)
    traces = [load_trace(req.out) for req in reqs]
    for req in reqs:
        console.print(f"profiled {req.out}")
    width = terminal_width()
    slow, fast = traces
    from etprof.analyzers.breakdown import BreakdownOptions

    result = analyzers.run("breakdown", slow, BreakdownOptions(compare=fast))
    typer.echo(render.render(result, "table", width=width))
    diff = analyzers.get("diff")
    typer.echo(render.render(diff.func(slow, fast, diff.options()), "table", width=width))
    typer.echo(
        f"Next: etprof breakdown {slow.source}   |   etprof diff {slow.source} "
        f"{fast.source}   |   etprof report {slow.source} -o report.html"
    )


def demo_llm(workdir: Path, console: Any, verbose: bool) -> None:
    """The LLM story: the zoo's tiny Llama exported fp32 and with 8-bit dynamically quantized
    linears, run taking turns (prefill + decode sequences), the pp/tg table of each and the diff
    of each phase."""
    from etprof import analyzers, render
    from etprof.analyzers.llm import LlmOptions
    from etprof.commands._common import terminal_width
    from etprof.record.request import RunRequest, default_trace_path
    from etprof.record.runner import run_programs
    from etprof.trace.loading import load_trace
    from etprof.util.methodology import SPREAD_S
    from etprof.util.runtime_log import status
    from etprof.zoo.export import ExportOptions, export_model

    reqs = []
    for quantize in (False, True):
        name = "dq8" if quantize else "fp32"
        folder = workdir / f"llama_{name}"
        found = sorted(folder.glob("*.pte")) if folder.is_dir() else []
        if found:
            pte = found[0]
            console.print(f"reusing {pte}")
        else:
            folder.mkdir(parents=True, exist_ok=True)
            with status(console, f"exporting the tiny Llama ({name}, about a minute)"):
                pte = export_model(
                    "llama", ExportOptions(quantize=quantize), folder, verbose=verbose
                ).pte
            console.print(f"exported {pte}")
        reqs.append(
            RunRequest(
                pte=pte,
                out=default_trace_path(pte),
                verbose=verbose,
                sessions=None,
                spread_s=SPREAD_S,
            )
        )
    with status(
        console,
        "running both, taking turns: prefill + decode sequences in each of up to 5 sessions",
    ):
        run_programs(reqs)
    width = terminal_width()
    fp32, dq8 = (load_trace(req.out) for req in reqs)
    for trace in (fp32, dq8):
        typer.echo(render.render(analyzers.run("llm", trace, LlmOptions()), "table", width=width))
    diff = analyzers.get("diff")
    for phase in ("prefill", "decode"):
        typer.echo(f"--- {phase}: fp32 -> dq8")
        options = diff.options(phase=phase)
        typer.echo(render.render(diff.func(fp32, dq8, options), "table", width=width))
    typer.echo(
        f"Next: etprof breakdown {dq8.source} --phase decode   |   etprof diff "
        f"{fp32.source} {dq8.source} --phase decode"
    )


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
