#!/bin/sh
# Records tests/data/small_pair_a.etdp and small_pair_b.etdp: the same program (small_xnnpack.pte)
# twice, taking turns session by session, as a "same program twice" pair for the diff gate and
# the results store (tests/unit/analyzers/test_gate.py, tests/unit/store/test_store.py). Run from the repository root.
set -e
tmp=$(mktemp -d)
cp tests/data/small_xnnpack.pte "$tmp/small_pair_a.pte"
cp tests/data/small_xnnpack.pte "$tmp/small_pair_b.pte"
nice -n 10 etprof run "$tmp/small_pair_a.pte" "$tmp/small_pair_b.pte" --iters 40 --warmup 5 \
    --sessions 3 --spread 3 > /dev/null
for side in a b; do
    cp "$tmp/small_pair_$side.etdp" tests/data/
    cp "$tmp/small_pair_$side.etprof.json" tests/data/
done
rm -rf "$tmp"
