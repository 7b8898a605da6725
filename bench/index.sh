#!/usr/bin/env bash
# Index server benchmarks, run by hand on an idle machine (not in CI):
#
#   bench/index.sh
#
# 1. Scheduler: `ferrocast index` polls 200 virtual SRS nodes (20 origins, 180 edges in 4 regions)
#    that each list 500 streams (crates/index/examples/fake_cluster.rs serves them from one
#    process). Once every node is up, wrk sends GET /api/v1/play/live/sN?proto=flv&region=rM for
#    varying N and M over 64 keep-alive connections; then, in the same run and the same process
#    (so under the same polling load), the same wrk against `GET /healthz`, an axum handler that
#    returns a constant JSON answer. The index's CPU use while it only polls is reported too.
# 2. Merge: a fresh index polls 1,000 virtual nodes x 100 streams. Reported: wall time until the
#    directory lists all nodes up with every stream, the index's CPU time at that moment
#    (utime+stime from /proc/PID/stat), its peak RSS (VmHWM), and the mean time of one directory
#    rebuild (ferrocast_index_merge_seconds_total / ferrocast_index_merges_total).
#
# The index runs on CPU 0; wrk and the fake cluster share CPU 1.
# Results are appended to bench/RESULTS.md (RESULTS=... to change).
#
# Environment: DURATION (s per wrk run, default 10), ROUNDS (alternations, default 3), CONNECTIONS
# (default 64), SKIP_BUILD=1.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
CONNECTIONS=${CONNECTIONS:-64}
RESULTS=${RESULTS:-bench/RESULTS.md}
WORK=$(mktemp -d -t ferrocast-index-bench.XXXXXX)
FERROCAST=target/release/ferrocast
FAKE=target/release/examples/fake_cluster

log() { echo "index-bench: $*" >&2; }
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
cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }

# Waits until the index at $1 sees $2 nodes up and $3 streams; prints the seconds it took.
wait_ready() {
  python3 - "$1" "$2" "$3" <<'PY'
import json, sys, time, urllib.request
base, nodes, streams = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
t0 = time.time()
while time.time() - t0 < 120:
    try:
        n = json.load(urllib.request.urlopen(base + "/api/v1/nodes"))["nodes"]
        s = json.load(urllib.request.urlopen(base + "/api/v1/streams?count=1"))["total"]
        if sum(1 for x in n if x["health"] in ("up", "degraded")) == nodes and s == streams:
            print(f"{time.time() - t0:.2f}")
            sys.exit(0)
    except Exception:
        pass
    time.sleep(0.05)
sys.exit("index not ready in 120 s")
PY
}

cat > "$WORK/play.lua" <<'LUA'
local n = 0
request = function()
  n = n + 1
  return wrk.format("GET", "/api/v1/play/live/s" .. (n * 7919 % 500) .. "?proto=flv&region=r" .. (n % 4))
end
LUA

# wrk's summary → "req/s p50 p99"
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

log "1/2: 200 nodes x 500 streams"
taskset -c 1 "$FAKE" --nodes 200 --streams 500 --origins 20 --regions 4 --config "$WORK/index200.toml" \
  2> "$WORK/fake200.log" & PIDS+=($!)
sleep 2
PORT=$(free_port)
taskset -c 0 "$FERROCAST" index --config "$WORK/index200.toml" --listen "127.0.0.1:$PORT" --db "$WORK/i200.db" \
  2> "$WORK/index200.log" & INDEX=$!; PIDS+=($INDEX)
READY=$(wait_ready "http://127.0.0.1:$PORT" 200 500)
log "directory complete after ${READY}s"
sleep 3
T0=$(cpu_ticks "$INDEX"); sleep 10; T1=$(cpu_ticks "$INDEX")
POLL_CPU=$(python3 -c "print(f'{100 * ($T1 - $T0) / $(getconf CLK_TCK) / 10:.1f}')")
# Alternate the two, ROUNDS times each, and keep each one's median round: background polling comes
# in bursts, so one short run of each can land on different luck.
: > "$WORK/rounds.txt"
for round in $(seq "$ROUNDS"); do
  echo "play $(run_wrk -s "$WORK/play.lua" "http://127.0.0.1:$PORT")" >> "$WORK/rounds.txt"
  echo "const $(run_wrk "http://127.0.0.1:$PORT/healthz")" >> "$WORK/rounds.txt"
done
median() { grep "^$1 " "$WORK/rounds.txt" | sort -k2 -g | awk '{a[NR]=$0} END {print a[int((NR+1)/2)]}' | cut -d' ' -f2-; }
read -r PLAY_RPS PLAY_P50 PLAY_P99 PLAY_ERR < <(median play)
read -r CONST_RPS CONST_P50 CONST_P99 CONST_ERR < <(median const)
ROUNDS_TXT=$(awk '{printf "%s %s req/s; ", $1, $2}' "$WORK/rounds.txt")
SAMPLE=$(curl -s "http://127.0.0.1:$PORT/api/v1/play/live/s42?proto=flv&region=r1")
kill "$INDEX"; wait "$INDEX" 2>/dev/null || true
RATIO=$(python3 -c "print(f'{$PLAY_RPS / $CONST_RPS:.2f}')")
log "polling alone ${POLL_CPU}% of a core; play $PLAY_RPS req/s (p99 $PLAY_P99), constant $CONST_RPS req/s (p99 $CONST_P99): ratio $RATIO"

log "2/2: 1,000 nodes x 100 streams"
for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
taskset -c 1 "$FAKE" --nodes 1000 --streams 100 --origins 50 --regions 4 --config "$WORK/index1000.toml" \
  2> "$WORK/fake1000.log" & PIDS+=($!)
sleep 3
PORT=$(free_port)
taskset -c 0 "$FERROCAST" index --config "$WORK/index1000.toml" --listen "127.0.0.1:$PORT" --db "$WORK/i1000.db" \
  2> "$WORK/index1000.log" & INDEX=$!; PIDS+=($INDEX)
MERGE_WALL=$(wait_ready "http://127.0.0.1:$PORT" 1000 100)
TICKS=$(cpu_ticks "$INDEX")
HZ=$(getconf CLK_TCK)
MERGE_CPU=$(python3 -c "print(f'{$TICKS / $HZ:.2f}')")
HWM=$(awk '/VmHWM/ {printf "%.0f", $2/1024}' "/proc/$INDEX/status")
METRICS=$(curl -s "http://127.0.0.1:$PORT/metrics")
MERGE_MEAN=$(echo "$METRICS" | python3 -c "
import sys
m = {l.split()[0]: float(l.split()[1]) for l in sys.stdin if l and not l.startswith('#')}
print(f\"{1000 * m['ferrocast_index_merge_seconds_total'] / max(m['ferrocast_index_merges_total'], 1):.1f}\")")
sleep 10
TICKS10=$(cpu_ticks "$INDEX")
STEADY=$(python3 -c "print(f'{100 * ($TICKS10 - $TICKS) / $HZ / 10:.1f}')")
HWM_LATER=$(awk '/VmHWM/ {printf "%.0f", $2/1024}' "/proc/$INDEX/status")
log "merge: ready in ${MERGE_WALL}s, CPU ${MERGE_CPU}s, peak RSS ${HWM} MiB, one rebuild ${MERGE_MEAN} ms; steady polling ${STEADY}% of a core"

COMMIT=$(git rev-parse --short HEAD)
{
  echo
  echo "## Index server — $(date -u +%Y-%m-%d) (commit $COMMIT)"
  echo
  echo "Command: \`bench/index.sh\` (DURATION=$DURATION, ROUNDS=$ROUNDS, CONNECTIONS=$CONNECTIONS). Machine: $(nproc --all) CPUs,"
  echo "$(awk -F: '/model name/ {print $2; exit}' /proc/cpuinfo | sed 's/^ *//'), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo) RAM."
  echo "Release build; index pinned to CPU 0, wrk (1 thread) and the fake cluster on CPU 1. Both rows come from the"
  echo "same index process, polling 200 nodes x 500 streams every 2 s the whole time (that alone: ${POLL_CPU}% of CPU 0)."
  echo
  echo "| scenario | req/s | p50 | p99 | errors |"
  echo "|---|---|---|---|---|"
  echo "| \`/api/v1/play\`, 200 nodes x 500 streams loaded | $PLAY_RPS | $PLAY_P50 | $PLAY_P99 | $PLAY_ERR |"
  echo "| \`/healthz\` (constant JSON, same process) | $CONST_RPS | $CONST_P50 | $CONST_P99 | $CONST_ERR |"
  echo
  echo "Median of $ROUNDS alternating ${DURATION} s rounds each (all rounds: $ROUNDS_TXT)."
  echo
  echo "Play / constant = **$RATIO** (floor 0.8). Directory complete ${READY} s after start. A sample answer:"
  echo "\`$SAMPLE\`"
  echo
  echo "Merge of 1,000 nodes x 100 streams (100,000 records): directory complete ${MERGE_WALL} s after start,"
  echo "index CPU time by then **${MERGE_CPU} s** (polling and parsing 1,000 answers included), peak RSS **${HWM} MiB**"
  echo "(${HWM_LATER} MiB after 10 more s), one directory rebuild ${MERGE_MEAN} ms on average; steady state with"
  echo "2 s polls: ${STEADY}% of a core."
} >> "$RESULTS"
log "results appended to $RESULTS"
