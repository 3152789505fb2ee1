"""The Python stream worker (issue 6's comparison): confluent-kafka + PyTorch + faiss-cpu.

    python tools/worker_baseline.py --bundle data/world-100k/bundle --brokers 127.0.0.1:19092 \
        --redis redis://127.0.0.1:16379 [--group feedrank-py] [--duration 120] [--idle-exit 30]

One process, one thread, one consumer in group --group subscribed to user-activity and
ranking-requests (range assignment: with equal partition counts partition p of both topics goes
to the same member). Per poll batch (up to --max-batch records), in partition order:

* user-activity: parse + validate (contract section 1), key == user_id, then
  reference.UserState.apply(event, src=(partition, offset)) -- a redelivered record (same
  partition, offset <= the state's src, or a recent event_id) is not applied twice. A user's
  state not in memory is restored from L4 (`features:user:{id}`) first. Click, like, comment,
  share and hide schedule an event-driven re-rank, coalesced per user over --coalesce-ms, with
  num_items 50 and the device of the user's last request, published with trigger "activity".
* ranking-requests: parse + validate; a non-fresh request is answered from L1
  (`rankings:user:{id}`) when the contract allows it (same model_version, >= num_items items,
  none of the first num_items impressed in the 24 h before T); otherwise ranked with
  feedrank_tools.pipeline (T = context.ts, else the record timestamp), the response goes to
  reply_to (or --responses-topic) keyed by user_id, and to L1 (TTL 12 h).
* bad records go to --dlq-topic unchanged with headers error, source_topic, source_partition,
  source_offset; a bad request with a request_id also gets a status "error" response.

After the batch: embeddings of the users whose state changed (one tower forward) to L2
(`embedding:user:{id}`, little-endian float32, TTL 1 h), their states to L4 (TTL 30 min) and
to --state-topic (key user_id, the source partition), all Redis writes in one pipeline; then
producer.flush() (every delivery acknowledged) and only then a commit of the
batch's offsets (asynchronous, off the latency path). A failed delivery or Redis write stops the
worker without committing.

Limits of this baseline (it is a comparison, not the product): state restore reads L4 only (not
the user-state topic); an activity re-rank is published after its events were committed.

Stops on SIGINT/SIGTERM, after --duration seconds, or after --idle-exit seconds without a
record; prints a JSON summary (records, rankings, cache hits, DLQ, rates) on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time

import numpy as np

from .errors import ToolsError
from .pipeline import Pipeline, PipelineConfig
from .reference import HOUR_MS, Bundle, UserState, features, parse_event
from .responses import dumps, error_response, now_ms, published_index, response
from .rules import Catalogue, impressed_items
from .worldio import stderr_log

RERANK_ACTIONS = frozenset(("click", "like", "comment", "share", "hide"))
L1_TTL_S = 12 * 3600
L2_TTL_S = 3600
L4_TTL_S = 1800


class BadRecord(Exception):
    def __init__(self, message, request_id=None, user_id=None):
        super().__init__(message)
        self.message = message
        self.request_id = request_id
        self.user_id = user_id


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def parse_request(value: bytes, key) -> dict:
    try:
        obj = json.loads(value)
    except (ValueError, UnicodeDecodeError) as e:
        raise BadRecord(f"not valid JSON ({e})")
    if not isinstance(obj, dict):
        raise BadRecord("a ranking request must be a JSON object")
    rid = obj.get("request_id") if isinstance(obj.get("request_id"), str) else None
    uid = obj.get("user_id") if _is_int(obj.get("user_id")) else None
    if rid is None:
        raise BadRecord("field 'request_id' must be a string", None, uid)
    if uid is None:
        raise BadRecord("field 'user_id' must be an integer", rid, None)
    if key is not None and key != str(uid).encode():
        raise BadRecord(f"key {key[:40]!r} disagrees with user_id {uid}", rid, uid)
    n = obj.get("num_items", 50)
    if not _is_int(n) or not 1 <= n <= 500:
        raise BadRecord("field 'num_items' must be an integer in 1..500", rid, uid)
    ctx = obj.get("context", {})
    if ctx is None:
        ctx = {}
    if not isinstance(ctx, dict):
        raise BadRecord("field 'context' must be an object", rid, uid)
    if "ts" in ctx and not _is_int(ctx["ts"]):
        raise BadRecord("field 'context.ts' must be an integer (ms)", rid, uid)
    if ctx.get("device") is not None and not isinstance(ctx.get("device"), str):
        raise BadRecord("field 'context.device' must be a string", rid, uid)
    if "fresh" in ctx and not isinstance(ctx["fresh"], bool):
        raise BadRecord("field 'context.fresh' must be true or false", rid, uid)
    reply_to = obj.get("reply_to")
    if reply_to is not None and (not isinstance(reply_to, str) or not reply_to):
        raise BadRecord("field 'reply_to' must be a non-empty string", rid, uid)
    return {"request_id": rid, "user_id": uid, "num_items": n, "ts": ctx.get("ts"), "device": ctx.get("device"),
            "fresh": ctx.get("fresh", False), "reply_to": reply_to}


def parse_activity(value: bytes, key):
    try:
        obj = json.loads(value)
    except (ValueError, UnicodeDecodeError) as e:
        raise BadRecord(f"not valid JSON ({e})")
    try:
        ev = parse_event(obj, where="user-activity record")
    except ToolsError as e:
        raise BadRecord(e.message)
    if key is not None and key != str(ev.user_id).encode():
        raise BadRecord(f"key {key[:40]!r} disagrees with user_id {ev.user_id}")
    return ev


class Worker:
    def __init__(self, args, bundle: Bundle, pipe: Pipeline, log):
        import redis
        from confluent_kafka import Consumer, Producer
        self.args = args
        self.bundle = bundle
        self.m = bundle.manifest
        self.pipe = pipe
        self.log = log
        self.pub = published_index(pipe.cat)
        self.kp = args.key_prefix
        self.redis = redis.Redis.from_url(args.redis)
        self.redis.ping()
        common = {"bootstrap.servers": args.brokers}
        extra = dict(kv.split("=", 1) for kv in args.kafka)
        self.consumer = Consumer({**common, "group.id": args.group, "enable.auto.commit": False,
                                  "auto.offset.reset": "earliest", "session.timeout.ms": 6000,
                                  "fetch.wait.max.ms": 10, "partition.assignment.strategy": "range",
                                  **extra})
        self.producer = Producer({**common, "linger.ms": 10, "compression.type": "lz4", "acks": "all",
                                  "partitioner": "murmur2_random",
                                  **extra})
        self.states: dict = {}
        self.missing: set = set()  # users with no L4 entry (cold until their first event)
        self.last_device: dict = {}
        self.pending: dict = {}  # user_id -> due time (monotonic s) of a coalesced re-rank
        self.delivery_errors = []
        self.stats = {"activity": 0, "applied": 0, "duplicates": 0, "requests": 0, "ranked": 0, "cache_hits": 0,
                      "activity_reranks": 0, "dlq": 0, "error_responses": 0, "batches": 0, "commits": 0}
        self.stop = False

    # ---- Kafka helpers

    def _delivered(self, err, msg):
        if err is not None:
            self.delivery_errors.append(str(err))

    def produce(self, topic, key, value, partition=None, headers=None):
        kw = {"key": key, "value": value, "on_delivery": self._delivered}
        if partition is not None:
            kw["partition"] = partition
        if headers:
            kw["headers"] = headers
        while True:
            try:
                self.producer.produce(topic, **kw)
                return
            except BufferError:
                self.producer.poll(0.05)

    def dlq(self, msg, error: str):
        self.produce(self.args.dlq_topic, msg.key(), msg.value(),
                     headers=[("error", error.encode()), ("source_topic", msg.topic().encode()),
                              ("source_partition", str(msg.partition()).encode()),
                              ("source_offset", str(msg.offset()).encode())])
        self.stats["dlq"] += 1

    def _on_assign(self, consumer, partitions):
        self.log(f"assigned {', '.join(f'{p.topic}[{p.partition}]' for p in partitions)}")
        if self.args.ready_file and partitions:
            open(self.args.ready_file, "w").close()
        # States of partitions we may have lost and regained are reloaded from L4.
        self.states.clear()
        self.missing.clear()

    def _on_revoke(self, consumer, partitions):
        self.log(f"revoked {len(partitions)} partitions")
        self.states.clear()
        self.missing.clear()

    # ---- state

    def restore(self, user_ids):
        want = [u for u in user_ids if u not in self.states and u not in self.missing]
        if not want:
            return
        vals = self.redis.mget([f"{self.kp}features:user:{u}" for u in want])
        for u, v in zip(want, vals):
            if v is None:
                self.missing.add(u)
                continue
            try:
                self.states[u] = UserState.from_json(v, self.m)
            except ToolsError as e:
                self.log(f"L4 state of user {u} is unreadable ({e.message}); starting fresh")
                self.missing.add(u)

    # ---- ranking

    def rank_and_publish(self, user_id, T, device, num_items, request_id, trigger, topic, received, rpipe):
        st = self.states.get(user_id)
        ranked = self.pipe.rank(st, T, device, num_items)
        resp = response(ranked, user_id, trigger, request_id, (time.perf_counter() - received) * 1e3,
                        self.m.model_version, st is None, T, self.pub)
        body = dumps(resp)
        self.produce(topic, str(user_id).encode(), body)
        rpipe.set(f"{self.kp}rankings:user:{user_id}", body, ex=L1_TTL_S)
        self.stats["ranked"] += 1

    def from_cache(self, req, cached, T) -> bool:
        if cached is None:
            return False
        try:
            obj = json.loads(cached)
        except ValueError:
            return False
        if obj.get("model_version") != self.m.model_version or len(obj.get("items", [])) < req["num_items"]:
            return False
        seen = impressed_items(self.states.get(req["user_id"]), T)
        if any(it["item_id"] in seen for it in obj["items"][:req["num_items"]]):
            return False
        return obj

    # ---- the loop

    def run(self):
        from confluent_kafka import KafkaError
        a = self.args
        self.consumer.subscribe([a.activity_topic, a.requests_topic], on_assign=self._on_assign,
                                on_revoke=self._on_revoke)
        started = time.monotonic()
        last_record = started
        first_record = None
        while not self.stop:
            now = time.monotonic()
            if a.duration and now - started >= a.duration:
                break
            if a.idle_exit and first_record is not None and now - last_record >= a.idle_exit and not self.pending:
                break
            msgs = self.consumer.consume(num_messages=a.max_batch, timeout=0.02)
            received = time.perf_counter()
            good = [m for m in msgs if m.error() is None]
            for m in msgs:
                if m.error() is not None and m.error().code() != KafkaError._PARTITION_EOF:
                    self.log(f"consumer error: {m.error()}")
            if good:
                last_record = time.monotonic()
                first_record = first_record or last_record
            self.process(good, received)
        self.flush_pending(force=True)
        if self.stats["commits"]:
            try:
                self.consumer.commit(asynchronous=False)  # the last positions, synchronously
            except Exception as e:  # nothing new to commit
                self.log(f"final commit: {e}")
        self.consumer.close()
        self.producer.flush(30)
        return started, first_record, last_record

    def process(self, msgs, received):
        a = self.args
        rpipe = self.redis.pipeline(transaction=False)
        # Parse first, restore the users' states from L4 in one round trip.
        parsed = []
        for m in msgs:
            try:
                if m.topic() == a.activity_topic:
                    parsed.append((m, "activity", parse_activity(m.value(), m.key())))
                else:
                    parsed.append((m, "request", parse_request(m.value(), m.key())))
            except BadRecord as e:
                self.dlq(m, e.message)
                if m.topic() == a.requests_topic and e.request_id is not None:
                    self.produce(a.responses_topic, m.key(), dumps(error_response(e.request_id, e.user_id, e.message)))
                    self.stats["error_responses"] += 1
        self.restore({p[2].user_id if p[1] == "activity" else p[2]["user_id"] for p in parsed})
        cache_keys = [f"{self.kp}rankings:user:{p[2]['user_id']}" for p in parsed if p[1] == "request" and not p[2]["fresh"]]
        cached = dict(zip(cache_keys, self.redis.mget(cache_keys))) if cache_keys else {}
        dirty = {}
        due = time.monotonic() + a.coalesce_ms / 1000.0
        for m, kind, x in parsed:
            if kind == "activity":
                self.stats["activity"] += 1
                st = self.states.get(x.user_id)
                if st is None:
                    st = self.states[x.user_id] = UserState.empty(x.user_id, self.m)
                    self.missing.discard(x.user_id)
                outcome = st.apply(x, self.bundle, src=(m.partition(), m.offset()))
                if outcome == "duplicate":
                    self.stats["duplicates"] += 1
                    continue
                self.stats["applied"] += 1
                dirty[x.user_id] = m.partition()
                if x.action in RERANK_ACTIONS:
                    self.pending.setdefault(x.user_id, due)
            else:
                self.stats["requests"] += 1
                req = x
                uid = req["user_id"]
                if req["device"] is not None:
                    self.last_device[uid] = req["device"]
                T = req["ts"] if req["ts"] is not None else m.timestamp()[1]
                topic = req["reply_to"] or a.responses_topic
                hit = False if req["fresh"] else self.from_cache(req, cached.get(f"{self.kp}rankings:user:{uid}"), T)
                if hit:
                    hit["request_id"] = req["request_id"]
                    hit["trigger"] = "request"
                    hit["latency_ms"] = round((time.perf_counter() - received) * 1e3, 3)
                    self.produce(topic, str(uid).encode(), dumps(hit))
                    self.stats["cache_hits"] += 1
                    continue
                self.rank_and_publish(uid, T, req["device"], req["num_items"], req["request_id"], "request", topic,
                                      received, rpipe)
        self.flush_pending(rpipe=rpipe)
        if dirty:
            uids = list(dirty)
            X = np.stack([features(self.states[u], self.states[u].t_last, self.last_device.get(u), self.m)
                          for u in uids])
            U = self.pipe.tower(X)
            for u, emb in zip(uids, U):
                st = self.states[u]
                body = st.to_json()
                rpipe.set(f"{self.kp}embedding:user:{u}", emb.astype("<f4").tobytes(), ex=L2_TTL_S)
                rpipe.set(f"{self.kp}features:user:{u}", body, ex=L4_TTL_S)
                if a.state_topic:
                    self.produce(a.state_topic, str(u).encode(), body.encode(), partition=dirty[u])
        if len(rpipe):
            rpipe.execute()  # raises on a Redis error: the batch is not committed
        if msgs:
            self.producer.flush()
            if self.delivery_errors:
                raise RuntimeError(f"delivery failed: {self.delivery_errors[0]} (batch not committed)")
            # Every output of these records is acknowledged: commit their offsets. Asynchronous:
            # the commit is off the latency path, and a lost commit only means redelivery,
            # which the states' src offsets and event ids make harmless.
            self.consumer.commit(offsets=self._next_offsets(msgs), asynchronous=True)
            self.stats["commits"] += 1
            self.stats["batches"] += 1
        else:
            self.producer.poll(0)

    @staticmethod
    def _next_offsets(msgs):
        from confluent_kafka import TopicPartition
        last = {}
        for m in msgs:
            k = (m.topic(), m.partition())
            last[k] = max(last.get(k, -1), m.offset())
        return [TopicPartition(t, p, o + 1) for (t, p), o in last.items()]

    def flush_pending(self, rpipe=None, force=False):
        if not self.pending:
            return
        now = time.monotonic()
        due = [u for u, t in self.pending.items() if force or t <= now]
        if not due:
            return
        own = rpipe is None
        rpipe = rpipe or self.redis.pipeline(transaction=False)
        for u in due:
            del self.pending[u]
            T = now_ms()
            self.rank_and_publish(u, T, self.last_device.get(u), 50, None, "activity", self.args.responses_topic,
                                  time.perf_counter(), rpipe)
            self.stats["activity_reranks"] += 1
        if own:
            rpipe.execute()
            self.producer.flush()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="worker_baseline.py", description="The Python stream worker baseline (issue 6).")
    p.add_argument("--bundle", required=True)
    p.add_argument("--brokers", default="127.0.0.1:19092")
    p.add_argument("--redis", default="redis://127.0.0.1:16379")
    p.add_argument("--group", default="feedrank-py")
    p.add_argument("--activity-topic", default="user-activity")
    p.add_argument("--requests-topic", default="ranking-requests")
    p.add_argument("--responses-topic", default="ranking-responses")
    p.add_argument("--dlq-topic", default="ranking-dlq")
    p.add_argument("--state-topic", default="user-state", help="'' disables the changelog")
    p.add_argument("--key-prefix", default="", help="prefix of every Redis key (benchmarks, tests)")
    p.add_argument("--coalesce-ms", type=float, default=200.0)
    p.add_argument("--max-batch", type=int, default=500)
    p.add_argument("--duration", type=float, default=0.0, help="stop after S seconds (0 = no limit)")
    p.add_argument("--idle-exit", type=float, default=0.0, help="stop after S idle seconds once records came")
    p.add_argument("--kafka", action="append", default=[], metavar="KEY=VALUE", help="extra librdkafka settings")
    p.add_argument("--index-cache", help="directory to keep built faiss indexes in")
    p.add_argument("--ready-file", help="touch this file once the group has assigned partitions")
    d = PipelineConfig()
    p.add_argument("--k", type=int, default=d.k)
    p.add_argument("--nprobe", type=int, default=d.nprobe)
    args = p.parse_args(argv)
    for kv in args.kafka:
        if "=" not in kv:
            print(f"worker_baseline: --kafka {kv!r} must be KEY=VALUE", file=sys.stderr)
            return 2
    log = stderr_log("worker_baseline")
    try:
        bundle = Bundle.load(args.bundle)
        cat = Catalogue.from_bundle(bundle)
        pipe = Pipeline(bundle, cat, PipelineConfig(k=args.k, nprobe=args.nprobe), index_cache=args.index_cache,
                        log=log)
        w = Worker(args, bundle, pipe, log)
    except ToolsError as e:
        print(f"worker_baseline: {e.message}", file=sys.stderr)
        return 2
    except Exception as e:  # redis / kafka configuration errors
        print(f"worker_baseline: cannot start: {e}", file=sys.stderr)
        return 2

    def on_signal(signum, frame):
        w.stop = True
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    log(f"consuming {args.activity_topic}, {args.requests_topic} as group {args.group}")
    t0 = time.monotonic()
    try:
        started, first, last = w.run()
    except Exception as e:
        print(f"worker_baseline: {e}", file=sys.stderr)
        print(json.dumps({"bench": "python_worker", "error": str(e), **w.stats}), flush=True)
        return 1
    busy = (last - first) if first is not None else 0.0
    res = {"bench": "python_worker", "bundle": args.bundle, **w.stats, "seconds": round(time.monotonic() - t0, 3),
           "busy_seconds": round(busy, 3), "pipeline_us": {k: round(v / max(1, pipe.counters["rankings"]) / 1e3, 1)
                                                          for k, v in pipe.timers.items()},
           "load_end": [round(x, 2) for x in os.getloadavg()]}
    print(json.dumps(res), flush=True)
    return 0
