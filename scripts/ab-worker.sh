#!/usr/bin/env bash
# Interleaved A/B of two feedrank binaries on the activity flood of bench-worker.sh (no Python
# worker): ROUNDS rounds of "A then B", each a fresh `bench-worker.sh` run, printing per run the
# activity events/s and the CPU seconds the worker and the broker spent in the flood's phase (the
# flood and its 2 s settle; from /proc), so a change is judged by its CPU as well as by the
# throughput, which moves by +-10 % from run to run on a shared 2-core VM.
#   scripts/ab-worker.sh BIN_A BIN_B [ROUNDS]    env: ACTIVITY (400000), WORLD (100k), and any
#                                                bench-worker.sh / FEEDRANK_* setting
# Loopback only; every run is bounded by bench-worker.sh's own timeouts.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$FEEDRANK_ROOT"
[ $# -ge 2 ] || die "usage: scripts/ab-worker.sh BIN_A BIN_B [ROUNDS]"
a="$(realpath "$1")"; b="$(realpath "$2")"; rounds="${3:-3}"
for bin in "$a" "$b"; do [ -x "$bin" ] || die "$bin is not an executable"; done
[ "$a" != "$b" ] || die "BIN_A and BIN_B are the same file"
ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
hz=$(getconf CLK_TCK)
out="$(mktemp)"; trap 'rm -f "$out"' EXIT
for r in $(seq 1 "$rounds"); do
  for bin in "$a" "$b"; do
    : >"$out"
    FEEDRANK_BIN="$bin" PYTHON=0 ACTIVITY="${ACTIVITY:-400000}" REQUESTS="${REQUESTS:-300}" PACED="${PACED:-20}" \
      scripts/bench-worker.sh "${WORLD:-100k}" >"$out" 2>&1 &
    bench=$!
    until grep -q "phase 2" "$out" || ! kill -0 "$bench" 2>/dev/null; do sleep 0.05; done
    worker=$(pgrep -f "^$bin serve" | head -1 || true)
    broker=$(cat "$RUN_DIR/tansu.pid" 2>/dev/null || true)
    w0=$(ticks "${worker:-0}"); k0=$(ticks "${broker:-0}")
    until grep -q "phase 3" "$out" || ! kill -0 "$bench" 2>/dev/null; do sleep 0.05; done
    w1=$(ticks "${worker:-0}"); k1=$(ticks "${broker:-0}")
    wait "$bench" || { tail -5 "$out" >&2; die "bench-worker.sh failed with $bin"; }
    rate=$(grep -o '"worker_events_per_s": [0-9.]*' "$out" | grep -o '[0-9.]*$' || echo "?")
    awk -v t="$(date +%T)" -v r="$r" -v n="$(basename "$bin")" -v rate="$rate" -v w=$((w1 - w0)) -v k=$((k1 - k0)) -v hz="$hz" \
      'BEGIN { printf "%s round %d %-28s activity %9s events/s  worker %5.2f s  broker %5.2f s CPU\n", t, r, n, rate, w / hz, k / hz }'
  done
done
