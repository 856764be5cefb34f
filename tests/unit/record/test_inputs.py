"""Inputs (issue 13, items 3, 4, 9 and the input side of 10): a sidecar is bound to its trace and
checked field by field; a trace is checked before it is read whole. Each bad file gets one line.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from etprof.errors import EtprofError, InputError, MismatchError, TraceFormatError
from etprof.trace.loading import load_trace
from etprof.trace.sidecar import TraceMeta, sidecar_path

from conftest import DATA, SAMPLES, assert_one_line_error, run_cli

PAIR_A, PAIR_B = DATA / "small_pair_a.etdp", DATA / "small_pair_b.etdp"


def _copy(trace: Path, folder: Path, name: str = "t", sidecar_of: Path | None = None) -> Path:
    """`trace` copied into `folder` as NAME.etdp, with the sidecar of `sidecar_of` (default:
    its own) beside it."""
    out = folder / f"{name}.etdp"
    shutil.copyfile(trace, out)
    source = sidecar_path(sidecar_of or trace)
    if source.is_file():
        shutil.copyfile(source, sidecar_path(out))
    return out


def _binding(trace: Path) -> dict[str, Any]:
    data = trace.read_bytes()
    return {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def _edit_sidecar(trace: Path, edit: Callable[[dict[str, Any]], None]) -> None:
    path = sidecar_path(trace)
    doc = json.loads(path.read_text())
    edit(doc)
    path.write_text(json.dumps(doc))


# -- item 3: a sidecar belongs to one trace ------------------------------------------------------


def test_a_bound_sidecar_loads_with_its_own_trace(tmp_path: Path) -> None:
    trace = _copy(PAIR_A, tmp_path)
    _edit_sidecar(trace, lambda d: d.update(trace=_binding(PAIR_A)))
    loaded = load_trace(trace)
    assert loaded.has_meta and loaded.meta.trace is not None
    assert loaded.meta.trace.size == PAIR_A.stat().st_size


def test_a_bound_sidecar_beside_another_trace_is_refused(tmp_path: Path) -> None:
    # the same program, the same settings: only the binding can tell the two traces apart
    trace = _copy(PAIR_B, tmp_path, sidecar_of=PAIR_A)
    _edit_sidecar(trace, lambda d: d.update(trace=_binding(PAIR_A)))
    with pytest.raises(MismatchError) as caught:
        load_trace(trace)
    line = caught.value.one_line()
    assert str(sidecar_path(trace)) in line and str(trace) in line
    assert "--pte" in line and "delete the stale" in line


def test_cli_stale_sidecar_is_one_line_naming_both_files(tmp_path: Path) -> None:
    trace = _copy(PAIR_B, tmp_path, sidecar_of=PAIR_A)
    _edit_sidecar(trace, lambda d: d.update(trace=_binding(PAIR_A)))
    assert_one_line_error(
        run_cli("breakdown", trace), "t.etprof.json", "t.etdp", "belongs to another trace", "--pte"
    )


def test_with_pte_a_stale_sidecar_is_set_aside(tmp_path: Path, small_pte: Path) -> None:
    trace = _copy(PAIR_B, tmp_path, sidecar_of=PAIR_A)
    _edit_sidecar(trace, lambda d: d.update(trace=_binding(PAIR_A)))
    loaded = load_trace(trace, pte=small_pte)
    assert not loaded.has_meta and loaded.meta.program.instructions


@pytest.mark.parametrize(
    "trace_name, sidecar_name",
    [
        ("mv3_portable", "mv3_xnnpack_q8_quantonly"),  # an XNNPACK table beside a portable trace
        ("mv3_xnnpack_q8_quantonly", "mv3_portable"),
    ],
)
def test_an_old_unbound_sidecar_gets_the_structure_check(
    tmp_path: Path, trace_name: str, sidecar_name: str
) -> None:
    trace = _copy(
        SAMPLES / f"{trace_name}.etdp", tmp_path, sidecar_of=SAMPLES / f"{sidecar_name}.etdp"
    )
    assert "trace" not in json.loads(sidecar_path(trace).read_text())  # a pre-binding document
    with pytest.raises(MismatchError, match=r"instruction table of .*t\.etprof\.json"):
        load_trace(trace)


def test_every_checked_in_sidecar_passes_its_own_structure_check() -> None:
    for trace in [*sorted(SAMPLES.glob("*.etdp")), PAIR_A, PAIR_B]:
        assert load_trace(trace).has_meta, trace


# -- item 4: every field of the document is validated --------------------------------------------


def _instruction_id_as_string(d: dict[str, Any]) -> None:
    d["program"]["instructions"][0]["id"] = "0"


BAD_FIELDS: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "warmup null": (lambda d: d["run"].update(warmup=None), "run.warmup"),
    "warmup negative": (lambda d: d["run"].update(warmup=-1), "run.warmup"),
    "warmup 2.5": (lambda d: d["run"].update(warmup=2.5), "run.warmup"),
    "sessions a string": (lambda d: d["run"].update(sessions="3"), "run.sessions"),
    "instruction id a string": (_instruction_id_as_string, "program.instructions[0].id"),
    "versions a list": (lambda d: d.update(versions=["etprof"]), "versions"),
    "version a string": (lambda d: d.update(version="3"), "version"),
    "threads zero": (lambda d: d["run"].update(threads=0), "run.threads"),
    "iters a bool": (lambda d: d["run"].update(iters=True), "run.iters"),
    "host a list": (lambda d: d.update(host=[]), "host"),
    "run missing": (lambda d: d.pop("run"), "run"),
    "cpu share above 100": (lambda d: d["run"].update(cpu_share_pct=250.0), "run.cpu_share_pct"),
    "unknown instruction kind": (
        lambda d: d["program"]["instructions"][0].update(kind="magic"),
        "kind",
    ),
    "binding not hex": (lambda d: d.update(trace={"size": 1, "sha256": "xyz"}), "trace.sha256"),
    "binding size negative": (
        lambda d: d.update(trace={"size": -5, "sha256": "0" * 64}),
        "trace.size",
    ),
}


@pytest.mark.parametrize("case", list(BAD_FIELDS))
def test_a_bad_field_is_refused_naming_it(tmp_path: Path, case: str) -> None:
    edit, field = BAD_FIELDS[case]
    trace = _copy(PAIR_A, tmp_path)
    _edit_sidecar(trace, edit)
    with pytest.raises(InputError) as caught:
        load_trace(trace)
    line = caught.value.one_line()
    assert field in line and "\n" not in line, line


@pytest.mark.parametrize(
    "text", [b"\xff\xfe\x00binary\x00", b'{"format": NaN}', b"[" * 100_000, b"\n"]
)
def test_a_sidecar_that_is_no_json_document_is_one_error(tmp_path: Path, text: bytes) -> None:
    trace = _copy(PAIR_A, tmp_path)
    sidecar_path(trace).write_bytes(text)
    with pytest.raises(InputError):
        load_trace(trace)


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_a_non_finite_number_is_refused(tmp_path: Path, number: str) -> None:
    trace = _copy(PAIR_A, tmp_path)
    path = sidecar_path(trace)
    text = path.read_text()
    assert '"spread_s": 3.0' in text
    path.write_text(text.replace('"spread_s": 3.0', f'"spread_s": {number}'))
    with pytest.raises(InputError, match=number if number != "1e999" else "spread_s"):
        load_trace(trace)


def test_cli_binary_sidecar_is_one_line(tmp_path: Path) -> None:
    trace = _copy(PAIR_A, tmp_path)
    sidecar_path(trace).write_bytes(os.urandom(64) + b"\xff")
    assert_one_line_error(run_cli("breakdown", trace), "not UTF-8")


def test_a_document_round_trips_through_the_schema(tmp_path: Path) -> None:
    meta = load_trace(PAIR_A).meta
    assert TraceMeta.from_json(meta.to_json()) == meta


def _with_a_field_everywhere(node: Any) -> Any:
    """`node` with a field this etprof does not know added to every object in it (not to the
    `versions` map, whose keys are package names, not fields)."""
    if isinstance(node, dict):
        return {
            **{k: v if k == "versions" else _with_a_field_everywhere(v) for k, v in node.items()},
            "from_later": 1,
        }
    if isinstance(node, list):
        return [_with_a_field_everywhere(v) for v in node]
    return node


def test_fields_a_later_etprof_adds_are_ignored() -> None:
    """A later etprof may add a field without a version bump (docs/trace-metadata.md): this one
    reads what it knows, at every level: the v4 sample (instructions with delegate graphs, the
    trace binding), and an LLM run's phases, planned and resident memory and content."""
    from dataclasses import replace

    from etprof.program.llm import DECODE, PREFILL, LlmInfo, Step
    from etprof.program.memory import PlannedMemory
    from etprof.program.types import BlobDigest, ProgramContent
    from etprof.trace.sidecar import SessionMemory, UntracedTimes

    sample = load_trace(SAMPLES / "mv3_xnnpack_q8.etdp").meta
    assert sample.trace is not None and any(i.graph for i in sample.program.instructions)
    llm = replace(
        sample,
        program=replace(
            sample.program,
            llm=LlmInfo(vocab_size=256, max_seq_len=64, eos_ids=(2,)),
            memory=PlannedMemory(constant_bytes=10),
            content=ProgramContent(
                "ab" * 32, (BlobDigest("forward", 0, "XnnpackBackend", 5, "cd" * 32),)
            ),
        ),
        run=replace(
            sample.run,
            phases=(Step(PREFILL, 0, 4), Step(DECODE, 4, 1)),
            memory=(SessionMemory(before_load_bytes=1),),
            untraced=(UntracedTimes((1.0,), (0.9,)),),
        ),
    )
    for meta in (sample, llm):
        later = json.dumps(_with_a_field_everywhere(json.loads(meta.to_json())))
        assert later.count('"from_later"') > 20
        assert TraceMeta.from_json(later) == meta


# -- item 9: a trace is checked before it is read whole ----------------------------------------


def test_dev_zero_is_refused_at_once() -> None:
    with pytest.raises(TraceFormatError, match="not a regular file"):
        load_trace("/dev/zero")


def test_a_fifo_is_refused_without_waiting(tmp_path: Path) -> None:
    fifo = tmp_path / "t.etdp"
    os.mkfifo(fifo)  # no writer: opening it to read would wait for ever
    with pytest.raises(TraceFormatError, match="not a regular file"):
        load_trace(fifo)


def test_a_huge_sparse_file_is_refused_without_reading_it(tmp_path: Path) -> None:
    import resource

    big = tmp_path / "big.etdp"
    with open(big, "wb") as f:
        f.truncate(2 * 2**30)  # 2 GiB of zeros, no disk used
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(TraceFormatError, match="not an ETDump trace"):
        load_trace(big)
    grew_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grew_kib < 100_000, grew_kib


def test_a_file_beyond_any_etdump_size_is_refused(tmp_path: Path) -> None:
    big = tmp_path / "big.etdp"
    with open(big, "wb") as f:
        f.write((12).to_bytes(4, "little") + b"\0\0\0\0ED00")
        f.truncate(2**31 + 16)
    with pytest.raises(TraceFormatError, match="larger than any ETDump"):
        load_trace(big)


def test_a_trace_followed_by_garbage_is_refused(tmp_path: Path, small_trace: Path) -> None:
    bad = tmp_path / "t.etdp"
    bad.write_bytes(small_trace.read_bytes() + b"garbage!")
    with pytest.raises(TraceFormatError, match="8 bytes after the end"):
        load_trace(bad)


def test_cli_trace_followed_by_garbage_is_one_line(tmp_path: Path, small_trace: Path) -> None:
    bad = tmp_path / "t.etdp"
    bad.write_bytes(small_trace.read_bytes() + b"\0" * 4096)
    assert_one_line_error(run_cli("breakdown", bad), "bytes after the end")


# -- item 10, inputs: a symlink loop is called one --------------------------------------------------


def test_a_symlink_loop_trace_is_named(tmp_path: Path) -> None:
    loop = tmp_path / "loop.etdp"
    loop.symlink_to("loop.etdp")
    with pytest.raises(EtprofError, match="symlink loop"):
        load_trace(loop)
    assert_one_line_error(run_cli("breakdown", loop), "symlink loop")


def test_the_schema_names_every_field_of_the_document() -> None:
    """A field added to a metadata dataclass must be added to SCHEMA too (and so validated)."""
    import dataclasses

    from etprof.program.memory import PlannedMemory
    from etprof.trace import sidecar as metadata
    from etprof.util.jsonspec import ListOf, Nullable, Obj, Spec

    def obj(spec: Spec) -> Obj:
        while isinstance(spec, (Nullable, ListOf)):
            spec = spec.inner if isinstance(spec, Nullable) else spec.item
        assert isinstance(spec, Obj), spec
        return spec

    def names(cls: type) -> set[str]:
        return {f.name for f in dataclasses.fields(cls)}

    top = metadata.SCHEMA
    program, run = obj(top.fields["program"]), obj(top.fields["run"])
    pairs = [
        (top, names(metadata.TraceMeta) | {"format", "version"}),
        (program, names(metadata.ProgramInfo)),
        (obj(program.fields["instructions"]), names(metadata.Instruction)),
        (obj(program.fields["methods"]), names(metadata.MethodInfo)),
        (obj(program.fields["memory"]), names(PlannedMemory)),
        (run, names(metadata.RunSettings)),
        (obj(run.fields["memory"]), names(metadata.SessionMemory)),
        (obj(run.fields["untraced"]), names(metadata.UntracedTimes)),
        (obj(top.fields["host"]), names(metadata.HostInfo)),
        (obj(top.fields["trace"]), names(metadata.TraceBinding)),
    ]
    for spec, fields in pairs:
        assert set(spec.fields) == fields, sorted(set(spec.fields) ^ fields)


# -- item 5: impossible events are a corrupt trace, never numbers ---------------------------------


def _flip_start_of_first_execute(trace: Path) -> bytes:
    """The trace with a high bit of one Method::execute's start flipped (a bit error in a copy):
    it now ends ~18 minutes before it starts."""
    from etprof.trace.etdump.reader import parse_dump

    data = bytearray(trace.read_bytes())
    raw = parse_dump(bytes(data))
    names = [raw.names[c] if c >= 0 else "" for c in raw.name_codes.tolist()]
    row = next(
        i
        for i, n in enumerate(names)
        if n == "Method::execute" and raw.run_names[int(raw.run[i])] == "Execute"
    )
    value = int(raw.start[row]).to_bytes(8, "little")
    at = bytes(data).find(value)
    assert at >= 0 and bytes(data).find(value, at + 1) < 0, "the timestamp is not unique"
    flipped = int(raw.start[row]) ^ (1 << 40)
    data[at : at + 8] = flipped.to_bytes(8, "little")
    return bytes(data)


def test_a_flipped_timestamp_is_refused_not_a_negative_mean(
    tmp_path: Path, small_trace: Path
) -> None:
    bad = tmp_path / "flipped.etdp"
    bad.write_bytes(_flip_start_of_first_execute(small_trace))
    with pytest.raises(TraceFormatError, match="ends before it starts"):
        load_trace(bad)
    result = run_cli("breakdown", bad)
    assert_one_line_error(result, "corrupt trace", "ends before it starts")
    assert result.stdout == ""


def _execute(*events: Any) -> bytes:
    from etdump_builder import Prof, Run, build

    return build(
        [
            Run("Default", [Prof("Program::load_method", start=0, end=50)]),
            Run("Execute", [*events, Prof("Method::execute", start=100, end=1000)]),
        ]
    )


def _prof(name: str, start: int, end: int, instruction: int = -1) -> Any:
    from etdump_builder import Prof

    return Prof(name, instruction=instruction, start=start, end=end)


IMPOSSIBLE = {
    "a call ending before it starts": (
        [_prof("OPERATOR_CALL", 300, 200, 0)],
        "ends before it starts",
    ),
    "a kernel outside its OPERATOR_CALL": (
        [_prof("native_call_add.out", 500, 600), _prof("OPERATOR_CALL", 200, 300, 0)],
        "outside every OPERATOR_CALL",
    ),
    "overlapping calls": (
        [_prof("OPERATOR_CALL", 200, 400, 0), _prof("OPERATOR_CALL", 300, 500, 1)],
        "starts before",
    ),
    "a call outside Method::execute": (
        [_prof("OPERATOR_CALL", 900, 1200, 0)],
        "outside its Method::execute",
    ),
}


@pytest.mark.parametrize("case", list(IMPOSSIBLE))
def test_impossible_nesting_is_a_corrupt_trace(tmp_path: Path, case: str) -> None:
    events, needle = IMPOSSIBLE[case]
    path = tmp_path / "t.etdp"
    path.write_bytes(_execute(*events))
    with pytest.raises(TraceFormatError, match=needle):
        load_trace(path)


def test_possible_nesting_loads(tmp_path: Path) -> None:
    path = tmp_path / "t.etdp"
    path.write_bytes(
        _execute(
            _prof("native_call_add.out", 210, 290),
            _prof("OPERATOR_CALL", 200, 300, 0),
            _prof("OPERATOR_CALL", 300, 400, 1),
        )
    )
    assert len(load_trace(path).events) == 5


# -- item 10: the small ones about inputs and options -----------------------------------------------


def test_cli_diff_negative_seed_is_one_line() -> None:
    assert_one_line_error(run_cli("diff", PAIR_A, PAIR_B, "--seed", "-1"), "--seed -1")


@pytest.mark.parametrize("top", ["0", "-1"])
def test_cli_run_top_is_checked_before_running(small_pte: Path, tmp_path: Path, top: str) -> None:
    result = run_cli("run", small_pte, "--top", top, "--out", tmp_path / "x.etdp", timeout=120)
    assert_one_line_error(result, f"--top {top}")
    assert not (tmp_path / "x.etdp").exists()


def test_cli_truncated_pte_says_so_with_a_fix(small_pte: Path, tmp_path: Path) -> None:
    cut = tmp_path / "cut.pte"
    cut.write_bytes(small_pte.read_bytes()[:-164])  # the flatbuffer intact, a segment cut short
    result = run_cli(
        "run",
        cut,
        "--iters",
        "3",
        "--warmup",
        "1",
        "--sessions",
        "1",
        "--out",
        tmp_path / "x.etdp",
        timeout=300,
    )
    assert_one_line_error(result, "truncated", "export it again")
    assert "0x23" not in result.stderr


@pytest.mark.slow
def test_etprof_run_binds_its_sidecar_to_the_trace(tmp_path: Path, small_pte: Path) -> None:
    out = tmp_path / "x.etdp"
    result = run_cli(
        "run",
        small_pte,
        "--iters",
        "3",
        "--warmup",
        "1",
        "--sessions",
        "1",
        "--spread",
        "0",
        "--out",
        out,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    doc = json.loads(sidecar_path(out).read_text())
    assert doc["version"] == 4 and doc["trace"] == _binding(out)
    assert load_trace(out).meta.trace is not None  # the real document passes the schema
    shutil.copyfile(PAIR_A, out)  # another trace of the same program, put in its place
    assert_one_line_error(run_cli("breakdown", out), "belongs to another trace", "--pte")
