# Shared paths for FeedRank's scripts. Sourced, not executed.
FEEDRANK_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEPS_DIR="${FEEDRANK_DEPS_DIR:-$FEEDRANK_ROOT/.deps}"
RDKAFKA_PREFIX="$DEPS_DIR/librdkafka"
RDKAFKA_MIN_VERSION="2.8.0"
VENV_DIR="${FEEDRANK_VENV:-$FEEDRANK_ROOT/.venv}"
RUN_DIR="${FEEDRANK_RUN_DIR:-$FEEDRANK_ROOT/.run}"
TANSU_BIN="$VENV_DIR/bin/tansu"
export PKG_CONFIG_PATH="$RDKAFKA_PREFIX/lib/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
# Ports of the local services (loopback only). Not FEEDRANK_KAFKA_PORT: feedrank reads every
# FEEDRANK_KAFKA_<NAME> as a librdkafka property, and "port" is none (the demo then failed with
# "No such configuration property"). The old names still work here and are not passed on.
KAFKA_PORT="${FEEDRANK_LOCAL_KAFKA_PORT:-${FEEDRANK_KAFKA_PORT:-19092}}"
REDIS_PORT="${FEEDRANK_LOCAL_REDIS_PORT:-${FEEDRANK_REDIS_PORT:-16379}}"
unset FEEDRANK_KAFKA_PORT FEEDRANK_REDIS_PORT
export FEEDRANK_TEST_BROKERS="${FEEDRANK_TEST_BROKERS:-127.0.0.1:$KAFKA_PORT}"
export FEEDRANK_TEST_REDIS="${FEEDRANK_TEST_REDIS:-redis://127.0.0.1:$REDIS_PORT}"

log() { printf '[feedrank] %s\n' "$*" >&2; }
die() { printf '[feedrank] error: %s\n' "$*" >&2; exit 1; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# For benchmarks and checks that need the broker and Redis: start those that are down, and stop
# (by PID) only those at exit -- call stop_started_services from the script's EXIT trap.
started_services=()
start_missing_services() {
  local f
  for f in "$RUN_DIR/tansu.pid" "$RUN_DIR/redis.pid"; do
    { [ -f "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null; } || started_services+=("$f")
  done
  [ ${#started_services[@]} -eq 0 ] || "$FEEDRANK_ROOT/scripts/services.sh" up
}
stop_started_services() {
  local f
  for f in "${started_services[@]}"; do
    [ -f "$f" ] && { kill "$(cat "$f")" 2>/dev/null || true; rm -f "$f"; log "stopped $(basename "$f" .pid)"; }
  done
}

# Sets BIN and BENCH: $FEEDRANK_BIN / $FEEDRANK_BENCH_BIN when given, else a release build of
# feedrank and feedrank-bench in the scratch directory $1 (default .build).
release_bins() {
  if [ -n "${FEEDRANK_BIN:-}" ]; then BIN="$FEEDRANK_BIN"; else
    local scratch="${1:-$FEEDRANK_ROOT/.build}"
    log "building feedrank and feedrank-bench (release, $scratch)"
    swift build -c release --scratch-path "$scratch" --product feedrank >/dev/null
    swift build -c release --scratch-path "$scratch" --product feedrank-bench >/dev/null
    BIN="$scratch/release/feedrank"
  fi
  BENCH="${FEEDRANK_BENCH_BIN:-$(dirname "$BIN")/feedrank-bench}"
}
