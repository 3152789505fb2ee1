#!/usr/bin/env bash
# The Python stream worker baseline (issue 6) through the local broker, and the broker's own
# limit, in one run. Every phase is bounded in count and time; loopback only.
#   scripts/bench-python-worker.sh [100k|1m]         (default: 100k)
# Phases (each prints one JSON line; all are appended to data/bench/python-worker.jsonl):
#   1. broker: loadgen.py broker (confluent-kafka producer/consumer alone; paced round trip)
#   2. activity: ACTIVITY (50000) world events as fast as possible; the worker's throughput is
#      measured by its group's committed offsets
#   3. requests at full speed: REQUESTS (3000), every one ranked (context.fresh true)
#   4. requests paced at RATE (100)/s: PACED (3000) -- end-to-end p50/p99
#   5. the worker's own summary (SIGTERM)
# Env: PARTITIONS (4), REDIS_DB (15), MAX_SECONDS (1200, the worker's hard stop), PY_WORKER_ARGS
# (extra flags for tools/worker_baseline.py, e.g. "--kafka linger.ms=5"), LOADGEN_FLOOD (see
# bench-worker.sh).
# Topics are created per run (bench-<run>-*) and deleted at the end. Starts the local broker and
# Redis only if they are down, and then stops only what it started, by PID.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
PY="$VENV_DIR/bin/python"
[ -x "$PY" ] || die "$PY not found: run scripts/install.sh first"
"$PY" -c "import faiss, torch, redis, confluent_kafka" 2>/dev/null \
  || "$VENV_DIR/bin/pip" install -q -r "$FEEDRANK_ROOT/tools/requirements-bench.txt"
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
w="${1:-100k}"
case "$w" in 100k) users=10000 ;; 1m) users=20000 ;; *) die "unknown world '$w' (expected 100k or 1m)" ;; esac
WORLD="$FEEDRANK_ROOT/data/world-$w"
[ -f "$WORLD/bundle/manifest.json" ] || die "$WORLD missing: run scripts/make-worlds.sh $w"
PARTITIONS="${PARTITIONS:-4}"; REDIS_DB="${REDIS_DB:-15}"; MAX_SECONDS="${MAX_SECONDS:-1200}"
ACTIVITY="${ACTIVITY:-50000}"; REQUESTS="${REQUESTS:-3000}"; PACED="${PACED:-3000}"; RATE="${RATE:-100}"
CACHE="$FEEDRANK_ROOT/data/py-cache"; OUT="$FEEDRANK_ROOT/data/bench"; mkdir -p "$CACHE" "$OUT" "$RUN_DIR"
RUN="py$(date +%s)"
BROKERS="127.0.0.1:$KAFKA_PORT"
TOPICS=(--activity-topic "bench-$RUN-activity" --requests-topic "bench-$RUN-requests"
        --responses-topic "bench-$RUN-responses" --dlq-topic "bench-$RUN-dlq" --state-topic "bench-$RUN-state")
LG=("$PY" "$FEEDRANK_ROOT/tools/loadgen.py")

svc_started=()
for f in "$RUN_DIR/tansu.pid" "$RUN_DIR/redis.pid"; do
  { [ -f "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null; } || svc_started+=("$f")
done
if [ ${#svc_started[@]} -gt 0 ]; then "$FEEDRANK_ROOT/scripts/services.sh" up; fi
worker_pid=""
cleanup() {
  if [ -n "$worker_pid" ] && kill -0 "$worker_pid" 2>/dev/null; then kill "$worker_pid" 2>/dev/null || true; fi
  "${LG[@]}" topics --brokers "$BROKERS" "${TOPICS[@]}" --delete >/dev/null 2>&1 || true
  for f in "${svc_started[@]}"; do
    [ -f "$f" ] && { kill "$(cat "$f")" 2>/dev/null || true; rm -f "$f"; log "stopped $(basename "$f" .pid)"; }
  done
}
trap cleanup EXIT
emit() { tee -a "$OUT/python-worker.jsonl"; }

log "run $RUN on world-$w, $PARTITIONS partitions (load: $(cut -d' ' -f1-3 /proc/loadavg))"
"${LG[@]}" topics --brokers "$BROKERS" "${TOPICS[@]}" --partitions "$PARTITIONS" >/dev/null
log "phase 1: the broker's own limit"
"${LG[@]}" broker --brokers "$BROKERS" --messages 100000 --partitions "$PARTITIONS" --roundtrip 1000 --rate "$RATE" \
  --run-id "$RUN" | emit

ready="$RUN_DIR/$RUN.ready"
"$PY" "$FEEDRANK_ROOT/tools/worker_baseline.py" --bundle "$WORLD/bundle" --brokers "$BROKERS" "${TOPICS[@]}" \
  --group "bench-$RUN" --redis "redis://127.0.0.1:$REDIS_PORT/$REDIS_DB" --key-prefix "bench-$RUN:" \
  --index-cache "$CACHE/faiss" \
  --duration "$MAX_SECONDS" --ready-file "$ready" ${PY_WORKER_ARGS:-} >"$RUN_DIR/$RUN.worker.json" 2>"$RUN_DIR/$RUN.worker.log" &
worker_pid=$!
log "worker pid $worker_pid; waiting for its group assignment (bundle + indexes load first)"
for _ in $(seq 600); do
  [ -f "$ready" ] && break
  kill -0 "$worker_pid" 2>/dev/null || { tail -5 "$RUN_DIR/$RUN.worker.log" >&2; die "the worker exited"; }
  sleep 1
done
[ -f "$ready" ] || die "the worker did not join its group within 600 s (see $RUN_DIR/$RUN.worker.log)"

log "phase 2: $ACTIVITY activity events as fast as possible"
"${LG[@]}" worker --brokers "$BROKERS" "${TOPICS[@]}" --activity "$ACTIVITY" ${LOADGEN_FLOOD:-} --events "$WORLD/events.jsonl" \
  --group "bench-$RUN" --timeout 900 --settle 2 --run-id "$RUN-a" | emit
log "phase 3: $REQUESTS ranking requests as fast as possible"
"${LG[@]}" worker --brokers "$BROKERS" "${TOPICS[@]}" --requests "$REQUESTS" --rate 0 --users "1:$users" \
  --timeout 600 --run-id "$RUN-r" | emit
log "phase 4: $PACED ranking requests at $RATE/s"
"${LG[@]}" worker --brokers "$BROKERS" "${TOPICS[@]}" --requests "$PACED" --rate "$RATE" --users "1:$users" \
  --timeout 600 --run-id "$RUN-p" | emit

kill -TERM "$worker_pid"
for _ in $(seq 60); do kill -0 "$worker_pid" 2>/dev/null || break; sleep 1; done
wait "$worker_pid" 2>/dev/null || true
worker_pid=""
emit <"$RUN_DIR/$RUN.worker.json"
