#!/usr/bin/env bash
# Cross-region replication failover, measured by hand with real processes on loopback: runs
# crates/ferrocast/tests/replication.rs RUNS times (default 5). Each run: index server; origins a
# (eu) and b (us) with --forward-backend pointed at the index, which tells a to forward to b;
# `ferrocast push --index` publishing to a only; an edge with --origin a --origin b and 20 HTTP-FLV
# players; a SIGKILLed. Reported per run: the longest silence any player saw after the kill
# (median and max over the 20 players). Appends to bench/RESULTS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-5}
RESULTS=${RESULTS:-bench/RESULTS.md}
lines=()
for run in $(seq "$RUNS"); do
  out=$(cargo test -q -p ferrocast --test replication -- --nocapture 2>&1) || { echo "$out" >&2; exit 1; }
  line=$(echo "$out" | grep -o 'longest silence per player after the kill.*')
  echo "replication-bench: run $run: $line" >&2
  lines+=("$line")
done
{
  echo
  echo "## Replication failover — $(date -u +%Y-%m-%d) (commit $(git rev-parse --short HEAD))"
  echo
  echo "Command: \`bench/replication.sh\` (RUNS=$RUNS). Machine: $(nproc --all) CPUs,"
  echo "$(awk -F: '/model name/ {print $2; exit}' /proc/cpuinfo | sed 's/^ *//'), debug build (the test binary)."
  echo "Origins a (eu) and b (us) replicate through the index's on_forward answers; the publisher"
  echo "(\`ferrocast push --index\`) publishes to a only; 20 HTTP-FLV players on an edge (--origin a --origin b)."
  echo "a is SIGKILLed; per run, the longest silence after the kill over the 20 players:"
  echo
  for l in "${lines[@]}"; do echo "- $l"; done
} >> "$RESULTS"
echo "replication-bench: appended to $RESULTS" >&2
