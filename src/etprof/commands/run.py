"""`etprof run MODEL.pte [MORE.pte ...]`: run with ETDump profiling on and print the run-model
summary; several programs take turns session by session (docs/methodology.md)."""

from __future__ import annotations

from pathlib import Path

import typer

from etprof.commands._common import KeepOutliersOption
from etprof.render import formats
from etprof.util import methodology

DEFAULT_ITERS, DEFAULT_WARMUP = methodology.ITERS, methodology.WARMUP


def run(
    ptes: list[Path] = typer.Argument(
        ...,
        metavar="PTE...",
        help="the .pte program(s) to profile; several take turns, session by session",
    ),
    iters: int | None = typer.Option(
        None,
        "--iters",
        help="iterations to run (the seed: 60); "
        "an LLM program: measured prefill+decode sequences per "
        "session (default 1)",
    ),
    warmup: int | None = typer.Option(
        None,
        "--warmup",
        help="first iterations to drop (the "
        "seed: 10); an LLM program: sequences dropped per "
        "session (default 1)",
    ),
    threads: int = typer.Option(1, "--threads", help="runtime threads (the seed: 1)"),
    sessions: str = typer.Option(
        "auto",
        "--sessions",
        help="loads of the program, each running "
        "--iters iterations; auto: 5, fewer if they would take over 20 s",
    ),
    spread: float = typer.Option(
        10.0,
        "--spread",
        help="seconds the sessions span at least "
        "(idle pauses between them), so they see the machine's drift",
    ),
    out: Path | None = typer.Option(
        None, "--out", help="trace path (default: beside the .pte, .etdp)"
    ),
    methods: list[str] | None = typer.Option(
        None,
        "--method",
        help="method to run (default: "
        "forward); repeat it and the methods take turns, "
        "each --iters times",
    ),
    inputs: Path | None = typer.Option(
        None,
        "--inputs",
        help="inputs (.pt tensor or nested "
        "tuple, .npy, .npz); default: made from the program "
        "(docs/inputs.md)",
    ),
    shapes: list[str] | None = typer.Option(
        None,
        "--shape",
        metavar="NAME_OR_INDEX=AxB",
        help="size of a dynamic-shape input (default: its "
        "upper bound); repeatable, [METHOD:] prefix",
    ),
    etrecord: Path | None = typer.Option(
        None,
        "--etrecord",
        help="ETRecord for module paths (default: <pte stem>.etrecord beside the .pte)",
    ),
    prefill: int | None = typer.Option(
        None,
        "--prefill",
        help="LLM programs: prompt tokens per "
        "sequence (default: like llama-bench's 512, capped to "
        "fit the program's sequence length)",
    ),
    decode: int | None = typer.Option(
        None,
        "--decode",
        help="LLM programs: tokens generated per sequence after the prompt (default: 128, capped)",
    ),
    model: str = typer.Option(
        "",
        "--model",
        help="the model the program(s) were exported "
        "from, recorded in the trace: `etprof diff` takes traces naming "
        "one model as two variants of it (docs/diff.md)",
    ),
    top: int = typer.Option(10, "--top", help="operators to list"),
    json_out: bool = typer.Option(False, "--json", help="print the summary as JSON"),
    fmt: str | None = typer.Option(
        None, "--format", "-f", help=", ".join(formats("etprof.summary")) + " (default: table)"
    ),
    untraced: bool = typer.Option(
        True,
        "--untraced/--no-untraced",
        help="also time the "
        "program loaded without ETDump, interleaved with the traced "
        "iterations: the profiler's own cost (docs/memory.md)",
    ),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="show the runtime's log"),
    keep_outliers: bool = KeepOutliersOption,
) -> None:
    """Run programs with ETDump profiling (seed methodology) and summarise the measured runs."""
    from etprof.util.limits import check_limits

    check_limits(
        iters=iters,
        warmup=warmup,
        threads=threads,
        spread=spread,
        prefill=prefill,
        decode=decode,
        top=top,
    )
    parse_sessions(sessions)  # before any work
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from etprof import analyzers, render
    from etprof.analyzers.llm import LlmOptions
    from etprof.analyzers.summary import SummaryOptions
    from etprof.commands._common import terminal_width
    from etprof.errors import InputError
    from etprof.record.inputs import parse_shape
    from etprof.record.request import RunRequest, default_trace_path, planned
    from etprof.record.runner import run_programs
    from etprof.result import Result
    from etprof.trace.loading import load_trace
    from etprof.util.quiet import terminal
    from etprof.util.runtime_log import log_above

    fmt = "json" if json_out else fmt
    # refuses --top 0 before minutes of profiling
    summary_options = SummaryOptions(top=top, keep_outliers=keep_outliers)
    several = len(ptes) > 1
    if several and (out is not None or etrecord is not None):
        raise InputError(
            "--out and --etrecord name one program's files, and several were given",
            "drop them: each trace goes beside its .pte, with its ETRecord found there",
        )
    chosen = render.choose(fmt, None, "etprof.summary")
    if (several or len(methods or ()) > 1) and chosen == "csv":
        raise InputError(
            "--format csv writes one table, and several programs or methods were given",
            "use --format json (a list of summaries) or table",
        )
    chosen_methods = tuple(methods or ("forward",))
    overrides = tuple(parse_shape(s) for s in shapes or ())
    reqs = [
        RunRequest(
            pte=pte,
            out=out or default_trace_path(pte, chosen_methods),
            iters=DEFAULT_ITERS if iters is None else iters,
            warmup=DEFAULT_WARMUP if warmup is None else warmup,
            sequences=iters,
            warmup_sequences=warmup,
            threads=threads,
            methods=chosen_methods,
            inputs=inputs,
            shapes=overrides,
            etrecord=etrecord,
            verbose=verbose,
            sessions=parse_sessions(sessions),
            spread_s=spread,
            prefill=prefill,
            decode=decode,
            untraced=untraced,
            model=model.strip(),
        )
        for pte in ptes
    ]
    several_methods = len(chosen_methods) > 1
    console = Console(file=terminal(), stderr=True)
    names = ", ".join(p.name for p in ptes)
    with (
        Progress(
            TextColumn(f"running {names}"),
            BarColumn(),
            MofNCompleteColumn(),
            console=console,
            transient=True,
            redirect_stdout=False,  # the runtime's log: see util/runtime_log.py
            redirect_stderr=False,
        ) as bar,
        log_above(console, verbose and console.is_terminal),
    ):
        task = bar.add_task("run", total=reqs[0].iters * (reqs[0].sessions or 1) * len(reqs))
        metas = run_programs(
            reqs, lambda done, total: bar.update(task, completed=done, total=total)
        )
    texts: list[str] = []
    results: list[Result] = []
    for req, meta in zip(reqs, metas, strict=False):
        trace = load_trace(req.out)
        if trace.phases:
            llm_result = analyzers.run("llm", trace, LlmOptions())
            results.append(llm_result)
            texts.append(render.render(llm_result, chosen, width=terminal_width()))
        for name in () if trace.phases else chosen_methods:  # one per method, never blended
            summary = analyzers.run("summary", trace.for_method(name), summary_options)
            results.append(summary)
            text = render.render(summary, chosen, width=terminal_width())
            named = several_methods and chosen not in ("json", "csv")
            texts.append(f"method {name}\n{text}" if named else text)
        done = meta.run.sessions
        n, skip = meta.run.iters, meta.run.warmup
        runs = f"{done} sessions x {n} iterations" if done > 1 else f"{n} iterations"
        each = " of each" if done > 1 else ""
        llm = meta.program.llm
        if llm is not None:
            typer.echo(f"recognised: {llm.describe()}", err=True)
            counting = planned(req).llm
            if counting is not None:
                typer.echo(counting.counting(), err=True)
        turns = f" of {' and '.join(chosen_methods)} taking turns" if several_methods else ""
        typer.echo(f"inputs: {meta.run.inputs}", err=True)
        typer.echo(
            f"trace: {req.out} ({runs}{turns}, first {skip}{each} dropped, "
            f"{threads} thread{'s' if threads != 1 else ''})",
            err=True,
        )
    if chosen == "json" and len(results) > 1:  # one document a trace or method, as one list
        from etprof.render.json import document, dumps

        typer.echo(dumps([document(r) for r in results]))
    else:
        typer.echo("\n".join(texts), nl=False)
    if several:
        typer.echo(f"compare: etprof diff {reqs[0].out} {reqs[1].out}", err=True)


def parse_sessions(text: str) -> int | None:
    """`--sessions`: "auto" (None) or a count."""
    from etprof.errors import InputError
    from etprof.util.limits import check_limits

    if text.strip().lower() == "auto":
        return None
    try:
        count = int(text)
    except ValueError:
        raise InputError(
            f"--sessions {text!r} is neither a count nor 'auto'",
            "use --sessions auto or e.g. --sessions 5",
        ) from None
    check_limits(sessions=count)
    return count


def register(app: typer.Typer) -> None:
    app.command("run")(run)
