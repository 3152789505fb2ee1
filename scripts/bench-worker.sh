#!/usr/bin/env bash
# The stream worker through the local broker (issue 6), measured by the same Kafka-only load
# generator (tools/loadgen.py) as the Python worker, in one run:
#   1. the broker's own limit (librdkafka producer/consumer alone, paced round trip)
#   2. feedrank serve: ACTIVITY world events as fast as possible (events/s from the group's
#      commits; feed freshness = a click sent -> its re-ranked feed consumed), REQUESTS ranking
#      requests as fast as possible, PACED requests at RATE/s (end-to-end p50/p99)
#   3. the Python worker (scripts/bench-python-worker.sh) with the same phases
#   scripts/bench-worker.sh [100k|1m]     env: ACTIVITY (50000) REQUESTS (5000) PACED (3000) RATE (100)
#                                              PARTITIONS (4) PYTHON=0 to skip the Python worker
#                                              LOADGEN_FLOOD: extra loadgen flags for the flood (e.g.
#                                              "--activity-linger-ms 1 --activity-compression none")
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$FEEDRANK_ROOT"
w="${1:-100k}"
case "$w" in 100k) users=10000 ;; 1m) users=20000 ;; *) die "unknown world '$w'" ;; esac
WORLD="$FEEDRANK_ROOT/data/world-$w"
[ -f "$WORLD/bundle/manifest.json" ] || die "$WORLD missing: run scripts/make-worlds.sh $w"
export ACTIVITY="${ACTIVITY:-50000}" REQUESTS="${REQUESTS:-5000}" PACED="${PACED:-3000}" RATE="${RATE:-100}" PARTITIONS="${PARTITIONS:-4}"
PY="$VENV_DIR/bin/python"; LG=("$PY" "$FEEDRANK_ROOT/tools/loadgen.py")
BROKERS="127.0.0.1:$KAFKA_PORT"; OUT="$FEEDRANK_ROOT/data/bench"; CACHE="$FEEDRANK_ROOT/data/bench-cache"
mkdir -p "$OUT" "$CACHE" "$RUN_DIR"
BIN="${FEEDRANK_BIN:-$FEEDRANK_ROOT/.build/release/feedrank}"
if [ -z "${FEEDRANK_BIN:-}" ]; then swift build -c release --product feedrank >/dev/null; fi
INDEX="$CACHE/world-$w.ordered.ivfpq"   # lists ordered along the residuals' principal axis (older caches scan whole lists)
[ -f "$INDEX" ] || "$BIN" index build --bundle "$WORLD/bundle" --out "$INDEX" >/dev/null 2>&1 || rm -f "$INDEX"
RUN="sw$(date +%s)"
TOPICS=(--activity-topic "bench-$RUN-activity" --requests-topic "bench-$RUN-requests"
        --responses-topic "bench-$RUN-responses" --dlq-topic "bench-$RUN-dlq" --state-topic "bench-$RUN-state")
svc_started=0
grep -q '^kafka: up' <<<"$("$FEEDRANK_ROOT/scripts/services.sh" status)" || svc_started=1
grep -q '^redis: up' <<<"$("$FEEDRANK_ROOT/scripts/services.sh" status)" || svc_started=1
[ $svc_started = 1 ] && "$FEEDRANK_ROOT/scripts/services.sh" up
worker_pid=""
cleanup() {
  if [ -n "$worker_pid" ] && kill -0 "$worker_pid" 2>/dev/null; then kill "$worker_pid" 2>/dev/null || true; fi
  "${LG[@]}" topics --brokers "$BROKERS" "${TOPICS[@]}" --delete >/dev/null 2>&1 || true
  [ $svc_started = 1 ] && "$FEEDRANK_ROOT/scripts/services.sh" down || true
}
trap cleanup EXIT
emit() { tee -a "$OUT/swift-worker.jsonl"; }

log "run $RUN on world-$w, $PARTITIONS partitions (load: $(cut -d' ' -f1-3 /proc/loadavg))"
"${LG[@]}" topics --brokers "$BROKERS" "${TOPICS[@]}" --partitions "$PARTITIONS" >/dev/null
log "phase 1: the broker's own limit"
"${LG[@]}" broker --brokers "$BROKERS" --messages 100000 --partitions "$PARTITIONS" --roundtrip 1000 --rate "$RATE" --run-id "$RUN" | emit

port=$((20000 + RANDOM % 10000))
index_args=(); [ -f "$INDEX" ] && index_args=(--index "$INDEX")
"$BIN" serve --bundle "$WORLD/bundle" "${index_args[@]}" --brokers "$BROKERS" "${TOPICS[@]}" --group "bench-$RUN" \
  --redis "redis://127.0.0.1:$REDIS_PORT/14" --http-port "$port" --log-level warning \
  --kafka fetch.wait.max.ms=10 --kafka session.timeout.ms=6000 >"$RUN_DIR/$RUN.worker.log" 2>&1 &
worker_pid=$!
for _ in $(seq 600); do
  curl -sf "http://127.0.0.1:$port/ready" >/dev/null 2>&1 && curl -s "http://127.0.0.1:$port/health" | grep -q "\"partitions\":\[0" && break
  kill -0 "$worker_pid" 2>/dev/null || { tail -5 "$RUN_DIR/$RUN.worker.log" >&2; die "the worker exited"; }
  sleep 0.5
done
log "feedrank serve ready: $(curl -s "http://127.0.0.1:$port/health")"
log "phase 2: $ACTIVITY activity events as fast as possible"
"${LG[@]}" worker --brokers "$BROKERS" "${TOPICS[@]}" --activity "$ACTIVITY" ${LOADGEN_FLOOD:-} --events "$WORLD/events.jsonl" \
  --group "bench-$RUN" --timeout 900 --settle 2 --run-id "$RUN-a" | emit
log "phase 3: $REQUESTS ranking requests as fast as possible"
"${LG[@]}" worker --brokers "$BROKERS" "${TOPICS[@]}" --requests "$REQUESTS" --rate 0 --users "1:$users" --timeout 600 --run-id "$RUN-r" | emit
log "phase 4: $PACED ranking requests at $RATE/s"
"${LG[@]}" worker --brokers "$BROKERS" "${TOPICS[@]}" --requests "$PACED" --rate "$RATE" --users "1:$users" --timeout 600 --run-id "$RUN-p" | emit
curl -s "http://127.0.0.1:$port/metrics" >"$OUT/$RUN.metrics.txt"
kill -TERM "$worker_pid"; wait "$worker_pid" 2>/dev/null || true; worker_pid=""
log "metrics saved to $OUT/$RUN.metrics.txt"
if [ "${PYTHON:-1}" = 1 ]; then
  log "the Python worker, same phases"
  "$FEEDRANK_ROOT/scripts/bench-python-worker.sh" "$w"
fi
