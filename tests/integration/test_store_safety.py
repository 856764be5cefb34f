"""The results store under faults and company (docs/store.md, "Safety"): nothing half-stored,
damaged or foreign stores refused before any write, several writers on one database.

Real sample traces, stored through the CLI in fresh processes; faults are injected with
ETPROF_TEST_KILL_AT, which SIGKILLs the process at a named point (etprof.store._fault), as
kill -9 would.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from etprof.store import db as store_db
from etprof.store.schema import TABLES

from conftest import ROOT, assert_one_line_error, run_cli

SAMPLES = ROOT / "sample_traces"
TRACES = sorted(SAMPLES.glob("*.etdp"))  # 8 real traces, mv2 and mv3 lowerings


def _killed_store(*args: str | Path, at: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, ETPROF_TEST_KILL_AT=at)
    return subprocess.run(
        [sys.executable, "-m", "etprof.cli", "store", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )


def _counts(tables: dict[str, object]) -> dict[str, int]:
    return {name: len(frame) for name, frame in tables.items()}  # type: ignore[arg-type]


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> dict[str, int]:
    """Row counts of every table with the first three traces stored without a fault."""
    folder = tmp_path_factory.mktemp("clean") / "lake"
    done = run_cli("store", *TRACES[:3], "--parquet", folder)
    assert done.returncode == 0, done.stderr
    counts = _counts(store_db.read_tables(parquet=folder))
    assert counts["runs"] == 3 and counts["iterations"] > 0 and counts["operators"] > 0
    return counts


@pytest.mark.parametrize("point", ["lake:published:iterations", "lake:before-marker"])
def test_parquet_killed_between_tables_then_stored_again_is_complete(
    point: str, clean: dict[str, int], tmp_path: Path
) -> None:
    lake = tmp_path / "lake"
    killed = _killed_store(*TRACES[:3], "--parquet", lake, at=point)
    assert killed.returncode == -9, killed.stderr
    # some tables' files are in place, but no run is: nothing half-stored is read
    published = [t for t in TABLES if any((lake / t).rglob("*.parquet"))]
    assert published, "the fault fired before any file was published"
    assert _counts(store_db.read_tables(parquet=lake))["runs"] == 0
    again = run_cli("store", *TRACES[:3], "--parquet", lake)
    assert again.returncode == 0, again.stderr
    assert "3 new run(s)" in again.stderr
    assert _counts(store_db.read_tables(parquet=lake)) == clean
    # the same files, replaced whole: one file per table and partition, no leftovers
    read_raw = duckdb.sql(
        f"SELECT count(*), count(DISTINCT run_id) FROM read_parquet('{lake}/runs/**/*.parquet')"
    ).fetchall()
    assert read_raw == [(3, 3)]
    assert not any((lake / "_etprof" / "staging").iterdir())


def test_parquet_orphans_of_a_killed_batch_are_removed_by_a_larger_store(
    clean: dict[str, int], tmp_path: Path
) -> None:
    lake = tmp_path / "lake"
    killed = _killed_store(*TRACES[:2], "--parquet", lake, at="lake:before-marker")
    assert killed.returncode == -9, killed.stderr
    orphans = sorted(lake.rglob("part-*.parquet"))
    assert orphans
    again = run_cli("store", *TRACES[:3], "--parquet", lake)  # another batch: other names
    assert again.returncode == 0, again.stderr
    assert not any(f.exists() for f in orphans)
    assert not any((lake / "_etprof" / "staging").iterdir())  # the dead writer's evidence too
    assert _counts(store_db.read_tables(parquet=lake)) == clean
    raw = duckdb.sql(f"SELECT count(*) FROM read_parquet('{lake}/iterations/**/*.parquet')")
    assert raw.fetchall() == [(clean["iterations"],)]


def test_duckdb_killed_inside_the_transaction_stores_nothing_then_everything(
    clean: dict[str, int], tmp_path: Path
) -> None:
    db = tmp_path / "s.duckdb"
    killed = _killed_store(*TRACES[:3], "--db", db, at="duckdb:inserted:operators")
    assert killed.returncode == -9, killed.stderr
    # the schema is created in the batch's transaction too: the file holds no table at all
    assert duckdb.connect(str(db), read_only=True).sql("SHOW TABLES").fetchall() == []
    again = run_cli("store", *TRACES[:3], "--db", db)
    assert again.returncode == 0, again.stderr
    assert _counts(store_db.read_tables(db=db)) == clean


@pytest.fixture(scope="module")
def good_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("good") / "s.duckdb"
    done = run_cli("store", *TRACES[:2], "--db", db)
    assert done.returncode == 0, done.stderr
    return db


def _truncated(good: Path, bad: Path) -> None:
    bad.write_bytes(good.read_bytes()[: good.stat().st_size // 2])


def _flipped(good: Path, bad: Path) -> None:
    data = bytearray(good.read_bytes())
    data[len(data) // 2] ^= 0x10  # a data block: the file opens, reading the block fails
    bad.write_bytes(bytes(data))


def _flipped_header(good: Path, bad: Path) -> None:
    data = bytearray(good.read_bytes())
    data[5000] ^= 0x10
    bad.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", [_truncated, _flipped, _flipped_header])
def test_a_corrupt_store_is_refused_before_any_write(
    damage: object, good_db: Path, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.duckdb"
    damage(good_db, bad)  # type: ignore[operator]
    before = _sha(bad)
    assert_one_line_error(run_cli("store", TRACES[3], "--db", bad), "corrupt")
    assert _sha(bad) == before
    assert not Path(f"{bad}.wal").exists()
    if damage is _flipped:  # the reading commands, once: they open the file as store does
        assert_one_line_error(run_cli("history", "--db", bad), "corrupt")
        report = run_cli("report", "--db", bad, "-o", tmp_path / "h.html")
        assert_one_line_error(report, "corrupt")
        assert not (tmp_path / "h.html").exists()


def test_foreign_and_altered_stores_are_refused_unaltered(good_db: Path, tmp_path: Path) -> None:
    foreign = tmp_path / "foreign.duckdb"
    con = duckdb.connect(str(foreign))
    con.execute("CREATE TABLE t (a INTEGER)")
    con.close()
    before = _sha(foreign)
    assert_one_line_error(run_cli("store", TRACES[3], "--db", foreign), "not an etprof store")
    assert _sha(foreign) == before
    assert duckdb.connect(str(foreign)).sql("SHOW TABLES").fetchall() == [("t",)]

    altered = tmp_path / "altered.duckdb"
    shutil.copy(good_db, altered)
    con = duckdb.connect(str(altered))
    con.execute("ALTER TABLE runs DROP COLUMN mean_ms")
    con.close()
    before = _sha(altered)
    for args in (("store", TRACES[3], "--db", altered), ("history", "--db", altered)):
        assert_one_line_error(run_cli(*args), "table runs lacks column mean_ms")
    assert _sha(altered) == before


def test_db_must_be_a_regular_file(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.duckdb"
    os.mkfifo(fifo)
    for args in (("store", TRACES[0], "--db", fifo), ("history", "--db", fifo)):
        assert_one_line_error(run_cli(*args, timeout=120), "not a regular file")


def test_four_concurrent_stores_store_every_trace_once(tmp_path: Path) -> None:
    """As parallel CI jobs would: four `etprof store` processes at once on one database, their
    trace sets overlapping, while a fifth process holds the database's lock for a while."""
    db = tmp_path / "s.duckdb"
    assert run_cli("store", TRACES[0], "--db", db).returncode == 0
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            (
                "import duckdb, sys, time\n"
                f"con = duckdb.connect({str(db)!r})\n"
                "print('held', flush=True)\ntime.sleep(3)\ncon.close()\n"
            ),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    jobs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "etprof.cli",
                "store",
                TRACES[i],
                TRACES[i + 4],
                TRACES[(i + 1) % 4],
                "--db",
                str(db),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(4)
    ]
    results = [(j.wait(timeout=300), j.stderr.read() if j.stderr else "") for j in jobs]
    holder.wait(timeout=60)
    assert all(rc == 0 for rc, _ in results), results
    runs = (
        duckdb.connect(str(db), read_only=True)
        .sql("SELECT run_id, count(*) FROM runs GROUP BY run_id")
        .fetchall()
    )
    assert len(runs) == len(TRACES) and all(n == 1 for _, n in runs)
    stored = sum(int(err.split("store: ")[1].split()[0]) for _, err in results)
    assert stored == len(TRACES) - 1  # TRACES[0] was there before


def test_waiting_for_the_lock_is_bounded(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    assert run_cli("store", TRACES[0], "--db", db).returncode == 0
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            (
                "import duckdb, time\n"
                f"con = duckdb.connect({str(db)!r})\n"
                "print('held', flush=True)\ntime.sleep(30)\n"
            ),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        t0 = time.monotonic()
        result = run_cli("store", TRACES[1], "--db", db, "--wait", "1")
        assert_one_line_error(result, "in use by another process", f"PID {holder.pid}", "--wait")
        assert time.monotonic() - t0 < 25
    finally:
        holder.kill()
        holder.wait()
