"""Statistics the analyses share: significance of a change (bootstrap interval, rank test) and the
CI gate's verdicts."""
