#!/usr/bin/env bash
# Index server under idle half-open connections, run by hand on an idle machine (not in CI):
#
#   bench/index_idle_connections.sh
#
# An index polls a small fake cluster (crates/index/examples/fake_cluster.rs: 10 nodes x 50
# streams). Then IDLE connections (default 5000) are opened to it and left idle, half of them
# having sent half a request head (slow-loris), the other half nothing. While they are held, a new
# client asks GET /api/v1/play/live/s1?proto=flv ROUNDS times (default 20), each on a fresh
# connection. Reported: the slowest and median play answer time, and whether every answer came
# within a second (issue 15, done-when 3); then, after the index's header timeout
# (HEADER_TIMEOUT_MS, default 10000) has passed, how many of the idle connections it closed.
#
# The index runs on CPU 0; the idle connections and the client on CPU 1. The open-file limit is
# raised for both (ulimit -n 65536, which may need root). Results are appended to
# bench/RESULTS.md (RESULTS=... to change). Environment: IDLE, ROUNDS, HEADER_TIMEOUT_MS,
# MAX_CONNECTIONS (default 10000), SKIP_BUILD=1.
set -euo pipefail
cd "$(dirname "$0")/.."

IDLE=${IDLE:-5000}
ROUNDS=${ROUNDS:-20}
HEADER_TIMEOUT_MS=${HEADER_TIMEOUT_MS:-10000}
MAX_CONNECTIONS=${MAX_CONNECTIONS:-10000}
RESULTS=${RESULTS:-bench/RESULTS.md}
WORK=$(mktemp -d -t ferrocast-idle-bench.XXXXXX)
FERROCAST=target/release/ferrocast
FAKE=target/release/examples/fake_cluster

log() { echo "index-idle-bench: $*" >&2; }
die() { log "error: $*"; exit 1; }
for tool in python3 curl taskset; do command -v "$tool" >/dev/null || die "$tool is required"; done
ulimit -n 65536 2>/dev/null || log "cannot raise the open-file limit to 65536 (now $(ulimit -n)): run as root for IDLE=$IDLE"

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

taskset -c 1 "$FAKE" --nodes 10 --streams 50 --origins 2 --regions 1 --config "$WORK/index.toml" \
  2> "$WORK/fake.log" & PIDS+=($!)
sleep 2
PORT=$(free_port)
taskset -c 0 "$FERROCAST" index --config "$WORK/index.toml" --listen "127.0.0.1:$PORT" --db "$WORK/index.db" \
  --header-timeout-ms "$HEADER_TIMEOUT_MS" --max-connections "$MAX_CONNECTIONS" \
  2> "$WORK/index.log" & INDEX=$!; PIDS+=($INDEX)
for _ in $(seq 200); do
  curl -sf "http://127.0.0.1:$PORT/api/v1/play/live/s1?proto=flv" >/dev/null && break
  sleep 0.1
done
curl -sf "http://127.0.0.1:$PORT/api/v1/play/live/s1?proto=flv" >/dev/null || die "the index gives no play answer"

RESULT=$(taskset -c 1 python3 - "$PORT" "$IDLE" "$ROUNDS" "$HEADER_TIMEOUT_MS" <<'PY'
import socket, statistics, sys, time
port, idle, rounds, header_ms = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
held = []
for i in range(idle):
    s = socket.socket()
    s.setblocking(True)
    s.connect(("127.0.0.1", port))
    if i % 2 == 0:
        s.sendall(b"GET /api/v1/play/live/s1?proto=flv HTTP/1.1\r\nHost: index\r\nX-Slow: ")
    held.append(s)
opened = time.time()
times = []
for _ in range(rounds):
    t0 = time.time()
    c = socket.create_connection(("127.0.0.1", port), timeout=5)
    c.sendall(b"GET /api/v1/play/live/s1?proto=flv HTTP/1.1\r\nHost: index\r\nConnection: close\r\n\r\n")
    data = b""
    while True:
        chunk = c.recv(65536)
        if not chunk:
            break
        data += chunk
    c.close()
    if not data.startswith(b"HTTP/1.1 200"):
        sys.exit(f"play answer was not 200: {data[:200]!r}")
    times.append(time.time() - t0)
# After the header timeout, count the idle connections the index closed.
time.sleep(max(0.0, header_ms / 1000 + 2 - (time.time() - opened)))
closed = 0
for s in held:
    s.setblocking(False)
    try:
        closed += s.recv(1) == b""
    except BlockingIOError:
        pass
    except OSError:
        closed += 1
print(f"{max(times) * 1000:.1f} {statistics.median(times) * 1000:.1f} {closed}")
PY
)
read -r SLOWEST MEDIAN CLOSED <<< "$RESULT"
WITHIN=$(python3 -c "print('yes' if $SLOWEST < 1000 else 'NO')")
log "slowest play answer ${SLOWEST} ms (median ${MEDIAN} ms) with $IDLE idle connections; within 1 s: $WITHIN; closed after the header timeout: $CLOSED of $IDLE"
{
  echo
  echo "## Index under $IDLE idle half-open connections ($(date -u +%Y-%m-%d), bench/index_idle_connections.sh)"
  echo
  echo "| idle connections | play answers | slowest | median | all within 1 s | idle closed after ${HEADER_TIMEOUT_MS} ms |"
  echo "| --- | --- | --- | --- | --- | --- |"
  echo "| $IDLE | $ROUNDS | ${SLOWEST} ms | ${MEDIAN} ms | $WITHIN | $CLOSED |"
} >> "$RESULTS"
