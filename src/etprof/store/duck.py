"""The DuckDB results store: checked before it is trusted, written one transaction per batch,
shared by several processes through bounded waiting on DuckDB's lock.

- ``--db`` must be a regular file carrying DuckDB's magic ("DUCK" at byte 8), or not exist yet:
  a FIFO, a device or a folder is refused before anything opens it (a FIFO would block).
- Before a store is written or read, every table is checked against the schema (the
  ``etprof_store`` version, each table's columns and types) and read through once: DuckDB checks
  each block's checksum as it reads, so a truncated or bit-flipped file is refused up front, in
  one line, before any write. A DuckDB file with tables that are not etprof's is refused too
  (it is someone else's database); one with no tables at all is made a store.
- DuckDB lets one process write a database file at a time, and refuses to open it while another
  holds it ("Could not set lock"). Parallel CI jobs storing into one file wait for each other:
  the open is retried with growing pauses for up to ``wait`` seconds, then refused in one line.
- A batch of traces (all of one `etprof store`) is one transaction: the schema (for a new
  store), the check of what is already stored and every table's rows commit together or not
  at all, so a process killed at any point leaves the store as it was or with the whole batch.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import stat
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from etprof.errors import InputError
from etprof.store._fault import fault
from etprof.store.batch import batch_frame
from etprof.store.rows import StoredTrace
from etprof.store.schema import META_TABLE, SCHEMA_VERSION, TABLES, column_names, ddl
from etprof.util.output import check_writable
from etprof.util.version import __version__

if TYPE_CHECKING:
    import duckdb

DUCKDB_MAGIC = b"DUCK"
DEFAULT_WAIT_S = 60.0  # how long `etprof store` / `history` wait for another process's lock
_LOCKED = re.compile(r"Could not set lock on file|Conflicting lock", re.IGNORECASE)
_PID = re.compile(r"\(PID (\d+)\)")
# tables etprof may add beside the schema's without a new version (etprof.store.verdicts)
OPTIONAL_TABLES = frozenset({"verdicts"})


def check_database_file(path: Path, *, must_exist: bool) -> None:
    """Refuse a path that is not a DuckDB database file before DuckDB touches it."""
    try:
        st: os.stat_result | None = os.stat(path)
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise InputError(
            f"cannot read --db {path} ({exc.strerror})", "give a database file name"
        ) from None
    if st is None:
        if must_exist:
            raise InputError(
                f"no results store at {path}",
                "store traces first: etprof store TRACE --db " + str(path),
            )
        check_writable(path)
        return
    if stat.S_ISDIR(st.st_mode):
        raise InputError(f"--db {path} is a directory", "give a database file name")
    if not stat.S_ISREG(st.st_mode):
        raise InputError(
            f"--db {path} is not a regular file (a FIFO, socket or device)",
            "give a database file name",
        )
    with path.open("rb") as f:
        head = f.read(12)
    if len(head) < 12 or head[8:12] != DUCKDB_MAGIC:
        raise InputError(
            f"{path} is not a DuckDB database", "pass an etprof store (.duckdb) or a new file name"
        )
    if not must_exist and not os.access(path, os.W_OK):
        raise InputError(
            f"cannot write {path}: permission denied", "choose a database file you can write"
        )


@contextlib.contextmanager
def connect(
    path: Path, *, read_only: bool, wait: float = DEFAULT_WAIT_S
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection to the store at `path`, waiting up to `wait` s for another process's lock;
    the store is checked (schema and every block) before it is handed out."""
    import duckdb

    check_database_file(path, must_exist=read_only)
    con = _open(path, read_only, wait)
    try:
        check_store(con, path)
        yield con
    except duckdb.Error as exc:
        raise _refusal(path, exc) from None
    finally:
        con.close()


def _open(path: Path, read_only: bool, wait: float) -> duckdb.DuckDBPyConnection:
    import duckdb

    deadline = time.monotonic() + max(0.0, wait)
    pause = 0.02
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only)
        except duckdb.Error as exc:
            text = _first_line(exc)
            if not _LOCKED.search(text):
                raise _refusal(path, exc) from None
            if time.monotonic() >= deadline:
                pid = _PID.search(str(exc))
                holder = f" (PID {pid.group(1)})" if pid else ""
                raise InputError(
                    f"{path} is in use by another process{holder} for more than {wait:g} s",
                    "retry when it is done, or pass --wait with more seconds",
                ) from None
        # jitter: processes woken together do not retry in lockstep
        time.sleep(pause * (0.5 + random.random()))
        pause = min(pause * 2.0, 0.5)


def _refusal(path: Path, exc: Exception) -> InputError:
    text = _first_line(exc)
    if "Corrupt" in text or "Could not read enough bytes" in text or "checksum" in text:
        return InputError(
            f"{path} is a corrupt DuckDB database ({text[:120]})",
            "restore it from a copy, or store into a new --db",
        )
    return InputError(
        f"cannot use {path} with DuckDB ({text[:160]})",
        "pass an etprof store made by etprof store, or a new --db",
    )


def check_store(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """Refuse a database that is not an etprof store of this schema version, or that is
    damaged; an empty database passes (storing makes it a store). Reads every block."""
    tables = {
        r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()
    }
    if not tables:
        return
    if META_TABLE not in tables:
        raise InputError(
            f"{path} is a DuckDB database but not an etprof store",
            "pass the --db that etprof store wrote, or a new file name",
        )
    rows = con.execute(
        f'SELECT value FROM "{META_TABLE}" WHERE key = ?', ["schema_version"]
    ).fetchall()
    version = rows[0][0] if rows else None
    if version != str(SCHEMA_VERSION):
        raise InputError(
            f"{path} has store schema version {version}, this etprof reads and "
            f"writes {SCHEMA_VERSION}",
            "use a new --db (docs/store.md)",
        )
    have = con.execute(
        "SELECT table_name, column_name, data_type FROM "
        "information_schema.columns ORDER BY table_name, ordinal_position"
    ).fetchall()
    columns: dict[str, list[tuple[str, str]]] = {}
    for table, column, kind in have:
        columns.setdefault(table, []).append((column, kind))
    for table, wanted in TABLES.items():
        if columns.get(table) != list(wanted):
            missing = [c for c, _ in wanted if c not in dict(columns.get(table, []))]
            what = (
                f"lacks column {missing[0]}"
                if missing and table in columns
                else "is missing"
                if table not in columns
                else "has other columns"
            )
            raise InputError(
                f"{path}: table {table} {what} (store schema {SCHEMA_VERSION} says otherwise)",
                "the store was altered: use a new --db",
            )
        # read every block once: DuckDB verifies each block's checksum on read
        con.execute(f'SELECT bit_xor(hash(COLUMNS(*))) FROM "{table}"').fetchall()


def store(path: Path, traces: Sequence[StoredTrace], wait: float = DEFAULT_WAIT_S) -> set[str]:
    """Append the traces not stored yet, in one transaction; the run ids that were new."""
    import duckdb

    with connect(path, read_only=False, wait=wait) as con:
        con.execute("BEGIN TRANSACTION")
        try:
            _ensure_schema(con)
            new = _new(traces, _present(con, [t.run_id for t in traces]))
            for table in TABLES:
                _insert(con, table, batch_frame(new, table))
                fault(f"duckdb:inserted:{table}")
            con.execute("COMMIT")
        except (duckdb.Error, InputError):
            con.execute("ROLLBACK")
            raise
    return {t.run_id for t in new}


def read(
    path: Path, tables: Sequence[str], wait: float = DEFAULT_WAIT_S, where: str = ""
) -> dict[str, pd.DataFrame]:
    """The tables of the store at `path`, as DataFrames (`where`: an SQL filter on run_id); an
    optional table the store does not have yet (``verdicts``) is left out."""
    with connect(path, read_only=True, wait=wait) as con:
        if not _has_meta(con):
            raise InputError(
                f"{path} is an empty DuckDB database, not an etprof store",
                "pass the --db that etprof store wrote",
            )
        have = {
            r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()
        }
        return {
            t: con.execute(f'SELECT * FROM "{t}" {where}').df()
            for t in tables
            if t in have or t not in OPTIONAL_TABLES
        }


def save_verdicts(path: Path, frame: pd.DataFrame, wait: float = DEFAULT_WAIT_S) -> int:
    """Keep history's new comparisons in the store's ``verdicts`` table (made on first use),
    skipping any another process kept meanwhile; how many rows were added."""
    import duckdb

    from etprof.analyzers._history_cache import COLUMNS

    if frame.empty:
        return 0
    cols = ", ".join(f'"{c}"' for c, _ in COLUMNS)
    with connect(path, read_only=False, wait=wait) as con:
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute(
                "CREATE TABLE IF NOT EXISTS verdicts ("
                + ", ".join(f'"{c}" {kind}' for c, kind in COLUMNS)
                + ")"
            )
            con.register("_new", frame)
            added = con.execute(
                f"INSERT INTO verdicts ({cols}) SELECT {cols} FROM _new n WHERE NOT EXISTS "
                "(SELECT 1 FROM verdicts v WHERE v.run_id = n.run_id AND v.method = n.method "
                "AND v.baseline = n.baseline AND v.judge = n.judge)"
            ).fetchall()
            con.execute("COMMIT")
        except duckdb.Error:
            con.execute("ROLLBACK")
            raise
    return int(added[0][0]) if added else 0


def _has_meta(con: duckdb.DuckDBPyConnection) -> bool:
    rows = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [META_TABLE]
    ).fetchall()
    return bool(rows and rows[0][0])


def _ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    if _has_meta(con):
        return
    con.execute(f'CREATE TABLE "{META_TABLE}" (key VARCHAR, value VARCHAR)')
    con.execute(
        f'INSERT INTO "{META_TABLE}" VALUES (?, ?), (?, ?)',
        ["schema_version", str(SCHEMA_VERSION), "created_by", f"etprof {__version__}"],
    )
    for table in TABLES:
        con.execute(ddl(table))


def _present(con: duckdb.DuckDBPyConnection, ids: list[str]) -> set[str]:
    if not ids:
        return set()
    con.register("_ids", pd.DataFrame({"run_id": ids}))
    try:
        rows = con.execute(
            'SELECT DISTINCT r.run_id FROM "runs" r JOIN _ids USING (run_id)'
        ).fetchall()
    finally:
        con.unregister("_ids")
    return {r[0] for r in rows}


def _new(traces: Sequence[StoredTrace], present: set[str]) -> list[StoredTrace]:
    """The traces not stored yet, each run once."""
    out, seen = [], set(present)
    for t in traces:
        if t.run_id not in seen:
            seen.add(t.run_id)
            out.append(t)
    return out


def _insert(con: duckdb.DuckDBPyConnection, table: str, frame: pd.DataFrame) -> None:
    if frame.empty:
        return
    con.register("_rows", frame)
    try:
        cols = ", ".join(f'"{c}"' for c in column_names(table))
        con.execute(f'INSERT INTO "{table}" ({cols}) SELECT {cols} FROM _rows')
    finally:
        con.unregister("_rows")


def _first_line(exc: Any) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
