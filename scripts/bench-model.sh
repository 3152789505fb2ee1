#!/usr/bin/env bash
# Issue 3's figures in one run, on the same bundle, one thread:
#   feedrank-bench model   (Swift: state update per event, features + user tower per user on
#                           sgemv, per 1000-user batch on sgemm)
#   tools/bench_tower.py   (the Python reference state update + PyTorch's own forward,
#                           torch.set_num_threads(1))
# and the ratios. Usage: scripts/bench-model.sh [BUNDLE_DIR]   (default demo/bundle)
# env: RUNS (3: each side runs RUNS times, alternating; medians of the runs are reported),
#      FEEDRANK_BENCH_BIN (skip the build).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$FEEDRANK_ROOT"
BUNDLE="${1:-demo/bundle}"; RUNS="${RUNS:-3}"
BENCH="${FEEDRANK_BENCH_BIN:-$FEEDRANK_ROOT/.build/release/feedrank-bench}"
if [ -z "${FEEDRANK_BENCH_BIN:-}" ]; then swift build -c release --product feedrank-bench >/dev/null; fi
PY="$VENV_DIR/bin/python"
[ -x "$PY" ] || die "$PY not found: run scripts/install.sh first"
OUT="$RUN_DIR/bench-model"; mkdir -p "$OUT"; rm -f "$OUT"/*.json
log "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores; load $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq 1 "$RUNS"); do
  log "run $r/$RUNS: feedrank-bench model --bundle $BUNDLE"
  OPENBLAS_NUM_THREADS=1 "$BENCH" model --bundle "$BUNDLE" --wall-clock | tail -1 > "$OUT/swift-$r.json"
  log "run $r/$RUNS: tools/bench_tower.py --bundle $BUNDLE (torch, 1 thread)"
  OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 "$PY" tools/bench_tower.py --bundle "$BUNDLE" | tail -1 > "$OUT/torch-$r.json"
done
"$PY" - "$OUT" "$RUNS" <<'PY'
import json, statistics, sys
out, runs = sys.argv[1], int(sys.argv[2])
sw = [json.load(open(f"{out}/swift-{r}.json")) for r in range(1, runs + 1)]
py = [json.load(open(f"{out}/torch-{r}.json")) for r in range(1, runs + 1)]
def med(rows, key):
    vals = [row[key] for row in rows if key in row]
    return statistics.median(vals) if vals else None
print("\nmedian of %d runs each (one thread, wall clock); ratio = pytorch / feedrank" % runs)
print("%-40s %14s %14s %8s" % ("figure", "feedrank", "pytorch", "ratio"))
pairs = [("state update per event (ns)", "state_update_ns_per_event", "state_update_ns_per_event"),
         ("features per user (µs)", "features_us_per_user", "features_us_per_user"),
         ("features + tower per user (µs)", "features_tower_us_per_user", "features_tower_us_per_user"),
         ("1000-user batch: features + tower (ms)", "batch1000_ms", "batch_total_ms"),
         ("1000-user batch: torch tower only (ms)", "batch1000_ms", "batch_tower_ms")]
for label, ks, kp in pairs:
    a, b = med(sw, ks), med(py, kp)
    if a is None or b is None:
        print("%-40s %14s %14s" % (label, a, b)); continue
    print("%-40s %14.3f %14.3f %7.1fx" % (label, a, b, b / a))
PY
