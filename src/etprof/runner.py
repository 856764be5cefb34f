"""Run a `.pte` program with ETDump profiling on, following the seed's methodology.

Imports the ExecuTorch runtime (and so torch) lazily: only `etprof run` and `etprof bench` need it.
The trace and its metadata sidecar are written atomically: an error leaves no partial trace.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from etprof import __version__
from etprof.errors import InputError, RuntimeUnavailableError
from etprof.metadata import HostInfo, ProgramInfo, RunSettings, TraceMeta, sidecar_path
from etprof.output import atomic_path, check_writable
from etprof.program import read_program

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class RunRequest:
    pte: Path
    out: Path
    iters: int = 60
    warmup: int = 10
    threads: int = 1
    method: str = "forward"
    inputs: Path | None = None
    etrecord: Path | None = None  # default: <pte stem>.etrecord beside the .pte, if present
    verbose: bool = False


def default_trace_path(pte: Path) -> Path:
    return pte.with_suffix(".etdp")


def validate(req: RunRequest) -> ProgramInfo:
    """Check everything that can be checked before loading the runtime."""
    if req.iters <= req.warmup:
        raise InputError(
            f"--iters {req.iters} is not greater than --warmup {req.warmup}: nothing would be "
            "measured",
            f"use e.g. --iters {req.warmup + 50} (the seed runs 60 and drops 10)",
        )
    if req.warmup < 0:
        raise InputError(f"--warmup {req.warmup} is negative", "use 0 or more")
    if req.threads < 1:
        raise InputError(f"--threads {req.threads} must be at least 1", "use --threads 1")
    if not req.pte.exists():
        raise InputError(f"no such program: {req.pte}", "check the path or make one with "
                         "`etprof export mv3 --quantize`")
    info = read_program(req.pte, req.method)
    check_writable(req.out)
    check_writable(sidecar_path(req.out))
    if req.inputs is not None and not req.inputs.is_file():
        raise InputError(f"no such inputs file: {req.inputs}", "pass a .pt, .npy or .npz file")
    return info


def run_program(req: RunRequest, progress: Progress | None = None) -> TraceMeta:
    """Run `req.pte` `req.iters` times with ETDump on; write the trace and its metadata."""
    from etprof.quiet import silenced

    info = validate(req)
    with silenced(not req.verbose):
        runtime, torch = _import_runtime()
    _check_backends(runtime, info, req.pte)
    etrecord = req.etrecord or _beside(req.pte)
    if etrecord is not None:
        from etprof.modules import attach_modules

        with silenced(not req.verbose):
            info = replace(attach_modules(info, etrecord), etrecord=str(etrecord))
    started = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
    with silenced(not req.verbose) as captured:
        try:
            runtime._unsafe_reset_threadpool(req.threads)
            module = runtime._load_for_executorch(str(req.pte), enable_etdump=True)
        except RuntimeError as exc:
            raise RuntimeUnavailableError(
                f"the runtime could not load {req.pte} ({_first_line(exc)})",
                "re-export it with this executorch version, or run with --verbose for the log",
            ) from None
    meta_info = module.method_meta(req.method)
    inputs, described = _inputs(req, meta_info, torch)
    with silenced(not req.verbose) as captured:
        clock = _Contention()
        for i in range(req.iters):
            if i == req.warmup:
                clock.start()
            try:
                module.run_method(req.method, inputs)
            except RuntimeError as exc:
                raise RuntimeUnavailableError(
                    f"iteration {i + 1} of {req.method} failed ({_first_line(exc)})",
                    "run with --verbose to see the runtime's log",
                ) from None
            if progress is not None:
                progress(i + 1, req.iters)
        del captured
        share = clock.cpu_share_pct() if req.threads == 1 else None
        meta = TraceMeta(
            program=info,
            run=RunSettings(req.iters, req.warmup, req.threads, described, started,
                            cpu_share_pct=share, load_average=_load_average()),
            host=host_info(),
            versions=versions(),
        )
        with atomic_path(req.out) as tmp_trace, atomic_path(sidecar_path(req.out)) as tmp_meta:
            module.write_etdump_result_to_file(str(tmp_trace))
            if not tmp_trace.exists() or tmp_trace.stat().st_size == 0:
                raise RuntimeUnavailableError(
                    "the runtime wrote no ETDump data",
                    "use an executorch build with ETDump support (the PyPI wheel has it)",
                )
            tmp_meta.write_text(meta.to_json(), encoding="utf-8")
    return meta


class _Contention:
    """How much of the measured iterations' wall time this thread spent on a CPU.

    With one thread the runtime computes on the calling thread, so on an idle core the share is
    ~100%; less means another process took the core for that fraction of the time, and every
    iteration timed then is inflated by it. (With more threads the workers' time is not this
    thread's, so the share is not recorded.)
    """

    def __init__(self) -> None:
        self.wall = self.cpu = 0.0

    def start(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.thread_time()

    def cpu_share_pct(self) -> float | None:
        wall = time.perf_counter() - self.wall
        cpu = time.thread_time() - self.cpu
        return round(min(100.0, 100.0 * cpu / wall), 2) if self.wall and wall > 0 else None


def _load_average() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):  # not on every platform
        return None


def _import_runtime() -> tuple[Any, Any]:
    try:
        import torch
        from executorch.extension.pybindings import portable_lib
    except ImportError as exc:
        raise RuntimeUnavailableError(
            f"the ExecuTorch runtime is not installed ({exc})",
            "pip install executorch==1.5.1 torch==2.13.0",
        ) from None
    return portable_lib, torch


def _check_backends(runtime: Any, info: ProgramInfo, pte: Path) -> None:
    registered = set(runtime._get_registered_backend_names())
    missing = sorted({d for d in info.delegates if d not in registered})
    if missing:
        raise RuntimeUnavailableError(
            f"{pte} needs backend {', '.join(missing)}, which this runtime does not have "
            f"(it has {', '.join(sorted(registered)) or 'none'})",
            "re-export with a backend this runtime has (e.g. `etprof export MODEL` for "
            "XNNPACK) or profile on a runtime built with it",
        )


def _beside(pte: Path) -> Path | None:
    candidate = pte.with_suffix(".etrecord")
    return candidate if candidate.is_file() else None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


# ExecuTorch ScalarType codes (schema/scalar_type.fbs) -> torch dtype names
_DTYPES = {0: "uint8", 1: "int8", 2: "int16", 3: "int32", 4: "int64", 5: "float16",
           6: "float32", 7: "float64", 11: "bool", 15: "bfloat16"}


def _inputs(req: RunRequest, meta: Any, torch: Any) -> tuple[tuple[Any, ...], str]:
    """Inputs built from the method's metadata (shapes and dtypes), or read from a file."""
    specs = []
    for i in range(meta.num_inputs()):
        t = meta.input_tensor_meta(i)
        code = int(t.dtype())
        dtype = getattr(torch, _DTYPES.get(code, ""), None)
        if dtype is None:
            raise InputError(f"input {i} has scalar type {code}, which etprof cannot generate",
                             "pass --inputs with a tensor file")
        specs.append((tuple(t.sizes()), dtype))
    if req.inputs is not None:
        values = _read_inputs(req.inputs, torch)
        _check_inputs(values, specs, req.inputs)
        return values, f"file:{req.inputs.name}"
    gen = torch.Generator().manual_seed(0)
    values = []
    for shape, dtype in specs:
        if dtype.is_floating_point:
            values.append(torch.randn(shape, generator=gen).to(dtype))
        elif dtype == torch.bool:
            values.append(torch.rand(shape, generator=gen) > 0.5)
        else:
            values.append(torch.randint(0, 10, shape, generator=gen).to(dtype))
    return tuple(values), "random:seed=0"


def _read_inputs(path: Path, torch: Any) -> tuple[Any, ...]:
    try:
        if path.suffix in (".npy", ".npz"):
            import numpy as np

            loaded = np.load(path)
            arrays = [loaded[k] for k in loaded.files] if path.suffix == ".npz" else [loaded]
            return tuple(torch.from_numpy(a) for a in arrays)
        obj = torch.load(path, weights_only=True)
    except Exception as exc:  # noqa: BLE001 -- any unreadable file is the user's to fix
        raise InputError(f"cannot read inputs from {path} ({_first_line(exc)})",
                         "pass a torch.save'd tensor or tuple of tensors (.pt), or .npy/.npz") \
            from None
    values = obj if isinstance(obj, (tuple, list)) else (obj,)
    if not all(isinstance(v, torch.Tensor) for v in values):
        raise InputError(f"{path} holds something other than tensors",
                         "save a tensor or a tuple of tensors with torch.save")
    return tuple(values)


def _check_inputs(values: tuple[Any, ...], specs: list[tuple[tuple[int, ...], Any]],
                  path: Path) -> None:
    if len(values) != len(specs):
        raise InputError(f"{path} has {len(values)} inputs, the method takes {len(specs)}",
                         "save one tensor per method input")
    for i, (value, (shape, dtype)) in enumerate(zip(values, specs)):
        if tuple(value.shape) != shape or value.dtype != dtype:
            raise InputError(
                f"input {i} in {path} is {list(value.shape)} {value.dtype}, the method expects "
                f"{list(shape)} {dtype}",
                "save inputs of the shape and dtype shown",
            )


def host_info() -> HostInfo:
    return HostInfo(cpu=_cpu_model(), cores=os.cpu_count() or 0,
                    platform=platform.platform(), python=platform.python_version())


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"etprof": __version__}
    for pkg in ("executorch", "torch"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "not installed"
    return out
