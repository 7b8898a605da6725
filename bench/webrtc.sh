#!/usr/bin/env bash
# WebRTC (WHEP) viewers per core: publisher → origin → edge → WHEP viewers, each a real WebRTC
# session (ICE, DTLS, SRTP, H.264 and Opus) from ferrocast-loadgen, with the edge (and origin)
# pinned to CPU 0. For each viewer count it records how many viewers got at least 99% of the video
# frames (and the fewest any got), the delivery latency per video frame through origin and edge
# (the method of bench/latency.sh: FFmpeg's tee muxer gives the load generator a reference copy),
# and the edge's CPU and RSS. Results are appended to bench/RESULTS.md with the commands.
#
# Run by hand on an idle 2-core machine, not in CI:
#
#   bench/webrtc.sh                         # 100, 500 and 1000 viewers, 30 s each
#   PLAYERS="500" DURATION=60 bench/webrtc.sh
#
# The environment is bench/latency.sh's (PLAYERS, DURATION, RAMP, NODE_ARGS, RESULTS, SKIP_BUILD).
set -euo pipefail
cd "$(dirname "$0")/.."
PROTO=whep PLAYERS=${PLAYERS:-"100 500 1000"} RAMP=${RAMP:-100} exec bash bench/latency.sh
