"""Regenerate src/etprof/backends/openvino_support.json from the installed executorch.

Run after upgrading executorch or openvino:  /work/venv/bin/python scripts/gen_openvino_support.py
(tests/test_openvino.py fails while the checked-in table differs from what this would write).
"""

from __future__ import annotations

import sys
from pathlib import Path

from etprof.backends.openvino_support import DATA_FILE, dumps, generate_table
from etprof.util.output import write_text
from etprof.util.quiet import silenced

TARGET = Path(__file__).resolve().parent.parent / "src" / "etprof" / "backends" / DATA_FILE


def main() -> int:
    with silenced():
        table = generate_table()
    write_text(TARGET, dumps(table))
    sys.stderr.write(f"wrote {TARGET} ({len(table.ops)} configs, executorch {table.executorch})\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
