#!/usr/bin/env bash
# The one-command demo: local Kafka + Redis, the topics, `feedrank serve` on the demo bundle,
# then real traffic through Kafka — the demo users' activity history, one user whose feed
# changes as they click, and a burst of ranking requests. Everything is left running.
#   scripts/demo.sh          start (idempotent) and drive traffic
#   scripts/demo.sh stop     stop the worker, the broker and Redis started by these scripts
#   scripts/demo.sh status
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$FEEDRANK_ROOT"

HTTP_PORT="${FEEDRANK_DEMO_HTTP_PORT:-8080}"
SERVE_PID="$RUN_DIR/feedrank.pid"
BROKERS="127.0.0.1:$KAFKA_PORT"
REDIS_URL="redis://127.0.0.1:$REDIS_PORT"
BIN="$FEEDRANK_ROOT/.build/release/feedrank"
STORY_USER="${FEEDRANK_DEMO_USER:-42}"

# feedrank_events_applied_total from the worker's /metrics (0 before the first event).
applied_events() {
  curl -s "http://127.0.0.1:$HTTP_PORT/metrics" | awk '$1 == "feedrank_events_applied_total" { v = $2 } END { printf "%d\n", v + 0 }'
}

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

stop() {
  if alive "$SERVE_PID"; then
    pid=$(cat "$SERVE_PID"); kill -TERM "$pid"
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid" || true
    log "feedrank serve stopped (pid $pid)"
  fi
  rm -f "$SERVE_PID"
  "$FEEDRANK_ROOT/scripts/services.sh" down
}

status() {
  alive "$SERVE_PID" && echo "feedrank serve: up, pid $(cat "$SERVE_PID"), http://127.0.0.1:$HTTP_PORT" || echo "feedrank serve: down"
  "$FEEDRANK_ROOT/scripts/services.sh" status
}

# The demo world was generated at a fixed "now"; shift its publication times so the world is
# live at the wall clock (fresh items exist) — the weights are shared, not copied.
prepare_bundle() {
  local dir="$RUN_DIR/demo-bundle"
  mkdir -p "$dir"
  ln -sf "$FEEDRANK_ROOT/demo/bundle/manifest.json" "$dir/manifest.json"
  ln -sf "$FEEDRANK_ROOT/demo/bundle/weights.safetensors" "$dir/weights.safetensors"
  python3 - "$FEEDRANK_ROOT/demo/bundle/items.jsonl" "$dir/items.jsonl" <<'PY'
import json, sys, time
src, dst = sys.argv[1], sys.argv[2]
items = [json.loads(l) for l in open(src) if l.strip()]
shift = int(time.time() * 1000) - max(i["published_at"] for i in items) - 3_600_000
with open(dst, "w") as f:
    for i in items:
        i["published_at"] += shift
        f.write(json.dumps(i) + "\n")
PY
  echo "$dir"
}

start() {
  "$FEEDRANK_ROOT/scripts/install.sh"
  "$FEEDRANK_ROOT/scripts/services.sh" up
  log "building feedrank (release)"
  swift build -c release --product feedrank 2>&1 | grep -E "error|warning: unre|Compiling|Build complete" | tail -3 || true
  [ -x "$BIN" ] || die "the build did not produce $BIN"
  "$BIN" topics apply --brokers "$BROKERS" --replication-factor 1
  local bundle; bundle=$(prepare_bundle)
  if alive "$SERVE_PID"; then
    log "feedrank serve already running (pid $(cat "$SERVE_PID"))"
  else
    log "starting feedrank serve on the demo bundle (log: $RUN_DIR/feedrank.log)"
    nohup "$BIN" serve --bundle "$bundle" --brokers "$BROKERS" --redis "$REDIS_URL" --http-port "$HTTP_PORT" \
      --kafka fetch.wait.max.ms=10 >"$RUN_DIR/feedrank.log" 2>&1 &
    echo $! >"$SERVE_PID"
  fi
  log "waiting for http://127.0.0.1:$HTTP_PORT/ready"
  for _ in $(seq 300); do
    curl -sf "http://127.0.0.1:$HTTP_PORT/ready" >/dev/null 2>&1 && break
    alive "$SERVE_PID" || { tail -20 "$RUN_DIR/feedrank.log" >&2; die "feedrank serve exited"; }
    sleep 0.5
  done
  curl -sf "http://127.0.0.1:$HTTP_PORT/ready" >/dev/null || die "feedrank serve did not become ready (see $RUN_DIR/feedrank.log)"
  # Ready means the model is loaded and /rank answers; the Kafka side starts once the consumer
  # group has assigned the partitions and their states are restored.
  log "waiting for the worker to own its partitions"
  for _ in $(seq 120); do
    curl -s "http://127.0.0.1:$HTTP_PORT/health" | grep -q '"partitions":\[[0-9]' && break
    sleep 0.5
  done
  echo; curl -s "http://127.0.0.1:$HTTP_PORT/health"; echo; echo

  local events applied0
  events=$(grep -c . demo/events.jsonl)
  applied0=$(applied_events)
  log "traffic 1/3: the demo users' activity history ($events events)"
  "$BIN" loadgen --brokers "$BROKERS" --events demo/events.jsonl --kafka fetch.wait.max.ms=10
  # The story's "before" must see the whole history: wait until the worker has applied it.
  for _ in $(seq 300); do
    [ $(( $(applied_events) - applied0 )) -ge "$events" ] && break
    sleep 0.2
  done
  log "the worker applied $(( $(applied_events) - applied0 )) of $events events"
  log "traffic 2/3: user $STORY_USER clicks, the worker re-ranks their feed by itself"
  "$BIN" loadgen --brokers "$BROKERS" --bundle "$bundle" --story "$STORY_USER" --num-items 30 --kafka fetch.wait.max.ms=10
  log "traffic 3/3: 2,000 ranking requests at 400/s"
  "$BIN" loadgen --brokers "$BROKERS" --requests 2000 --rate 400 --users 1:4000 --kafka fetch.wait.max.ms=10

  export LD_LIBRARY_PATH="$RDKAFKA_PREFIX/lib"  # kcat with the project's librdkafka 2.8
  cat <<TXT

FeedRank is running (worker pid $(cat "$SERVE_PID"), Kafka $BROKERS, Redis $REDIS_URL).
  curl -s http://127.0.0.1:$HTTP_PORT/health
  curl -s http://127.0.0.1:$HTTP_PORT/metrics | grep -E '^(ranking_|cache_hits|feed_|feedrank_events)'
  curl -s -XPOST http://127.0.0.1:$HTTP_PORT/rank -d '{"request_id":"r-1","user_id":$STORY_USER,"num_items":10}'
  LD_LIBRARY_PATH=$RDKAFKA_PREFIX/lib kcat -C -b $BROKERS -t ranking-responses -o -3 -e -X fetch.wait.max.ms=10
  echo '{"request_id":"r-2","user_id":7,"num_items":5}' | LD_LIBRARY_PATH=$RDKAFKA_PREFIX/lib kcat -P -b $BROKERS -t ranking-requests -k 7
  redis-cli -p $REDIS_PORT GET rankings:user:$STORY_USER
  redis-cli -p $REDIS_PORT TTL rankings:user:$STORY_USER
  tail -f $RUN_DIR/feedrank.log
Stop everything: scripts/demo.sh stop
TXT
}

case "${1:-start}" in
  start) start ;; stop) stop ;; status) status ;;
  *) echo "usage: $0 [start|stop|status]" >&2; exit 2 ;;
esac
