"""Program identity (issue 12 item 2): a `--pte` is checked against the trace's structure and
the sidecar's record of the program's content; "same model" in diff comes from what the user
says or what the programs share, never from file-name suffixes."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from etprof.analyzers.diff import DiffOptions, diff_traces
from etprof.backends.graphs import read_program
from etprof.errors import MismatchError
from etprof.program.types import ProgramContent
from etprof.trace.loading import load_trace

from conftest import SAMPLES, assert_one_line_error, run_cli
from programs import program, program_copy

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
    q8 = program("mv3", "xnnpack_q8")
    with pytest.raises(MismatchError, match="converts between precisions") as info:
        load_trace(FP32, pte=q8)
    assert str(q8) in info.value.problem and str(FP32) in info.value.problem
    assert q8.name in info.value.fix
    result = run_cli("breakdown", FP32, "--pte", q8)
    assert_one_line_error(result, "does not match", q8.name, FP32.name)


@pytest.mark.slow
def test_a_quantized_trace_refuses_the_float_program() -> None:
    fp32 = program("mv3", "xnnpack_fp32")
    own = load_trace(FP32, pte=fp32)  # its own program is accepted
    assert own.meta.program.sha256 == read_program(fp32).sha256
    # the q8 sample's sidecar has its table; set aside for the check of the program's graph
    with pytest.raises(MismatchError, match="match no node"):
        load_trace(Q8, pte=fp32)


@pytest.mark.slow
def test_the_sidecar_record_of_the_program_refuses_another(tmp_path: Path) -> None:
    """A version 4 sidecar records the program's content; a --pte whose delegate blobs differ
    is refused even where the structure would pass."""
    q8 = program("mv3", "xnnpack_q8")
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


MV2 = SAMPLES / "mv2_xnnpack_fp32.etdp"


def without_modules(src: Path, dst: Path, **program: object) -> Path:
    """A copy of a real trace whose sidecar has no module paths (no ETRecord was found)."""
    doc = json.loads(src.with_suffix(".etprof.json").read_text())
    table = [{**i, "modules": []} for i in doc["program"]["instructions"]]
    return copy_trace(src, dst, instructions=table, **program)


def check_model(a: Path, b: Path, **options: object) -> tuple[str, str]:
    result = diff_traces(load_trace(a), load_trace(b), DiffOptions(force=True, **options))  # type: ignore[arg-type]
    (check,) = [c for c in result.checks if c.setting == "model"]
    return check.status, check.basis


def test_same_model_is_what_the_programs_share_not_their_names(tmp_path: Path) -> None:
    """A dq8 variant is the same model (it was "a different model" by its name), and another
    model named like a variant of this one is not (it was "the same")."""
    fp32 = copy_trace(FP32, tmp_path / "encoder_fp32.etdp", model="encoder_fp32")
    dq8 = copy_trace(Q8, tmp_path / "encoder_dq8.etdp", model="encoder_dq8")
    result = diff_traces(load_trace(fp32), load_trace(dq8), DiffOptions())
    (check,) = [c for c in result.checks if c.setting == "model"]
    assert check.status == "same" and "module paths" in check.basis
    impostor = copy_trace(MV2, tmp_path / "mv3_xnnpack_q4.etdp", model="mv3_xnnpack_q4")
    gate = DiffOptions(fail_if_slower=5.0)  # refused where a CI gate would judge them
    with pytest.raises(MismatchError, match=r"model differs: .*module paths") as info:
        diff_traces(load_trace(FP32), load_trace(impostor), gate)
    assert "--same-model" in info.value.fix
    refused = run_cli("diff", FP32, impostor, "--fail-if-slower", "5")
    assert_one_line_error(refused, "model differs", "--same-model", "--force")


def test_without_module_paths_the_operator_sequence_decides(tmp_path: Path) -> None:
    fp32 = without_modules(FP32, tmp_path / "a_fp32.etdp")
    q8 = without_modules(Q8, tmp_path / "b_dq8.etdp")
    mv2 = without_modules(MV2, tmp_path / "a_q8.etdp")
    status, basis = check_model(fp32, q8)
    assert status == "same" and "operator sequences agree to 100%" in basis
    status, basis = check_model(fp32, mv2)
    assert status == "differs" and "operator sequences" in basis
    assert check_model(fp32, mv2, same_model=True) == ("same", "said with --same-model")
    ok = run_cli("diff", fp32, mv2, "--same-model")
    assert ok.returncode == 0, ok.stderr
    assert "model differs" not in ok.stdout and "differ in structure" not in ok.stdout


def test_a_recorded_source_model_decides(tmp_path: Path) -> None:
    a = copy_trace(FP32, tmp_path / "a.etdp", source_model="mv3")
    b = copy_trace(Q8, tmp_path / "b.etdp", source_model="mv3")
    c = copy_trace(Q8, tmp_path / "c.etdp", source_model="mobilenet_v3")
    assert check_model(a, b)[0] == "same"
    status, basis = check_model(a, c)
    assert status == "differs" and "'mobilenet_v3'" in basis


# --- what XNNPACK's runtime splits and renames: the right program accepted (issue 22) ---------

QUICK = ("--iters", "3", "--warmup", "1", "--sessions", "1", "--spread", "0", "--no-untraced")


@pytest.fixture(scope="module")
def bare_trace(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., tuple[Path, Path]]:
    """(the .pte, a trace of it recorded with the pybindings by `etprof run`, copied without
    its sidecar: what a trace from another runner is), once per program."""
    done: dict[tuple[str, str | None, bool], tuple[Path, Path]] = {}

    def get(model: str, variant: str | None = None, quantize: bool = False) -> tuple[Path, Path]:
        key = (model, variant, quantize)
        if key not in done:
            folder = tmp_path_factory.mktemp(model.split(":")[-1])
            pte = program_copy(folder, model, variant, quantize=quantize or None)
            traced = folder / "traced.etdp"
            result = run_cli("run", pte, *QUICK, "--out", traced)
            assert result.returncode == 0, result.stderr
            bare = folder / "bare.etdp"
            shutil.copyfile(traced, bare)
            done[key] = pte, bare
        return done[key]

    return get


ACCEPTED = [
    # ResNet-style residual blocks: the ReLU after each Add runs as a Clamp of its own
    ("etprof_tiny_models:resnet8", None, False),
    ("etprof_tiny_models:resnet8", None, True),
    # ExecuTorch's Llama: RMSNorm's x * x is serialized as Multiply and runs as Square; its dq8
    # linears convert their input inside the GEMM (no Convert operator)
    ("llama", "xnnpack_fp32", False),
    ("llama", "dq8", False),
    ("etprof_tiny_models:mobilebert", None, False),
    # a transformer encoder with dynamically quantized linears (Convert fused into the GEMMs)
    ("etprof_tiny_models:encoder_dq", None, True),
]


@pytest.mark.slow
@pytest.mark.parametrize(("model", "variant", "quantize"), ACCEPTED)
def test_the_right_program_is_accepted(
    bare_trace: Callable[..., tuple[Path, Path]], model: str, variant: str | None, quantize: bool
) -> None:
    pte, bare = bare_trace(model, variant, quantize)
    trace = load_trace(bare, pte=pte)  # refused before: "Clamp (NC)" / "Square (NC)" / "Convert"
    assert trace.meta.program.sha256 == read_program(pte).sha256
    result = run_cli("breakdown", bare, "--pte", pte, "--warmup", "1", "--format", "json")
    assert result.returncode == 0, result.stderr


@pytest.mark.slow
def test_another_model_is_still_refused(bare_trace: Callable[..., tuple[Path, Path]]) -> None:
    resnet, resnet_trace = bare_trace("etprof_tiny_models:resnet8")
    ds_cnn, ds_cnn_trace = bare_trace("etprof_tiny_models:ds_cnn")
    for trace, pte in ((ds_cnn_trace, resnet), (resnet_trace, ds_cnn)):
        with pytest.raises(MismatchError, match="does not match"):
            load_trace(trace, pte=pte)
        assert_one_line_error(run_cli("breakdown", trace, "--pte", pte), "does not match", pte.name)
    # the float trace of the residual network with its quantized program, and the other way
    q8, q8_trace = bare_trace("etprof_tiny_models:resnet8", quantize=True)
    with pytest.raises(MismatchError, match="converts between precisions"):
        load_trace(resnet_trace, pte=q8)
    with pytest.raises(MismatchError, match="match no node"):
        load_trace(q8_trace, pte=resnet)
    # the Llama's float trace with its dq8 program: its GEMMs ran no dynamic quantization
    llama, _ = bare_trace("llama", "dq8")
    _, llama_fp32_trace = bare_trace("llama", "xnnpack_fp32")
    with pytest.raises(MismatchError, match="does not match"):
        load_trace(llama_fp32_trace, pte=llama)
