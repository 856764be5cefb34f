from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
import zipfile
from collections import Counter
from pathlib import Path

import pytest

from etprof.backends.graphs import read_program
from etprof.errors import EtprofError, InputError
from etprof.program.types import Instruction, ProgramInfo
from etprof.zoo.export import (
    STANDARD_VARIANTS,
    ExportOptions,
    ExportResult,
    check_options,
    check_output_dir,
    export_model,
    model_of_variant,
    output_paths,
    summarize,
    variant_name,
)

from conftest import TESTS
from programs import exported

TINY = "etprof_tiny_models:tiny"


# --- naming and options (fast) -------------------------------------------------------------


@pytest.mark.parametrize(
    ("quantize", "delegate", "partitioner", "stem"),
    [
        (False, False, "mixed", "mv2_portable"),
        (True, False, "mixed", "mv2_portable_q8"),
        (False, True, "mixed", "mv2_xnnpack_fp32"),
        (True, True, "mixed", "mv2_xnnpack_q8"),
        (True, True, "quant-only", "mv2_xnnpack_q8_quantonly"),
    ],
)
def test_variant_names_follow_executorch_examples(
    quantize: bool, delegate: bool, partitioner: str, stem: str
) -> None:
    assert variant_name("mv2", quantize, delegate, partitioner) == stem
    assert model_of_variant(stem) == "mv2"  # its inverse, e.g. for the fallback note's text
    assert model_of_variant(variant_name("llama", quantize, delegate, llm=True)) == "llama"
    assert model_of_variant("my_model") == "my_model"


def test_standard_variants_are_named_after_themselves() -> None:
    assert list(STANDARD_VARIANTS) == [
        "portable",
        "xnnpack_fp32",
        "xnnpack_q8",
        "xnnpack_q8_quantonly",
    ]
    for name, o in STANDARD_VARIANTS.items():
        assert variant_name("mv3", o.quantize, o.delegate, o.partitioner) == f"mv3_{name}"


def test_output_paths_put_the_etrecord_beside_the_program(tmp_path: Path) -> None:
    pte, etrecord = output_paths(tmp_path, "mv3", STANDARD_VARIANTS["xnnpack_q8"])
    assert pte == tmp_path / "mv3_xnnpack_q8.pte"
    assert etrecord == tmp_path / "mv3_xnnpack_q8.etrecord"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (ExportOptions(quantize=False, partitioner="quant-only"), "add --quantize"),
        (
            ExportOptions(quantize=True, delegate=False, partitioner="quant-only"),
            "needs --delegate",
        ),
        (ExportOptions(partitioner="greedy"), "unknown partitioner 'greedy'"),
    ],
)
def test_useless_option_combinations_are_refused(options: ExportOptions, message: str) -> None:
    with pytest.raises(InputError) as info:
        check_options(options)
    assert message in info.value.one_line()
    with pytest.raises(InputError) as info:
        variant_name("mv3", options.quantize, options.delegate, options.partitioner)
    assert message in info.value.one_line()


def test_summary_counts_delegate_calls_and_portable_operators() -> None:
    kinds = [
        ("operator", "aten::hardswish.out"),
        ("delegate", "XnnpackBackend"),
        ("operator", "aten::hardswish.out"),
        ("free", "free"),
        ("delegate", "XnnpackBackend"),
        ("operator", "aten::mean.out"),
    ]
    program = ProgramInfo(
        instructions=tuple(Instruction(id=i, kind=k, name=n) for i, (k, n) in enumerate(kinds)),
        delegates=("XnnpackBackend", "XnnpackBackend"),
    )
    s = summarize(program)
    assert (s.instructions, s.delegate_calls, s.portable_calls) == (6, 2, 3)
    assert s.portable_ops == Counter({"aten::hardswish.out": 2, "aten::mean.out": 1})
    assert s.backends == ("XnnpackBackend",)


def test_output_dir_is_checked_before_any_work(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        check_output_dir(tmp_path / "missing")
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="is a file"):
        check_output_dir(tmp_path / "file")
    with pytest.raises(InputError, match="cannot write in"):
        check_output_dir(_unwritable_dir(tmp_path))
    # export_model refuses too, without importing torch or building anything
    with pytest.raises(InputError, match="does not exist"):
        export_model("mv3", ExportOptions(), tmp_path / "missing")
    assert {p.name for p in tmp_path.iterdir()} <= {"file", "ro"}


def _unwritable_dir(tmp_path: Path) -> Path:
    # root ignores permission bits, so it gets a folder no one can create files in
    if os.geteuid() == 0:
        return Path("/sys")
    ro = tmp_path / "ro"
    ro.mkdir(exist_ok=True)
    ro.chmod(stat.S_IRUSR | stat.S_IXUSR)
    return ro


# --- the command line's refusals (fast: nothing is exported) -------------------------------


def _etprof(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "etprof.cli", *args],
        check=False,
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["resnet"], "unknown model 'resnet'; use one of mv2, mv3, mv3-large"),
        (["mv3", "-o", "missing"], "output folder missing does not exist"),
        (["mv3", "-o", "UNWRITABLE"], "cannot write in"),
        (["mv3", "--partitioner", "quant-only"], "add --quantize or use --partitioner mixed"),
        (["no_such_module_xyz:build"], "cannot import 'no_such_module_xyz'"),
    ],
)
def test_cli_refuses_bad_input_in_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    work = tmp_path / "work"
    work.mkdir()
    args = [str(_unwritable_dir(tmp_path)) if a == "UNWRITABLE" else a for a in args]
    done = _etprof("export", *args, cwd=work)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith("etprof: error: ") and message in done.stderr
    assert "Traceback" not in done.stderr
    assert list(work.iterdir()) == []


# --- real exports of a tiny model (slow) ---------------------------------------------------


def cached_export(model: str, variant: str) -> ExportResult:
    """export_model's result for a program of the shared export cache (tests/programs.py), which
    export_model wrote into the cache's folder."""
    made = exported(model, variant)
    return ExportResult(made.pte, made.etrecord, summarize(read_program(made.pte)), made.export_s)


@pytest.fixture(scope="module")
def tiny_exports() -> dict[str, ExportResult]:
    return {
        variant: cached_export(TINY, variant)
        for variant in ("portable", "xnnpack_fp32", "xnnpack_q8")
    }


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["portable", "xnnpack_fp32", "xnnpack_q8"])
def test_export_writes_program_and_etrecord(
    tiny_exports: dict[str, ExportResult], variant: str
) -> None:
    result = tiny_exports[variant]
    assert result.pte.name == f"tiny_{variant}.pte"
    assert result.etrecord == result.pte.with_suffix(".etrecord")
    assert result.etrecord.is_file() and zipfile.is_zipfile(result.etrecord)
    assert result.pte.stat().st_mode & 0o044 == 0o044  # shared like any file, not 0600
    assert result.summary == summarize(read_program(result.pte))
    # nothing half-written left behind
    assert not [p for p in result.pte.parent.iterdir() if p.name.startswith(".")]


@pytest.mark.slow
def test_portable_variant_delegates_nothing(tiny_exports: dict[str, ExportResult]) -> None:
    s = tiny_exports["portable"].summary
    assert s.delegate_calls == 0 and s.backends == ()
    assert s.portable_ops["aten::convolution.out"] == 2
    assert s.portable_ops["aten::addmm.out"] == 1


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["xnnpack_fp32", "xnnpack_q8"])
def test_xnnpack_variants_delegate_convolutions(
    tiny_exports: dict[str, ExportResult], variant: str
) -> None:
    s = tiny_exports[variant].summary
    assert s.delegate_calls >= 1 and s.backends == ("XnnpackBackend",)
    assert "aten::convolution.out" not in s.portable_ops
    assert s.portable_calls < tiny_exports["portable"].summary.portable_calls


@pytest.mark.slow
def test_export_failure_is_one_line_and_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(EtprofError) as info:
        export_model("etprof_tiny_models:unexportable", ExportOptions(), tmp_path)
    assert "torch.export cannot export etprof_tiny_models:unexportable" in info.value.one_line()
    assert "\n" not in info.value.one_line()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_cli_export_prints_a_summary(tmp_path: Path) -> None:
    done = _etprof("export", TINY, "--quantize", "--no-delegate", "-o", str(tmp_path), cwd=TESTS)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "tiny_portable_q8.etrecord",
        "tiny_portable_q8.pte",
    ]
    assert "wrote " in done.stdout and "tiny_portable_q8.pte" in done.stdout
    assert "delegate calls: 0" in done.stdout
    assert re.search(
        r"^  quantized_decomposed::quantize_per_tensor\.out +x \d+$", done.stdout, re.MULTILINE
    )
    # torch/executorch log noise is silenced: only our progress line
    assert done.stderr.strip().splitlines() == [
        "exporting etprof_tiny_models:tiny to tiny_portable_q8.pte (this takes a minute or so)"
    ]


# --- acceptance: the seed's MobileNetV3 hardswish story (slow, a few minutes) ---------------


@pytest.fixture(scope="module")
def mv3_q8() -> dict[str, ExportResult]:
    return {
        "quant-only": cached_export("mv3", "xnnpack_q8_quantonly"),
        "mixed": cached_export("mv3", "xnnpack_q8"),
    }


@pytest.mark.slow
def test_quant_only_partitioner_leaves_mv3_activations_on_portable(
    mv3_q8: dict[str, ExportResult],
) -> None:
    from torch import nn

    from etprof import zoo

    quant_only, mixed = mv3_q8["quant-only"].summary, mv3_q8["mixed"].summary
    assert quant_only.delegate_calls > mixed.delegate_calls
    assert mixed.delegate_calls == 1
    # The float hardswish/hardsigmoid the 2023 partitioner could not take: edge decomposes each
    # into x * clamp(x + 3, 0, 6) / 6, and with quant-only the division stays on portable,
    # splitting the XNNPACK graph at every activation.
    model, _ = zoo.load("mv3")
    activations = sum(isinstance(m, (nn.Hardswish, nn.Hardsigmoid)) for m in model.modules())
    assert activations == 28
    assert quant_only.portable_ops["aten::div.out"] == activations
    assert "aten::div.out" not in mixed.portable_ops
    assert quant_only.portable_calls > mixed.portable_calls
