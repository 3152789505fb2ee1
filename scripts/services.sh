#!/usr/bin/env bash
# Local Kafka (Tansu, in-memory) and Redis on loopback for dev, tests and the demo.
#   scripts/services.sh up      start both (if not already running), wait until they answer
#   scripts/services.sh down    stop exactly the PIDs this script started
#   scripts/services.sh status
# Ports: FEEDRANK_LOCAL_KAFKA_PORT (19092), FEEDRANK_LOCAL_REDIS_PORT (16379). PIDs and logs: .run/
set -euo pipefail
. "$(dirname "$0")/lib.sh"

KAFKA_PID="$RUN_DIR/tansu.pid"
REDIS_PID="$RUN_DIR/redis.pid"

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

wait_for() { # name, seconds, command...
  local name=$1 secs=$2; shift 2
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || die "$name did not answer within ${secs}s (see $RUN_DIR)"
    sleep 0.2
  done
}

kafka_answers() { # the port accepts connections and the broker lists topics
  (exec 3<>"/dev/tcp/127.0.0.1/$KAFKA_PORT") 2>/dev/null || return 1
  "$TANSU_BIN" topic list --broker "tcp://127.0.0.1:$KAFKA_PORT" >/dev/null 2>&1 || true
}

up() {
  mkdir -p "$RUN_DIR"
  [ -x "$TANSU_BIN" ] || die "the Tansu broker is not installed: run scripts/install.sh"
  if alive "$KAFKA_PID"; then log "kafka already up (pid $(cat "$KAFKA_PID"), 127.0.0.1:$KAFKA_PORT)"; else
    (exec 3<>"/dev/tcp/127.0.0.1/$KAFKA_PORT") 2>/dev/null && die "port $KAFKA_PORT is taken by another process; set FEEDRANK_LOCAL_KAFKA_PORT"
    RUST_LOG="${RUST_LOG:-warn}" nohup "$TANSU_BIN" broker \
      --listener-url "tcp://127.0.0.1:$KAFKA_PORT" \
      --advertised-listener-url "tcp://127.0.0.1:$KAFKA_PORT" \
      --storage-engine "memory://tansu/" >"$RUN_DIR/tansu.log" 2>&1 &
    echo $! >"$KAFKA_PID"
    wait_for kafka 30 kafka_answers
    log "kafka up: 127.0.0.1:$KAFKA_PORT (pid $(cat "$KAFKA_PID"))"
  fi
  if alive "$REDIS_PID"; then log "redis already up (pid $(cat "$REDIS_PID"), 127.0.0.1:$REDIS_PORT)"; else
    redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && die "port $REDIS_PORT is taken by another process; set FEEDRANK_LOCAL_REDIS_PORT"
    redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save '' --appendonly no \
      --daemonize no --dir "$RUN_DIR" --logfile "$RUN_DIR/redis.log" >/dev/null 2>&1 &
    echo $! >"$REDIS_PID"
    wait_for redis 15 redis-cli -p "$REDIS_PORT" ping
    log "redis up: 127.0.0.1:$REDIS_PORT (pid $(cat "$REDIS_PID"))"
  fi
}

stop_pid() { # pidfile, name
  local f=$1 name=$2
  if alive "$f"; then
    local pid; pid=$(cat "$f")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null || true
    log "$name stopped (pid $pid)"
  fi
  rm -f "$f"
}

down() {
  stop_pid "$KAFKA_PID" kafka
  stop_pid "$REDIS_PID" redis
}

status() {
  alive "$KAFKA_PID" && echo "kafka: up, pid $(cat "$KAFKA_PID"), 127.0.0.1:$KAFKA_PORT" || echo "kafka: down"
  alive "$REDIS_PID" && echo "redis: up, pid $(cat "$REDIS_PID"), 127.0.0.1:$REDIS_PORT" || echo "redis: down"
}

case "${1:-}" in
  up) up ;; down) down ;; status) status ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
