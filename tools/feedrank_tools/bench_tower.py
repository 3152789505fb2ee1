"""PyTorch's own timing of the user side of a bundle, one thread, for BENCHMARKS.md.

    python tools/bench_tower.py --bundle demo/bundle [--users 1000] [--repeats 7] [--seed 3]

Prints one JSON object:
  state_update_ns_per_event   reference.UserState.apply (numpy float64), median per event
  features_us_per_user        reference.features (numpy float64), one user
  tower_us_per_user           torch forward of the user tower + L2 normalise, one [1, F] float32 input
  features_tower_us_per_user  both, as the worker does per user
  batch_features_ms           features for --users users (a Python loop over the reference)
  batch_tower_ms              torch forward on one [users, F] float32 batch (+ normalise)
  batch_total_ms              both
Every figure is the median of --repeats runs (per-user figures: of runs over all users).
torch.set_num_threads(1); torch.inference_mode(); the inputs are prepared before timing.
The users are parity-style histories (tools/feedrank_tools/parity.py, kind "mixed").
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time

import numpy as np

from .errors import ToolsError
from .parity import make_case
from .reference import Bundle, Tower, UserState, features, parse_event


def run(bundle_dir: str, users: int, repeats: int, seed: int) -> dict:
    import torch
    torch.set_num_threads(1)
    bundle = Bundle.load(bundle_dir)
    m = bundle.manifest
    rng = np.random.default_rng(seed)
    cases = [make_case("mixed", 1 + i, rng, bundle.item_ids) for i in range(users)]
    events = [[parse_event(r) for r in c["events"]] for c in cases]
    n_events = sum(len(e) for e in events)

    def replay_all():
        out = []
        for c, evs in zip(cases, events):
            st = UserState.empty(c["user_id"], m)
            for e in evs:
                st.apply(e, bundle)
            out.append(st)
        return out

    update_ns = []
    for _ in range(repeats):
        t = time.perf_counter_ns()
        states = replay_all()
        update_ns.append((time.perf_counter_ns() - t) / n_events)

    module = Tower(bundle.tower_weights).module
    norm = torch.nn.functional.normalize
    X = np.stack([features(s, c["at"], c["device"], m) for s, c in zip(states, cases)])
    xs = [torch.from_numpy(X[i:i + 1].astype(np.float32)) for i in range(users)]
    xb = torch.from_numpy(X.astype(np.float32))

    feat_us, tower_us, both_us = [], [], []
    with torch.inference_mode():
        for _ in range(2):  # warm-up
            for i in range(users):
                norm(module(xs[i]), dim=-1)
        for _ in range(repeats):
            t = time.perf_counter_ns()
            for s, c in zip(states, cases):
                features(s, c["at"], c["device"], m)
            feat_us.append((time.perf_counter_ns() - t) / users / 1e3)
            t = time.perf_counter_ns()
            for i in range(users):
                norm(module(xs[i]), dim=-1)
            tower_us.append((time.perf_counter_ns() - t) / users / 1e3)
            t = time.perf_counter_ns()
            for s, c in zip(states, cases):
                x = features(s, c["at"], c["device"], m)
                norm(module(torch.from_numpy(x.astype(np.float32)).unsqueeze(0)), dim=-1)
            both_us.append((time.perf_counter_ns() - t) / users / 1e3)
        bf, bt, ball = [], [], []
        for _ in range(repeats):
            t = time.perf_counter_ns()
            Xr = np.stack([features(s, c["at"], c["device"], m) for s, c in zip(states, cases)])
            t1 = time.perf_counter_ns()
            norm(module(xb), dim=-1)
            t2 = time.perf_counter_ns()
            norm(module(torch.from_numpy(Xr.astype(np.float32))), dim=-1)
            t3 = time.perf_counter_ns()
            bf.append((t1 - t) / 1e6)
            bt.append((t2 - t1) / 1e6)
            ball.append((t1 - t) / 1e6 + (t3 - t2) / 1e6)

    med = statistics.median
    return {
        "bundle": bundle_dir, "users": users, "events": n_events, "repeats": repeats,
        "feature_dim": m.feature_dim, "hidden": list(m.hidden), "embedding_dim": m.embedding_dim,
        "state_update_ns_per_event": round(med(update_ns), 1),
        "features_us_per_user": round(med(feat_us), 2),
        "tower_us_per_user": round(med(tower_us), 2),
        "features_tower_us_per_user": round(med(both_us), 2),
        "batch_features_ms": round(med(bf), 3),
        "batch_tower_ms": round(med(bt), 3),
        "batch_total_ms": round(med(ball), 3),
        "torch": torch.__version__, "threads": torch.get_num_threads(), "python": platform.python_version(),
        "numpy": np.__version__,
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="bench_tower.py", description="PyTorch's own features + user tower timing.")
    p.add_argument("--bundle", required=True)
    p.add_argument("--users", type=int, default=1000)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--seed", type=int, default=3)
    args = p.parse_args(argv)
    if args.users < 1 or args.repeats < 1:
        print("bench_tower: --users and --repeats must be at least 1", file=sys.stderr)
        return 2
    try:
        print(json.dumps(run(args.bundle, args.users, args.repeats, args.seed)))
    except ToolsError as e:
        print(f"bench_tower: {e.message}", file=sys.stderr)
        return 2
    return 0
