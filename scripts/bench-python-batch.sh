#!/usr/bin/env bash
# The seed-style Python batch job (issue 7): every active user's feed into L1 (Redis), batches
# of 1000, PyTorch + faiss-cpu, one thread. One JSON line per world on stdout, also appended to
# data/bench/python-batch.jsonl.
#   scripts/bench-python-batch.sh [100k] [1m]      (default: 100k 1m)
# Env: LIMIT (0 = all active users), BATCH_SIZE (1000), REDIS_DB (15: keeps the benchmark's
# rankings:user:* keys apart from other users of the local Redis).
# Starts Redis (scripts/services.sh) only if it is down, and then stops only what it started.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
PY="$VENV_DIR/bin/python"
[ -x "$PY" ] || die "$PY not found: run scripts/install.sh first"
"$PY" -c "import faiss, torch, redis" 2>/dev/null \
  || "$VENV_DIR/bin/pip" install -q -r "$FEEDRANK_ROOT/tools/requirements-bench.txt"
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
LIMIT="${LIMIT:-0}"; BATCH_SIZE="${BATCH_SIZE:-1000}"; REDIS_DB="${REDIS_DB:-15}"
CACHE="$FEEDRANK_ROOT/data/py-cache"; OUT="$FEEDRANK_ROOT/data/bench"
mkdir -p "$CACHE" "$OUT"
# Services: start the missing ones, and at exit stop (by PID) only the ones this script started.
svc_started=()
for s in kafka redis; do
  f="$RUN_DIR/$([ $s = kafka ] && echo tansu || echo redis).pid"
  { [ -f "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null; } || svc_started+=("$f")
done
if [ ${#svc_started[@]} -gt 0 ]; then "$FEEDRANK_ROOT/scripts/services.sh" up; fi
cleanup() {
  for f in "${svc_started[@]}"; do
    [ -f "$f" ] && { kill "$(cat "$f")" 2>/dev/null || true; rm -f "$f"; log "stopped $(basename "$f" .pid)"; }
  done
}
trap cleanup EXIT
worlds=("$@"); [ ${#worlds[@]} -gt 0 ] || worlds=(100k 1m)
for w in "${worlds[@]}"; do
  case "$w" in 100k|1m) ;; *) die "unknown world '$w' (expected 100k or 1m)" ;; esac
  bundle="$FEEDRANK_ROOT/data/world-$w/bundle"
  [ -f "$bundle/manifest.json" ] || die "$bundle missing: run scripts/make-worlds.sh $w"
  log "python batch job on world-$w (load: $(cut -d' ' -f1-3 /proc/loadavg))"
  "$PY" "$FEEDRANK_ROOT/tools/batch_baseline.py" --bundle "$bundle" --batch-size "$BATCH_SIZE" \
    --redis "redis://127.0.0.1:$REDIS_PORT/$REDIS_DB" --limit "$LIMIT" \
    --index-cache "$CACHE/faiss" --states-cache "$CACHE/states-$w-all.jsonl" \
    | tee -a "$OUT/python-batch.jsonl"
done
