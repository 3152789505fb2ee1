#!/usr/bin/env bash
# Issue 7's identity check at full size: replay of a 1,000,000-event log gives states
# byte-identical to the live worker's for the same events.
#   1. the first $EVENTS events of data/world-1m/events.jsonl into fresh topics (12 partitions);
#   2. the live worker (`feedrank serve`, its own group, 2 lanes) processes the whole log; the
#      script waits until the group has committed every offset, then stops it with SIGTERM;
#   3. `feedrank replay --from earliest` reads the same log into a second set of topics;
#   4. `feedrank-bench batch compare-states`: the latest state per user of both `user-state`
#      changelogs, byte for byte. Exit status 0 only when every user's bytes are equal.
#
#   scripts/check-replay-identity.sh                 # 1,000,000 events (about 6 min here)
#   EVENTS=100000 scripts/check-replay-identity.sh   # a quicker run
#   FEEDRANK_BIN=... FEEDRANK_BENCH_BIN=...           # skip the build
# Starts the broker/Redis only if down and stops only what it started (by PID). Topics are
# per run (Tansu keeps them in memory until it stops); Redis: the worker uses DB 13, replay DB 12.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$FEEDRANK_ROOT"

EVENTS="${EVENTS:-1000000}"
WORLD=data/world-1m
RUN="ri$(date +%s)"
OUT="$RUN_DIR/replay-identity/$RUN"
mkdir -p "$OUT"
BROKERS="127.0.0.1:$KAFKA_PORT"
[ -f "$WORLD/bundle/manifest.json" ] || "$FEEDRANK_ROOT/scripts/make-worlds.sh" 1m

start_missing_services
worker_pid=""
cleanup() {
  if [ -n "$worker_pid" ] && kill -0 "$worker_pid" 2>/dev/null; then kill "$worker_pid" 2>/dev/null || true; fi
  stop_started_services
}
trap cleanup EXIT

release_bins
load() { cut -d' ' -f1-3 /proc/loadavg; }
log "run $RUN: $EVENTS events, $(nproc) cores, load $(load)"

L="live-$RUN."; R="replay-$RUN."
"$BIN" topics apply --dir topics --brokers "$BROKERS" --prefix "$L" --replication-factor 1 >"$OUT/topics.log" 2>&1
"$BIN" topics apply --dir topics --brokers "$BROKERS" --prefix "$R" --replication-factor 1 >>"$OUT/topics.log" 2>&1
"$BENCH" batch build-index --bundle "$WORLD/bundle" --out "$OUT/index.ivfpq" | tee "$OUT/index.log" >&2
"$BENCH" batch produce-events --brokers "$BROKERS" --topic "${L}user-activity" --events "$WORLD/events.jsonl" \
  --limit "$EVENTS" | tee "$OUT/produce.log" >&2

# 2. The live worker over the whole log.
port=$((20000 + RANDOM % 10000))
log "feedrank serve (group live-$RUN) over the log (load $(load))"
started=$(date +%s)
"$BIN" serve --bundle "$WORLD/bundle" --index "$OUT/index.ivfpq" --brokers "$BROKERS" --group "live-$RUN" \
  --activity-topic "${L}user-activity" --requests-topic "${L}ranking-requests" --responses-topic "${L}ranking-responses" \
  --dlq-topic "${L}ranking-dlq" --state-topic "${L}user-state" --lanes 2 \
  --redis "redis://127.0.0.1:$REDIS_PORT/13" --http-port "$port" --log-level warning --log-format json \
  --kafka fetch.wait.max.ms=10 --kafka session.timeout.ms=6000 >"$OUT/worker.log" 2>&1 &
worker_pid=$!
"$BENCH" batch wait-committed --brokers "$BROKERS" --topic "${L}user-activity" --group "live-$RUN" --timeout 3600 \
  | tee "$OUT/wait.log" >&2 || { tail -5 "$OUT/worker.log" >&2; die "the live worker did not commit the whole log"; }
curl -s "http://127.0.0.1:$port/metrics" >"$OUT/metrics.txt" || true
kill -TERM "$worker_pid"; wait "$worker_pid" 2>/dev/null || true; worker_pid=""
live_s=$(( $(date +%s) - started ))
applied=$(sed -n 's/^feedrank_events_applied_total \([0-9]*\).*/\1/p' "$OUT/metrics.txt")

# 3. Replay of the same log into the second set of topics.
log "feedrank replay --from earliest (load $(load))"
"$BIN" replay --bundle "$WORLD/bundle" --index "$OUT/index.ivfpq" --brokers "$BROKERS" --kafka fetch.wait.max.ms=10 \
  --activity-topic "${L}user-activity" --state-topic "${R}user-state" --dlq-topic "${R}ranking-dlq" \
  --responses-topic "${R}ranking-responses" --redis "redis://127.0.0.1:$REDIS_PORT/12" --from earliest \
  --log-format json --log-level warning 2>"$OUT/replay.err" | tee "$OUT/replay.txt" >&2

# 4. Byte for byte.
log "comparing the two user-state changelogs"
status=0
"$BENCH" batch compare-states --brokers "$BROKERS" --left "${L}user-state" --right "${R}user-state" | tee "$OUT/compare.txt" || status=$?
cat <<SUMMARY

== check-replay-identity $RUN ($(date -u +%FT%TZ), $(nproc) cores) ==
log:     $(cat "$OUT/produce.log")
live:    feedrank serve applied ${applied:-?} events, whole log committed in ${live_s} s
replay:  $(sed -n 1p "$OUT/replay.txt"); $(sed -n 2p "$OUT/replay.txt")
compare: $(cat "$OUT/compare.txt")
files:   $OUT
SUMMARY
exit $status
