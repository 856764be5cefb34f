"""The machine and the software a trace was recorded with (the sidecar's `host` and versions)."""

from __future__ import annotations

import os
import platform
from pathlib import Path

from etprof.trace.sidecar import HostInfo
from etprof.util.version import __version__


def host_info() -> HostInfo:
    return HostInfo(
        cpu=_cpu_model(),
        cores=os.cpu_count() or 0,
        platform=platform.platform(),
        python=platform.python_version(),
    )


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
