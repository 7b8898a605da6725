#!/usr/bin/env bash
# Index server access control and events, run by hand on an idle machine (not in CI):
#
#   bench/index_auth.sh
#
# 1. Hook decisions: `ferrocast index --auth` (one key, a hook secret, no nodes) answers
#    POST /api/v1/hooks with SRS's on_play body carrying a valid play token in `param` — the
#    decision every play on every node waits for. wrk, 64 keep-alive connections.
# 2. Event fan-out: an index (access control off) with LISTENERS WebSocket listeners on
#    /api/v1/events; crates/index/examples/events_fanout.rs posts on_publish hooks for fresh
#    streams at RATE per second and measures, per listener and event, hook POST → event received.
#
# The index runs on CPU 0; wrk and the benchmark client on CPU 1. Results are appended to
# bench/RESULTS.md (RESULTS=... to change). Environment: DURATION (default 10), LISTENERS (1000),
# EVENTS (200), RATE (20), SKIP_BUILD=1.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10}
LISTENERS=${LISTENERS:-1000}
EVENTS=${EVENTS:-200}
RATE=${RATE:-20}
RESULTS=${RESULTS:-bench/RESULTS.md}
WORK=$(mktemp -d -t ferrocast-auth-bench.XXXXXX)
FERROCAST=target/release/ferrocast
FANOUT=target/release/examples/events_fanout
KEY="k1=bench-secret-0123456789abcdef"
SECRET=hook-secret-0123456789

log() { echo "index-auth-bench: $*" >&2; }
die() { log "error: $*"; exit 1; }
if ! command -v wrk >/dev/null 2>&1; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq && $sudo apt-get install -y -qq wrk >/dev/null
fi
for tool in python3 curl taskset wrk; do command -v "$tool" >/dev/null || die "$tool is required"; done

PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  log "logs in $WORK"
}
trap cleanup EXIT

if [ "${SKIP_BUILD:-}" != 1 ]; then
  cargo build --release -p ferrocast
  cargo build --release -p ferrocast-index --example events_fanout
fi
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_up() { for _ in $(seq 100); do curl -sf "http://127.0.0.1:$1/healthz" >/dev/null && return 0; sleep 0.1; done; die "index not up"; }

log "1/2: hook decisions"
PORT=$(free_port)
taskset -c 0 "$FERROCAST" index --listen "127.0.0.1:$PORT" --db "$WORK/a.db" --auth --auth-key "$KEY" \
  --hook-secret "$SECRET" 2> "$WORK/index-auth.log" & INDEX=$!; PIDS+=($INDEX)
wait_up "$PORT"
TOKEN=$("$FERROCAST" token --key "$KEY" --scope play --stream 'live/*' --ttl 1h)
cat > "$WORK/hook.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"server_id":"vid-5i8r3y9","service_id":"584128l7","action":"on_play","client_id":"rg059g22","ip":"127.0.0.1","vhost":"__defaultVhost__","app":"live","stream":"cam1.flv","tcUrl":"rtmp://127.0.0.1:19350/live","param":"?token=$TOKEN","pageUrl":"","stream_url":"/live/cam1","stream_id":"vid-948bt92"}'
LUA
ANSWER=$(curl -s -X POST -H 'Content-Type: application/json' --data "$(sed -n "s/^wrk.body = '\(.*\)'$/\1/p" "$WORK/hook.lua")" \
  "http://127.0.0.1:$PORT/api/v1/hooks?secret=$SECRET")
[ "$ANSWER" = '{"code":0}' ] || die "the hook was not allowed: $ANSWER"
OUT=$(taskset -c 1 wrk -t1 -c64 -d"${DURATION}s" --latency -s "$WORK/hook.lua" "http://127.0.0.1:$PORT/api/v1/hooks?secret=$SECRET")
echo "$OUT" > "$WORK/wrk-hooks.txt"
HOOK_RPS=$(echo "$OUT" | awk '/Requests\/sec/ {print $2}')
HOOK_P50=$(echo "$OUT" | awk '$1=="50%" {print $2}')
HOOK_P99=$(echo "$OUT" | awk '$1=="99%" {print $2}')
HOOK_ERR=$(echo "$OUT" | awk '/Non-2xx|Socket errors/ {print}' | tr '\n' ' ')
kill "$INDEX"; wait "$INDEX" 2>/dev/null || true
log "hooks: $HOOK_RPS decisions/s, p50 $HOOK_P50, p99 $HOOK_P99"

log "2/2: events to $LISTENERS WebSocket listeners"
PORT=$(free_port)
taskset -c 0 "$FERROCAST" index --listen "127.0.0.1:$PORT" --db "$WORK/e.db" --hook-secret "$SECRET" \
  2> "$WORK/index-events.log" & INDEX=$!; PIDS+=($INDEX)
wait_up "$PORT"
FAN=$(taskset -c 1 "$FANOUT" --index "http://127.0.0.1:$PORT" --secret "$SECRET" --listeners "$LISTENERS" \
  --events "$EVENTS" --rate "$RATE" 2> "$WORK/fanout.log")
log "$FAN"

{
  echo
  echo "## Index access control and events — $(date -u +%Y-%m-%d) (commit $(git rev-parse --short HEAD))"
  echo
  echo "Command: \`bench/index_auth.sh\` (DURATION=$DURATION, LISTENERS=$LISTENERS, EVENTS=$EVENTS, RATE=$RATE)."
  echo "Machine: $(nproc --all) CPUs, $(awk -F: '/model name/ {print $2; exit}' /proc/cpuinfo | sed 's/^ *//'). Release build;"
  echo "index on CPU 0, wrk / the benchmark client on CPU 1."
  echo
  echo "- Hook decisions (\`on_play\` with a valid play token checked: HMAC, expiry, scope, pattern):"
  echo "  **$HOOK_RPS decisions/s**, p50 $HOOK_P50, **p99 $HOOK_P99**, errors: ${HOOK_ERR:-none}."
  echo "- Event fan-out, hook POST → \`stream_published\` received by each of $LISTENERS WebSocket listeners:"
  echo "  \`$FAN\`"
} >> "$RESULTS"
log "results appended to $RESULTS"
