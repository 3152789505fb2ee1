# Shared paths for FeedRank's scripts. Sourced, not executed.
FEEDRANK_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEPS_DIR="${FEEDRANK_DEPS_DIR:-$FEEDRANK_ROOT/.deps}"
RDKAFKA_PREFIX="$DEPS_DIR/librdkafka"
RDKAFKA_MIN_VERSION="2.8.0"
VENV_DIR="${FEEDRANK_VENV:-$FEEDRANK_ROOT/.venv}"
RUN_DIR="${FEEDRANK_RUN_DIR:-$FEEDRANK_ROOT/.run}"
TANSU_BIN="$VENV_DIR/bin/tansu"
export PKG_CONFIG_PATH="$RDKAFKA_PREFIX/lib/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
# Ports of the local services (loopback only).
KAFKA_PORT="${FEEDRANK_KAFKA_PORT:-19092}"
REDIS_PORT="${FEEDRANK_REDIS_PORT:-16379}"
export FEEDRANK_TEST_BROKERS="${FEEDRANK_TEST_BROKERS:-127.0.0.1:$KAFKA_PORT}"
export FEEDRANK_TEST_REDIS="${FEEDRANK_TEST_REDIS:-redis://127.0.0.1:$REDIS_PORT}"

log() { printf '[feedrank] %s\n' "$*" >&2; }
die() { printf '[feedrank] error: %s\n' "$*" >&2; exit 1; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
