#!/usr/bin/env bash
# The Python ranking pipeline baseline (issue 5): PyTorch tower + per-category faiss IVF-PQ +
# fresh/promoted candidates + exact re-score + rules, one thread; rankings/s, p50/p99, breakdown
# and overlap@50 with the exact reference lists, for T = world_now (fresh items) and T with no
# fresh item. One JSON line per world and scenario on stdout, also appended to
# data/bench/python-pipeline.jsonl.
#   scripts/bench-python-pipeline.sh [100k] [1m] [demo]     (default: 100k 1m)
# Env: USERS (1000), NUM_ITEMS (50), AT (now,nofresh), EXTRA (more bench_pipeline.py flags,
# e.g. "--k 8 --nprobe 8"). Faiss indexes and sampled states are cached in data/py-cache/.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
PY="$VENV_DIR/bin/python"
[ -x "$PY" ] || die "$PY not found: run scripts/install.sh first"
"$PY" -c "import faiss, torch" 2>/dev/null \
  || "$VENV_DIR/bin/pip" install -q -r "$FEEDRANK_ROOT/tools/requirements-bench.txt"
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
USERS="${USERS:-1000}"; NUM_ITEMS="${NUM_ITEMS:-50}"; AT="${AT:-now,nofresh}"
CACHE="$FEEDRANK_ROOT/data/py-cache"; OUT="$FEEDRANK_ROOT/data/bench"
mkdir -p "$CACHE" "$OUT"
worlds=("$@"); [ ${#worlds[@]} -gt 0 ] || worlds=(100k 1m)
for w in "${worlds[@]}"; do
  case "$w" in
    100k|1m) bundle="$FEEDRANK_ROOT/data/world-$w/bundle" ;;
    demo) die "demo/ has no users.jsonl: use 100k or 1m" ;;
    *) die "unknown world '$w' (expected 100k or 1m)" ;;
  esac
  [ -f "$bundle/manifest.json" ] || die "$bundle missing: run scripts/make-worlds.sh $w"
  log "python pipeline on world-$w: $USERS users, num_items $NUM_ITEMS, at $AT (load: $(cut -d' ' -f1-3 /proc/loadavg))"
  # shellcheck disable=SC2086
  "$PY" "$FEEDRANK_ROOT/tools/bench_pipeline.py" --bundle "$bundle" --users "$USERS" --num-items "$NUM_ITEMS" \
    --at "$AT" --index-cache "$CACHE/faiss" --states-cache "$CACHE/states-$w-$USERS.jsonl" ${EXTRA:-} \
    | tee -a "$OUT/python-pipeline.jsonl"
done
