#!/usr/bin/env python3
"""Real-embedding benchmark set for the IVF-PQ index (issue 4): a bundle's item embeddings as
the base, real user embeddings as the queries, exact inner-product ground truth.

Each user's state is replayed from the world's activity log with the contract reference
(tools/feedrank_tools/reference.py), decayed to the world's "now" (world.json's world_now, else
the last event) and passed through the bundle's user tower with the user's device; users
without events are skipped (their cold-start embeddings differ only by context).

Writes OUT/base.fvecs (N x D; id = embedding row), OUT/queries.fvecs and OUT/gt.ivecs (top-100).

    python tools/real_queries.py --world data/world-100k --out data/real-100k --users 5000
"""
import argparse
import json
import os
import sys
import time
from collections import defaultdict

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from feedrank_tools import reference  # noqa: E402
from gen_synthetic import exact_top_k, write_vecs  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--world", required=True, help="directory with bundle/, events.jsonl, users.jsonl")
    ap.add_argument("--bundle", help="bundle directory (default WORLD/bundle)")
    ap.add_argument("--events", help="activity log (default WORLD/events.jsonl)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--users", type=int, default=5000, help="at most this many users (lowest ids first)")
    ap.add_argument("--k", type=int, default=100)
    args = ap.parse_args()

    bundle_dir = args.bundle or os.path.join(args.world, "bundle")
    events_path = args.events or os.path.join(args.world, "events.jsonl")
    t0 = time.time()
    bundle = reference.Bundle.load(bundle_dir)
    manifest = bundle.manifest
    devices = {}
    users_path = os.path.join(args.world, "users.jsonl")
    if os.path.exists(users_path):
        with open(users_path) as f:
            for line in f:
                u = json.loads(line)
                devices[int(u["user_id"])] = u.get("device")
    now = None
    world_json = os.path.join(args.world, "world.json")
    if os.path.exists(world_json):
        now = json.load(open(world_json)).get("world_now")

    by_user = defaultdict(list)
    last_ts = 0
    with open(events_path) as f:
        for n, line in enumerate(f, 1):
            e = reference.parse_event(json.loads(line), where=f"{events_path}:{n}")
            if e.user_id <= args.users or len(by_user) < args.users:
                by_user[e.user_id].append(e)
            last_ts = max(last_ts, e.ts)
    T = now or last_ts
    chosen = sorted(by_user)[:args.users]
    print(f"{len(chosen)} users with events, replaying to T={T} ({time.time() - t0:.0f} s)", file=sys.stderr)

    tower = reference.Tower(bundle.tower_weights)
    feats = []
    for i, uid in enumerate(chosen):
        state = reference.replay(uid, by_user[uid], bundle)
        feats.append(reference.features(state, T, devices.get(uid), manifest))
        if (i + 1) % 1000 == 0:
            print(f"  {i + 1}/{len(chosen)} users ({time.time() - t0:.0f} s)", file=sys.stderr, flush=True)
    queries = tower(np.stack(feats)).astype(np.float32)
    base = np.ascontiguousarray(bundle.item_embeddings, dtype=np.float32)
    gt = exact_top_k(base, queries, args.k, progress=False)
    os.makedirs(args.out, exist_ok=True)
    write_vecs(os.path.join(args.out, "base.fvecs"), base, np.float32)
    write_vecs(os.path.join(args.out, "queries.fvecs"), queries, np.float32)
    write_vecs(os.path.join(args.out, "gt.ivecs"), gt, np.int32)
    print(f"wrote {args.out}: {len(base)} items x {base.shape[1]}, {len(queries)} user queries "
          f"({time.time() - t0:.0f} s)", file=sys.stderr)


if __name__ == "__main__":
    main()
