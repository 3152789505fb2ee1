"""The Python ranking pipeline's throughput, latency and overlap with the exact lists (issue 5).

    python tools/bench_pipeline.py --bundle data/world-100k/bundle --users 1000 --num-items 50 \
        [--at now,nofresh] [--k 16 --nprobe 16 --pq-m 16 --fresh-k 8] [--index-cache DIR]

The world's users.jsonl and events.jsonl are read from the bundle's parent directory (or
--users-file / --events). N users are sampled (seeded) from users.jsonl; their states are the
world's events applied with reference.UserState.apply (users without events are cold starts);
the device is the user's main device. For each scenario T (`now` = the world's world_now, some
items fresh; `nofresh` = 25 h after the newest item, none fresh; or milliseconds):

* the pipeline (feedrank_tools.pipeline: PyTorch tower one user at a time, per-category faiss
  IndexIVFPQ, fresh and promoted candidate sources, exact re-scoring, the rules) ranks every user
  once, one thread, timed per ranking after --warmup untimed rankings;
* the exact reference (feedrank_tools.rules.rank_exact: every item scored, same rules) ranks the
  same users, also timed: the "exact search" comparison;
* overlap@N = |pipeline list & exact list| / N, averaged over users.

Prints one JSON line per scenario: rankings_per_s, p50_ms, p99_ms, breakdown_us (mean per
ranking: features_tower, retrieval, rescore, rules), overlap (mean, p10, min), exact
{rankings_per_s, p50_ms, p99_ms}, counts (cold starts, short lists, grown retrievals), the
configuration and the machine's load average at the start and end.
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
from .pipeline import Pipeline, PipelineConfig, overlap
from .reference import HOUR_MS, Bundle
from .rules import Catalogue, is_fresh, rank_exact
from .worldio import load_states_cached, load_users, stderr_log, world_info


def percentile(xs, q):
    return float(np.percentile(np.asarray(xs, dtype=np.float64), q)) if len(xs) else float("nan")


def scenario_times(spec: str, world_now: int, newest: int) -> list:
    out = []
    for part in spec.split(","):
        part = part.strip()
        if part == "now":
            out.append(("now", world_now))
        elif part == "nofresh":
            out.append(("nofresh", max(world_now, newest) + 25 * HOUR_MS))
        else:
            try:
                out.append((part, int(part)))
            except ValueError:
                raise ToolsError("bad_argument", f"--at: {part!r} is not now, nofresh or milliseconds") from None
    return out


def run_scenario(pipe: Pipeline, bundle: Bundle, cat: Catalogue, users: list, states: dict, name: str, T: int,
                 num_items: int, warmup: int, exact: bool) -> dict:
    for key in pipe.timers:
        pipe.timers[key] = 0
    for key in pipe.counters:
        pipe.counters[key] = 0
    for u in users[:warmup]:
        pipe.rank(states.get(u["user_id"]), T, u.get("device"), num_items)
    for key in pipe.timers:
        pipe.timers[key] = 0
    for key in pipe.counters:
        pipe.counters[key] = 0
    lat, lists = [], []
    load0 = os.getloadavg()
    t_all = time.perf_counter()
    for u in users:
        t0 = time.perf_counter_ns()
        r = pipe.rank(states.get(u["user_id"]), T, u.get("device"), num_items)
        lat.append(time.perf_counter_ns() - t0)
        lists.append(r.item_ids)
    wall = time.perf_counter() - t_all
    n = len(users)
    res = {
        "bench": "python_pipeline", "scenario": name, "at": T, "items": len(cat), "users": n,
        "num_items": num_items, "fresh_items": int(is_fresh(cat.published_at, T).sum()),
        "cold_start": sum(1 for u in users if u["user_id"] not in states),
        "rankings_per_s": round(n / wall, 1),
        "p50_ms": round(percentile(lat, 50) / 1e6, 3), "p99_ms": round(percentile(lat, 99) / 1e6, 3),
        "breakdown_us": {k: round(v / n / 1e3, 1) for k, v in pipe.timers.items()},
        "short_lists": pipe.counters["short"], "grown_retrievals": pipe.counters["grown"],
        "candidates_per_ranking": round(pipe.counters["candidates"] / n, 1),
    }
    if exact:
        elat, ov = [], []
        for u, got in zip(users, lists):
            st = states.get(u["user_id"])
            t0 = time.perf_counter_ns()
            uemb = pipe.embed(st, T, u.get("device"))
            ref = rank_exact(uemb, bundle, cat, st, T, num_items, pipe.rules)
            elat.append(time.perf_counter_ns() - t0)
            ov.append(overlap(got, ref.item_ids))
        res["overlap"] = {"mean": round(float(np.mean(ov)), 4), "p10": round(percentile(ov, 10), 4),
                          "min": round(float(np.min(ov)), 4)}
        res["exact"] = {"rankings_per_s": round(n / (sum(elat) / 1e9), 2),
                        "p50_ms": round(percentile(elat, 50) / 1e6, 3),
                        "p99_ms": round(percentile(elat, 99) / 1e6, 3)}
    res["config"] = pipe.config_json()
    res["machine"] = {"cpus": os.cpu_count(), "python": platform.python_version(),
                      "load_start": [round(x, 2) for x in load0],
                      "load_end": [round(x, 2) for x in os.getloadavg()], "threads": 1}
    return res


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="bench_pipeline.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--bundle", required=True)
    p.add_argument("--events", help="user-activity records (default: BUNDLE/../events.jsonl)")
    p.add_argument("--users-file", help="users.jsonl (default: BUNDLE/../users.jsonl)")
    p.add_argument("--users", type=int, default=1000, help="users to rank (sampled, seeded)")
    p.add_argument("--num-items", type=int, default=50)
    p.add_argument("--at", default="now,nofresh", help="scenarios: now, nofresh or ms, comma-separated")
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--seed", type=int, default=7, help="user sample seed")
    p.add_argument("--no-exact", action="store_true", help="skip the exact lists (no overlap)")
    p.add_argument("--index-cache", help="directory to keep built faiss indexes in (default: none)")
    p.add_argument("--states-cache", help="file to keep the sampled users' states in (rebuilt when stale)")
    d = PipelineConfig()
    p.add_argument("--k", type=int, default=d.k, help="organic candidates per category")
    p.add_argument("--nprobe", type=int, default=d.nprobe)
    p.add_argument("--pq-m", type=int, default=d.pq_m)
    p.add_argument("--lists-per-sqrt", type=float, default=d.lists_per_sqrt)
    p.add_argument("--fresh-k", type=int, default=d.fresh_k)
    p.add_argument("--max-rounds", type=int, default=d.max_rounds)
    args = p.parse_args(argv)
    if args.users < 1 or not 1 <= args.num_items <= 500 or args.k < 1 or args.nprobe < 1:
        print("bench_pipeline: --users, --k, --nprobe must be >= 1 and --num-items in 1..500", file=sys.stderr)
        return 2
    log = stderr_log("bench_pipeline")
    world = os.path.dirname(os.path.abspath(args.bundle.rstrip("/")))
    events = args.events or os.path.join(world, "events.jsonl")
    users_file = args.users_file or os.path.join(world, "users.jsonl")
    try:
        t0 = time.perf_counter()
        bundle = Bundle.load(args.bundle)
        cat = Catalogue.from_bundle(bundle)
        log(f"bundle: {len(cat)} items in {time.perf_counter() - t0:.1f}s")
        all_users = load_users(users_file)
        rng = np.random.default_rng(args.seed)
        pick = np.sort(rng.choice(len(all_users), size=min(args.users, len(all_users)), replace=False))
        users = [all_users[i] for i in pick]
        states = load_states_cached(events, bundle, args.states_cache, user_ids={u["user_id"] for u in users},
                                    log=log)
        info = world_info(world)
        world_now = int(info.get("world_now", int(cat.published_at.max())))
        scenarios = scenario_times(args.at, world_now, int(cat.published_at.max()))
        cfg = PipelineConfig(k=args.k, nprobe=args.nprobe, pq_m=args.pq_m, lists_per_sqrt=args.lists_per_sqrt,
                             fresh_k=args.fresh_k, max_rounds=args.max_rounds)
        t0 = time.perf_counter()
        pipe = Pipeline(bundle, cat, cfg, index_cache=args.index_cache, log=log)
        log(f"indexes ready in {time.perf_counter() - t0:.1f}s")
        for name, T in scenarios:
            res = run_scenario(pipe, bundle, cat, users, states, name, T, args.num_items, args.warmup,
                               not args.no_exact)
            res["bundle"] = args.bundle
            print(json.dumps(res), flush=True)
    except FileNotFoundError as e:
        print(f"bench_pipeline: {e.filename}: no such file", file=sys.stderr)
        return 2
    except ToolsError as e:
        print(f"bench_pipeline: {e.message}", file=sys.stderr)
        return 2 if e.code in ("bad_bundle", "bad_argument", "bad_event") else 1
    return 0
