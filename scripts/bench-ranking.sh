#!/usr/bin/env bash
# Issue 5's figures in one run: in-process ranking (one thread, num_items 50) at 100,000 and
# 1,000,000 items -- rankings/s, p50/p99, breakdown, overlap@50 with the exact lists, at
# T = world_now (some items fresh) and T + 2 days (none fresh) -- for feedrank-bench ranking and
# for the Python pipeline (PyTorch + faiss-cpu, scripts/bench-python-pipeline.sh).
#   scripts/bench-ranking.sh [100k] [1m]      env: USERS (1000) RANKINGS (5000) PYTHON=0 to skip Python
#   OVERLAP=0 skips the overlap with the exact lists on both sides (the exact lists at 1M are most
#   of the run's ~45 minutes; the timed part does not depend on them).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$FEEDRANK_ROOT"
USERS="${USERS:-1000}"; RANKINGS="${RANKINGS:-5000}"; OVERLAP="${OVERLAP:-$USERS}"
OUT="$FEEDRANK_ROOT/data/bench"; CACHE="$FEEDRANK_ROOT/data/bench-cache"; mkdir -p "$OUT" "$CACHE"
BENCH="${FEEDRANK_BENCH_BIN:-$FEEDRANK_ROOT/.build/release/feedrank-bench}"
BIN="${FEEDRANK_BIN:-$FEEDRANK_ROOT/.build/release/feedrank}"
if [ -z "${FEEDRANK_BENCH_BIN:-}" ]; then swift build -c release --product feedrank-bench >/dev/null; fi
if [ -z "${FEEDRANK_BIN:-}" ]; then swift build -c release --product feedrank >/dev/null; fi
worlds=("$@"); [ ${#worlds[@]} -gt 0 ] || worlds=(100k 1m)
WORLD_NOW=1795700000000
for w in "${worlds[@]}"; do
  world="$FEEDRANK_ROOT/data/world-$w"
  [ -f "$world/bundle/manifest.json" ] || die "$world missing: run scripts/make-worlds.sh $w"
  # ".ordered": indexes since 2026-11-28 have their lists ordered along the residuals' principal
  # axis, which the ranking's scans use; an older cached ".eligible" file still works but scans
  # whole lists, so it is not reused here.
  index="$CACHE/world-$w.ordered.ivfpq"
  [ -f "$index" ] || { log "building the serving index of world-$w (cached in $index)"; "$BIN" index build --bundle "$world/bundle" --out "$index"; }
  log "feedrank ranking on world-$w: $USERS users, $RANKINGS timed rankings (load: $(cut -d' ' -f1-3 /proc/loadavg))"
  "$BENCH" ranking --bundle "$world/bundle" --events "$world/events.jsonl" --index "$index" --users "$USERS" \
    --at "$WORLD_NOW" --later-days 2 --rankings "$RANKINGS" --overlap-users "$OVERLAP" --json "$OUT/swift-ranking-$w.json"
  if [ "${PYTHON:-1}" = 1 ]; then
    extra="${EXTRA:-}"; [ "$OVERLAP" != 0 ] || extra="$extra --no-exact"
    USERS="$USERS" EXTRA="$extra" "$FEEDRANK_ROOT/scripts/bench-python-pipeline.sh" "$w"
  fi
done
