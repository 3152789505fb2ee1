"""Load generator for any FeedRank worker (Python baseline or Swift): it only talks Kafka.

    python tools/loadgen.py worker --brokers 127.0.0.1:19092 --activity 20000 \
        --events data/world-100k/events.jsonl --requests 2000 --rate 100 --users 1:10000 \
        [--group feedrank-py] [--json-out FILE]
    python tools/loadgen.py broker --brokers 127.0.0.1:19092 --messages 200000 [--rate 100 --roundtrip 2000]
    python tools/loadgen.py topics --brokers 127.0.0.1:19092 --partitions 4

`worker` mode, in this order:
 1. a consumer is assigned every partition of --responses-topic at its current end (before
    anything is produced), in a background thread, and records when each response arrives;
 2. activity: --activity records (the first N lines of --events, values sent unchanged, key =
    user_id) produced as fast as possible or at --activity-rate/s; with --group, the group's
    committed offsets on --activity-topic are polled until they reach the end offsets: the
    worker's activity throughput is N / (caught up - first produce);
 3. requests: --requests ranking requests (unique request_id, user_id uniform in --users
    LO:HI, num_items, context {ts (--at, else omitted: the record timestamp), device, fresh}) at
    --rate/s (0 = as fast as possible); waits until every request has a response or --timeout;
 4. prints one JSON summary: sent, ok / error / missing / duplicate responses, end-to-end latency
    (produce() call -> response consumed) p50/p90/p99/max in ms, responses/s (over the time from
    the first request to the last response), the achieved send rate, and the activity figures.

`broker` mode measures the broker's own limit through the same client (confluent-kafka,
librdkafka): produce --messages records of --size bytes to a scratch topic as fast as possible
(acks all, until flushed), consume them all back, and (with --roundtrip N) the produce ->
consume latency of N records sent at --rate/s. The scratch topic is deleted afterwards.

`topics` mode creates the contract's topics (names as flags) with --partitions each, if missing
(with --delete: deletes them).

Records are keyed by user_id as a decimal string and partitioned with murmur2_random (the
contract's partitioner). Tansu settings (fetch.wait.max.ms 10) are the defaults; --kafka
KEY=VALUE adds librdkafka properties to every client.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import threading
import time
import uuid

import numpy as np

RID = re.compile(rb'"request_id":\s*"([^"]*)"')
STATUS = re.compile(rb'"status":\s*"([a-z]+)"')
TRIGGER = re.compile(rb'"trigger":\s*"([a-z]+)"')
USER = re.compile(rb'"user_id":\s*(-?\d+)')


REFRESH_ACTION = re.compile(rb'"action"\s*:\s*"(click|like|comment|share|hide)"')


def pct(xs, q):
    return round(float(np.percentile(np.asarray(xs), q)), 3) if len(xs) else None


def kafka_conf(args, **kw):
    conf = {"bootstrap.servers": args.brokers}
    conf.update(kw)
    conf.update(dict(kv.split("=", 1) for kv in args.kafka))
    return conf


def ensure_topics(args, names, partitions):
    from confluent_kafka.admin import AdminClient, NewTopic
    admin = AdminClient(kafka_conf(args))
    have = admin.list_topics(timeout=10).topics
    new = [NewTopic(n, num_partitions=partitions, replication_factor=1) for n in names if n not in have]
    created = []
    if new:
        for name, fut in admin.create_topics(new, operation_timeout=10).items():
            try:
                fut.result()
                created.append(name)
            except Exception as e:  # an existing topic is fine
                if "already exists" not in str(e).lower() and "TOPIC_ALREADY_EXISTS" not in str(e):
                    raise RuntimeError(f"cannot create topic {name}: {e}") from None
    md = admin.list_topics(timeout=10).topics
    return created, {n: len(md[n].partitions) for n in names if n in md}


def delete_topics(args, names) -> list:
    from confluent_kafka.admin import AdminClient
    admin = AdminClient(kafka_conf(args))
    have = admin.list_topics(timeout=10).topics
    gone = []
    for name, fut in admin.delete_topics([n for n in names if n in have], operation_timeout=10).items():
        try:
            fut.result()
            gone.append(name)
        except Exception as e:
            raise RuntimeError(f"cannot delete topic {name}: {e}") from None
    return gone


class ResponseCollector(threading.Thread):
    """Consumes the responses topic from its end offsets; records (arrival time, request_id, status,
    trigger) without a full JSON parse."""

    def __init__(self, args):
        super().__init__(daemon=True)
        from confluent_kafka import Consumer, TopicPartition
        self.c = Consumer(kafka_conf(args, **{"group.id": f"loadgen-{uuid.uuid4().hex[:8]}",
                                              "enable.auto.commit": False, "fetch.wait.max.ms": 10,
                                              "session.timeout.ms": 6000}))
        md = self.c.list_topics(args.responses_topic, timeout=10).topics[args.responses_topic]
        if md.error is not None or not md.partitions:
            raise RuntimeError(f"topic {args.responses_topic} does not exist (loadgen topics ... creates it)")
        tps = []
        for p in md.partitions:
            lo, hi = self.c.get_watermark_offsets(TopicPartition(args.responses_topic, p), timeout=10)
            tps.append(TopicPartition(args.responses_topic, p, hi))
        self.c.assign(tps)
        self.lock = threading.Lock()
        self.by_id = {}  # request_id -> [arrival perf_counter, ...]
        self.status = {}
        self.activity = []  # arrival times of trigger "activity" responses
        # Feed freshness, measured the same way for any worker: user key -> when the loadgen sent
        # the first click/like/comment/share/hide not yet followed by a trigger "activity" feed.
        self.pending_refresh = {}
        self.freshness_ms = []
        self.count = 0
        self.running = True

    def run(self):
        while self.running:
            for m in self.c.consume(num_messages=1000, timeout=0.05):
                if m.error() is not None:
                    continue
                t = time.perf_counter()
                v = m.value() or b""
                rid = RID.search(v)
                st = STATUS.search(v)
                tr = TRIGGER.search(v)
                with self.lock:
                    self.count += 1
                    if tr is not None and tr.group(1) == b"activity":
                        self.activity.append(t)
                        sent = self.pending_refresh.pop(m.key(), None)
                        if sent is not None:
                            self.freshness_ms.append((t - sent) * 1e3)
                    elif rid is not None:
                        k = rid.group(1).decode()
                        self.by_id.setdefault(k, []).append(t)
                        self.status[k] = st.group(1).decode() if st else "?"
        self.c.close()


def produce(p, topic, key, value):
    while True:
        try:
            p.produce(topic, key=key, value=value)
            return
        except BufferError:
            p.poll(0.01)


# No re-rank response for this long after every activity event is committed: the flood is done
# (the workers' coalescing window is 200 ms).
ACTIVITY_QUIET_S = 1.0


def group_caught_up(args, topic, ends: dict) -> bool:
    from confluent_kafka import Consumer, TopicPartition
    c = getattr(group_caught_up, "consumer", None)
    if c is None:
        c = Consumer(kafka_conf(args, **{"group.id": args.group, "enable.auto.commit": False}))
        group_caught_up.consumer = c
    committed = c.committed([TopicPartition(topic, p) for p in ends], timeout=10)
    return all(tp.offset >= ends[tp.partition] for tp in committed if ends[tp.partition] > 0)


def worker_mode(args) -> dict:
    from confluent_kafka import Producer, Consumer, TopicPartition
    lo_user, hi_user = (int(x) for x in args.users.split(":"))
    collector = ResponseCollector(args)
    collector.start()
    producer = Producer(kafka_conf(args, **{"linger.ms": 1, "acks": "all", "partitioner": "murmur2_random"}))
    out = {"bench": "loadgen", "mode": "worker", "brokers": args.brokers, "run": args.run_id}
    # ---- activity
    if args.activity:
        if not args.events:
            raise RuntimeError("--activity needs --events FILE (user-activity records, one per line)")
        lines = []
        with open(args.events, "rb") as f:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                m = USER.search(line)
                if m is None:
                    raise RuntimeError(f"{args.events}:{len(lines) + 1}: no user_id")
                # Whether the event asks for a re-rank is looked up here, before the clock starts:
                # the load generator shares the machine's cores with the worker under test.
                lines.append((m.group(1), line, REFRESH_ACTION.search(line) is not None))
                if len(lines) >= args.activity:
                    break
        # The flood has its own producer, batching like an upstream service would (linger,
        # compression): a flood of small uncompressed produce requests costs the broker, which
        # shares the cores with the worker under test, more than the worker's own traffic does.
        flood = Producer(kafka_conf(args, **{"linger.ms": args.activity_linger_ms, "acks": "all",
                                             "compression.type": args.activity_compression,
                                             "partitioner": "murmur2_random"}))
        pending = collector.pending_refresh
        t0 = time.perf_counter()
        for i, (k, v, refresh) in enumerate(lines):
            if args.activity_rate:
                wait = t0 + i / args.activity_rate - time.perf_counter()
                if wait > 0:
                    time.sleep(wait)
            if refresh and k not in pending:
                with collector.lock:
                    pending.setdefault(k, time.perf_counter())
            produce(flood, args.activity_topic, k, v)
            if i % 1000 == 0:
                flood.poll(0)
        flood.flush(60)
        t_sent = time.perf_counter()
        act = {"sent": len(lines), "produce_s": round(t_sent - t0, 3),
               "produce_per_s": round(len(lines) / max(t_sent - t0, 1e-9), 1)}
        if args.group:
            c = Consumer(kafka_conf(args, **{"group.id": f"loadgen-probe-{uuid.uuid4().hex[:8]}"}))
            md = c.list_topics(args.activity_topic, timeout=10).topics[args.activity_topic]
            ends = {p: c.get_watermark_offsets(TopicPartition(args.activity_topic, p), timeout=10)[1]
                    for p in md.partitions}
            c.close()
            deadline = time.perf_counter() + args.timeout
            caught = False
            while time.perf_counter() < deadline:
                if group_caught_up(args, args.activity_topic, ends):
                    caught = True
                    break
                time.sleep(0.05)
            t_done = time.perf_counter()
            act["worker_caught_up"] = caught
            if caught:
                # The flood's job includes its event-driven re-ranks. A worker may commit events
                # before publishing their re-ranks (the Python baseline does) or only after (FeedRank:
                # outputs acknowledged first), so "all committed" alone ends one worker's clock before
                # its work is done. Done = every event committed and the re-rank responses quiet for
                # ACTIVITY_QUIET_S, at the later of the last commit and the last re-rank received.
                last = t_done
                while time.perf_counter() < deadline:
                    with collector.lock:
                        last = collector.activity[-1] if collector.activity else t_done
                    if time.perf_counter() - max(last, t_done) >= ACTIVITY_QUIET_S:
                        break
                    time.sleep(0.05)
                t_end = max(t_done, last)
                act["commit_s"] = round(t_done - t0, 3)
                act["worker_s"] = round(t_end - t0, 3)
                act["worker_events_per_s"] = round(len(lines) / (t_end - t0), 1)
        time.sleep(args.settle)
        with collector.lock:
            act["activity_responses"] = len(collector.activity)
            fr = list(collector.freshness_ms)
        # Activity -> re-ranked feed published and consumed (the worker's coalescing window included).
        act["feed_freshness_ms"] = {"samples": len(fr), "p50": pct(fr, 50), "p99": pct(fr, 99)}
        out["activity"] = act
    # ---- requests
    if args.requests:
        rng = np.random.default_rng(args.seed)
        users = rng.integers(lo_user, hi_user + 1, size=args.requests)
        devices = ["ios", "android", "web"]
        sent = {}
        t0 = time.perf_counter()
        for i in range(args.requests):
            if args.rate:
                wait = t0 + i / args.rate - time.perf_counter()
                if wait > 0:
                    time.sleep(wait)
            rid = f"lg-{args.run_id}-{i}"
            uid = int(users[i])
            ctx = {"device": devices[uid % 3], "fresh": args.fresh}
            if args.at is not None:
                ctx["ts"] = args.at
            body = {"request_id": rid, "user_id": uid, "num_items": args.num_items, "context": ctx}
            if args.reply_to:
                body["reply_to"] = args.reply_to
            v = json.dumps(body, separators=(",", ":")).encode()
            sent[rid] = time.perf_counter()
            produce(producer, args.requests_topic, str(uid).encode(), v)
            producer.poll(0)
        producer.flush(60)
        t_last_sent = time.perf_counter()
        deadline = t_last_sent + args.timeout
        while time.perf_counter() < deadline:
            with collector.lock:
                got = sum(1 for r in sent if r in collector.by_id)
            if got >= len(sent):
                break
            time.sleep(0.02)
        with collector.lock:
            by_id = {k: list(v) for k, v in collector.by_id.items()}
            status = dict(collector.status)
        lat, last = [], t0
        ok = err = dup = 0
        for rid, ts in sent.items():
            arr = by_id.get(rid)
            if not arr:
                continue
            lat.append((arr[0] - ts) * 1e3)
            last = max(last, arr[0])
            dup += len(arr) - 1
            if status.get(rid) == "ok":
                ok += 1
            else:
                err += 1
        answered = len(lat)
        out["requests"] = {
            "sent": len(sent), "ok": ok, "error": err, "missing": len(sent) - answered, "duplicates": dup,
            "rate_target": args.rate, "send_per_s": round(len(sent) / max(t_last_sent - t0, 1e-9), 1),
            "responses_per_s": round(answered / max(last - t0, 1e-9), 1) if answered else 0.0,
            "e2e_ms": {"p50": pct(lat, 50), "p90": pct(lat, 90), "p99": pct(lat, 99),
                       "max": round(max(lat), 3) if lat else None},
            "num_items": args.num_items, "fresh": args.fresh, "users": args.users}
    collector.running = False
    collector.join(5)
    return out


def broker_mode(args) -> dict:
    from confluent_kafka import Consumer, Producer, TopicPartition
    from confluent_kafka.admin import AdminClient
    topic = f"loadgen-broker-{args.run_id}"
    ensure_topics(args, [topic], args.partitions)
    payload = (b'{"event_id":"e-0","user_id":1,"item_id":100001,"action":"impression","ts":1795700000000}'
               .ljust(args.size, b" "))
    producer = Producer(kafka_conf(args, **{"linger.ms": 5, "acks": "all", "partitioner": "murmur2_random"}))
    out = {"bench": "loadgen", "mode": "broker", "brokers": args.brokers, "topic": topic, "size": args.size,
           "partitions": args.partitions}
    keys = [str(i % 10000).encode() for i in range(10000)]
    t0 = time.perf_counter()
    for i in range(args.messages):
        produce(producer, topic, keys[i % 10000], payload)
        if i % 1000 == 0:
            producer.poll(0)
    producer.flush(120)
    tp = time.perf_counter() - t0
    out["produce_per_s"] = round(args.messages / tp, 1)
    c = Consumer(kafka_conf(args, **{"group.id": f"loadgen-{args.run_id}", "enable.auto.commit": False,
                                     "fetch.wait.max.ms": 10, "auto.offset.reset": "earliest"}))
    md = c.list_topics(topic, timeout=10).topics[topic]
    c.assign([TopicPartition(topic, p, 0) for p in md.partitions])
    n = 0
    t0 = time.perf_counter()
    deadline = t0 + args.timeout
    while n < args.messages and time.perf_counter() < deadline:
        n += sum(1 for m in c.consume(num_messages=10000, timeout=0.1) if m.error() is None)
    tc = time.perf_counter() - t0
    out["consumed"] = n
    out["consume_per_s"] = round(n / tc, 1)
    if args.roundtrip:
        lat = []
        stop = threading.Event()

        def consume():
            while not stop.is_set():
                for m in c.consume(num_messages=1000, timeout=0.05):
                    if m.error() is None and m.value().startswith(b"rt "):
                        lat.append((time.perf_counter() - float(m.value()[3:].decode())) * 1e3)
        th = threading.Thread(target=consume, daemon=True)
        th.start()
        t0 = time.perf_counter()
        for i in range(args.roundtrip):
            if args.rate:
                wait = t0 + i / args.rate - time.perf_counter()
                if wait > 0:
                    time.sleep(wait)
            produce(producer, topic, keys[i % 10000], f"rt {time.perf_counter():.6f}".encode())
            producer.poll(0)
        producer.flush(60)
        deadline = time.perf_counter() + args.timeout
        while len(lat) < args.roundtrip and time.perf_counter() < deadline:
            time.sleep(0.02)
        stop.set()
        th.join(5)
        out["roundtrip"] = {"sent": args.roundtrip, "received": len(lat), "rate": args.rate,
                            "p50_ms": pct(lat, 50), "p99_ms": pct(lat, 99)}
    c.close()
    try:
        admin = AdminClient(kafka_conf(args))
        for f in admin.delete_topics([topic], operation_timeout=10).values():
            f.result()
        out["deleted_topic"] = True
    except Exception as e:
        out["deleted_topic"] = f"no ({e})"
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="loadgen.py", description="Kafka load generator for FeedRank workers.")
    p.add_argument("mode", choices=["worker", "broker", "topics"])
    p.add_argument("--brokers", default="127.0.0.1:19092")
    p.add_argument("--kafka", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--activity-topic", default="user-activity")
    p.add_argument("--requests-topic", default="ranking-requests")
    p.add_argument("--responses-topic", default="ranking-responses")
    p.add_argument("--dlq-topic", default="ranking-dlq")
    p.add_argument("--state-topic", default="user-state")
    p.add_argument("--reply-to", help="reply_to of the requests (default: none, the worker's response topic)")
    p.add_argument("--partitions", type=int, default=4, help="topics / broker mode: partitions per topic")
    p.add_argument("--delete", action="store_true", help="topics mode: delete the topics instead")
    p.add_argument("--activity", type=int, default=0, help="activity records to send")
    p.add_argument("--activity-rate", type=float, default=0.0, help="activity records/s (0 = as fast as possible)")
    p.add_argument("--activity-linger-ms", type=float, default=5.0,
                   help="linger.ms of the activity flood's producer (librdkafka's default)")
    p.add_argument("--activity-compression", default="lz4", choices=["none", "gzip", "snappy", "lz4", "zstd"],
                   help="compression.type of the activity flood's producer")
    p.add_argument("--events", help="user-activity records to send (.jsonl)")
    p.add_argument("--group", help="the worker's group id: wait for it to commit all activity")
    p.add_argument("--requests", type=int, default=0, help="ranking requests to send")
    p.add_argument("--rate", type=float, default=0.0, help="requests/s (0 = as fast as possible)")
    p.add_argument("--users", default="1:10000", help="user_id range LO:HI (inclusive)")
    p.add_argument("--num-items", type=int, default=50)
    p.add_argument("--fresh", dest="fresh", action="store_true", default=True,
                   help="context.fresh true: bypass L1, every request is ranked (default)")
    p.add_argument("--no-fresh", dest="fresh", action="store_false")
    p.add_argument("--at", type=int, help="context.ts (default: omitted, the record timestamp)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for responses / catch-up")
    p.add_argument("--settle", type=float, default=0.5, help="seconds to wait for activity re-ranks")
    p.add_argument("--messages", type=int, default=100000, help="broker mode: records")
    p.add_argument("--size", type=int, default=110, help="broker mode: record size in bytes")
    p.add_argument("--roundtrip", type=int, default=0, help="broker mode: paced round-trip records")
    p.add_argument("--run-id", default=uuid.uuid4().hex[:8])
    p.add_argument("--json-out", help="also write the summary to this file")
    args = p.parse_args(argv)
    for kv in args.kafka:
        if "=" not in kv:
            print(f"loadgen: --kafka {kv!r} must be KEY=VALUE", file=sys.stderr)
            return 2
    if not re.fullmatch(r"-?\d+:-?\d+", args.users):
        print(f"loadgen: --users {args.users!r} must be LO:HI", file=sys.stderr)
        return 2
    try:
        if args.mode == "topics":
            names = [args.activity_topic, args.requests_topic, args.responses_topic, args.dlq_topic, args.state_topic]
            if args.delete:
                res = {"bench": "loadgen", "mode": "topics", "deleted": delete_topics(args, names)}
            else:
                created, parts = ensure_topics(args, names, args.partitions)
                res = {"bench": "loadgen", "mode": "topics", "created": created, "partitions": parts}
        elif args.mode == "broker":
            res = broker_mode(args)
        else:
            res = worker_mode(args)
    except (RuntimeError, OSError) as e:
        print(f"loadgen: {e}", file=sys.stderr)
        return 1
    res["load"] = [round(x, 2) for x in os.getloadavg()]
    line = json.dumps(res)
    print(line, flush=True)
    if args.json_out:
        with open(args.json_out, "w") as f:
            f.write(line + "\n")
    return 0
