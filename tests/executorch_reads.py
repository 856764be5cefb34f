"""Independent reads of a trace with ExecuTorch's own deserializer."""

from __future__ import annotations

from pathlib import Path


def execute_durations_ns(trace: Path) -> list[int]:
    """Method::execute durations per Execute run, read with executorch's own deserializer."""
    from executorch.devtools.etdump.serialize import deserialize_from_etdump_flatcc

    dump = deserialize_from_etdump_flatcc(trace.read_bytes())
    out = []
    for run in dump.run_data:
        if run.name != "Execute":
            continue
        for event in run.events or []:
            pe = event.profile_event
            if pe is not None and pe.name == "Method::execute":
                out.append(pe.end_time - pe.start_time)
    return out
