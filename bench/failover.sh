#!/usr/bin/env bash
# Origin failover and edge cold start, measured with real processes on loopback (run by hand).
#
# Each run starts origins O1 and O2 (FFmpeg publishing the fixture to both; all nodes with
# `--merge-window-ms 0`, so the spacing of frames is not the merge window) and an edge with
# `--origin O1 --origin O2 --merge-window-ms 0`, then one HTTP-FLV player on the edge:
#   cold start = request sent → first body byte (the edge has to connect to O1 and pull first);
#   failover gap = longest silence at the player around the SIGKILL of O1 (normal spacing at
#                  merge window 0 is one frame, ~20-40 ms).
# Appends the medians of RUNS runs (default 10) to bench/RESULTS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-10}
RESULTS=${RESULTS:-bench/RESULTS.md}
[ -n "${SKIP_BUILD:-}" ] || cargo build --release -p ferrocast
BIN=target/release/ferrocast
tmp=$(mktemp -d)
# Every process started is recorded in a file: `node` runs in a subshell (process substitution),
# where a shell array would not reach the cleanup.
pidfile="$tmp/pids"
: >"$pidfile"
cleanup() {
  while read -r p; do kill -9 "$p" 2>/dev/null || true; done <"$pidfile"
  : >"$pidfile"
  wait 2>/dev/null || true
}
trap 'cleanup; rm -rf "$tmp"' EXIT

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
node() { # name extra-args...
  local name=$1; shift
  local r h a; r=$(port); h=$(port); a=$(port)
  "$BIN" node --name "$name" --rtmp 127.0.0.1:$r --http 127.0.0.1:$h --api 127.0.0.1:$a "$@" >"$tmp/$name.log" 2>&1 &
  echo $! >>"$pidfile"; echo "$! $r $h $a"
}

for run in $(seq "$RUNS"); do
  read -r o1 o1r _ _ < <(node o1 --merge-window-ms 0)
  read -r o2 o2r _ _ < <(node o2 --merge-window-ms 0)
  sleep 0.3
  for r in $o1r $o2r; do
    ffmpeg -hide_banner -loglevel error -re -stream_loop -1 -i fixtures/demo.flv -c copy -f flv "rtmp://127.0.0.1:$r/live/demo" </dev/null >/dev/null 2>&1 &
    echo $! >>"$pidfile"
  done
  read -r _ _ eh _ < <(node edge --role edge --origin 127.0.0.1:$o1r --origin 127.0.0.1:$o2r --merge-window-ms 0)
  sleep 3 # both origins have a GOP
  python3 - "$eh" "$o1" >>"$tmp/samples" <<'PY'
import http.client, os, signal, sys, threading, time
port, victim = int(sys.argv[1]), int(sys.argv[2])
c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
t0 = time.monotonic(); c.request("GET", "/live/demo.flv"); r = c.getresponse()
r.read(1); first = time.monotonic() - t0
arrivals = []; stop = time.monotonic() + 6; killed = [None]
def kill():
    time.sleep(3); killed[0] = time.monotonic(); os.kill(victim, signal.SIGKILL)
threading.Thread(target=kill, daemon=True).start()
while time.monotonic() < stop:
    if not r.read1(65536): break
    arrivals.append(time.monotonic())
k = killed[0]
window = [t for t in arrivals if k - 0.5 <= t <= k + 3]
gap = max((b - a for a, b in zip(window, window[1:])), default=float("nan"))
print(f"{first*1000:.1f} {gap*1000:.1f}")
PY
  cleanup
  echo "run $run: $(tail -1 "$tmp/samples") (cold start ms, failover gap ms)" >&2
done

read -r cold_med gap_med gap_max < <(python3 - "$tmp/samples" <<'PY'
import statistics, sys
rows = [tuple(map(float, l.split())) for l in open(sys.argv[1]) if l.strip()]
print(f"{statistics.median(r[0] for r in rows):.1f} {statistics.median(r[1] for r in rows):.1f} {max(r[1] for r in rows):.1f}")
PY
)
{
  echo
  echo "## Edge cold start and origin failover — $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo
  echo "- machine: $(nproc) CPUs, $(lscpu | sed -n 's/^Model name: *//p' | head -1), kernel $(uname -r); commit $(git rev-parse --short HEAD)"
  echo "- command: \`RUNS=$RUNS bash bench/failover.sh\` (release build; all nodes with \`--merge-window-ms 0\`; origin killed with SIGKILL)"
  echo
  echo "| measure | median of $RUNS runs | max |"
  echo "| --- | ---: | ---: |"
  echo "| cold start: first HTTP-FLV player on an idle edge → first byte | ${cold_med} ms | |"
  echo "| failover gap: longest silence at the player around the origin's death | ${gap_med} ms | ${gap_max} ms |"
  echo
  echo "Raw (cold ms, gap ms): $(tr '\n' ';' < "$tmp/samples")"
} >>"$RESULTS"
echo "appended to $RESULTS" >&2
