#!/usr/bin/env bash
# Generates the larger benchmark worlds into data/ (ignored by git), embedded by the demo's
# trained item tower and served by the demo's user tower (same model, same world seed):
#   data/world-100k/{bundle/, events.jsonl, users.jsonl, world.json}   100,000 items, 10,000 users
#   data/world-1m/{bundle/, events.jsonl, users.jsonl, world.json}   1,000,000 items, 20,000 users
# Deterministic. Needs demo/ (scripts/make-demo.sh). Skips a world whose bundle already exists
# unless --force.
#   scripts/make-worlds.sh [--force] [100k|1m ...]
set -euo pipefail
. "$(dirname "$0")/lib.sh"

PY="$VENV_DIR/bin/python"
[ -x "$PY" ] || die "$PY not found: run scripts/install.sh first"
DEMO="$FEEDRANK_ROOT/demo"
[ -f "$DEMO/model/item_tower.safetensors" ] && [ -f "$DEMO/bundle/manifest.json" ] \
  || die "demo/model/item_tower.safetensors or demo/bundle missing: run scripts/make-demo.sh"
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1

force=0
worlds=()
for a in "$@"; do
  case "$a" in
    --force) force=1 ;;
    100k|1m) worlds+=("$a") ;;
    *) die "unknown argument '$a' (expected --force, 100k or 1m)" ;;
  esac
done
[ ${#worlds[@]} -gt 0 ] || worlds=(100k 1m)

for w in "${worlds[@]}"; do
  case "$w" in
    100k) items=100000; users=10000 ;;
    1m) items=1000000; users=20000 ;;
  esac
  out="$FEEDRANK_ROOT/data/world-$w"
  if [ "$force" = 0 ] && [ -f "$out/bundle/manifest.json" ] && [ -f "$out/events.jsonl" ]; then
    log "data/world-$w exists (use --force to regenerate)"
    continue
  fi
  log "generating data/world-$w: $items items, $users users"
  "$PY" "$FEEDRANK_ROOT/tools/world.py" --items "$items" --users "$users" --seed 1 --out "$out" \
    --item-tower "$DEMO/model/item_tower.safetensors" --user-bundle "$DEMO/bundle"
  log "data/world-$w: $(du -sh "$out" | cut -f1)"
done
