#!/usr/bin/env bash
# The IVF-PQ comparison of issue 4, in ONE run on the same files:
#   feedrank index bench (pure Swift)  vs  faiss-cpu IndexIVFPQ + IndexRefineFlat and
#   IndexIVFPQFastScan + IndexRefineFlat (same nlist, one thread), then a combined table.
#
#   scripts/bench-index.sh                      # data/synth-1m, nlist 4096, refine 4
#   NLIST=1024 REFINE=8 NPROBE=8,16,32 scripts/bench-index.sh
#   DATA=/path/with/base+queries+gt scripts/bench-index.sh
#   FEEDRANK_BIN=path/to/feedrank scripts/bench-index.sh   # skip the build
#
# Generates data/synth-1m with tools/gen_synthetic.py when missing, installs
# tools/requirements-bench.txt (faiss-cpu) into .venv, builds feedrank in release mode.
# Results: .run/bench-index/{feedrank,faiss}.json and the combined table on stdout.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$FEEDRANK_ROOT"

DATA="${DATA:-data/synth-1m}"
NLIST="${NLIST:-4096}"
NPROBE="${NPROBE:-1,4,8,16,32,64}"
REFINE="${REFINE:-4}"
REPEAT="${REPEAT:-3}"
FEEDRANK_CODES="${FEEDRANK_CODES:---m 64 --bits 4}"   # flags for feedrank index bench
FAISS_CODES="${FAISS_CODES:-PQ16x8,PQ64x4fs}"         # faiss factory suffixes
TRAIN_SAMPLE="${TRAIN_SAMPLE:-$((64 * NLIST))}"
SCRATCH="${SCRATCH:-.build-index}"
OUT="$RUN_DIR/bench-index"
mkdir -p "$OUT"

[ -x "$VENV_DIR/bin/python" ] || die "no venv at $VENV_DIR: run scripts/install.sh first"
"$VENV_DIR/bin/python" -c 'import faiss' 2>/dev/null || {
  log "installing tools/requirements-bench.txt (faiss-cpu) into $VENV_DIR"
  "$VENV_DIR/bin/pip" install -q -r tools/requirements-bench.txt
}
if [ ! -f "$DATA/gt.ivecs" ]; then
  [ "$DATA" = "data/synth-1m" ] || die "$DATA/gt.ivecs not found"
  log "generating $DATA (1,000,000 x 64, about 2 minutes)"
  "$VENV_DIR/bin/python" tools/gen_synthetic.py --out "$DATA"
fi

if [ -n "${FEEDRANK_BIN:-}" ]; then
  BIN="$FEEDRANK_BIN"     # a prebuilt feedrank (or any binary with the `index bench` subcommand)
else
  log "building feedrank (release)"
  swift build -c release --scratch-path "$SCRATCH" --product feedrank >/dev/null
  BIN="$SCRATCH/release/feedrank"
fi

log "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; $(swift --version 2>/dev/null | head -1)"
log "feedrank index bench"
# shellcheck disable=SC2086
"$BIN" index bench --base "$DATA/base.fvecs" --queries "$DATA/queries.fvecs" --ground-truth "$DATA/gt.ivecs" \
  --nlist "$NLIST" $FEEDRANK_CODES --nprobe "$NPROBE" --refine "$REFINE" --threads 1 \
  --train-sample "$TRAIN_SAMPLE" --repeat "$REPEAT" --json "$OUT/feedrank.json"

log "faiss-cpu ($FAISS_CODES)"
"$VENV_DIR/bin/python" tools/bench_faiss.py --base "$DATA/base.fvecs" --queries "$DATA/queries.fvecs" \
  --ground-truth "$DATA/gt.ivecs" --nlist "$NLIST" --codes "$FAISS_CODES" --nprobe "$NPROBE" \
  --refine "$REFINE" --train-sample "$TRAIN_SAMPLE" --repeat "$REPEAT" --json "$OUT/faiss.json"

"$VENV_DIR/bin/python" - "$OUT/feedrank.json" "$OUT/faiss.json" <<'PY'
import json, sys
configs = []
for path in sys.argv[1:]:
    configs += json.load(open(path))["configs"]
print()
print(f"{'engine':<44} {'nprobe':>6} {'R@10':>7} {'R@100':>7} {'1-query q/s':>12} {'batch q/s':>10}")
for c in configs:
    for r in c["rows"]:
        print(f"{c['name']:<44} {r['nprobe']:>6} {r['recall10']:>7.4f} {r['recall100']:>7.4f} "
              f"{r['qps_single']:>12.0f} {r['qps_batch']:>10.0f}")
print()
print(f"{'engine':<44} {'train s':>8} {'add s':>7} {'codes MiB':>10}")
for c in configs:
    print(f"{c['name']:<44} {c['train_s']:>8.1f} {c['add_s']:>7.1f} {c['code_bytes'] / 2**20:>10.1f}")
print()
print("best single-thread q/s at recall@10 >= 0.95:")
for c in configs:
    ok = [r for r in c["rows"] if r["recall10"] >= 0.95]
    if ok:
        print(f"  {c['name']:<44} one query/call {max(r['qps_single'] for r in ok):>8.0f}   batch {max(r['qps_batch'] for r in ok):>8.0f}")
    else:
        print(f"  {c['name']:<44} never reaches 0.95 at these nprobe values")
PY
