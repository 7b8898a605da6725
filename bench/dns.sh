#!/usr/bin/env bash
# DNS scheduling benchmark, run by hand on an idle machine (not in CI):
#
#   bench/dns.sh
#
# The index answers DNS for live.example.com from the directory of 200 virtual SRS nodes (20
# origins, 180 edges in 4 regions, 500 streams each: crates/index/examples/fake_cluster.rs), which
# it keeps polling every 2 s. NSD, an authoritative-only server from NLnet Labs, serves a static
# zone with the same names and answer sizes (4 A records per name). dnsperf (Debian) sends the
# same queries to each — `sN.live.live.example.com A` for 500 streams and the apex — with an EDNS
# client subnet in region r1, first as fast as each answers (max qps), then at half of NSD's
# rate to read the latency percentiles at that load (-v: one latency per response).
#
# Both servers run alone on CPU 0 (one thread each: NSD server-count 1; the index's runtime sees
# one CPU); dnsperf and the fake cluster share CPU 1, the fake cluster at SCHED_IDLE: its nodes
# stand in for other machines, and answering the polls must not delay dnsperf's receives (it
# did: 1-3 ms on every server's p99). A last run measures NSD at the same rate
# with the index polling beside it, as the index's own run has it. Results are appended to
# bench/RESULTS.md (RESULTS=... to change).
#
# Environment: DURATION (s per dnsperf run, default 10), ROUNDS (default 3), SKIP_BUILD=1.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
RESULTS=${RESULTS:-bench/RESULTS.md}
WORK=$(mktemp -d -t ferrocast-dns-bench.XXXXXX)
FERROCAST=target/release/ferrocast
FAKE=target/release/examples/fake_cluster
ZONE=live.example.com

NAME=dns-bench
source bench/lib.sh
need dnsperf dnsperf nsd nsd dig bind9-dnsutils
for tool in python3 curl taskset chrt dnsperf nsd dig; do command -v "$tool" >/dev/null || die "$tool is required"; done
[ "$(nproc --all)" -ge 2 ] || die "needs 2 CPUs"

if [ "${SKIP_BUILD:-}" != 1 ]; then
  cargo build --release -p ferrocast
  cargo build --release -p ferrocast-index --example fake_cluster
fi

# The queries: every stream's name and the apex; an ECS option for 10.1.0.0/24 (region r1).
for s in $(seq 0 499); do echo "s$s.live.$ZONE A"; done > "$WORK/queries.txt"
echo "$ZONE A" >> "$WORK/queries.txt"
ECS="8:000118000a0100"

log "starting 200 virtual nodes and the index"
taskset -c 1 chrt --idle 0 "$FAKE" --nodes 200 --streams 500 --origins 20 --regions 4 --config "$WORK/index.toml" \
  2> "$WORK/fake.log" & FAKE_PID=$!; PIDS+=($FAKE_PID)
for _ in $(seq 100); do [ -s "$WORK/index.toml" ] && break; sleep 0.1; done  # the fake cluster writes the config once it listens
HTTP_PORT=$(free_port)
INDEX_DNS=$(free_port)
taskset -c 0 "$FERROCAST" index --config "$WORK/index.toml" --listen "127.0.0.1:$HTTP_PORT" --db "$WORK/index.db" \
  --dns "127.0.0.1:$INDEX_DNS" --dns-zone "$ZONE" --dns-rate-limit-qps 0 \
  --cidr 10.0.0.0/16=r0 --cidr 10.1.0.0/16=r1 --cidr 10.2.0.0/16=r2 --cidr 10.3.0.0/16=r3 \
  2> "$WORK/index.log" & INDEX=$!; PIDS+=($INDEX)
wait_index "http://127.0.0.1:$HTTP_PORT" 200 500
SAMPLE=$(dig @127.0.0.1 -p "$INDEX_DNS" +subnet=10.1.0.0/24 +short "s42.live.$ZONE" A | tr '\n' ' ')
[ -n "$SAMPLE" ] || die "the index gives no answer for s42.live.$ZONE"
log "the index answers s42.live.$ZONE with $SAMPLE"

log "starting NSD with the same names, statically"
NSD_PORT=$(free_port)
mkdir -p "$WORK/nsd"
{
  echo "\$ORIGIN $ZONE."
  echo "\$TTL 10"
  echo "@ 3600 IN SOA ns.$ZONE. hostmaster.$ZONE. 1 3600 600 86400 10"
  echo "@ 3600 IN NS ns.$ZONE."
  echo "ns 3600 IN A 127.0.0.1"
  for a in $SAMPLE; do echo "@ IN A $a"; done
  for s in $(seq 0 499); do for a in $SAMPLE; do echo "s$s.live IN A $a"; done; done
} > "$WORK/nsd/zone"
cat > "$WORK/nsd/nsd.conf" <<EOF
server:
  ip-address: 127.0.0.1@$NSD_PORT
  server-count: 1
  username: ""
  chroot: ""
  zonesdir: "$WORK/nsd"
  database: ""
  zonelistfile: "$WORK/nsd/zone.list"
  xfrdfile: "$WORK/nsd/xfrd.state"
  pidfile: "$WORK/nsd/nsd.pid"
  logfile: "$WORK/nsd/nsd.log"
  hide-version: yes
remote-control:
  control-enable: no
zone:
  name: "$ZONE"
  zonefile: "$WORK/nsd/zone"
EOF
nsd-checkconf "$WORK/nsd/nsd.conf"
taskset -c 0 nsd -d -c "$WORK/nsd/nsd.conf" 2> "$WORK/nsd/stderr.log" & PIDS+=($!)
for _ in $(seq 50); do dig @127.0.0.1 -p "$NSD_PORT" +short "s42.live.$ZONE" A | grep -q . && break; sleep 0.1; done
NSD_SAMPLE=$(dig @127.0.0.1 -p "$NSD_PORT" +short "s42.live.$ZONE" A | tr '\n' ' ')
[ -n "$NSD_SAMPLE" ] || die "NSD gives no answer"

# NSD's runs have the machine to themselves: the index and its fake cluster are paused (SIGSTOP),
# so neither core carries their polling. The index's runs keep it: it polls as in production.
pause_index() { kill -STOP "$INDEX" "$FAKE_PID"; }
resume_index() { kill -CONT "$INDEX" "$FAKE_PID"; sleep 3; }

# dnsperf at max rate → "qps lost"
max_qps() {
  local out
  out=$(taskset -c 1 dnsperf -s 127.0.0.1 -p "$1" -d "$WORK/queries.txt" -l "$DURATION" -c 4 -q 200 -E "$ECS" 2>&1)
  echo "$out" >> "$WORK/dnsperf.txt"
  echo "$(echo "$out" | awk '/Queries per second/ {print $4}') $(echo "$out" | awk '/Queries lost/ {print $3}')"
}
# dnsperf at $2 qps with per-response latencies → "p50_ms p99_ms max_ms achieved_qps"
latency_at() {
  taskset -c 1 dnsperf -s 127.0.0.1 -p "$1" -d "$WORK/queries.txt" -l "$DURATION" -c 4 -q 500 -E "$ECS" -Q "$2" -v \
    > "$WORK/latency-$1.txt" 2>&1 || true
  python3 - "$WORK/latency-$1.txt" "$DURATION" <<'PY'
import sys
lat = []
for line in open(sys.argv[1]):
    p = line.split()
    # verbose lines: "> NOERROR s1.live.live.example.com A 0.000123"
    if len(p) >= 5 and p[0] == ">":
        try:
            lat.append(float(p[-1]))
        except ValueError:
            pass
lat.sort()
if not lat:
    print("nan nan nan 0"); sys.exit()
q = lambda f: lat[min(len(lat) - 1, int(f * len(lat)))] * 1000
print(f"{q(0.5):.3f} {q(0.99):.3f} {lat[-1]*1000:.3f} {len(lat)/float(sys.argv[2]):.0f}")
PY
}

: > "$WORK/rounds.txt"
T0=$(cpu_ticks "$INDEX"); sleep 5; T1=$(cpu_ticks "$INDEX")
POLL_CPU=$(python3 -c "print(f'{100 * ($T1 - $T0) / $(getconf CLK_TCK) / 5:.1f}')")
for round in $(seq "$ROUNDS"); do
  echo "index $(max_qps "$INDEX_DNS")" >> "$WORK/rounds.txt"
  pause_index
  echo "nsd $(max_qps "$NSD_PORT")" >> "$WORK/rounds.txt"
  resume_index
done
read -r INDEX_QPS INDEX_LOST < <(median index)
read -r NSD_QPS NSD_LOST < <(median nsd)
HALF=$(python3 -c "print(int($NSD_QPS / 2))")
read -r I50 I99 IMAX IACH < <(latency_at "$INDEX_DNS" "$HALF")
pause_index
read -r N50 N99 NMAX NACH < <(latency_at "$NSD_PORT" "$HALF")
resume_index
# NSD again with the index polling beside it (its polls on CPU 0 at nice +10, the fake cluster
# answering them on dnsperf's CPU): the same conditions as the index's own half-rate run, so the
# tail this setup adds to any server shows.
read -r B50 B99 BMAX BACH < <(latency_at "$NSD_PORT" "$HALF")
RATIO=$(python3 -c "print(f'{$INDEX_QPS / $NSD_QPS:.2f}')")
ROUNDS_TXT=$(awk '{printf "%s %s qps; ", $1, $2}' "$WORK/rounds.txt")
METRICS=$(curl -s "http://127.0.0.1:$HTTP_PORT/metrics" | grep -E '^ferrocast_index_dns_(queries|answers)_total' | tr '\n' ' ')
log "index $INDEX_QPS qps, NSD $NSD_QPS qps: ratio $RATIO; at $HALF qps p99 index $I99 ms, NSD $N99 ms"

COMMIT=$(git rev-parse --short HEAD)
{
  echo
  echo "## DNS scheduling — $(date -u +%Y-%m-%d) (commit $COMMIT)"
  echo
  echo "Command: \`bench/dns.sh\` (DURATION=$DURATION, ROUNDS=$ROUNDS). Machine: $(machine)."
  echo "Release build. The index on CPU 0, polling 200 nodes x 500 streams every 2 s the whole time (that alone:"
  echo "${POLL_CPU}% of CPU 0), with the fake cluster (SCHED_IDLE) and $(dnsperf -h 2>&1 | awk '/Version/ {print "dnsperf " $2}') (4 clients, ECS 10.1.0.0/24) on CPU 1;"
  echo "$(nsd -v 2>&1 | head -1) (server-count 1, the same names in a static zone) alone on CPU 0 with dnsperf alone on CPU 1"
  echo "(index and fake cluster paused during NSD's runs)."
  echo "Queries: \`sN.live.$ZONE A\` for 500 streams and the apex; every answer 4 A records."
  echo
  echo "| server | max qps (median of $ROUNDS) | lost | p50 at $HALF qps | p99 at $HALF qps | max at $HALF qps |"
  echo "|---|---|---|---|---|---|"
  echo "| Ferrocast index (scheduling each answer) | $INDEX_QPS | $INDEX_LOST | $I50 ms | $I99 ms | $IMAX ms |"
  echo "| NSD, static zone | $NSD_QPS | $NSD_LOST | $N50 ms | $N99 ms | $NMAX ms |"
  echo "| NSD, static zone, with the index polling beside it | | | $B50 ms | $B99 ms | $BMAX ms |"
  echo
  echo "Index / NSD = **$RATIO** (floor 0.5). Rounds: $ROUNDS_TXT"
  echo "Half-rate runs achieved $IACH (index) and $NACH (NSD) answers/s. Sample answer: \`$SAMPLE\`."
  echo "Index counters after the runs: \`$METRICS\`"
} >> "$RESULTS"
log "results appended to $RESULTS"
