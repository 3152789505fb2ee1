#!/usr/bin/env bash
# Issue 7's figures and checks in ONE run on the 1M-item world (data/world-1m):
#   1. replay: the first 1,000,000 events of data/world-1m/events.jsonl into a fresh
#      user-activity topic, `feedrank replay --from earliest` -> events/s (states of ~20k users);
#   2. batch: `feedrank batch` over those users on $THREADS threads -> users/s, and the seed-style
#      Python job (tools/batch_baseline.py: PyTorch + faiss-cpu, batch 1000, one thread) on the
#      same world, T and user count in the same run -> users/s, ratio;
#   3. over 100,000 users (the states cloned x7 under new ids): batch SIGKILLed at ~40%, rerun (it
#      resumes after its checkpoint), then `feedrank batch --verify` checks EVERY L1 entry against
#      contract section 3 and the 24 h TTL.
#
#   scripts/bench-batch.sh
#   EVENTS=200000 PY_LIMIT=2000 scripts/bench-batch.sh      # a quicker run
#   FEEDRANK_BIN=... FEEDRANK_BENCH_BIN=... scripts/bench-batch.sh   # skip the build
#
# Env: EVENTS (1000000), THREADS (2), CLONES (6: the ~14,700 replayed users x7 > 100,000), PY_LIMIT (0: as many users as
# feedrank ranked), REDIS_DB (15, keys under a per-run prefix), SCRATCH (.build-batch-release).
# Starts the broker/Redis only if down and stops only what it started. Uses unique topic names
# and Redis key prefixes per run (Tansu keeps topics in memory until it stops).
# Results: .run/bench-batch/<run>/ (logs, summaries) and a summary on stdout.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$FEEDRANK_ROOT"

EVENTS="${EVENTS:-1000000}"; THREADS="${THREADS:-2}"; CLONES="${CLONES:-6}"
PY_LIMIT="${PY_LIMIT:-0}"; REDIS_DB="${REDIS_DB:-15}"; SCRATCH="${SCRATCH:-.build-batch-release}"
WORLD=data/world-1m
RUN="bb$(date +%s)"
OUT="$RUN_DIR/bench-batch/$RUN"
mkdir -p "$OUT"
BROKERS="127.0.0.1:$KAFKA_PORT"
REDIS="redis://127.0.0.1:$REDIS_PORT/$REDIS_DB"
PY="$VENV_DIR/bin/python"
[ -x "$PY" ] || die "$PY not found: run scripts/install.sh first"
"$PY" -c "import faiss, torch, redis" 2>/dev/null || "$VENV_DIR/bin/pip" install -q -r tools/requirements-bench.txt
[ -f "$WORLD/bundle/manifest.json" ] || "$FEEDRANK_ROOT/scripts/make-worlds.sh" 1m

# Services: start the missing ones; at exit stop (by PID) only those.
start_missing_services
batch_pid=""
cleanup() {
  [ -z "$batch_pid" ] || kill "$batch_pid" 2>/dev/null || true
  stop_started_services
}
trap cleanup EXIT

release_bins "$SCRATCH"
load() { cut -d' ' -f1-3 /proc/loadavg; }
log "run $RUN: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores, load $(load)"

# Topics of this run (as declared in topics/), and the settings every feedrank command shares.
P="bench-$RUN."
"$BIN" topics apply --dir topics --brokers "$BROKERS" --prefix "$P" --replication-factor 1 >"$OUT/topics.log" 2>&1
WORLD_NOW=$("$PY" -c "import json; print(json.load(open('$WORLD/world.json'))['world_now'])")
common=(--bundle "$WORLD/bundle" --brokers "$BROKERS" --redis "$REDIS" --kafka fetch.wait.max.ms=10
        --activity-topic "${P}user-activity" --state-topic "${P}user-state" --responses-topic "${P}ranking-responses"
        --dlq-topic "${P}ranking-dlq" --log-format json --log-level warning)

log "building the ranking index once ($WORLD, as serve builds it)"
"$BENCH" batch build-index --bundle "$WORLD/bundle" --out "$OUT/index.ivfpq" | tee "$OUT/index.log" >&2

# 1. Replay.
log "producing the first $EVENTS events of $WORLD/events.jsonl (record time = event ts)"
"$BENCH" batch produce-events --brokers "$BROKERS" --topic "${P}user-activity" --events "$WORLD/events.jsonl" \
  --limit "$EVENTS" | tee "$OUT/produce.log" >&2
log "feedrank replay --from earliest (load $(load))"
"$BIN" replay "${common[@]}" --index "$OUT/index.ivfpq" --from earliest --key-prefix "$RUN:" \
  2>"$OUT/replay.err" | tee "$OUT/replay.txt" >&2
REPLAY_RATE=$(sed -n 's/.*records read .*(\([0-9]*\) records\/s).*/\1/p' "$OUT/replay.txt")
USERS=$(sed -n 's/^users \([0-9]*\):.*/\1/p' "$OUT/replay.txt")

# 2. Batch over the replayed users, then the Python job on as many users of the same world.
log "feedrank batch over $USERS users, $THREADS threads (load $(load))"
"$BIN" batch "${common[@]}" --index "$OUT/index.ivfpq" --key-prefix "$RUN:a:" --at "$WORLD_NOW" \
  --threads "$THREADS" --batch-size 1000 --checkpoint "$OUT/a.checkpoint" 2>"$OUT/batch-a.err" | tee "$OUT/batch-a.txt" >&2
SWIFT_RATE=$(sed -n 's/.*thread(s): \([0-9]*\) users\/s.*/\1/p' "$OUT/batch-a.txt")
RANKED=$(sed -n 's/.*ranked \([0-9]*\) in .*/\1/p' "$OUT/batch-a.txt")
PY_USERS=$([ "$PY_LIMIT" -gt 0 ] && echo "$PY_LIMIT" || echo "$RANKED")
log "python batch job (tools/batch_baseline.py, 1 thread) on $PY_USERS users (load $(load))"
OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 "$PY" tools/batch_baseline.py --bundle "$WORLD/bundle" \
  --batch-size 1000 --redis "$REDIS" --key-prefix "$RUN:py:" --at "$WORLD_NOW" --limit "$PY_USERS" \
  --index-cache data/py-cache/faiss --states-cache data/py-cache/states-1m-all.jsonl \
  2>"$OUT/python.err" | tee "$OUT/python.json" >&2
PY_RATE=$("$PY" -c "import json,sys; print(json.loads(open('$OUT/python.json').read().strip().splitlines()[-1])['users_per_s'])")

# 3. 100,000 users: clone, kill midway, resume, verify every entry.
log "cloning the states x$CLONES under new ids"
"$BENCH" batch clone-states --brokers "$BROKERS" --topic "${P}user-state" --bundle "$WORLD/bundle" --copies "$CLONES" \
  | tee "$OUT/clone.log" >&2
log "feedrank batch over all users; SIGKILL at ~40% (load $(load))"
"$BIN" batch "${common[@]}" --index "$OUT/index.ivfpq" --key-prefix "$RUN:b:" --at "$WORLD_NOW" \
  --threads "$THREADS" --checkpoint "$OUT/b.checkpoint" >"$OUT/batch-b1.txt" 2>"$OUT/batch-b1.err" &
batch_pid=$!
killed_at=""
while kill -0 "$batch_pid" 2>/dev/null; do
  if [ -f "$OUT/b.checkpoint" ]; then
    read -r done total < <("$PY" -c "import json; c=json.load(open('$OUT/b.checkpoint')); print(c['done_users'], c['total_users'])" 2>/dev/null || echo "0 1")
    if [ "$total" -gt 0 ] && [ $((done * 10)) -ge $((total * 4)) ]; then
      kill -9 "$batch_pid"; killed_at="$done/$total"; break
    fi
  fi
  sleep 0.5
done
wait "$batch_pid" 2>/dev/null || true
batch_pid=""
[ -n "$killed_at" ] || die "batch finished before it could be killed (see $OUT/batch-b1.*)"
log "killed with $killed_at users checkpointed; rerunning (load $(load))"
"$BIN" batch "${common[@]}" --index "$OUT/index.ivfpq" --key-prefix "$RUN:b:" \
  --threads "$THREADS" --checkpoint "$OUT/b.checkpoint" 2>"$OUT/batch-b2.err" | tee "$OUT/batch-b2.txt" >&2
log "feedrank batch --verify: every L1 entry (load $(load))"
"$BIN" batch "${common[@]}" --index "$OUT/index.ivfpq" --key-prefix "$RUN:b:" --checkpoint "$OUT/b.checkpoint" --verify \
  2>"$OUT/verify.err" | tee "$OUT/verify.txt" >&2

RATIO=$("$PY" -c "print(round($SWIFT_RATE / $PY_RATE, 1))")
cat <<EOF

== bench-batch $RUN ($(date -u +%FT%TZ), $(nproc) cores, load now $(load)) ==
replay:  $(sed -n 1p "$OUT/replay.txt")
         $(sed -n 2p "$OUT/replay.txt")
batch:   feedrank $SWIFT_RATE users/s ($RANKED users, 1M items, $THREADS threads)
         python   $PY_RATE users/s ($PY_USERS users, 1M items, 1 thread: PyTorch + faiss-cpu)  -> ${RATIO}x
100k:    killed at $killed_at; rerun: $(sed -n 2p "$OUT/batch-b2.txt")
verify:  $(sed -n 1p "$OUT/verify.txt")
files:   $OUT
EOF
