"""Program identity (issue 12 item 2): a `--pte` is checked against the trace's structure and
the sidecar's record of the program's content; "same model" in diff comes from what the user
says or what the programs share, never from file-name suffixes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from etprof.errors import MismatchError
from etprof.loading import load_trace
from etprof.metadata import ProgramContent
from etprof.program import read_program

from conftest import SAMPLES, assert_one_line_error, run_cli

FP32 = SAMPLES / "mv3_xnnpack_fp32.etdp"
Q8 = SAMPLES / "mv3_xnnpack_q8.etdp"


def copy_trace(src: Path, dst: Path, **program: object) -> Path:
    """A copy of a real trace and its sidecar, with `program` fields of the sidecar replaced
    (the trace bytes, which the sidecar is bound to, unchanged)."""
    shutil.copyfile(src, dst)
    doc = json.loads(src.with_suffix(".etprof.json").read_text())
    doc["program"].update(program)
    dst.with_suffix(".etprof.json").write_text(json.dumps(doc))
    return dst


@pytest.mark.slow
def test_a_float_trace_refuses_its_quantized_program() -> None:
    """MV3 fp32 and q8 are both 18 portable instructions around one XNNPACK call: the kinds
    agree, only the delegate's graph tells them apart (accepted before, as "mv3_xnnpack_q8")."""
    from mv3_programs import cached_program

    q8 = cached_program("xnnpack_q8")
    with pytest.raises(MismatchError, match="converts between precisions") as info:
        load_trace(FP32, pte=q8)
    assert str(q8) in info.value.problem and str(FP32) in info.value.problem
    assert q8.name in info.value.fix
    result = run_cli("breakdown", FP32, "--pte", q8)
    assert_one_line_error(result, "does not match", q8.name, FP32.name)


@pytest.mark.slow
def test_a_quantized_trace_refuses_the_float_program() -> None:
    from mv3_programs import cached_program

    fp32 = cached_program("xnnpack_fp32")
    own = load_trace(FP32, pte=fp32)  # its own program is accepted
    assert own.meta.program.sha256 == read_program(fp32).sha256
    # the q8 sample's sidecar has its table; set aside for the check of the program's graph
    with pytest.raises(MismatchError, match="match no node"):
        load_trace(Q8, pte=fp32)


@pytest.mark.slow
def test_the_sidecar_record_of_the_program_refuses_another(tmp_path: Path) -> None:
    """A version 4 sidecar records the program's content; a --pte whose delegate blobs differ
    is refused even where the structure would pass."""
    from mv3_programs import cached_program

    q8 = cached_program("xnnpack_q8")
    content = read_program(q8).content
    assert content is not None and len(content.delegates) == 1
    trace = load_trace(Q8, pte=q8)  # structure and graph agree: accepted
    assert trace.meta.program.content == content
    other = ProgramContent(content.instructions_sha256, ())  # a program of no delegate blobs
    doc = {"instructions_sha256": other.instructions_sha256, "delegates": []}
    stale = copy_trace(Q8, tmp_path / "q8.etdp", content=doc, sha256="0" * 64)
    with pytest.raises(MismatchError, match="the delegate blobs differ"):
        load_trace(stale, pte=q8)
    assert load_trace(stale).meta.program.content == other  # read back as written
