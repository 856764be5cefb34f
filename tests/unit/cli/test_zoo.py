from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from etprof import zoo
from etprof.errors import EtprofError, InputError

# torchvision's counts for mobilenet_v2, mobilenet_v3_small and mobilenet_v3_large
PARAMETERS = {"mv2": 3_504_872, "mv3": 2_542_856, "mv3-large": 5_483_032}


@pytest.mark.parametrize("name", sorted(PARAMETERS))
def test_zoo_models_match_torchvision(name: str) -> None:
    model, inputs = zoo.load(name)
    assert sum(p.numel() for p in model.parameters()) == PARAMETERS[name]
    assert not model.training
    assert len(inputs) == 1 and inputs[0].shape == (1, 3, 224, 224)
    with torch.no_grad():
        out = model(*inputs)
    assert out.shape == (1, 1000)
    # BatchNorm statistics are calibrated: logits are not vanishingly small
    assert float(out.std()) > 1e-3


def test_zoo_models_are_deterministic() -> None:
    first, (x1,) = zoo.load("mv3")
    torch.manual_seed(123)
    second, (x2,) = zoo.load("mv3")
    assert torch.equal(x1, x2)
    for a, b in zip(first.state_dict().values(), second.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_zoo_build_leaves_global_rng_alone() -> None:
    torch.manual_seed(7)
    expected = torch.rand(3)
    torch.manual_seed(7)
    zoo.load("mv3")
    assert torch.equal(torch.rand(3), expected)


def test_unknown_model_is_one_line() -> None:
    with pytest.raises(InputError) as info:
        zoo.parse("resnet")
    assert info.value.one_line() == (
        "unknown model 'resnet'; use one of mv2, mv3, mv3-large, llama or package.module:callable"
    )


@pytest.mark.parametrize("spec", ["", "mv4", "a:", ":b", "a.b", "a:b:c", "a-b:c", "1a:b"])
def test_malformed_specs_are_refused(spec: str) -> None:
    with pytest.raises(InputError, match="unknown model"):
        zoo.parse(spec)


def test_callable_spec_names_outputs_after_the_callable() -> None:
    spec = zoo.parse("pkg.models:build.small")
    assert (spec.name, spec.module, spec.attr, spec.builtin) == (
        "small",
        "pkg.models",
        "build.small",
        False,
    )
    assert zoo.parse("mv3-large").builtin


def test_user_callable_loads() -> None:
    model, inputs = zoo.load("etprof_tiny_models:tiny")
    assert not model.training
    assert model(*inputs).shape == (1, 4)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("no_such_module_xyz:build", "cannot import 'no_such_module_xyz'"),
        ("etprof_tiny_models:missing", "has no attribute 'missing'"),
        ("etprof_tiny_models:NOT_CALLABLE", "is not callable"),
        ("etprof_tiny_models:not_a_pair", "not a pair"),
        ("etprof_tiny_models:raises", "RuntimeError: weights missing"),
    ],
)
def test_bad_user_callables_are_one_line_errors(spec: str, message: str) -> None:
    with pytest.raises(EtprofError) as info:
        zoo.load(spec)
    line = info.value.one_line()
    assert message in line
    assert "\n" not in line


def test_importing_the_zoo_does_not_import_torch() -> None:
    code = "import sys, etprof.zoo; etprof.zoo.parse('mv2'); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
