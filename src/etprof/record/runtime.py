"""Loading the ExecuTorch runtime for a program: its pybindings, the delegates the program calls
(registered, their runtime loadable) and the custom operators it needs (ExecuTorch's LLM ops)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from etprof.errors import RuntimeUnavailableError
from etprof.program.types import ProgramInfo


def import_runtime() -> tuple[Any, Any]:
    try:
        import torch
        from executorch.extension.pybindings import portable_lib
    except ImportError as exc:
        raise RuntimeUnavailableError(
            f"the ExecuTorch runtime is not installed ({exc})",
            "pip install executorch==1.5.1 torch==2.13.0",
        ) from None
    return portable_lib, torch


def check_backends(runtime: Any, info: ProgramInfo, pte: Path) -> None:
    registered = set(runtime._get_registered_backend_names())
    missing = sorted({d for d in info.delegates if d not in registered})
    if missing:
        raise RuntimeUnavailableError(
            f"{pte} needs backend {', '.join(missing)}, which this runtime does not have "
            f"(it has {', '.join(sorted(registered)) or 'none'})",
            "re-export with a backend this runtime has (e.g. `etprof export MODEL` for "
            "XNNPACK) or profile on a runtime built with it",
        )
    check_backends_load(runtime, info, pte)


def check_backends_load(runtime: Any, info: ProgramInfo, pte: Path) -> None:
    """Refuse, in one line naming the backend and its install hint, a program whose delegate's
    backend is registered but does not load. A registered backend can still be unusable:
    OpenVINO's loads its own library (``libopenvino_c``, found through the ``openvino`` package)
    when first asked, and without it the program fails at its first run, which would read as
    bad inputs. The runtime's ``_is_available(backend)`` asks the backend itself."""
    from etprof import backends

    available = getattr(runtime, "_is_available", None)
    if available is None:  # an older runtime cannot tell: the run itself will
        return
    for backend_id in dict.fromkeys(info.delegates):
        if available(backend_id):
            continue
        backend = backends.get(backend_id)
        fix = (
            f"install it with {backend.install_hint}"
            if backend.install_hint
            else f"install {backend.label}'s runtime library where the ExecuTorch runtime finds it"
        )
        raise RuntimeUnavailableError(
            f"{pte} delegates to {backend.label} ({backend_id}), whose runtime does not load "
            "on this machine",
            f"{fix}, or run with --verbose for the runtime's log",
        )


# Operator namespaces whose kernels live in a library outside the runtime, and the module whose
# import registers them: ExecuTorch's LLM custom ops (export_llama --use_sdpa_with_kv_cache:
# llama::custom_sdpa, llama::update_cache, ...).
CUSTOM_OPS = {"llama::": "executorch.extension.llm.custom_ops.custom_ops"}


def load_custom_ops(info: ProgramInfo, pte: Path) -> None:
    """Register the kernels of the custom operators `pte` calls (before it is loaded)."""
    import importlib

    names = {i.name for m in (info.methods or ()) for i in m.instructions} | {
        i.name for i in info.instructions
    }
    for prefix, module in CUSTOM_OPS.items():
        used = sorted(n for n in names if n.startswith(prefix))
        if not used:
            continue
        try:
            importlib.import_module(module)
        except (ImportError, OSError, RuntimeError) as exc:
            raise RuntimeUnavailableError(
                f"{pte} calls {', '.join(used)}, whose kernels {module} registers, and it did "
                f"not load ({first_line(exc)})",
                "install the executorch wheel with its LLM custom ops "
                "(pip install executorch==1.5.1), or export without them",
            ) from None


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (the runtime's can run to pages)."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
