"""Utilities every stage may use: the generic FlatBuffer reader, the JSON document checker,
atomic output files, integer group-by sums and silencing the runtime's C-level log."""
