#!/usr/bin/env bash
# Issue 2's figures, in one run through the local broker and Redis:
#   Kafka: feedrank-bench kafka (KafkaProducer / KafkaConsumer) vs kcat -P / kcat -C on the same
#          200-byte JSON records (bookworm's kcat, run on the project's librdkafka 2.8);
#   Redis: feedrank-bench redis (RedisClient, pipelines of 16) vs redis-benchmark -P 16.
# env: RECORDS (200000), REDIS_REQUESTS (500000), RUNS (3). Loopback only; bounded.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$FEEDRANK_ROOT"
RECORDS="${RECORDS:-200000}"; REDIS_REQUESTS="${REDIS_REQUESTS:-500000}"; RUNS="${RUNS:-3}"
BROKERS="127.0.0.1:$KAFKA_PORT"
BENCH="${FEEDRANK_BENCH_BIN:-$FEEDRANK_ROOT/.build/release/feedrank-bench}"
if [ -z "${FEEDRANK_BENCH_BIN:-}" ]; then swift build -c release --product feedrank-bench >/dev/null; fi
started=0
grep -q '^kafka: up' <<<"$("$FEEDRANK_ROOT/scripts/services.sh" status)" || started=1
grep -q '^redis: up' <<<"$("$FEEDRANK_ROOT/scripts/services.sh" status)" || started=1
[ $started = 1 ] && "$FEEDRANK_ROOT/scripts/services.sh" up
trap '[ $started = 1 ] && "$FEEDRANK_ROOT/scripts/services.sh" down || true' EXIT
export LD_LIBRARY_PATH="$RDKAFKA_PREFIX/lib"
log "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores; load $(cut -d' ' -f1-3 /proc/loadavg)"

log "FeedRank KafkaClient: $RECORDS records x $RUNS runs"
"$BENCH" kafka --brokers "$BROKERS" --records "$RECORDS" --runs "$RUNS"

file="$RUN_DIR/bench-records.txt"
python3 - "$file" "$RECORDS" <<'PY'
import sys
path, n = sys.argv[1], int(sys.argv[2])
with open(path, "w") as f:
    for i in range(n):
        head = '{"event_id":"e-%d","user_id":%d,"item_id":9001,"action":"click","ts":1795700000000,"pad":"' % (i % 64, i % 64)
        f.write("%d|%s%s\"}\n" % (i % 10000, head, "x" * max(0, 200 - len(head) - 2)))
PY
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
p=(); c=()
for r in $(seq "$RUNS"); do
  topic="bench-kcat-$(date +%s%N)"
  t0=$(date +%s.%N); kcat -P -b "$BROKERS" -t "$topic" -K '|' -X linger.ms=5 -l "$file"; t1=$(date +%s.%N)
  n=$(kcat -C -b "$BROKERS" -t "$topic" -o beginning -e -q -X fetch.wait.max.ms=10 -f '.\n' | wc -l); t2=$(date +%s.%N)
  p+=("$(echo "$RECORDS / ($t1 - $t0)" | bc -l)"); c+=("$(echo "$n / ($t2 - $t1)" | bc -l)")
  printf 'kcat run %d: produce %.0f records/s, consume %.0f records/s (%d consumed)\n' "$r" "${p[-1]}" "${c[-1]}" "$n"
done
printf '{"bench":"kcat","records":%d,"produce_records_per_s_median":%.0f,"consume_records_per_s_median":%.0f}\n' \
  "$RECORDS" "$(printf '%s\n' "${p[@]}" | median)" "$(printf '%s\n' "${c[@]}" | median)"

log "FeedRank RedisClient: $REDIS_REQUESTS SETs x $RUNS runs, pipelines of 16"
"$BENCH" redis --redis "redis://127.0.0.1:$REDIS_PORT/13" --requests "$REDIS_REQUESTS" --pipeline 16 --runs "$RUNS"
log "redis-benchmark -P 16, one connection (the shape of RedisClient) and its default 50 connections"
for r in $(seq "$RUNS"); do
  printf 'c=1:  '; redis-benchmark -h 127.0.0.1 -p "$REDIS_PORT" --dbnum 13 -t set -n "$REDIS_REQUESTS" -d 200 -P 16 -c 1 -q | tr '\r' '\n' | grep -E '^SET' | tail -1
  printf 'c=50: '; redis-benchmark -h 127.0.0.1 -p "$REDIS_PORT" --dbnum 13 -t set -n "$REDIS_REQUESTS" -d 200 -P 16 -q | tr '\r' '\n' | grep -E '^SET' | tail -1
done
rm -f "$file"
