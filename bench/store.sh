#!/usr/bin/env bash
# The index's store on SQLite and on PostgreSQL, run by hand on an idle machine (not in CI):
#
#   bench/store.sh
#
# 1. Play answers per second: two `ferrocast index` processes poll the same 200 virtual SRS nodes
#    (crates/index/examples/fake_cluster.rs: 20 origins, 180 edges, 500 streams), one with
#    `--db FILE` (SQLite), one with `--db postgres://...`. wrk asks each in turn for
#    /api/v1/play/live/sN (the one being measured runs, the other is paused with SIGSTOP), in
#    alternating rounds. The request path never touches the database, so the two should match.
# 2. History writes per second: crates/index/examples/store_writes.rs queues session starts, peak
#    updates and node changes as the index does and waits for each 20,000 to be in the database.
#
# The index (and store_writes) runs on CPU 0; PostgreSQL (initdb into a temp directory, a free
# port, default durability: fsync on), wrk and the fake cluster share CPU 1. Results are appended
# to bench/RESULTS.md (RESULTS=... to change).
#
# Environment: DURATION (s per wrk run, default 10), ROUNDS (default 3), CONNECTIONS (default 64),
# EVENTS (history writes per run, default 200000), SKIP_BUILD=1.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
CONNECTIONS=${CONNECTIONS:-64}
EVENTS=${EVENTS:-200000}
RESULTS=${RESULTS:-bench/RESULTS.md}
WORK=$(mktemp -d -t ferrocast-store-bench.XXXXXX)
FERROCAST=target/release/ferrocast
FAKE=target/release/examples/fake_cluster
WRITES=target/release/examples/store_writes

NAME=store-bench
source bench/lib.sh
need wrk wrk
PGBIN=$(dirname "$(readlink -f "$(command -v initdb || ls /usr/lib/postgresql/*/bin/initdb | tail -1)")")
[ -x "$PGBIN/postgres" ] || die "PostgreSQL is required (apt-get install postgresql)"
for tool in python3 curl taskset wrk setpriv; do command -v "$tool" >/dev/null || die "$tool is required"; done
[ "$(nproc --all)" -ge 2 ] || die "needs 2 CPUs"

if [ "${SKIP_BUILD:-}" != 1 ]; then
  cargo build --release -p ferrocast
  cargo build --release -p ferrocast-index --example fake_cluster --example store_writes
fi

# PostgreSQL refuses to run as root: as root, as the `postgres` user of Debian's package (setpriv
# execs the program, so the pid kept for cleanup is the server's).
AS_PG=()
[ "$(id -u)" -ne 0 ] || { AS_PG=(setpriv --reuid=postgres --regid=postgres --init-groups --); chown postgres: "$WORK"; }
PG_PORT=$(free_port)
"${AS_PG[@]}" "$PGBIN/initdb" -D "$WORK/pg" -U postgres --auth=trust -E UTF8 > "$WORK/initdb.log"
"${AS_PG[@]}" taskset -c 1 "$PGBIN/postgres" -D "$WORK/pg" -p "$PG_PORT" -k "$WORK/pg" -c listen_addresses=127.0.0.1 \
  2> "$WORK/postgres.log" & PIDS+=($!)
for _ in $(seq 100); do "$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" && break; sleep 0.1; done
"${AS_PG[@]}" "$PGBIN/createdb" -h 127.0.0.1 -p "$PG_PORT" -U postgres play
"${AS_PG[@]}" "$PGBIN/createdb" -h 127.0.0.1 -p "$PG_PORT" -U postgres writes
PG_URL="postgres://postgres@127.0.0.1:$PG_PORT"
PG_VERSION=$("$PGBIN/postgres" --version)

cat > "$WORK/play.lua" <<'LUA'
local n = 0
request = function()
  n = n + 1
  return wrk.format("GET", "/api/v1/play/live/s" .. (n * 7919 % 500) .. "?proto=flv")
end
LUA

log "200 virtual nodes, two indexes (SQLite, PostgreSQL)"
taskset -c 1 "$FAKE" --nodes 200 --streams 500 --origins 20 --regions 4 --config "$WORK/index.toml" \
  2> "$WORK/fake.log" & FAKE_PID=$!; PIDS+=($FAKE_PID)
for _ in $(seq 100); do [ -s "$WORK/index.toml" ] && break; sleep 0.1; done
declare -A PORT PID
for kind in sqlite postgres; do
  PORT[$kind]=$(free_port)
  db="$WORK/index.db"; [ "$kind" = postgres ] && db="$PG_URL/play"
  taskset -c 0 "$FERROCAST" index --config "$WORK/index.toml" --listen "127.0.0.1:${PORT[$kind]}" --db "$db" \
    2> "$WORK/index-$kind.log" & PID[$kind]=$!; PIDS+=(${PID[$kind]})
  wait_index "http://127.0.0.1:${PORT[$kind]}" 200 500
done
sleep 3
: > "$WORK/rounds.txt"
for round in $(seq "$ROUNDS"); do
  for kind in sqlite postgres; do
    other=sqlite; [ "$kind" = sqlite ] && other=postgres
    kill -STOP "${PID[$other]}"
    echo "$kind $(run_wrk -s "$WORK/play.lua" "http://127.0.0.1:${PORT[$kind]}")" >> "$WORK/rounds.txt"
    kill -CONT "${PID[$other]}"
    sleep 2
  done
done
SESSIONS=$(curl -s "http://127.0.0.1:${PORT[postgres]}/api/v1/history?limit=1000" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["sessions"]))')
for kind in sqlite postgres; do kill "${PID[$kind]}"; done
kill "$FAKE_PID"

log "history writes"
: > "$WORK/writes.txt"
for round in $(seq "$ROUNDS"); do
  rm -f "$WORK/writes.db"*
  echo "sqlite $(taskset -c 0 "$WRITES" --db "$WORK/writes.db" --events "$EVENTS" | awk '{print $(NF-1)}')" >> "$WORK/writes.txt"
  echo "postgres $(taskset -c 0 "$WRITES" --db "$PG_URL/writes" --events "$EVENTS" | awk '{print $(NF-1)}')" >> "$WORK/writes.txt"
done
wmedian() { grep "^$1 " "$WORK/writes.txt" | sort -k2 -g | awk '{a[NR]=$2} END {print a[int((NR+1)/2)]}'; }

COMMIT=$(git rev-parse --short HEAD)
{
  echo
  echo "## Index store: SQLite and PostgreSQL — $(date -u +%Y-%m-%d) (commit $COMMIT)"
  echo
  echo "Command: \`bench/store.sh\` (DURATION=$DURATION, ROUNDS=$ROUNDS, CONNECTIONS=$CONNECTIONS, EVENTS=$EVENTS). Machine: $(machine)."
  echo "Release build; each index on CPU 0 polling 200 nodes (20 origins, 180 edges, 500 streams) every 2 s, the other"
  echo "paused while one is measured; $PG_VERSION (fsync on), wrk (1 thread) and the fake cluster on CPU 1."
  echo
  echo "| \`/api/v1/play\` with | req/s (median of $ROUNDS) | p50 | p99 | errors |"
  echo "|---|---|---|---|---|"
  for kind in sqlite postgres; do
    read -r RPS P50 P99 ERR < <(median "$kind")
    echo "| \`--db\` $kind | $RPS | $P50 | $P99 | $ERR |"
  done
  echo
  echo "All rounds: $(awk '{printf "%s %s req/s; ", $1, $2}' "$WORK/rounds.txt")"
  echo "Sessions the PostgreSQL index recorded meanwhile: $SESSIONS."
  echo
  echo "History writes (\`store_writes\`, $EVENTS events a run, a third each session starts, peak updates and node"
  echo "changes; waited for in chunks of 20,000): SQLite **$(wmedian sqlite)** events/s, PostgreSQL **$(wmedian postgres)** events/s"
  echo "(medians of $ROUNDS; all: $(awk '{printf "%s %s; ", $1, $2}' "$WORK/writes.txt"))."
} >> "$RESULTS"
log "results appended to $RESULTS"
