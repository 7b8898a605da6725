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

log() { echo "origin-cluster-bench: $*" >&2; }
die() { log "error: $*"; exit 1; }

if ! command -v wrk >/dev/null 2>&1; then
  log "installing wrk with apt-get"
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq && $sudo apt-get install -y -qq wrk >/dev/null
fi
for tool in python3 curl taskset wrk; do command -v "$tool" >/dev/null || die "$tool is required"; done
[ "$(nproc --all)" -ge 2 ] || die "needs 2 CPUs"

PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  log "logs in $WORK"
}
trap cleanup EXIT

if [ "${SKIP_BUILD:-}" != 1 ]; then
  cargo build --release -p ferrocast
  cargo build --release -p ferrocast-index --example fake_cluster
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

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

# wrk's summary → "req/s p50 p99 errors"
run_wrk() {
  local out
  out=$(taskset -c 1 wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" --latency "$@")
  echo "$out" >> "$WORK/wrk.txt"
  local rps p50 p99 errors
  rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  p50=$(echo "$out" | awk '$1=="50%" {print $2}')
  p99=$(echo "$out" | awk '$1=="99%" {print $2}')
  errors=$(echo "$out" | awk '/Non-2xx|Socket errors/ {print}' | tr '\n' ' ')
  echo "$rps $p50 $p99 ${errors:-none}"
}

log "200 origins x 500 streams"
taskset -c 1 "$FAKE" --nodes 201 --streams 500 --origins 200 --regions 1 --config "$WORK/index.toml" \
  2> "$WORK/fake.log" & PIDS+=($!)
sleep 2
PORT=$(free_port)
taskset -c 0 "$FERROCAST" index --config "$WORK/index.toml" --listen "127.0.0.1:$PORT" --db "$WORK/index.db" \
  2> "$WORK/index.log" & INDEX=$!; PIDS+=($INDEX)
python3 - "http://127.0.0.1:$PORT" <<'PY'
import json, sys, time, urllib.request
t0 = time.time()
while time.time() - t0 < 120:
    try:
        n = json.load(urllib.request.urlopen(sys.argv[1] + "/api/v1/nodes"))["nodes"]
        s = json.load(urllib.request.urlopen(sys.argv[1] + "/api/v1/streams?count=1"))["total"]
        if sum(1 for x in n if x["health"] == "up") == 201 and s == 500:
            sys.exit(0)
    except Exception:
        pass
    time.sleep(0.1)
sys.exit("index not ready in 120 s")
PY
sleep 3
: > "$WORK/rounds.txt"
for round in $(seq "$ROUNDS"); do
  for kind in new live clusters play; do
    echo "$kind $(run_wrk -s "$WORK/$kind.lua" "http://127.0.0.1:$PORT")" >> "$WORK/rounds.txt"
  done
done
median() { grep "^$1 " "$WORK/rounds.txt" | sort -k2 -g | awk '{a[NR]=$0} END {print a[int((NR+1)/2)]}' | cut -d' ' -f2-; }
SAMPLE_NEW=$(curl -s "http://127.0.0.1:$PORT/api/v1/publish/live/sample-new")
SAMPLE_CLUSTERS=$(curl -s "http://127.0.0.1:$PORT/api/v1/clusters?app=live&stream=s42")
ROUNDS_TXT=$(awk '{printf "%s %s req/s; ", $1, $2}' "$WORK/rounds.txt")
COMMIT=$(git rev-parse --short HEAD)
{
  echo
  echo "## Origin cluster: publish placement and stream location — $(date -u +%Y-%m-%d) (commit $COMMIT)"
  echo
  echo "Command: \`bench/origin_cluster.sh\` (DURATION=$DURATION, ROUNDS=$ROUNDS, CONNECTIONS=$CONNECTIONS). Machine: $(nproc --all) CPUs,"
  echo "$(awk -F: '/model name/ {print $2; exit}' /proc/cpuinfo | sed 's/^ *//'), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo) RAM."
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
