#!/usr/bin/env bash
# HLS: glass-to-playlist latency and node CPU per 100 HLS viewers (run by hand, loopback only).
#
# glass-to-playlist = FFmpeg starts publishing → the first 200 answer for the playlist
# (polled every 20 ms), for RUNS fresh streams (default 5). Then VIEWERS (default 100) HLS
# viewers (Python threads: playlist every second, every new segment fetched once) watch one
# stream for DURATION seconds (default 40); the node runs pinned to CPU 0, everything else on
# CPU 1. Appends the results to bench/RESULTS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-5} VIEWERS=${VIEWERS:-100} DURATION=${DURATION:-40}
RESULTS=${RESULTS:-bench/RESULTS.md}
[ -n "${SKIP_BUILD:-}" ] || cargo build --release -p ferrocast
tmp=$(mktemp -d)
pidfile="$tmp/pids"; : >"$pidfile"
cleanup() { while read -r p; do kill -9 "$p" 2>/dev/null || true; done <"$pidfile"; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT

taskset -c 0 target/release/ferrocast node --rtmp 127.0.0.1:0 --http 127.0.0.1:0 --api 127.0.0.1:0 --log-format json >"$tmp/node.log" 2>&1 &
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
{
  echo
  echo "## HLS — $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo
  echo "- machine: $(nproc) CPUs, $(lscpu | sed -n 's/^Model name: *//p' | head -1), kernel $(uname -r); commit $(git rev-parse --short HEAD)"
  echo "- command: \`RUNS=$RUNS VIEWERS=$VIEWERS DURATION=$DURATION bash bench/hls.sh\` (release; node pinned to CPU 0, publisher and viewers on CPU 1; 2 s segments)"
  echo
  echo "| measure | value |"
  echo "| --- | ---: |"
  echo "| glass-to-playlist (publish start → first playlist), median / max of $RUNS | $(echo "$glass" | awk '{print $1" ms / "$2" ms"}') |"
  echo "| node CPU with $VIEWERS HLS viewers (steady state) | ${cpu}% of one core |"
  echo "| node RSS | ${rss} MiB |"
  echo "| segments served / errors | $segs / $errs |"
} >>"$RESULTS"
echo "appended to $RESULTS" >&2
