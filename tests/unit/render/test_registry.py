"""The analyzer registry: `get` imports only the module named like the analyzer; `available`
and unknown names still see every module."""

from __future__ import annotations

import subprocess
import sys

import pytest

from etprof import analyzers
from etprof.errors import InputError


def _python(code: str) -> str:
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return proc.stdout.strip()


def test_get_imports_only_the_named_module() -> None:
    out = _python(
        "import sys\n"
        "from etprof import analyzers\n"
        "entry = analyzers.get('runmodel')\n"
        "loaded = sorted(m.rsplit('.', 1)[1] for m in sys.modules\n"
        "                if m.startswith('etprof.analyzers.'))\n"
        "print(entry.name, ','.join(loaded))\n"
    )
    name, loaded = out.split()
    assert name == "runmodel"
    assert loaded.split(",") == ["runmodel"]


def test_available_still_finds_every_module() -> None:
    out = _python(
        "import pkgutil\n"
        "from etprof import analyzers\n"
        "analyzers.get('runmodel')\n"
        "modules = sorted(i.name for i in pkgutil.iter_modules(analyzers.__path__)\n"
        "                 if not i.name.startswith('_') and not i.ispkg)\n"
        "print(','.join(modules), ','.join(analyzers.available()))\n"
    )
    modules, names = (part.split(",") for part in out.split())
    assert len(modules) >= 5
    assert sorted(names) == names and set(modules) <= set(names)


def test_unknown_name_lists_every_analyzer() -> None:
    with pytest.raises(InputError) as info:
        analyzers.get("no_such_analyzer")
    message = info.value.one_line()
    for name in analyzers.available():
        assert name in message
    # a dotted name is never imported as a module path
    with pytest.raises(InputError):
        analyzers.get("os.path")
