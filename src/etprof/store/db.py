"""Writing and reading the store with DuckDB: an embedded database file, or Parquet files.

duckdb is imported inside the functions here, so commands that do not store never load it.
A database file is checked before it is opened (a DuckDB file carries "DUCK" at byte 8), every
trace's rows go in one transaction, and a run already stored (same trace bytes) is skipped.
Parquet is written one file per table per call (``DIR/<table>/<batch>.parquet``, named by the
sha256 of its runs' ids): files from many machines pool by copying them into one folder; a run
already in the folder is not written again, and one pooled twice is read once.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from etprof.errors import InputError
from etprof.store.rows import StoredTrace
from etprof.store.schema import META_TABLE, SCHEMA_VERSION, TABLES, column_names, ddl
from etprof.util.output import atomic_path, check_writable
from etprof.util.version import __version__

if TYPE_CHECKING:
    import duckdb

DUCKDB_MAGIC = b"DUCK"


@dataclass(frozen=True)
class StoreOutcome:
    run_id: str
    source: str
    stored: bool  # False: the same trace bytes were stored before


def check_database_file(path: Path, *, must_exist: bool) -> None:
    """Refuse a path that is not a DuckDB database before DuckDB touches it."""
    if path.is_dir():
        raise InputError(f"--db {path} is a directory", "give a database file name")
    if not path.exists():
        if must_exist:
            raise InputError(
                f"no results store at {path}",
                "store traces first: etprof store TRACE --db " + str(path),
            )
        check_writable(path)
        return
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
def connect(path: Path, *, read_only: bool) -> Iterator[duckdb.DuckDBPyConnection]:
    import duckdb

    check_database_file(path, must_exist=read_only)
    try:
        con = duckdb.connect(str(path), read_only=read_only)
    except duckdb.Error as exc:
        raise InputError(
            f"cannot open {path} with DuckDB ({_first_line(exc)})",
            "close other programs using it, or pass another --db",
        ) from None
    try:
        yield con
    finally:
        con.close()


def store(path: Path, traces: list[StoredTrace]) -> list[StoreOutcome]:
    """Append each trace's rows to the database at `path` (created if missing), all in one
    transaction: every new run is stored, or none is."""
    import duckdb

    with connect(path, read_only=False) as con:
        _ensure_schema(con, path)
        present = _present(con, "runs", [t.run_id for t in traces])
        new = _new(traces, present)
        try:
            con.execute("BEGIN TRANSACTION")
            for table in TABLES:
                _insert(con, table, _concat(new, table))
            con.execute("COMMIT")
        except duckdb.Error as exc:
            con.execute("ROLLBACK")
            raise InputError(
                f"cannot store in {path} ({_first_line(exc)})",
                "check the database is an etprof store",
            ) from None
        return _outcomes(traces, new)


def write_parquet(folder: Path, traces: list[StoredTrace]) -> list[StoreOutcome]:
    """Write the new runs' tables as ``folder/<table>/<batch>.parquet``, one file per table for
    the runs of one call, named by the sha256 of their run ids; runs already in the folder are
    skipped."""
    import duckdb

    if folder.exists() and not folder.is_dir():
        raise InputError(f"--parquet {folder} is a file", "give a folder")
    try:
        for table in TABLES:
            (folder / table).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(
            f"cannot create {folder} ({exc.strerror})", "choose a folder you can write"
        ) from None
    con = duckdb.connect(":memory:")
    try:
        present: set[str] = set()
        if any((folder / "runs").glob("*.parquet")):
            pattern = _quote(folder / "runs" / "*.parquet")
            present = {
                r[0]
                for r in con.execute(
                    f"SELECT DISTINCT run_id FROM read_parquet('{pattern}')"
                ).fetchall()
            }
        new = _new(traces, present)
        if new:
            batch = hashlib.sha256("".join(sorted(t.run_id for t in new)).encode()).hexdigest()
            for table in TABLES:
                con.execute(ddl(table))
                _insert(con, table, _concat(new, table))
                with atomic_path(folder / table / f"{batch[:32]}.parquet") as tmp:
                    con.execute(f"COPY \"{table}\" TO '{_quote(tmp)}' (FORMAT parquet)")
    finally:
        con.close()
    return _outcomes(traces, new)


def _new(traces: list[StoredTrace], present: set[str]) -> list[StoredTrace]:
    """The traces not stored yet, each run once."""
    out, seen = [], set(present)
    for t in traces:
        if t.run_id not in seen:
            seen.add(t.run_id)
            out.append(t)
    return out


def _outcomes(traces: list[StoredTrace], new: list[StoredTrace]) -> list[StoreOutcome]:
    written = {id(t) for t in new}
    return [StoreOutcome(t.run_id, t.source, id(t) in written) for t in traces]


def _concat(traces: list[StoredTrace], table: str) -> pd.DataFrame:
    frames = [t.tables[table] for t in traces if not t.tables[table].empty]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _present(con: duckdb.DuckDBPyConnection, table: str, ids: list[str]) -> set[str]:
    if not ids:
        return set()
    con.register("_ids", pd.DataFrame({"run_id": ids}))
    try:
        rows = con.execute(
            f'SELECT DISTINCT t.run_id FROM "{table}" t JOIN _ids USING (run_id)'
        ).fetchall()
    finally:
        con.unregister("_ids")
    return {r[0] for r in rows}


def read_tables(
    *, db: Path | None = None, parquet: Path | None = None, tables: tuple[str, ...] = tuple(TABLES)
) -> dict[str, pd.DataFrame]:
    """Every table of a store, from a database file or a Parquet folder, as DataFrames."""
    import duckdb

    if parquet is not None:
        if not (parquet / "runs").is_dir():
            raise InputError(
                f"{parquet} holds no etprof Parquet tables (no runs/ folder)",
                "write them with etprof store TRACE --parquet DIR",
            )
        con = duckdb.connect(":memory:")
        try:
            return {t: _read_parquet(con, parquet / t, t) for t in tables}
        finally:
            con.close()
    assert db is not None
    with connect(db, read_only=True) as con:
        version = _schema_version(con)
        if version is None:
            raise InputError(
                f"{db} is a DuckDB database but not an etprof store",
                "pass the --db that etprof store wrote",
            )
        if version != SCHEMA_VERSION:
            raise InputError(
                f"{db} has store schema version {version}, this etprof reads {SCHEMA_VERSION}",
                "upgrade etprof (docs/store.md)",
            )
        return {t: con.execute(f'SELECT * FROM "{t}"').df() for t in tables}


def _read_parquet(con: duckdb.DuckDBPyConnection, folder: Path, table: str) -> pd.DataFrame:
    """A table from its folder's files. A run found in several batch files (stored on two
    machines, then pooled) is read from the first file that holds it only."""
    files = sorted(folder.glob("*.parquet")) if folder.is_dir() else []
    if not files:
        con.execute(f'DROP TABLE IF EXISTS "{table}"')
        con.execute(ddl(table))
        return con.execute(f'SELECT * FROM "{table}"').df()
    runs = _quote(folder.parent / "runs" / "*.parquet")
    pattern = _quote(folder / "*.parquet")
    cols = ", ".join(f't."{c}"' for c in column_names(table))
    sql = (
        f"WITH first AS (SELECT run_id, min(parse_filename(filename, true)) AS batch "
        f"FROM read_parquet('{runs}', filename = true) GROUP BY run_id) "
        f"SELECT {cols} FROM read_parquet('{pattern}', filename = true) t "
        "JOIN first f ON t.run_id = f.run_id AND parse_filename(t.filename, true) = f.batch"
    )
    return con.execute(sql).df()


def _ensure_schema(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    version = _schema_version(con)
    if version is not None and version != SCHEMA_VERSION:
        raise InputError(
            f"{path} has store schema version {version}, this etprof writes {SCHEMA_VERSION}",
            "store into a new --db (docs/store.md)",
        )
    if version is None:
        tables = {
            r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()
        }
        if tables & set(TABLES):
            raise InputError(
                f"{path} has tables named like an etprof store's but no {META_TABLE} table",
                "pass a new --db",
            )
        con.execute("BEGIN TRANSACTION")
        con.execute(f'CREATE TABLE "{META_TABLE}" (key VARCHAR, value VARCHAR)')
        con.execute(
            f'INSERT INTO "{META_TABLE}" VALUES (?, ?), (?, ?)',
            ["schema_version", str(SCHEMA_VERSION), "created_by", f"etprof {__version__}"],
        )
        for table in TABLES:
            con.execute(ddl(table))
        con.execute("COMMIT")


def _schema_version(con: duckdb.DuckDBPyConnection) -> int | None:
    found = _first(
        con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [META_TABLE]
        ).fetchall()
    )
    if not found or not found[0]:
        return None
    row = _first(
        con.execute(
            f'SELECT value FROM "{META_TABLE}" WHERE key = ?', ["schema_version"]
        ).fetchall()
    )
    try:
        return int(row[0]) if row else None
    except ValueError:
        return None


def _first(rows: list[Any]) -> Any:
    """The first row (fetchall, not fetchone: DuckDB keeps a partly fetched result open and
    refuses further work on the connection until it is finished)."""
    return rows[0] if rows else None


def _insert(con: duckdb.DuckDBPyConnection, table: str, frame: pd.DataFrame) -> None:
    if frame.empty:
        return
    con.register("_rows", frame)
    try:
        cols = ", ".join(f'"{c}"' for c in column_names(table))
        con.execute(f'INSERT INTO "{table}" ({cols}) SELECT {cols} FROM _rows')
    finally:
        con.unregister("_rows")


def _quote(path: Path) -> str:
    return str(path).replace("'", "''")


def _first_line(exc: Any) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
