#!/usr/bin/env bash
# Fan-out benchmark: one Ferrocast node, one looping publisher, swarms of players.
#
# Run by hand, not in CI (a full run takes several minutes and wants an idle 2-core machine):
#
#   bench/fanout.sh                                  # every scenario, 60 s each
#   SCENARIOS="flv:1000 rtmp:1000" DURATION=30 bench/fanout.sh
#
# The node is pinned to CPU 0; the publisher (ffmpeg) and ferrocast-loadgen share CPU 1. For each
# scenario the script samples the node's CPU time (utime+stime from /proc/PID/stat) over the
# steady state (from 2 s after the ramp ends to 1 s before the players stop), its peak RSS
# (VmRSS), and from the node's /metrics over the same span its player writes per second and how
# long frames waited in it before their write (p50/p95 of ferrocast_node_frame_wait_seconds: the
# latency the write window adds), then waits until the node is back to one client (the publisher): players that left
# were all cleaned up. The results are appended to bench/RESULTS.md as a markdown section.
#
# Environment:
#   SCENARIOS   space-separated list of flv:N, rtmp:N and churn
#               [default: "flv:1000 flv:2000 flv:5000 rtmp:1000 churn"]
#               churn = 2000 HTTP-FLV players for 5 s all at once, then at once 10 players for
#               5 s: are all 10 healthy, and how fast do they get a keyframe?
#   DURATION    seconds per scenario [default: 60]
#   RAMP        players started per second [default: 500]
#   RESULTS     file to append to [default: bench/RESULTS.md]
#   SKIP_BUILD  set to 1 to use the existing release binaries
#   NODE_ARGS   extra flags for `ferrocast node` (e.g. "--merge-window-ms 100")
set -euo pipefail
cd "$(dirname "$0")/.."

SCENARIOS=${SCENARIOS:-"flv:1000 flv:2000 flv:5000 rtmp:1000 churn"}
DURATION=${DURATION:-60}
RAMP=${RAMP:-500}
RESULTS=${RESULTS:-bench/RESULTS.md}
NODE_ARGS=${NODE_ARGS:-}
NODE_CPU=0
LOAD_CPU=1
NODE=target/release/ferrocast
LOADGEN=target/release/ferrocast-loadgen
WORK=$(mktemp -d -t ferrocast-fanout.XXXXXX)

log() { echo "fanout: $*" >&2; }
die() { log "error: $*"; exit 1; }

for tool in python3 curl ffmpeg taskset; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool is required (apt-get install $tool)"
done
[ -f fixtures/demo.flv ] || die "fixtures/demo.flv is missing"
NPROC=$(nproc --all)
[ "$NPROC" -ge 2 ] || die "needs at least 2 CPUs (node on CPU $NODE_CPU, load on CPU $LOAD_CPU)"

NODE_PID="" FFMPEG_PID="" LOADGEN_PID=""
cleanup() {
  local pid
  for pid in "$LOADGEN_PID" "$FFMPEG_PID" "$NODE_PID"; do
    [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
  done
  for pid in "$LOADGEN_PID" "$FFMPEG_PID" "$NODE_PID"; do
    [ -n "$pid" ] && wait "$pid" 2>/dev/null || true
  done
  log "logs in $WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ "${SKIP_BUILD:-0}" != 1 ]; then
  log "building release binaries"
  cargo build --release -p ferrocast -p ferrocast-loadgen
fi
[ -x "$NODE" ] && [ -x "$LOADGEN" ] || die "release binaries missing: run without SKIP_BUILD=1"

# This shell and everything it runs (curl, python3, the samplers) stay off the node's CPU.
taskset -cp "$LOAD_CPU" $$ >/dev/null || die "cannot pin the script to CPU $LOAD_CPU"
# Open files: the node and loadgen each need one per player. Ask for 65535; settle for the hard
# limit if it is lower but still enough for the largest scenario.
if ! ulimit -n 65535 2>/dev/null; then
  hard=$(ulimit -Hn)
  ulimit -n "$hard"
  most=2000
  for scenario in $SCENARIOS; do
    case $scenario in *:*) [ "${scenario#*:}" -gt "$most" ] && most=${scenario#*:} ;; esac
  done
  [ "$hard" = unlimited ] || [ "$hard" -ge $((most + 256)) ] ||
    die "the open-files hard limit is $hard, too low for $most players; raise it (limits.conf, or run as root)"
  log "warning: could not raise the open-files limit to 65535; using the hard limit $hard"
fi

# Field of the "bench" stream from the SRS API (clients, publish.active), or "" when absent.
stream_field() {
  curl -s --max-time 2 "$API/api/v1/streams/" 2>/dev/null | python3 -c '
import json, sys
try:
    doc = json.load(sys.stdin)
except ValueError:
    sys.exit(0)
for s in doc.get("streams", []):
    if s.get("app") == "live" and s.get("name") == "bench":
        v = s
        for part in sys.argv[1].split("."):
            v = v.get(part) if isinstance(v, dict) else None
        print(str(v).lower())
' "$1"
}

# CPU ticks (utime+stime) of a process; the comm field may hold spaces, so cut after ")".
cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
now_ms() { date +%s%3N; }
alive() { kill -0 "$1" 2>/dev/null; }

# Port 0 everywhere: the node binds free ports itself and logs them (picking ports here first
# races with anything else that opens a socket in between).
# Every player comes from 127.0.0.1: lift the node's per-address connection cap (1024 by default).
NODE_CMD="taskset -c $NODE_CPU $NODE node --rtmp 127.0.0.1:0 --http 127.0.0.1:0 --api 127.0.0.1:0 --log-format json --max-connections-per-ip 0 $NODE_ARGS"

log "starting the node: $NODE_CMD"
# shellcheck disable=SC2086
$NODE_CMD >"$WORK/node.log" 2>&1 &
NODE_PID=$!
ADDRS=""
for _ in $(seq 100); do
  ADDRS=$(python3 -c '
import json, sys
for line in open(sys.argv[1]):
    try:
        f = json.loads(line).get("fields", {})
    except ValueError:
        continue
    if f.get("message") == "ferrocast node listening":
        print(f["rtmp"], f["http"], f["api"])
        break
' "$WORK/node.log")
  [ -n "$ADDRS" ] && break
  alive "$NODE_PID" || die "the node exited; see $WORK/node.log"
  sleep 0.1
done
[ -n "$ADDRS" ] || die "the node did not log its addresses; see $WORK/node.log"
read -r RTMP_ADDR HTTP_ADDR API_ADDR <<<"$ADDRS"
API=http://$API_ADDR
FLV_URL=http://$HTTP_ADDR/live/bench.flv
RTMP_URL=rtmp://$RTMP_ADDR/live/bench
FFMPEG_CMD="taskset -c $LOAD_CPU ffmpeg -hide_banner -loglevel error -re -stream_loop -1 -i fixtures/demo.flv -c copy -f flv $RTMP_URL"

log "publishing: $FFMPEG_CMD"
# shellcheck disable=SC2086
$FFMPEG_CMD </dev/null >"$WORK/ffmpeg.log" 2>&1 &
FFMPEG_PID=$!
for _ in $(seq 150); do
  [ "$(stream_field publish.active)" = true ] && break
  alive "$FFMPEG_PID" || die "ffmpeg exited; see $WORK/ffmpeg.log"
  sleep 0.2
done
[ "$(stream_field publish.active)" = true ] || die "the stream never became active; see $WORK/node.log"
sleep 2 # let the GOP cache fill

# Waits (up to 60 s) until the node reports only the publisher; prints the seconds it took or "timeout".
wait_one_client() {
  local start clients
  start=$(now_ms)
  for _ in $(seq 300); do
    clients=$(stream_field clients)
    if [ "$clients" = 1 ]; then
      python3 -c "print(round(($(now_ms) - $start) / 1000, 1))"
      return
    fi
    sleep 0.2
  done
  echo timeout
}

ROWS=()
NOTES=()
COMMANDS=()

# run_load NAME URL PLAYERS RAMP DURATION: runs one loadgen swarm while sampling the node.
# Leaves the loadgen JSON in $WORK/NAME.json and sets CPU_PCT and RSS_MIB.
run_load() {
  local name=$1 url=$2 players=$3 ramp=$4 dur=$5
  local cmd="taskset -c $LOAD_CPU $LOADGEN --url $url --players $players --ramp $ramp --duration $dur --json"
  COMMANDS+=("$cmd")
  log "$name: $cmd"
  local start ramp_ms steady_from steady_to t0="" c0="" t1="" c1="" rss=0 r t
  start=$(now_ms)
  $cmd >"$WORK/$name.json" 2>"$WORK/$name.err" &
  LOADGEN_PID=$!
  # Steady state: from 2 s after the ramp ends (at most half-way) to 1 s before the end (at least 3/4).
  ramp_ms=$(python3 -c "print(int(min($players / $ramp, $dur) * 1000))")
  steady_from=$((start + ramp_ms + 2000))
  [ "$steady_from" -gt $((start + dur * 500)) ] && steady_from=$((start + dur * 500))
  steady_to=$((start + dur * 1000 - 1000))
  [ "$steady_to" -lt $((start + dur * 750)) ] && steady_to=$((start + dur * 750))
  while alive "$LOADGEN_PID"; do
    t=$(now_ms)
    r=$(rss_kib "$NODE_PID" 2>/dev/null || echo 0)
    [ "${r:-0}" -gt "$rss" ] && rss=$r
    if [ -z "$t0" ] && [ "$t" -ge "$steady_from" ]; then
      t0=$t c0=$(cpu_ticks "$NODE_PID")
      curl -s --max-time 2 "$API/metrics" >"$WORK/$name.metrics0" || true
    fi
    if [ -n "$t0" ] && [ -z "$t1" ] && [ "$t" -ge "$steady_to" ]; then
      t1=$t c1=$(cpu_ticks "$NODE_PID")
      curl -s --max-time 2 "$API/metrics" >"$WORK/$name.metrics1" || true
    fi
    sleep 0.25
  done
  wait "$LOADGEN_PID" || log "$name: loadgen exited with an error; see $WORK/$name.err"
  LOADGEN_PID=""
  alive "$NODE_PID" || die "the node died during $name; see $WORK/node.log"
  if [ -n "$t1" ] && [ "$t1" -gt "$t0" ]; then
    CPU_PCT=$(python3 -c "print(round(($c1 - $c0) / $(getconf CLK_TCK) / (($t1 - $t0) / 1000) * 100, 1))")
  else
    CPU_PCT="n/a"
  fi
  RSS_MIB=$(python3 -c "print(round($rss / 1024, 1))")
  # Frame wait p50/p95 (ms) and player writes per second over the steady state, from /metrics.
  local secs
  secs=$(python3 -c "print((${t1:-0} - ${t0:-0}) / 1000)")
  WAIT_WRITES=$(python3 bench/node_metrics.py "$WORK/$name.metrics0" "$WORK/$name.metrics1" "$secs" | cut -d' ' -f1,2)
}

# Reads fields from a loadgen JSON report: json_get FILE EXPR (a python expression over r).
json_get() {
  python3 -c '
import json, sys
try:
    r = json.load(open(sys.argv[1]))
    print(eval(sys.argv[2]))
except Exception as e:
    print("n/a")
' "$1" "$2"
}

KF='"%s/%s" % ((r["first_keyframe_ms"] or {}).get("p50", "-"), (r["first_keyframe_ms"] or {}).get("p99", "-"))'

# add_row NAME PLAYERS: a table row from $WORK/NAME.json and the last CPU_PCT / RSS_MIB.
add_row() {
  local f="$WORK/$1.json"
  read -r WAIT WRITES <<<"$WAIT_WRITES"
  ROWS+=("| $1 | $2 | $(json_get "$f" 'r["connected"]') | $(json_get "$f" 'r["healthy"]') | $(json_get "$f" "$KF") | $(json_get "$f" 'r["throughput_mbps"]') | $CPU_PCT | $RSS_MIB | $WAIT | $WRITES |")
  local failures
  failures=$(json_get "$f" '", ".join("%s %d" % kv for kv in r["failures"].items()) or "none"')
  [ "$failures" != none ] && NOTES+=("$1: failed players: $failures")
  return 0
}

for scenario in $SCENARIOS; do
  case $scenario in
    flv:* | rtmp:*)
      proto=${scenario%%:*} players=${scenario#*:}
      url=$FLV_URL
      [ "$proto" = rtmp ] && url=$RTMP_URL
      run_load "$proto-$players" "$url" "$players" "$RAMP" "$DURATION"
      add_row "$proto-$players" "$players"
      ;;
    churn)
      run_load churn-2000 "$FLV_URL" 2000 2000 5
      add_row churn-2000 2000
      run_load churn-after-10 "$FLV_URL" 10 100 5
      add_row churn-after-10 10
      NOTES+=("mass churn: right after 2000 players left, $(json_get "$WORK/churn-after-10.json" 'r["healthy"]') of 10 new players were healthy; their first keyframe p50/max $(json_get "$WORK/churn-after-10.json" '"%s/%s ms" % ((r["first_keyframe_ms"] or {}).get("p50", "-"), (r["first_keyframe_ms"] or {}).get("max", "-"))')")
      scenario=churn-after-10
      ;;
    *) die "unknown scenario $scenario (use flv:N, rtmp:N or churn)" ;;
  esac
  back=$(wait_one_client)
  NOTES+=("after $scenario: node back to 1 client (the publisher) in $back s")
  log "after $scenario: back to 1 client in $back s"
done

{
  [ -s "$RESULTS" ] || printf '# Benchmark results\n\nSections are appended by the scripts in bench/; newest last.\n'
  echo
  echo "## Fan-out — $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo
  echo "- machine: $NPROC CPUs, $(lscpu | grep 'Model name' | sed 's/Model name: *//'), kernel $(uname -r)"
  echo "- commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD 2>/dev/null || echo ' (with uncommitted changes)')"
  echo "- duration ${DURATION} s per scenario, ramp ${RAMP} players/s; node CPU % is utime+stime over the steady state (ramp end + 2 s to 1 s before the end) as % of one core; RSS is the peak VmRSS"
  echo "- node: \`$NODE_CMD\`"
  echo "- publisher: \`$FFMPEG_CMD\`"
  for c in "${COMMANDS[@]}"; do echo "- players: \`$c\`"; done
  echo
  echo "| scenario | players | connected | healthy | first-keyframe p50/p99 ms | throughput Mbit/s | node CPU % of one core | node RSS MiB | frame wait in node p50/p95 ms | player writes/s |"
  echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
  for row in "${ROWS[@]}"; do echo "$row"; done
  echo
  for note in "${NOTES[@]}"; do echo "- $note"; done
} >>"$RESULTS"
log "appended results to $RESULTS"
