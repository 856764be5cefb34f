"""Build tests/cpp/etdump_runner.cpp against the installed executorch wheel's own C++ runtime.

The wheel ships the libraries (``executorch/lib``: the runtime, the CPU kernels, the XNNPACK
delegate, the ETDump profiler), their headers (``executorch/include``) and a CMake package
(``executorch/share/cmake``) whose variables say how to compile against them: C++17, the c10
include directory, ``C10_USING_CUSTOM_GENERATED_MACROS`` and ``ET_EVENT_TRACER_ENABLED`` (the
libraries are built with the event tracer, and a consumer compiled without it sees empty
profiling scopes). The kernel and delegate libraries only register themselves when loaded, so
they are linked with --no-as-needed. Also runnable by hand: ``python tests/cpp_runner.py OUT``.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

SOURCE = Path(__file__).resolve().parent / "cpp" / "etdump_runner.cpp"
REGISTERING = ("executorch_kernels_optimized", "executorch_backend_xnnpack")
LINKED = ("executorch_etdump", "executorch")


class CannotBuild(Exception):
    """No compiler, or a wheel without the C++ runtime: the reason, for a test's skip."""


def wheel_root() -> Path:
    spec = importlib.util.find_spec("executorch")
    if spec is None or not spec.submodule_search_locations:
        raise CannotBuild("executorch is not installed")
    root = Path(next(iter(spec.submodule_search_locations)))
    for part in (
        "include/executorch",
        "lib/libexecutorch.so",
        "lib/libexecutorch_etdump.so",
        "lib/libexecutorch_backend_xnnpack.so",
        "share/cmake",
    ):
        if not (root / part).exists():
            raise CannotBuild(f"the executorch wheel at {root} has no {part}")
    return root


def build_command(out: Path, root: Path, compiler: str = "g++") -> list[str]:
    lib = root / "lib"
    return [
        compiler,
        "-std=c++17",
        "-O1",
        "-DC10_USING_CUSTOM_GENERATED_MACROS",
        "-DET_EVENT_TRACER_ENABLED",
        f"-I{root / 'include'}",
        f"-I{root / 'include/executorch/runtime/core/portable_type/c10'}",
        str(SOURCE),
        "-o",
        str(out),
        f"-L{lib}",
        f"-Wl,--enable-new-dtags,-rpath,{lib}",
        "-Wl,--push-state,--no-as-needed",
        *(f"-l{n}" for n in REGISTERING),
        "-Wl,--pop-state",
        *(f"-l{n}" for n in LINKED),
    ]


def build(out_dir: Path) -> Path:
    """Compile the runner into `out_dir`; CannotBuild says why when it cannot."""
    compiler = shutil.which("g++")
    if compiler is None:
        raise CannotBuild("g++ is not installed")
    out = out_dir / "etdump_runner"
    proc = subprocess.run(
        build_command(out, wheel_root(), compiler),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if proc.returncode != 0:
        raise CannotBuild(f"g++ failed: {proc.stderr[-2000:]}")
    return out


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(".")
    target.mkdir(parents=True, exist_ok=True)
    print(" ".join(build_command(target / "etdump_runner", wheel_root())))
    print(build(target))
