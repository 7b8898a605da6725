#!/usr/bin/env bash
# Origin cluster benchmark, run by hand on an idle machine (not in CI):
#
#   bench/origin_cluster.sh
#
# `ferrocast index` polls 200 virtual SRS origins (plus one edge; crates/index/examples/
# fake_cluster.rs serves them from one process) that publish 500 streams between them. Once every
# node is up, wrk sends over 64 keep-alive connections, in alternating rounds in the same process:
#   - publish placement of new streams: GET /api/v1/publish/live/newN (a fresh name each time:
#     the full placement over 200 origins, with pending placements counted);
#   - publish of live streams: GET /api/v1/publish/live/sN (sticky: the stream's origin first);
#   - stream location: GET /api/v1/clusters?vhost=__defaultVhost__&app=live&stream=sN (SRS's
#     origin-cluster lookup);
#   - the play route, /api/v1/play/live/sN, the floor this work is held to.
# The index runs on CPU 0; wrk and the fake cluster share CPU 1. Results are appended to
# bench/RESULTS.md (RESULTS=... to change).
#
# Environment: DURATION (s per wrk run, default 10), ROUNDS (default 3), CONNECTIONS (default 64),
# SKIP_BUILD=1.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
CONNECTIONS=${CONNECTIONS:-64}
RESULTS=${RESULTS:-bench/RESULTS.md}
WORK=$(mktemp -d -t ferrocast-origin-cluster-bench.XXXXXX)
FERROCAST=target/release/ferrocast
FAKE=target/release/examples/fake_cluster

NAME=origin-cluster-bench
source bench/lib.sh
need wrk wrk
for tool in python3 curl taskset wrk; do command -v "$tool" >/dev/null || die "$tool is required"; done
[ "$(nproc --all)" -ge 2 ] || die "needs 2 CPUs"

if [ "${SKIP_BUILD:-}" != 1 ]; then
  cargo build --release -p ferrocast
  cargo build --release -p ferrocast-index --example fake_cluster
fi

for kind in new live clusters play; do
  cat > "$WORK/$kind.lua" <<LUA
local n = 0
local kind = "$kind"
request = function()
  n = n + 1
  local s = n * 7919 % 500
  if kind == "new" then
    return wrk.format("GET", "/api/v1/publish/live/new" .. n)
  elseif kind == "live" then
    return wrk.format("GET", "/api/v1/publish/live/s" .. s)
  elseif kind == "clusters" then
    return wrk.format("GET", "/api/v1/clusters?vhost=__defaultVhost__&app=live&stream=s" .. s)
  end
  return wrk.format("GET", "/api/v1/play/live/s" .. s .. "?proto=flv")
end
LUA
done

log "200 origins x 500 streams"
taskset -c 1 "$FAKE" --nodes 201 --streams 500 --origins 200 --regions 1 --config "$WORK/index.toml" \
  2> "$WORK/fake.log" & PIDS+=($!)
for _ in $(seq 100); do [ -s "$WORK/index.toml" ] && break; sleep 0.1; done  # the fake cluster writes the config once it listens
PORT=$(free_port)
taskset -c 0 "$FERROCAST" index --config "$WORK/index.toml" --listen "127.0.0.1:$PORT" --db "$WORK/index.db" \
  2> "$WORK/index.log" & INDEX=$!; PIDS+=($INDEX)
wait_index "http://127.0.0.1:$PORT" 201 500
sleep 3
: > "$WORK/rounds.txt"
for round in $(seq "$ROUNDS"); do
  for kind in new live clusters play; do
    echo "$kind $(run_wrk -s "$WORK/$kind.lua" "http://127.0.0.1:$PORT")" >> "$WORK/rounds.txt"
  done
done
SAMPLE_NEW=$(curl -s "http://127.0.0.1:$PORT/api/v1/publish/live/sample-new")
SAMPLE_CLUSTERS=$(curl -s "http://127.0.0.1:$PORT/api/v1/clusters?app=live&stream=s42")
ROUNDS_TXT=$(awk '{printf "%s %s req/s; ", $1, $2}' "$WORK/rounds.txt")
COMMIT=$(git rev-parse --short HEAD)
{
  echo
  echo "## Origin cluster: publish placement and stream location — $(date -u +%Y-%m-%d) (commit $COMMIT)"
  echo
  echo "Command: \`bench/origin_cluster.sh\` (DURATION=$DURATION, ROUNDS=$ROUNDS, CONNECTIONS=$CONNECTIONS). Machine: $(machine)."
  echo "Release build; index pinned to CPU 0 polling 200 origins + 1 edge (500 streams) every 2 s; wrk (1 thread) and"
  echo "the fake cluster on CPU 1. All rows from the same index process, rounds alternating."
  echo
  echo "| request | req/s (median of $ROUNDS) | p50 | p99 | errors |"
  echo "|---|---|---|---|---|"
  for kind in new live clusters play; do
    read -r RPS P50 P99 ERR < <(median "$kind")
    case $kind in
      new) what="\`/api/v1/publish\`, a new stream each time (placement over 200 origins)";;
      live) what="\`/api/v1/publish\`, live streams (sticky to their origin)";;
      clusters) what="\`/api/v1/clusters\` (SRS origin-cluster lookup)";;
      play) what="\`/api/v1/play\` (the floor)";;
    esac
    echo "| $what | $RPS | $P50 | $P99 | $ERR |"
  done
  echo
  echo "All rounds: $ROUNDS_TXT"
  echo
  echo "Sample placement: \`$SAMPLE_NEW\`"
  echo
  echo "Sample lookup: \`$SAMPLE_CLUSTERS\`"
} >> "$RESULTS"
log "results appended to $RESULTS"
