"""Give an old trace's sidecar its delegates' graphs, read from a `.pte` of the same program.

The checked-in sample traces were recorded before sidecars kept the delegate graph (version 4),
and their `.pte` files are not checked in. A fresh export of the same model and variant has the
same delegate graph; this script reads it, checks that every operator the trace's runtime
reported lines up with a node of that graph (etprof.backends.xnnpack_graph.align), and only then rewrites
the sidecar as a version 4 document bound to the trace, with `graph` on each delegate
instruction. Nothing else in the document changes.

    python scripts/attach_delegate_graph.py sample_traces/mv3_xnnpack_q8.etdp MV3_Q8.pte
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from dataclasses import replace
from pathlib import Path

from etprof.backends.graphs import read_program
from etprof.backends.xnnpack_graph import align
from etprof.trace.loading import load_trace
from etprof.trace.model import DELEGATE_OP
from etprof.trace.sidecar import TraceBinding, read_sidecar, sidecar_path
from etprof.util.output import write_text


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("trace", type=Path)
    parser.add_argument("pte", type=Path)
    args = parser.parse_args()
    meta = read_sidecar(args.trace)
    if meta is None:
        print(f"{args.trace} has no sidecar", file=sys.stderr)
        return 2
    fresh = read_program(args.pte, meta.program.method)
    graphs = {i.delegate_index: i.graph for i in fresh.instructions if i.kind == "delegate"}
    trace = load_trace(args.trace)
    ops = trace.events[trace.events["kind"] == DELEGATE_OP]
    instructions = []
    for i in meta.program.instructions:
        if i.kind == "delegate":
            graph = graphs.get(i.delegate_index, ())
            first = ops[(ops["instruction_id"] == i.id) & (ops["iteration"] == 0)]
            runtime = [str(d) for d in first.sort_values("seq")["delegate_op"]]
            if not graph or None in align(runtime, graph):
                print(
                    f"delegate instruction {i.id}: {args.pte} does not line up with the trace",
                    file=sys.stderr,
                )
                return 1
            i = replace(i, graph=graph)
        instructions.append(i)
    data = args.trace.read_bytes()
    meta = replace(
        meta,
        program=replace(meta.program, instructions=tuple(instructions)),
        trace=TraceBinding(len(data), hashlib.sha256(data).hexdigest()),
    )
    write_text(sidecar_path(args.trace), meta.to_json())
    return 0


if __name__ == "__main__":
    sys.exit(main())
