"""Jobs that chain the stages for a command: export, run, load and analyse (`etprof bench`)."""
