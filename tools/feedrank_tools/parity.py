"""Parity cases: what the Swift RankingModel must reproduce, computed by the reference (PyTorch).

    python tools/parity.py --bundle DIR --users 1000 --seed 7 --out FILE.jsonl

FILE.jsonl has one JSON object per line, one line per case (user):

    {"user_id": 1000007,
     "kind": "out_of_order",                 # which scenario made the case (informational)
     "events": [<user-activity records>],     # contract section 1, applied in file order, without
                                              # source positions; may hold redeliveries (a repeated
                                              # event_id: a duplicate, not applied) and items that are
                                              # not in the bundle
     "at": 1795612345678,                     # T, ms since the epoch
     "device": "ios" | "android" | "web" | "tablet" | null,   # "tablet" and null -> "unknown" slot
     "x": [F floats],                         # reference.features(state, at, device), float64
     "u": [D floats],                         # the PyTorch user tower on float32(x), L2-normalised
     "state": <state JSON> | null}            # contract section 2 after all events; null = cold start

Floats are printed with Python's repr (shortest round-trip). The Swift test recomputes the
state from `events`, x and u from (`at`, `device`), and checks x within 1e-6, u within 1e-5
(max abs) and the state (S, c, n within 1e-9 relative; t_last, impressions, src,
recent_event_ids equal).

The cases (deterministic for a seed) cover: cold starts; short and long in-order histories;
events out of order (older than t_last); items not in the bundle; impressions older than 25 h
pruned (including entries exactly at the 25 h boundary, which stay); T before t_last; every
action, with dwell_ms on dwell events; events with equal timestamps; hide-only histories
(negative sums); redelivered event_ids; T at every UTC hour and weekday; every device plus an
unknown one and none.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter

import numpy as np

from .errors import ToolsError
from .reference import (ACTION_NAMES, HOUR_MS, DAY_MS, IMPRESSION_WINDOW_MS, ActivityEvent, Bundle, Tower,
                        UserState, features, parse_event)

BASE_TIME = 1_795_700_000_000
KINDS = ("cold_start", "in_order", "long_history", "out_of_order", "unknown_items", "before_t_last",
         "every_action", "same_timestamps", "hide_only", "redelivery", "prune_boundary", "mixed")


def _actions(rng, n, weights=None):
    p = np.array(weights if weights is not None else [0.55, 0.15, 0.06, 0.04, 0.04, 0.1, 0.06])
    return [ACTION_NAMES[i] for i in rng.choice(len(ACTION_NAMES), size=n, p=p / p.sum())]


def _event(user_id, n, item, action, ts, rng):
    d = {"event_id": f"p{user_id}-{n}", "user_id": int(user_id), "item_id": int(item), "action": action, "ts": int(ts)}
    if action == "dwell":
        d["dwell_ms"] = int(rng.integers(0, 120_000))
    return d


def make_case(kind: str, user_id: int, rng: np.random.Generator, item_ids: np.ndarray) -> dict:
    """Events, T and device for one scenario (before the reference computes x, u, state)."""
    unknown_base = int(item_ids.max()) + 1_000_000

    def item(p_unknown=0.0):
        if rng.random() < p_unknown:
            return unknown_base + int(rng.integers(0, 1000))
        return int(item_ids[rng.integers(0, item_ids.size)])

    start = BASE_TIME - int(rng.integers(0, 60 * DAY_MS))
    events = []

    def add(ts, action=None, it=None):
        a = action or _actions(rng, 1)[0]
        events.append(_event(user_id, len(events), item() if it is None else it, a, ts, rng))

    if kind == "cold_start":
        pass
    elif kind == "in_order":
        t = start
        for _ in range(int(rng.integers(1, 12))):
            t += int(rng.integers(0, 30 * 60_000))
            add(t)
    elif kind == "long_history":
        t = start
        for _ in range(int(rng.integers(30, 120))):
            t += int(rng.exponential(3 * HOUR_MS))
            add(t)
    elif kind == "out_of_order":
        t = start
        stamps = []
        for _ in range(int(rng.integers(5, 40))):
            t += int(rng.integers(0, 4 * HOUR_MS))
            stamps.append(t)
        stamps = np.array(stamps)
        late = rng.random(stamps.size) < 0.3
        order = np.argsort(stamps + np.where(late, rng.integers(HOUR_MS, 3 * DAY_MS, stamps.size), 0), kind="stable")
        for ts in stamps[order]:
            add(int(ts))
    elif kind == "unknown_items":
        t = start
        for _ in range(int(rng.integers(3, 30))):
            t += int(rng.integers(-HOUR_MS, 6 * HOUR_MS))
            add(t, it=item(p_unknown=0.4))
        add(t + 1000, it=unknown_base + 7)  # at least one unknown item, possibly the only one in S
    elif kind == "before_t_last":
        t = start
        for _ in range(int(rng.integers(1, 20))):
            t += int(rng.integers(0, 2 * HOUR_MS))
            add(t)
    elif kind == "every_action":
        t = start
        for a in ACTION_NAMES:
            for _ in range(int(rng.integers(1, 3))):
                t += int(rng.integers(1, 10 * 60_000))
                add(t, action=a)
        add(t - int(rng.integers(1, 3 * HOUR_MS)), action=ACTION_NAMES[int(rng.integers(0, 7))])
    elif kind == "same_timestamps":
        t = start
        for _ in range(int(rng.integers(2, 10))):
            for _ in range(int(rng.integers(1, 4))):
                add(t)
            t += int(rng.integers(0, 2)) * 1000
    elif kind == "hide_only":
        t = start
        for _ in range(int(rng.integers(1, 8))):
            t += int(rng.integers(0, 12 * HOUR_MS))
            add(t, action="hide")
    elif kind == "redelivery":
        t = start
        for _ in range(int(rng.integers(3, 25))):
            t += int(rng.integers(0, HOUR_MS))
            add(t)
        for _ in range(int(rng.integers(1, 4))):  # a redelivered record: same event, same id
            j = int(rng.integers(max(0, len(events) - 10), len(events)))
            events.append(dict(events[j]))
        t += 1000
        add(t)
    elif kind == "prune_boundary":
        t_last = start + 3 * DAY_MS
        add(t_last - IMPRESSION_WINDOW_MS - 1, action="impression")  # dropped once t_last is reached
        add(t_last - IMPRESSION_WINDOW_MS, action="impression")  # exactly at the cutoff: stays
        add(t_last - IMPRESSION_WINDOW_MS + 1, action="impression")
        add(t_last, action="click")
        add(t_last - IMPRESSION_WINDOW_MS - 5000, action="impression")  # late and already too old
        add(t_last - 2 * HOUR_MS, action="impression")  # late, inside the window
    elif kind == "mixed":
        t = start
        for _ in range(int(rng.integers(1, 60))):
            t += int(rng.integers(-2 * HOUR_MS, 8 * HOUR_MS))
            add(t, it=item(p_unknown=0.1))
    else:
        raise ValueError(kind)

    t_last = max((e["ts"] for e in events), default=start)
    if kind == "before_t_last":
        at = t_last - int(rng.integers(1, 3 * DAY_MS))
    elif kind == "cold_start":
        at = start
    else:
        at = t_last + int(rng.integers(-HOUR_MS, 10 * DAY_MS))
    device = [None, "ios", "android", "web", "tablet"][int(rng.integers(0, 5))]
    return {"user_id": int(user_id), "kind": kind, "events": events, "at": int(at), "device": device}


def compute_case(case: dict, bundle: Bundle, tower: Tower) -> dict:
    state = None
    for i, rec in enumerate(case["events"]):
        ev = parse_event(rec, where=f"user {case['user_id']} event {i}")
        if state is None:
            state = UserState.empty(case["user_id"], bundle.manifest)
        state.apply(ev, bundle)
    x = features(state, case["at"], case["device"], bundle.manifest)
    u = tower(x)
    out = dict(case)
    out["x"] = [float(v) for v in x]
    out["u"] = [float(v) for v in u]
    out["state"] = None if state is None else state.to_json_obj()
    return out


def generate(bundle: Bundle, users: int, seed: int) -> list:
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x9A817]))
    tower = Tower(bundle.tower_weights)
    cases = []
    for i in range(users):
        kind = KINDS[i % len(KINDS)]
        cases.append(compute_case(make_case(kind, 1_000_000 + i, rng, bundle.item_ids), bundle, tower))
    return cases


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="parity.py", description="Write parity cases for the Swift RankingModel tests.")
    p.add_argument("--bundle", required=True, help="bundle directory (e.g. demo/bundle)")
    p.add_argument("--users", type=int, default=1000, help="number of cases (one user each)")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--out", required=True, help="output .jsonl")
    args = p.parse_args(argv)
    if args.users < 1:
        print("parity: --users must be at least 1", file=sys.stderr)
        return 2
    try:
        bundle = Bundle.load(args.bundle)
        cases = generate(bundle, args.users, args.seed)
    except ToolsError as e:
        print(f"parity: {e.message}", file=sys.stderr)
        return 2 if e.code in ("bad_bundle", "bad_argument") else 1
    with open(args.out, "w", encoding="utf-8") as f:
        for c in cases:
            f.write(json.dumps(c, separators=(",", ":"), allow_nan=False))
            f.write("\n")
    kinds = Counter(c["kind"] for c in cases)
    n_events = sum(len(c["events"]) for c in cases)
    print(json.dumps({"cases": len(cases), "events": n_events, "kinds": kinds}), file=sys.stderr)
    return 0
