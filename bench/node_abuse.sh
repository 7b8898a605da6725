#!/usr/bin/env bash
# Abuse benchmark for one media node (issue 16, "done when" 2): while 3,000 connections open the
# RTMP port and never complete the handshake (re-opened as soon as the node cuts them at its setup
# deadline) and 1,000 HTTP-FLV players request a stream and never read, does a new player still
# get its first video frame within a second, and does the node's RSS stay bounded?
#
# Run by hand, not in CI (about two minutes; wants an idle 2-core machine):
#
#   bench/node_abuse.sh
#   HALF_OPEN=3000 NON_READERS=1000 DURATION=60 bench/node_abuse.sh
#
# The attackers come from 127.0.0.2 ... (250 connections per address, under the node's default
# --max-connections-per-ip of 1024), so the per-address cap does not hide the load; run once more
# with ATTACK_ADDRS=1 to see the cap at work (most attack connections refused, logged once a second).
#
# Environment:
#   HALF_OPEN    RTMP connections that send C0 and a few bytes of C1, then nothing [default: 3000]
#   NON_READERS  HTTP-FLV players that never read their response [default: 1000]
#   DURATION     seconds of attack before and during the probes [default: 60]
#   PROBES       new players measured (connect to first video tag), spread over DURATION [default: 20]
#   ATTACK_ADDRS loopback source addresses the attack is spread over [default: enough for 250 each]
#   RESULTS      file to append to [default: bench/RESULTS.md]
#   SKIP_BUILD   set to 1 to use the existing release binary
#   NODE_ARGS    extra flags for `ferrocast node`
#   NODE         the binary [default: target/release/ferrocast]
set -euo pipefail
cd "$(dirname "$0")/.."

HALF_OPEN=${HALF_OPEN:-3000}
NON_READERS=${NON_READERS:-1000}
DURATION=${DURATION:-60}
PROBES=${PROBES:-20}
RESULTS=${RESULTS:-bench/RESULTS.md}
NODE_ARGS=${NODE_ARGS:-}
NODE=${NODE:-target/release/ferrocast}
WORK=$(mktemp -d -t ferrocast-abuse.XXXXXX)
log() { echo "node_abuse: $*" >&2; }

ulimit -n 65536 2>/dev/null || log "warning: cannot raise the open-file limit ($(ulimit -n))"
[ "${SKIP_BUILD:-0}" = 1 ] || cargo build --release -p ferrocast >&2
command -v ffmpeg >/dev/null || { log "ffmpeg is needed"; exit 1; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
RTMP=$(free_port); HTTP=$(free_port); API=$(free_port)
cleanup() { kill "${PIDS[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$WORK"; }
PIDS=()
trap cleanup EXIT

taskset -c 0 "$NODE" node --rtmp "127.0.0.1:$RTMP" --http "127.0.0.1:$HTTP" --api "127.0.0.1:$API" \
  $NODE_ARGS >"$WORK/node.log" 2>&1 &
NODE_PID=$!; PIDS+=("$NODE_PID")
sleep 1
taskset -c 1 ffmpeg -hide_banner -loglevel error -re -stream_loop -1 -i fixtures/demo.flv -c copy -f flv \
  "rtmp://127.0.0.1:$RTMP/live/demo" &
PIDS+=($!)
sleep 3

taskset -c 1 python3 - "$RTMP" "$HTTP" "$NODE_PID" "$HALF_OPEN" "$NON_READERS" "$DURATION" "$PROBES" \
  "${ATTACK_ADDRS:-0}" >"$WORK/report.md" <<'PY'
import asyncio, statistics, sys, time

rtmp, http, pid, half_open, non_readers, duration, probes, addrs = map(int, sys.argv[1:])

def rss_mib():
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0

def source(i, per_addr, base):
    return (f"127.0.0.{base + i // per_addr}", 0)

async def half_opener(i, stop, n_addrs, reopened):
    per = max(1, -(-half_open // n_addrs))
    while not stop.is_set():
        try:
            r, w = await asyncio.open_connection("127.0.0.1", rtmp, local_addr=source(i, per, 2))
            w.write(b"\x03" + b"\x00" * 100)   # C0 and the start of C1, never the rest
            await w.drain()
            await r.read(1)                    # returns when the node cuts the connection
            w.close()
            reopened[0] += 1
        except OSError:
            await asyncio.sleep(0.2)

async def non_reader(i, held):
    per = 250
    try:
        r, w = await asyncio.open_connection("127.0.0.1", http, local_addr=source(i, per, 100))
        w.write(b"GET /live/demo.flv HTTP/1.1\r\nHost: x\r\n\r\n")
        await w.drain()
        held.append((r, w))                    # never read
    except OSError:
        pass

async def first_video_frame():
    start = time.monotonic()
    r, w = await asyncio.open_connection("127.0.0.1", http)
    w.write(b"GET /live/demo.flv HTTP/1.1\r\nHost: x\r\n\r\n")
    await w.drain()
    head = await r.readuntil(b"\r\n\r\n")
    assert b" 200 " in head.split(b"\r\n")[0], head
    buf = b""
    async def more():
        nonlocal buf
        # chunked transfer: read raw bytes, the FLV tags are inside the chunk payloads
        data = await r.read(65536)
        if not data:
            raise EOFError
        buf += data
    # Strip chunk framing lazily: look for an FLV video tag (type 9) after the 13-byte header.
    while True:
        await more()
        body = dechunk(buf)
        if body is None or len(body) < 13:
            continue
        pos = 13
        while pos + 11 <= len(body):
            size = int.from_bytes(body[pos + 1:pos + 4], "big")
            if body[pos] == 9 and pos + 11 + size <= len(body):
                w.close()
                return time.monotonic() - start
            pos += 11 + size + 4
        if len(buf) > 64 << 20:
            raise RuntimeError("no video tag")

def dechunk(raw):
    out, pos = b"", 0
    while True:
        end = raw.find(b"\r\n", pos)
        if end < 0:
            return out
        size = int(raw[pos:end].split(b";")[0] or b"0", 16)
        if size == 0 or end + 2 + size > len(raw):
            return out + raw[end + 2:end + 2 + size]
        out += raw[end + 2:end + 2 + size]
        pos = end + 2 + size + 2

async def main():
    n_addrs = addrs or max(1, -(-half_open // 250))
    stop, reopened, held = asyncio.Event(), [0], []
    base_rss = rss_mib()
    attackers = [asyncio.create_task(half_opener(i, stop, n_addrs, reopened)) for i in range(half_open)]
    await asyncio.gather(*(non_reader(i, held) for i in range(non_readers)))
    await asyncio.sleep(5)
    times, rss = [], []
    for _ in range(probes):
        try:
            times.append(await asyncio.wait_for(first_video_frame(), 10))
        except Exception as e:
            times.append(float("inf"))
        rss.append(rss_mib())
        await asyncio.sleep(max(0.5, duration / probes))
    stop.set()
    for t in attackers:
        t.cancel()
    finite = sorted(t for t in times if t != float("inf"))
    print(f"## node_abuse: {half_open} half-open RTMP + {non_readers} non-reading HTTP-FLV ({time.strftime('%Y-%m-%d %H:%M')})\n")
    print(f"- attack addresses: {n_addrs}; non-readers connected: {len(held)}; half-open connections cut and re-opened: {reopened[0]}")
    if finite:
        print(f"- new player, connect to first video tag: median {statistics.median(finite)*1000:.0f} ms, "
              f"max {max(finite)*1000:.0f} ms, over 1 s: {sum(t > 1 for t in times)}/{len(times)}")
    print(f"- node RSS: {base_rss:.0f} MiB before, max {max(rss):.0f} MiB during the attack")

asyncio.run(main())
PY
cat "$WORK/report.md"
refused=$(grep -c "connection refused" "$WORK/node.log" || true)
echo "- 'connection refused' log lines: $refused" >>"$WORK/report.md"
{ echo; cat "$WORK/report.md"; } >>"$RESULTS"
log "appended to $RESULTS"
