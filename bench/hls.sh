#!/usr/bin/env bash
# HLS: glass-to-playlist latency and node CPU per 100 HLS viewers (run by hand, loopback only),
# then the same for Low-Latency HLS.
#
# glass-to-playlist = FFmpeg starts publishing → the first 200 answer for the playlist
# (polled every 20 ms), for RUNS fresh streams (default 5). Then VIEWERS (default 100) HLS
# viewers (Python threads: playlist every second, every new segment fetched once) watch one
# stream for DURATION seconds (default 40); the node runs pinned to CPU 0, everything else on
# CPU 1.
#
# LL-HLS: for each count in LL_VIEWERS (default "100 1000"; empty for none), ferrocast-loadgen's LL-HLS viewers
# (each: the preload-hinted part, answered when it is cut, then the playlist reload that lists it,
# as hls.js in low-latency mode) watch a fresh stream for DURATION seconds. FFmpeg publishes
# through its tee muxer to the node and to the load generator's --reference socket, so each
# H.264 frame a viewer finds in a part is timed from the moment the publisher sent it:
# glass-to-part latency. Node CPU over the steady state and peak RSS for each count.
# Appends the results to bench/RESULTS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-5} VIEWERS=${VIEWERS:-100} DURATION=${DURATION:-40} LL_VIEWERS=${LL_VIEWERS-"100 1000"}
RESULTS=${RESULTS:-bench/RESULTS.md}
[ -n "${SKIP_BUILD:-}" ] || cargo build --release -p ferrocast -p ferrocast-loadgen
ulimit -n 65535 2>/dev/null || ulimit -n "$(ulimit -Hn)"
tmp=$(mktemp -d)
pidfile="$tmp/pids"; : >"$pidfile"
cleanup() { while read -r p; do kill -9 "$p" 2>/dev/null || true; done <"$pidfile"; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT

taskset -c 0 target/release/ferrocast node --max-connections-per-ip 0 --rtmp 127.0.0.1:0 --http 127.0.0.1:0 --api 127.0.0.1:0 --log-format json >"$tmp/node.log" 2>&1 &
node_pid=$!; echo $node_pid >>"$pidfile"
for _ in $(seq 100); do grep -q '"ferrocast node listening"' "$tmp/node.log" && break; sleep 0.1; done
read -r RTMP HTTP < <(python3 -c '
import json, sys
for l in open(sys.argv[1]):
    f = json.loads(l).get("fields", {})
    if f.get("message") == "ferrocast node listening": print(f["rtmp"], f["http"]); break' "$tmp/node.log")

publish() { taskset -c 1 ffmpeg -hide_banner -loglevel error -re -stream_loop -1 -i fixtures/demo.flv -c copy -f flv "rtmp://$RTMP/live/$1" </dev/null >/dev/null 2>&1 & echo $! >>"$pidfile"; }

for run in $(seq "$RUNS"); do
  t0=$(date +%s.%N)
  publish "g$run"
  python3 - "$HTTP" "g$run" "$t0" >>"$tmp/glass" <<'PY'
import sys, time, urllib.request
http, name, t0 = sys.argv[1], sys.argv[2], float(sys.argv[3])
while True:
    try:
        with urllib.request.urlopen(f"http://{http}/live/{name}.m3u8", timeout=10) as r:
            if r.status == 200:
                print(f"{(time.time() - t0) * 1000:.0f}"); break
    except Exception:
        pass
    time.sleep(0.02)
PY
  echo "run $run: glass-to-playlist $(tail -1 "$tmp/glass") ms" >&2
done

publish viewers
sleep 6
ticks() { awk '{print $14 + $15}' "/proc/$node_pid/stat"; }
python3 - "$HTTP" "$VIEWERS" "$DURATION" >"$tmp/viewers" <<'PY' &
import sys, threading, time, urllib.request, urllib.parse
http, n, duration = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
stop = time.time() + duration
stats = {"segments": 0, "bytes": 0, "errors": 0}
lock = threading.Lock()
def viewer():
    seen = set(); base = f"http://{http}/live/"; playlist = base + "viewers.m3u8"
    while time.time() < stop:
        try:
            text = urllib.request.urlopen(playlist, timeout=10).read().decode()
            for line in text.splitlines():
                if line and not line.startswith("#") and line not in seen:
                    seen.add(line)
                    data = urllib.request.urlopen(base + line, timeout=10).read()
                    with lock: stats["segments"] += 1; stats["bytes"] += len(data)
        except Exception:
            with lock: stats["errors"] += 1
        time.sleep(1)
threads = [threading.Thread(target=viewer, daemon=True) for _ in range(n)]
for t in threads: t.start(); time.sleep(0.01)
for t in threads: t.join()
print(stats["segments"], stats["bytes"], stats["errors"])
PY
vpid=$!; echo $vpid >>"$pidfile"
sleep 5; c0=$(ticks); s0=$(date +%s.%N)
sleep $((DURATION - 10)); c1=$(ticks); s1=$(date +%s.%N)
wait $vpid || true
read -r segs bytes errs <"$tmp/viewers"
cpu=$(python3 -c "print(f'{($c1-$c0)/100/($s1-$s0)*100:.1f}')")
rss=$(awk '/VmRSS/ {printf "%.1f", $2/1024}' "/proc/$node_pid/status")
glass=$(python3 -c "import statistics,sys; v=[float(l) for l in open(sys.argv[1])]; print(f'{statistics.median(v):.0f} {max(v):.0f}')" "$tmp/glass")

# LL-HLS viewers, one fresh stream per count.
LL_ROWS=()
for n in $LL_VIEWERS; do
  ref=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  lg="taskset -c 1 target/release/ferrocast-loadgen --url http://$HTTP/live/ll$n/index.m3u8 --players $n --ramp 200 --duration $DURATION --reference 127.0.0.1:$ref --json"
  $lg >"$tmp/ll$n.json" 2>"$tmp/ll$n.err" &
  lg_pid=$!; echo $lg_pid >>"$pidfile"
  for _ in $(seq 100); do grep -q "waiting for the publisher" "$tmp/ll$n.err" && break; sleep 0.05; done
  taskset -c 1 ffmpeg -hide_banner -loglevel error -re -stream_loop -1 -i fixtures/demo.flv -map 0 -c copy -f tee \
    "[f=flv:flush_packets=1]tcp://127.0.0.1:$ref|[f=flv:flush_packets=1]rtmp://$RTMP/live/ll$n" </dev/null >/dev/null 2>&1 &
  ff_pid=$!; echo $ff_pid >>"$pidfile"
  ramp_s=$(( n / 200 + 1 ))
  sleep $((ramp_s + 4)); c0=$(ticks); s0=$(date +%s.%N); rss_ll=0
  while [ "$(python3 -c "import time; print(int(time.time() - $s0))")" -lt $((DURATION - ramp_s - 6)) ]; do
    r=$(awk '/VmRSS/ {print $2}' "/proc/$node_pid/status"); [ "$r" -gt "$rss_ll" ] && rss_ll=$r
    sleep 0.5
  done
  c1=$(ticks); s1=$(date +%s.%N)
  wait $lg_pid || true
  kill $ff_pid 2>/dev/null || true
  cpu_ll=$(python3 -c "print(f'{($c1-$c0)/100/($s1-$s0)*100:.1f}')")
  row=$(python3 - "$tmp/ll$n.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
l = r.get("delivery_latency_ms") or {}
print("%s/%s | %s / %s / %s | %s | %s" % (r["healthy"], r["players_requested"], l.get("p50"), l.get("p95"), l.get("max"),
      l.get("frames"), ", ".join("%s %d" % kv for kv in r["failures"].items()) or "none"))
PY
)
  LL_ROWS+=("| $n | $row | ${cpu_ll}% | $(python3 -c "print(round($rss_ll/1024, 1))") |")
  echo "LL-HLS $n viewers: ${LL_ROWS[-1]}" >&2
  sleep 2
done
{
  echo
  echo "## HLS — $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo
  echo "- machine: $(nproc) CPUs, $(lscpu | sed -n 's/^Model name: *//p' | head -1), kernel $(uname -r); commit $(git rev-parse --short HEAD)"
  echo "- command: \`RUNS=$RUNS VIEWERS=$VIEWERS DURATION=$DURATION LL_VIEWERS=\"$LL_VIEWERS\" bash bench/hls.sh\` (release; node pinned to CPU 0, publisher and viewers on CPU 1; 2 s segments, 300 ms parts)"
  echo
  echo "| measure | value |"
  echo "| --- | ---: |"
  echo "| glass-to-playlist (publish start → first playlist), median / max of $RUNS | $(echo "$glass" | awk '{print $1" ms / "$2" ms"}') |"
  echo "| node CPU with $VIEWERS HLS viewers (steady state) | ${cpu}% of one core |"
  echo "| node RSS | ${rss} MiB |"
  echo "| segments served / errors | $segs / $errs |"
  echo
  echo "Low-Latency HLS viewers (ferrocast-loadgen; latency = publisher sends a frame → a viewer has the part holding it):"
  echo
  echo "| LL-HLS viewers | healthy | glass-to-part p50 / p95 / max ms | frames timed | failures | node CPU | node RSS MiB |"
  echo "| ---: | ---: | ---: | ---: | --- | ---: | ---: |"
  for r in "${LL_ROWS[@]}"; do echo "$r"; done
} >>"$RESULTS"
echo "appended to $RESULTS" >&2
