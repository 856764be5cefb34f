"""SIGTERM and Ctrl-C during `etprof run` (issue 13, items 7 and 8): the session child ends with
the run, the temporary folder goes, and no trace or `.part` file is left. Real program
(tests/data/small_xnnpack.pte), signalled as soon as its session child is running.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import DATA


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(c) for c in text.split()]


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM])  # SIGINT takes the same path
def test_a_signal_ends_the_session_child_and_cleans_up(tmp_path: Path, sig: int) -> None:
    if not Path("/proc/self/task").is_dir() or not sys.platform.startswith("linux"):
        pytest.skip("needs Linux /proc to find the session child")
    pte = tmp_path / "m.pte"
    shutil.copyfile(DATA / "small_xnnpack.pte", pte)
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = dict(os.environ, TMPDIR=str(scratch), COLUMNS="100")
    # many sessions of the most iterations a session may run (util/limits.py): far more than
    # could run before the test signals, so the child must be ended, not waited for
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "etprof.cli",
            "run",
            str(pte),
            "--iters",
            "10000",
            "--warmup",
            "1",
            "--sessions",
            "50",
            "--spread",
            "0",
            "--out",
            str(tmp_path / "m.etdp"),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    children: list[int] = []
    try:
        deadline = time.monotonic() + 180
        while not children and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
            children = _children(proc.pid)
        assert children, f"no session child appeared: {proc.poll()} {proc.stderr.read()}"
        assert list(scratch.glob("etprof-run-*")), "the run's temporary folder exists"
        time.sleep(0.3)
        proc.send_signal(sig)
        signalled = time.monotonic()
        _, err = proc.communicate(timeout=60)
        assert time.monotonic() - signalled < 15, "the run waited for its session child"
        assert proc.returncode != 0
        assert "Traceback" not in err, err
        assert err.strip().splitlines()[-1] in ("etprof: terminated", "etprof: interrupted"), err
        time.sleep(0.2)
        assert not [c for c in children if _alive(c)], "a session child outlived the run"
        assert not list(scratch.glob("etprof-run-*")), "the temporary folder was left"
        assert sorted(p.name for p in tmp_path.iterdir()) == ["m.pte", "tmp"]
    finally:
        for child in children:
            if _alive(child):
                os.kill(child, signal.SIGKILL)
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
