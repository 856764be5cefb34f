"""Stage 3, the trace: an ETDump read and checked, its sidecar metadata, and the immutable
:class:`~etprof.trace.model.Trace` (events as a DataFrame) that every analyzer takes."""
