#!/usr/bin/env bash
# Runs the fuzzing campaign: every target for RUNS executions (default 10 million), one after the
# other, starting from the committed seeds and a corpus kept in fuzz/corpus/ between runs. Builds
# with overflow checks on (as the release profile runs in production) and no sanitizer (the
# project's code has no unsafe). Prints one summary line per target and appends it to
# fuzz/campaign.log; a crash input lands in fuzz/artifacts/<target>/ and stops that target.
#
# Usage: fuzz/campaign.sh [RUNS] [TARGET...]      (needs: cargo install cargo-fuzz; nightly)
set -uo pipefail
cd "$(dirname "$0")"
runs=${1:-10000000}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(cargo +nightly fuzz list)
cargo +nightly fuzz build -O -a -s none >/dev/null 2>&1 || { echo "build failed: cargo +nightly fuzz build -O -a -s none" >&2; exit 1; }
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t" "seeds/$t"
  log=$(mktemp)
  start=$(date +%s)
  # -max_len: big enough for multi-NAL configs and whole RTMP conversations.
  cargo +nightly fuzz run -O -a -s none "$t" "corpus/$t" "seeds/$t" -- \
    -runs="$runs" -max_len=65536 -print_final_stats=1 >"$log" 2>&1
  rc=$?
  took=$(( $(date +%s) - start ))
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || true)
  cov=$(grep -oE 'DONE\s+cov: [0-9]+ ft: [0-9]+ corp: [0-9]+/[0-9]+[a-zA-Z]*' "$log" | tail -1 | sed 's/DONE\s*//')
  crash=$(grep -oE 'Test unit written to [^ ]+' "$log" | head -1)
  line="$(date -u +%F) $t runs=${execs:-?} seconds=$took exit=$rc ${cov:-} ${crash:-no crash}"
  echo "$line" | tee -a campaign.log
  [ $rc -eq 0 ] || tail -40 "$log" >&2
  rm -f "$log"
done
