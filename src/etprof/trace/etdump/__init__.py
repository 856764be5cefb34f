"""ETDump files: etprof's own FlatBuffer reader, the merge of per-session dumps, and ExecuTorch's
Inspector as a second engine for cross-checking."""
