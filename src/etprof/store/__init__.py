"""The results store: what traces hold, as rows of a few tables, in DuckDB or Parquet.

- :mod:`etprof.store.schema`: the tables, their columns and the schema version (docs/store.md);
- :mod:`etprof.store.rows`: a trace's rows, built with pandas (no database involved);
- :mod:`etprof.store.db`: writing and reading them with DuckDB (imported only here, on use).

A run is keyed by the sha256 of its trace file's bytes, so storing a trace twice stores it once.
"""
