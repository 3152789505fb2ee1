"""The seed-style daily batch job in Python (issue 7's comparison): precompute every active
user's feed into the L1 cache.

    python tools/batch_baseline.py --bundle data/world-100k/bundle --batch-size 1000 \
        --redis redis://127.0.0.1:16379 [--users-file USERS.jsonl] [--events EVENTS.jsonl] \
        [--active-days 30] [--at MS] [--limit N] [--num-items 50] [--index-cache DIR] \
        [--states-cache FILE]

Active users are the users with at least one user-activity record in the --active-days before T
(default T: the world's world_now). Their states are built from the events file with
reference.UserState.apply (timed separately: the seed read its features from a store). Then, in
batches of --batch-size: features and one PyTorch forward for the batch, one faiss search per
category for the batch (feedrank_tools.pipeline, one thread), exact re-scoring and the rules per
user, and the L1 writes -- `rankings:user:{id}` = the contract's response JSON with trigger
"backfill", TTL 24 h -- through one redis-py pipeline per batch.

Prints one JSON line: users, users_per_s (ranking + writes), the breakdown in seconds, the state
build time, short lists, and the configuration.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

import numpy as np

from .errors import ToolsError
from .pipeline import Pipeline, PipelineConfig
from .reference import DAY_MS, Bundle
from .responses import dumps, now_ms, published_index, response
from .rules import Catalogue
from .worldio import load_states_cached, load_users, stderr_log, world_info

L1_BACKFILL_TTL_S = 24 * 3600


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="batch_baseline.py", description="Seed-style Python batch job (issue 7).")
    p.add_argument("--bundle", required=True)
    p.add_argument("--users-file", help="users.jsonl (devices; default BUNDLE/../users.jsonl)")
    p.add_argument("--events", help="user-activity records (default BUNDLE/../events.jsonl)")
    p.add_argument("--redis", default="redis://127.0.0.1:16379")
    p.add_argument("--batch-size", type=int, default=1000)
    p.add_argument("--active-days", type=float, default=30.0)
    p.add_argument("--at", type=int, help="T in ms (default: the world's world_now)")
    p.add_argument("--limit", type=int, default=0, help="rank at most N active users (0 = all)")
    p.add_argument("--num-items", type=int, default=50)
    p.add_argument("--key-prefix", default="", help="prefix for the L1 keys (tests); default none")
    p.add_argument("--index-cache", help="directory to keep built faiss indexes in")
    p.add_argument("--states-cache", help="file to keep the built user states in (rebuilt when stale)")
    d = PipelineConfig()
    p.add_argument("--k", type=int, default=d.k)
    p.add_argument("--nprobe", type=int, default=d.nprobe)
    args = p.parse_args(argv)
    if args.batch_size < 1 or not 1 <= args.num_items <= 500:
        print("batch_baseline: --batch-size must be >= 1 and --num-items in 1..500", file=sys.stderr)
        return 2
    import redis
    log = stderr_log("batch_baseline")
    world = os.path.dirname(os.path.abspath(args.bundle.rstrip("/")))
    users_file = args.users_file or os.path.join(world, "users.jsonl")
    events = args.events or os.path.join(world, "events.jsonl")
    try:
        r = redis.Redis.from_url(args.redis)
        r.ping()
    except (redis.RedisError, ValueError) as e:
        print(f"batch_baseline: --redis {args.redis}: {e}", file=sys.stderr)
        return 2
    try:
        bundle = Bundle.load(args.bundle)
        cat = Catalogue.from_bundle(bundle)
        T = args.at if args.at is not None else int(world_info(world).get("world_now", now_ms()))
        devices = {u["user_id"]: u.get("device") for u in load_users(users_file)}
        t0 = time.perf_counter()
        states = load_states_cached(events, bundle, args.states_cache, until=T, log=log)
        states_s = time.perf_counter() - t0
        lo = T - int(args.active_days * DAY_MS)
        active = sorted(uid for uid, st in states.items() if st.t_last is not None and st.t_last >= lo)
        if args.limit:
            active = active[:args.limit]
        pipe = Pipeline(bundle, cat, PipelineConfig(k=args.k, nprobe=args.nprobe), index_cache=args.index_cache,
                        log=log)
    except FileNotFoundError as e:
        print(f"batch_baseline: {e.filename}: no such file", file=sys.stderr)
        return 2
    except ToolsError as e:
        print(f"batch_baseline: {e.message}", file=sys.stderr)
        return 2 if e.code in ("bad_bundle", "bad_argument", "bad_event") else 1
    pub = published_index(cat)
    mv = bundle.manifest.model_version
    write_ns = json_ns = 0
    load0 = os.getloadavg()
    t_start = time.perf_counter()
    done = 0
    for b in range(0, len(active), args.batch_size):
        uids = active[b:b + args.batch_size]
        tb = time.perf_counter()
        lists = pipe.rank_batch([states[u] for u in uids], T, [devices.get(u) for u in uids], args.num_items)
        t1 = time.perf_counter_ns()
        per_user_ms = (time.perf_counter() - tb) * 1e3 / len(uids)
        gen = now_ms()
        values = [dumps(response(rk, uid, "backfill", None, per_user_ms, mv, False, T, pub, generated_at=gen))
                  for uid, rk in zip(uids, lists)]
        t2 = time.perf_counter_ns()
        try:
            with r.pipeline(transaction=False) as pl:
                for uid, v in zip(uids, values):
                    pl.set(f"{args.key_prefix}rankings:user:{uid}", v, ex=L1_BACKFILL_TTL_S)
                pl.execute()
        except redis.RedisError as e:
            print(f"batch_baseline: redis write failed after {done} users: {e}", file=sys.stderr)
            return 1
        t3 = time.perf_counter_ns()
        json_ns += t2 - t1
        write_ns += t3 - t2
        done += len(uids)
        el = time.perf_counter() - t_start
        log(f"{done}/{len(active)} users, {done / el:.0f} users/s, eta {(len(active) - done) * el / done:.0f}s")
    wall = time.perf_counter() - t_start
    res = {"bench": "python_batch", "bundle": args.bundle, "items": len(cat), "at": T, "users": done,
           "active_users": len(active), "batch_size": args.batch_size, "num_items": args.num_items,
           "users_per_s": round(done / wall, 1) if wall > 0 else None, "seconds": round(wall, 3),
           "breakdown_s": {**{k: round(v / 1e9, 3) for k, v in pipe.timers.items()},
                           "json": round(json_ns / 1e9, 3), "redis": round(write_ns / 1e9, 3)},
           "state_build_s": round(states_s, 1), "short_lists": pipe.counters["short"],
           "grown_retrievals": pipe.counters["grown"], "config": pipe.config_json(),
           "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "threads": 1,
                       "load_start": [round(x, 2) for x in load0],
                       "load_end": [round(x, 2) for x in os.getloadavg()]}}
    print(json.dumps(res), flush=True)
    return 0
