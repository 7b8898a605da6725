# Helpers shared by the benchmark scripts (sourced, not run): logging, process cleanup, free
# ports, waiting for the index, wrk runs and their medians. A script sets NAME (its log prefix)
# and WORK (its scratch folder) before sourcing.

log() { echo "$NAME: $*" >&2; }
die() { log "error: $*"; exit 1; }

# Installs Debian packages the benchmark needs when their command is missing: need CMD PACKAGE ...
need() {
  local missing=()
  while [ $# -ge 2 ]; do
    command -v "$1" >/dev/null 2>&1 || missing+=("$2")
    shift 2
  done
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]} with apt-get"
    local sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

# Processes to stop at exit.
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  log "logs in $WORK"
}
trap cleanup EXIT

# A port free for both TCP and UDP on 127.0.0.1.
free_port() {
  python3 -c '
import socket
while True:
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("127.0.0.1", 0)); p = u.getsockname()[1]
    t = socket.socket()
    try:
        t.bind(("127.0.0.1", p)); print(p); break
    except OSError:
        pass'
}

cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }

# Waits until the index at $1 lists $2 nodes up and $3 streams.
wait_index() {
  python3 - "$1" "$2" "$3" <<'PY'
import json, sys, time, urllib.request
base, nodes, streams = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
t0 = time.time()
while time.time() - t0 < 120:
    try:
        n = json.load(urllib.request.urlopen(base + "/api/v1/nodes"))["nodes"]
        s = json.load(urllib.request.urlopen(base + "/api/v1/streams?count=1"))["total"]
        if sum(1 for x in n if x["health"] == "up") == nodes and s == streams:
            sys.exit(0)
    except Exception:
        pass
    time.sleep(0.1)
sys.exit("index not ready in 120 s")
PY
}

# wrk on CPU 1 → "req/s p50 p99 errors" (CONNECTIONS, DURATION; the full output to $WORK/wrk.txt).
run_wrk() {
  local out rps p50 p99 errors
  out=$(taskset -c 1 wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" --latency "$@")
  echo "$out" >> "$WORK/wrk.txt"
  rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  p50=$(echo "$out" | awk '$1=="50%" {print $2}')
  p99=$(echo "$out" | awk '$1=="99%" {print $2}')
  errors=$(echo "$out" | awk '/Non-2xx|Socket errors/ {print}' | tr '\n' ' ')
  echo "$rps $p50 $p99 ${errors:-none}"
}

# The median round of kind $1 in $WORK/rounds.txt (lines "kind value ..."), without the kind.
median() { grep "^$1 " "$WORK/rounds.txt" | sort -k2 -g | awk '{a[NR]=$0} END {print a[int((NR+1)/2)]}' | cut -d' ' -f2-; }

# "N CPUs, model, RAM" of this machine.
machine() {
  echo "$(nproc --all) CPUs, $(awk -F: '/model name/ {print $2; exit}' /proc/cpuinfo | sed 's/^ *//'), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo) RAM"
}
