#!/usr/bin/env bash
# Index replicas in shared mode (--redis), run by hand on an idle machine (not in CI):
#
#   bench/index_replicas.sh
#
# 200 virtual SRS nodes x 500 streams (crates/index/examples/fake_cluster.rs), as bench/index.sh.
# 1. /api/v1/play req/s (wrk, 64 keep-alive connections in all) against
#    a. one index without Redis (the single-replica default),
#    b. one index with --redis (it leads: polls and writes its node records to Redis),
#    c. three indexes with --redis: one leader, two followers; three wrk processes, one per replica,
#       64/3 connections each, run at once; their req/s are summed.
#    Every index process is pinned to CPU 0 (the same single core for 1 or 3 replicas: this shows
#    what sharing costs, not how replicas on separate hosts scale), wrk, Redis and the fake cluster
#    to CPU 1.
# 2. The node records the leader writes to Redis at 200 x 500: bytes and time of the first
#    (complete) write, then bytes per second and time per write in steady state (2 s polls), from
#    the leader's /metrics.
# 3. Event latency across replicas: crates/index/examples/events_fanout.rs posts on_publish hooks to
#    replica 1 while LISTENERS WebSocket clients listen on replica 3 (hook POST -> event received),
#    and the same with the listeners on replica 1 for comparison. The hooked streams are in apps of
#    their own (fanout-across, fanout-same) that the listeners filter on: with the whole cluster
#    (500 streams, each carried by many edges) every new listener first gets a snapshot of megabytes
#    (bench run of 2026-12-05: 100 listeners took 36 s to connect), which is not what this measures.
#
# Results are appended to bench/RESULTS.md (RESULTS=... to change).
# Environment: DURATION (s per wrk run, default 10), CONNECTIONS (64), LISTENERS (100), EVENTS
# (200), RATE (20), SKIP_BUILD=1.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-64}
LISTENERS=${LISTENERS:-100}
EVENTS=${EVENTS:-200}
RATE=${RATE:-20}
RESULTS=${RESULTS:-bench/RESULTS.md}
WORK=$(mktemp -d -t ferrocast-replicas-bench.XXXXXX)
FERROCAST=target/release/ferrocast
FAKE=target/release/examples/fake_cluster
FANOUT=target/release/examples/events_fanout
SECRET=hook-secret-0123456789

log() { echo "replicas-bench: $*" >&2; }
die() { log "error: $*"; exit 1; }

need=()
command -v wrk >/dev/null 2>&1 || need+=(wrk)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
if [ ${#need[@]} -gt 0 ]; then
  log "installing ${need[*]} with apt-get"
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq && $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
for tool in python3 curl taskset wrk redis-server; do command -v "$tool" >/dev/null || die "$tool is required"; done
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
  cargo build --release -p ferrocast-index --example fake_cluster --example events_fanout
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

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

# A metric without labels from $1's /metrics.
metric() { curl -s "$1/metrics" | awk -v m="$2" '$1 == m {print $2}'; }

cat > "$WORK/play.lua" <<'LUA'
local n = 0
request = function()
  n = n + 1
  return wrk.format("GET", "/api/v1/play/live/s" .. (n * 7919 % 500) .. "?proto=flv&region=r" .. (n % 4))
end
LUA

# wrk's summary -> "req/s p50 p99 errors" (file $1 gets the full output).
wrk_summary() {
  local out=$1 rps p50 p99 errors
  rps=$(awk '/Requests\/sec/ {print $2}' "$out")
  p50=$(awk '$1=="50%" {print $2}' "$out")
  p99=$(awk '$1=="99%" {print $2}' "$out")
  errors=$(awk '/Non-2xx|Socket errors/ {print}' "$out" | tr '\n' ' ')
  echo "$rps $p50 $p99 ${errors:-none}"
}

REDIS_PORT=$(free_port)
taskset -c 1 redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$WORK" \
  > "$WORK/redis.log" 2>&1 & PIDS+=($!)
REDIS=redis://127.0.0.1:$REDIS_PORT/0

taskset -c 1 "$FAKE" --nodes 200 --streams 500 --origins 20 --regions 4 --config "$WORK/index.toml" \
  2> "$WORK/fake.log" & PIDS+=($!)
sleep 2

# Starts an index on CPU 0 (name $1, extra flags after); prints "PID PORT".
start_index() {
  local name=$1; shift
  local port; port=$(free_port)
  taskset -c 0 "$FERROCAST" index --config "$WORK/index.toml" --listen "127.0.0.1:$port" --db "$WORK/$name.db" \
    --hook-secret "$SECRET" "$@" 2> "$WORK/$name.log" &
  echo "$! $port"
}

stop() { for pid in "$@"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done; }

log "1a: one index, no redis"
read -r SOLO SOLO_PORT < <(start_index solo); PIDS+=($SOLO)
wait_ready "http://127.0.0.1:$SOLO_PORT" 200 500 >/dev/null
sleep 2
taskset -c 1 wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" --latency -s "$WORK/play.lua" "http://127.0.0.1:$SOLO_PORT" > "$WORK/wrk-solo.txt"
read -r SOLO_RPS SOLO_P50 SOLO_P99 SOLO_ERR < <(wrk_summary "$WORK/wrk-solo.txt")
stop "$SOLO"
log "one index: $SOLO_RPS req/s (p99 $SOLO_P99)"

log "1b: one index with --redis"
read -r ONE ONE_PORT < <(start_index one --redis "$REDIS" --redis-prefix one); PIDS+=($ONE)
wait_ready "http://127.0.0.1:$ONE_PORT" 200 500 >/dev/null
sleep 2
taskset -c 1 wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" --latency -s "$WORK/play.lua" "http://127.0.0.1:$ONE_PORT" > "$WORK/wrk-one.txt"
read -r ONE_RPS ONE_P50 ONE_P99 ONE_ERR < <(wrk_summary "$WORK/wrk-one.txt")
stop "$ONE"
log "one index with redis: $ONE_RPS req/s (p99 $ONE_P99)"

log "1c + 2: three indexes with --redis"
PORTS=(); REPLICAS=()
T_START=$(date +%s.%N)
for n in 1 2 3; do
  read -r pid port < <(start_index "replica$n" --redis "$REDIS" --redis-prefix three); PIDS+=($pid)
  REPLICAS+=("$pid"); PORTS+=("$port")
done
for port in "${PORTS[@]}"; do wait_ready "http://127.0.0.1:$port" 200 500 >/dev/null; done
T_READY=$(date +%s.%N)
LEADER=""
for port in "${PORTS[@]}"; do
  [ "$(metric "http://127.0.0.1:$port" ferrocast_index_leader)" = 1 ] && LEADER=$port
done
[ -n "$LEADER" ] || die "no leader among the three replicas"
L="http://127.0.0.1:$LEADER"
FIRST_BYTES=$(metric "$L" ferrocast_index_shared_publish_bytes_total)
FIRST_WRITES=$(metric "$L" ferrocast_index_shared_publishes_total)
FIRST_SECS=$(metric "$L" ferrocast_index_shared_publish_seconds_total)
sleep 10
STEADY_BYTES=$(metric "$L" ferrocast_index_shared_publish_bytes_total)
STEADY_WRITES=$(metric "$L" ferrocast_index_shared_publishes_total)
STEADY_SECS=$(metric "$L" ferrocast_index_shared_publish_seconds_total)
FOLLOWER_BYTES=""
for port in "${PORTS[@]}"; do
  [ "$port" = "$LEADER" ] || FOLLOWER_BYTES="$FOLLOWER_BYTES $(metric "http://127.0.0.1:$port" ferrocast_index_shared_applied_bytes_total)"
done
read -r SNAP_TXT < <(python3 - "$FIRST_BYTES" "$FIRST_WRITES" "$FIRST_SECS" "$STEADY_BYTES" "$STEADY_WRITES" "$STEADY_SECS" "$T_START" "$T_READY" <<'PY'
import sys
fb, fw, fs, sb, sw, ss, t0, t1 = map(float, sys.argv[1:])
dw = max(sw - fw, 1)
print(f"until every replica listed 200 nodes x 500 streams ({t1 - t0:.1f} s after start): {int(fw)} writes, "
      f"{fb / 1e6:.2f} MB, {1000 * fs / max(fw, 1):.1f} ms each on average (encode + EVAL); then 10 s of steady state: "
      f"{int(sw - fw)} writes, {(sb - fb) / 10 / 1e3:.1f} kB/s, {1000 * (ss - fs) / dw:.1f} ms per write")
PY
)
log "node records: $SNAP_TXT"

: > "$WORK/wrk3.txt"
WRK_PIDS=()
PER=$((CONNECTIONS / 3))
for i in 0 1 2; do
  taskset -c 1 wrk -t1 -c"$PER" -d"${DURATION}s" --latency -s "$WORK/play.lua" "http://127.0.0.1:${PORTS[$i]}" \
    > "$WORK/wrk-three-$i.txt" & WRK_PIDS+=($!)
done
for pid in "${WRK_PIDS[@]}"; do wait "$pid"; done
THREE_RPS=0; THREE_ROWS=""
for i in 0 1 2; do
  read -r rps p50 p99 err < <(wrk_summary "$WORK/wrk-three-$i.txt")
  role=follower; [ "${PORTS[$i]}" = "$LEADER" ] && role=leader
  THREE_ROWS="$THREE_ROWS| \`/api/v1/play\`, replica $((i + 1)) ($role), $PER connections | $rps | $p50 | $p99 | $err |"$'\n'
  THREE_RPS=$(python3 -c "print(f'{$THREE_RPS + $rps:.2f}')")
done
log "three replicas: $THREE_RPS req/s in all"

log "3: event latency across replicas"
R1="http://127.0.0.1:${PORTS[0]}"; R3="http://127.0.0.1:${PORTS[2]}"
ACROSS=$(taskset -c 1 "$FANOUT" --index "$R1" --listen-index "$R3" --app fanout-across --secret "$SECRET" \
  --listeners "$LISTENERS" --events "$EVENTS" --rate "$RATE" 2>> "$WORK/fanout.log")
SAME=$(taskset -c 1 "$FANOUT" --index "$R1" --app fanout-same --secret "$SECRET" --listeners "$LISTENERS" \
  --events "$EVENTS" --rate "$RATE" 2>> "$WORK/fanout.log")
LEASE_LOG=$(cat "$WORK"/replica*.log | sed 's/\x1b\[[0-9;]*m//g' | grep -E "leader (acquired|lost)|standalone" | cut -c1-200 || true)
log "across: $ACROSS"
log "same replica: $SAME"
stop "${REPLICAS[@]}"

COMMIT=$(git rev-parse --short HEAD)
{
  echo
  echo "## Index replicas (shared mode) — $(date -u +%Y-%m-%d) (commit $COMMIT)"
  echo
  echo "Command: \`bench/index_replicas.sh\` (DURATION=$DURATION, CONNECTIONS=$CONNECTIONS, LISTENERS=$LISTENERS, EVENTS=$EVENTS,"
  echo "RATE=$RATE). Machine: $(nproc --all) CPUs, $(awk -F: '/model name/ {print $2; exit}' /proc/cpuinfo | sed 's/^ *//'),"
  echo "$(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo) RAM; $(redis-server --version | awk '{print $1, $2, $3}')."
  echo "Release build; 200 nodes x 500 streams polled every 2 s (fake_cluster). Every index process on CPU 0 (one"
  echo "core for one or three replicas), wrk (1 thread each), Redis and the fake cluster on CPU 1."
  echo
  echo "| scenario | req/s | p50 | p99 | errors |"
  echo "|---|---|---|---|---|"
  echo "| \`/api/v1/play\`, one index, no Redis | $SOLO_RPS | $SOLO_P50 | $SOLO_P99 | $SOLO_ERR |"
  echo "| \`/api/v1/play\`, one index with \`--redis\` (leader) | $ONE_RPS | $ONE_P50 | $ONE_P99 | $ONE_ERR |"
  printf '%s' "$THREE_ROWS"
  echo "| **three replicas together** | **$THREE_RPS** | | | |"
  echo
  echo "Node records in Redis, 200 nodes x 500 streams: $SNAP_TXT. Followers read$FOLLOWER_BYTES bytes in all."
  echo
  echo "Event latency, on_publish hook POSTed to replica 1 -> \`stream_published\` at $LISTENERS WebSocket listeners:"
  echo
  echo "- listeners on replica 3 (through Redis pub/sub): \`$ACROSS\`"
  echo "- listeners on replica 1 (same replica): \`$SAME\`"
  echo
  echo "Leadership during the run (from the replicas' logs):"
  echo
  echo "$LEASE_LOG" | sed 's/^/    /'
} >> "$RESULTS"
log "results appended to $RESULTS"
