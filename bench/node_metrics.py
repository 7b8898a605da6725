#!/usr/bin/env python3
"""Reads two scrapes of a node's /metrics, taken SECONDS apart, for the benchmark scripts.

    python3 bench/node_metrics.py BEFORE AFTER SECONDS

Prints one line: the p50/p95 of ferrocast_node_frame_wait_seconds between the scrapes (as the
histogram's bucket bounds, e.g. "<=100/<=250"; "n/a" without frames), player writes per second,
and the merge window in ms at the second scrape.
"""
import re
import sys


def read(path):
    buckets, writes, window = {}, 0.0, None
    try:
        for line in open(path):
            m = re.match(r'ferrocast_node_frame_wait_seconds_bucket\{le="([^"]+)"\} (\S+)', line)
            if m:
                buckets[float("inf") if m.group(1) == "+Inf" else float(m.group(1))] = float(m.group(2))
            elif line.startswith("ferrocast_node_player_writes_total"):
                writes += float(line.split()[-1])
            elif line.startswith("ferrocast_node_merge_window_seconds "):
                window = float(line.split()[1]) * 1000
    except OSError:
        pass
    return buckets, writes, window


(b0, w0, _), (b1, w1, window) = read(sys.argv[1]), read(sys.argv[2])
secs = float(sys.argv[3])
delta = sorted((le, b1.get(le, 0) - b0.get(le, 0)) for le in b1)
total = delta[-1][1] if delta else 0


def quantile(f):
    for le, n in delta:
        if total and n >= f * total:
            return "<=%g" % (le * 1000) if le != float("inf") else ">max"
    return "n/a"


rate = round((w1 - w0) / secs) if secs > 0 else "n/a"
print("%s/%s %s %s" % (quantile(0.5), quantile(0.95), rate, "n/a" if window is None else "%g" % window))
