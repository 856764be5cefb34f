"""One module per subcommand; each defines `register(app)` (found by etprof.cli)."""
