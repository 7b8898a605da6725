#!/usr/bin/env bash
# Delivery latency benchmark: publisher → origin → edge → HTTP-FLV (or WebRTC) players, per video
# frame.
#
# Run by hand, not in CI (a full run takes a few minutes and wants an idle 2-core machine):
#
#   bench/latency.sh                              # 1, 100, 1000 and 5000 players, 30 s each
#   PLAYERS="1 1000" DURATION=60 bench/latency.sh
#   NODE_ARGS="--merge-window-ms 350" bench/latency.sh   # the fixed window, for comparison
#   PROTO=whep PLAYERS="100 500" bench/latency.sh        # WebRTC viewers (bench/webrtc.sh)
#
# For each count a fresh origin and edge start on CPU 0 (the edge pulls from the origin when its
# first player arrives). FFmpeg (CPU 1) publishes the looping fixture through its tee muxer: the
# same packets go first to ferrocast-loadgen's --reference socket and then to the origin over
# RTMP, each flushed per packet. The load generator (CPU 1) then starts the players on the edge
# and times every video frame a player receives against the moment its reference copy arrived,
# matched by the frame's fingerprint (size and first 256 body bytes). Frames sent before a
# player joined (its start from the GOP cache) are not counted. For each count the script
# records latency p50/p95/p99/max, the players' health, and the edge's and the origin's CPU over
# the steady state (from 2 s after the ramp ends to 1 s before the end) and peak RSS; the edge's
# frame-wait histogram gives the share of the latency the write window makes. The results are
# appended to bench/RESULTS.md with the commands.
#
# Environment:
#   PLAYERS     space-separated player counts [default: "1 100 1000 5000"]
#   DURATION    seconds per count [default: 30]
#   RAMP        players started per second [default: 500]
#   NODE_ARGS   extra flags for both nodes (e.g. "--merge-window-ms 350")
#   PROTO       flv (HTTP-FLV players) or whep (WebRTC viewers, on an edge with --webrtc-udp,
#               publishing fixtures/demo-webrtc.flv, which has no B-frames) [default: flv]
#   RESULTS     file to append to [default: bench/RESULTS.md]
#   SKIP_BUILD  set to 1 to use the existing release binaries
set -euo pipefail
cd "$(dirname "$0")/.."
NAME=latency
WORK=$(mktemp -d -t ferrocast-latency.XXXXXX)
# shellcheck source=bench/lib.sh
. bench/lib.sh

PLAYERS=${PLAYERS:-"1 100 1000 5000"}
DURATION=${DURATION:-30}
RAMP=${RAMP:-500}
NODE_ARGS=${NODE_ARGS:-}
PROTO=${PROTO:-flv}
case $PROTO in
  flv) FIXTURE=fixtures/demo.flv ;;
  whep) FIXTURE=fixtures/demo-webrtc.flv NAME=webrtc ;;
  *) die "PROTO must be flv or whep" ;;
esac
RESULTS=${RESULTS:-bench/RESULTS.md}
BIN=target/release/ferrocast
LOADGEN=target/release/ferrocast-loadgen

for tool in python3 curl ffmpeg taskset; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool is required (apt-get install $tool)"
done
[ -f "$FIXTURE" ] || die "$FIXTURE is missing"
[ "$(nproc --all)" -ge 2 ] || die "needs at least 2 CPUs (nodes on CPU 0, publisher and players on CPU 1)"
if [ "${SKIP_BUILD:-0}" != 1 ]; then
  log "building release binaries"
  cargo build --release -p ferrocast -p ferrocast-loadgen
fi
[ -x "$BIN" ] && [ -x "$LOADGEN" ] || die "release binaries missing: run without SKIP_BUILD=1"
taskset -cp 1 $$ >/dev/null || die "cannot pin the script to CPU 1"
most=1
for n in $PLAYERS; do [ "$n" -gt "$most" ] && most=$n; done
ulimit -n 65535 2>/dev/null || ulimit -n "$(ulimit -Hn)"
[ "$(ulimit -n)" = unlimited ] || [ "$(ulimit -n)" -ge $((most + 256)) ] ||
  die "the open-files limit $(ulimit -n) is too low for $most players"

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
now_ms() { date +%s%3N; }
alive() { kill -0 "$1" 2>/dev/null; }

# start_node NAME ARGS... → "PID RTMP HTTP API" (ports picked here; the node logs to $WORK/NAME.log).
start_node() {
  local name=$1 r h a
  shift
  r=$(free_port) h=$(free_port) a=$(free_port)
  # shellcheck disable=SC2086
  taskset -c 0 "$BIN" node --name "$name" --rtmp "127.0.0.1:$r" --http "127.0.0.1:$h" --api "127.0.0.1:$a" \
    --max-connections-per-ip 0 "$@" $NODE_ARGS >"$WORK/$name.log" 2>&1 &
  PIDS+=($!)
  echo "$! $r $h $a"
}

wait_http() {
  for _ in $(seq 100); do
    curl -s --max-time 1 -o /dev/null "http://127.0.0.1:$1/api/v1/versions" && return 0
    sleep 0.05
  done
  die "a node did not answer on port $1; see $WORK"
}

ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
pct() { python3 -c "print(round(($2 - $1) / $(getconf CLK_TCK) / ($3 / 1000) * 100, 1))"; }

ROWS=()
COMMANDS=()
for players in $PLAYERS; do
  log "--- $players players"
  read -r ORIGIN o_rtmp _ o_api < <(start_node "origin-$players")
  edge_args=(--role edge --origin "127.0.0.1:$o_rtmp")
  if [ "$PROTO" = whep ]; then
    edge_args+=(--webrtc-udp "127.0.0.1:$(free_port)")
  fi
  read -r EDGE _ e_http e_api < <(start_node "edge-$players" "${edge_args[@]}")
  case $PROTO in
    flv) play_url="http://127.0.0.1:$e_http/live/bench.flv" ;;
    whep) play_url="http://127.0.0.1:$e_http/live/bench/whep" ;;
  esac
  PIDS+=("$ORIGIN" "$EDGE")
  wait_http "$o_api"
  wait_http "$e_api"
  ref=$(free_port)
  lg_cmd="taskset -c 1 $LOADGEN --url $play_url --players $players --ramp $RAMP --duration $DURATION --reference 127.0.0.1:$ref --json"
  ff_cmd="taskset -c 1 ffmpeg -hide_banner -loglevel error -re -stream_loop -1 -i $FIXTURE -map 0 -c copy -f tee [f=flv:flush_packets=1]tcp://127.0.0.1:$ref|[f=flv:flush_packets=1]rtmp://127.0.0.1:$o_rtmp/live/bench"
  COMMANDS+=("$lg_cmd" "$ff_cmd")
  $lg_cmd >"$WORK/$players.json" 2>"$WORK/$players.err" &
  LG=$!
  PIDS+=("$LG")
  for _ in $(seq 100); do grep -q "waiting for the publisher" "$WORK/$players.err" && break; sleep 0.05; done
  # shellcheck disable=SC2086
  taskset -c 1 ffmpeg -hide_banner -loglevel error -re -stream_loop -1 -i "$FIXTURE" -map 0 -c copy -f tee \
    "[f=flv:flush_packets=1]tcp://127.0.0.1:$ref|[f=flv:flush_packets=1]rtmp://127.0.0.1:$o_rtmp/live/bench" \
    </dev/null >"$WORK/ffmpeg-$players.log" 2>&1 &
  FF=$!
  PIDS+=("$FF")
  for _ in $(seq 200); do grep -q "reference stream from" "$WORK/$players.err" && break; sleep 0.05; done
  start=$(now_ms)
  # The players start 1 s after the reference connects; the steady state is as in fanout.sh.
  ramp_ms=$(python3 -c "print(int(1000 + min($players / $RAMP, $DURATION) * 1000))")
  from=$((start + ramp_ms + 2000))
  to=$((start + 1000 + DURATION * 1000 - 1000))
  [ "$from" -gt $((start + 1000 + DURATION * 500)) ] && from=$((start + 1000 + DURATION * 500))
  t0="" t1="" e_rss=0 o_rss=0
  while alive "$LG"; do
    t=$(now_ms)
    r=$(rss_kib "$EDGE"); [ "${r:-0}" -gt "$e_rss" ] && e_rss=$r
    r=$(rss_kib "$ORIGIN"); [ "${r:-0}" -gt "$o_rss" ] && o_rss=$r
    if [ -z "$t0" ] && [ "$t" -ge "$from" ]; then
      t0=$t e0=$(ticks "$EDGE") o0=$(ticks "$ORIGIN")
      curl -s --max-time 2 "http://127.0.0.1:$e_api/metrics" >"$WORK/$players.metrics0" || true
    fi
    if [ -n "$t0" ] && [ -z "$t1" ] && [ "$t" -ge "$to" ]; then
      t1=$t e1=$(ticks "$EDGE") o1=$(ticks "$ORIGIN")
      curl -s --max-time 2 "http://127.0.0.1:$e_api/metrics" >"$WORK/$players.metrics1" || true
    fi
    sleep 0.25
  done
  wait "$LG" || log "the load generator failed; see $WORK/$players.err"
  alive "$EDGE" && alive "$ORIGIN" || die "a node died during the run; see $WORK"
  e_cpu=n/a o_cpu=n/a
  if [ -n "$t1" ]; then
    e_cpu=$(pct "$e0" "$e1" $((t1 - t0)))
    o_cpu=$(pct "$o0" "$o1" $((t1 - t0)))
  fi
  wait_p=$(python3 bench/node_metrics.py "$WORK/$players.metrics0" "$WORK/$players.metrics1" "$(( ${t1:-0} - ${t0:-0} ))e-3" | cut -d' ' -f1,3)
  read -r waits window <<<"$wait_p"
  row=$(python3 - "$WORK/$players.json" <<'PY'
import json, sys
try:
    r = json.load(open(sys.argv[1]))
except Exception:
    print("| n/a | n/a | n/a | n/a | n/a | n/a | n/a | n/a |"); sys.exit()
l = r.get("delivery_latency_ms") or {}
g = lambda k: l.get(k, "n/a")
# WebRTC viewers can lose frames: how many got 99% of them, and the fewest any got.
frames = "%s (min %s%%)" % (r["players_with_99pct_frames"], r["frames_received_min_pct"]) if r.get("players_with_99pct_frames") is not None else "all (TCP)"
print("| %s/%s | %s | %s | %s | %s | %s | %s | %s |" % (r["healthy"], r["players_requested"], frames, g("p50"), g("p95"), g("p99"), g("max"), g("frames"), g("unmatched")))
PY
)
  ROWS+=("| $players | ${row#| } $e_cpu | $o_cpu | $((e_rss / 1024)) / $((o_rss / 1024)) | $window | $waits |")
  log "$players players: ${ROWS[-1]}"
  kill "$FF" "$EDGE" "$ORIGIN" 2>/dev/null || true
  wait "$FF" 2>/dev/null || true
  for _ in $(seq 100); do alive "$EDGE" || alive "$ORIGIN" || break; sleep 0.1; done
done

{
  echo
  echo "## Delivery latency, origin + edge, $PROTO players — $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo
  echo "- machine: $(machine), kernel $(uname -r); commit $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . ':!bench/RESULTS.md' 2>/dev/null || echo ' (with uncommitted changes)')"
  echo "- command: \`PROTO=$PROTO PLAYERS=\"$PLAYERS\" DURATION=$DURATION RAMP=$RAMP NODE_ARGS=\"$NODE_ARGS\" bench/latency.sh\`"
  echo "- nodes: \`taskset -c 0 $BIN node --name origin|edge ... --max-connections-per-ip 0 [--role edge --origin O] $NODE_ARGS\`"
  for c in "${COMMANDS[@]}"; do echo "- \`$c\`"; done
  echo
  echo "| players on the edge | healthy | players with >= 99% of the frames | latency p50 ms | p95 | p99 | max | frames timed | unmatched | edge CPU % | origin CPU % | RSS MiB edge / origin | edge window ms | frame wait in edge p50/p95 ms |"
  echo "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
  for row in "${ROWS[@]}"; do echo "$row"; done
} >>"$RESULTS"
log "appended results to $RESULTS"
