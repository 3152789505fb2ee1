#!/usr/bin/env bash
# Regenerates demo/ (the committed demo world) deterministically: a synthetic world of 20,000
# items and 4,000 users, the two-tower model trained on it in PyTorch (one thread, seeded),
# calibrated, exported as demo/bundle, with demo/events.jsonl, demo/model/item_tower.safetensors,
# demo/report.json and demo/README.md (the training report). The full event stream and the users
# go to data/demo-world/ (not committed). A few minutes on one core.
#   scripts/make-demo.sh [extra tools/train.py flags]
set -euo pipefail
. "$(dirname "$0")/lib.sh"

PY="$VENV_DIR/bin/python"
[ -x "$PY" ] || die "$PY not found: run scripts/install.sh first"
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
log "training the demo model (tools/train.py --out demo)"
"$PY" "$FEEDRANK_ROOT/tools/train.py" --out "$FEEDRANK_ROOT/demo" \
  --world-dir "$FEEDRANK_ROOT/data/demo-world" "$@"
log "demo/ regenerated: $(du -sh "$FEEDRANK_ROOT/demo" | cut -f1)"
