"""Stage 2, recording: running a program with ETDump on (sessions, untraced timings, memory
probes, inputs, LLM prefill/decode sequences) and writing the trace with its sidecar."""
