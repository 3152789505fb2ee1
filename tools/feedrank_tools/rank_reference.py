"""The exact reference ranking (contract section 3) of parity cases, for FeedRank's --exact parity.

    python tools/rank_reference.py --bundle DIR --cases CASES.jsonl --num-items N --out OUT.jsonl

CASES.jsonl is what tools/parity.py writes (one object per line with "user_id", "events"
(user-activity records, applied in order), "at" (T, ms) and "device"; other fields are ignored).
For each case the state is rebuilt with reference.UserState.apply, u is the PyTorch user tower
(reference.Tower) on reference.features(state, at, device), every item is scored exactly and
the rules of feedrank_tools.rules pick the list. One line per case:

    {"user_id": 42, "at": T, "cold_start": false, "short": false,
     "items": [{"item_id": 9001, "score": 0.93, "rank": 1, "promoted": false}, ...]}

"score" is the final score (after the fresh boost), float64 printed with repr. "short" is true
when the rules leave fewer than N eligible items.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from .errors import ToolsError
from .reference import Bundle, Tower, UserState, features, parse_event
from .rules import DEFAULT_RULES, Catalogue, RuleConfig, rank_exact


def state_from_events(user_id: int, records: list, bundle: Bundle, where: str):
    state = None
    for i, rec in enumerate(records):
        ev = parse_event(rec, where=f"{where} event {i}")
        if state is None:
            state = UserState.empty(user_id, bundle.manifest)
        state.apply(ev, bundle)
    return state


def rank_case(case: dict, bundle: Bundle, catalogue: Catalogue, tower: Tower, num_items: int,
              rules: RuleConfig = DEFAULT_RULES, where: str = "case") -> dict:
    for key in ("user_id", "at"):
        if not isinstance(case.get(key), int) or isinstance(case.get(key), bool):
            raise ToolsError("bad_argument", f"{where}: field {key!r} must be an integer")
    events = case.get("events", [])
    if not isinstance(events, list):
        raise ToolsError("bad_argument", f"{where}: field 'events' must be a list")
    device = case.get("device")
    if device is not None and not isinstance(device, str):
        raise ToolsError("bad_argument", f"{where}: field 'device' must be a string or null")
    user_id, T = case["user_id"], case["at"]
    state = state_from_events(user_id, events, bundle, where)
    u = tower(features(state, T, device, bundle.manifest))
    ranked = rank_exact(u, bundle, catalogue, state, T, num_items, rules)
    return {"user_id": user_id, "at": T, "cold_start": state is None, "short": ranked.short,
            "items": ranked.to_items()}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="rank_reference.py",
                                description="Exact reference rankings (contract section 3) of parity cases.")
    p.add_argument("--bundle", required=True, help="bundle directory")
    p.add_argument("--cases", required=True, help="parity cases (.jsonl, as tools/parity.py writes)")
    p.add_argument("--num-items", type=int, default=50, help="list length (1..500)")
    p.add_argument("--out", required=True, help="output .jsonl")
    p.add_argument("--limit", type=int, default=0, help="rank only the first N cases (0 = all)")
    args = p.parse_args(argv)
    if not 1 <= args.num_items <= 500:
        print("rank_reference: --num-items must be in 1..500", file=sys.stderr)
        return 2
    import torch
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    try:
        bundle = Bundle.load(args.bundle)
        catalogue = Catalogue.from_bundle(bundle)
        tower = Tower(bundle.tower_weights)
        n = short = cold = 0
        with open(args.cases, "rb") as f, open(args.out, "w", encoding="utf-8") as out:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                where = f"{args.cases}:{lineno}"
                try:
                    case = json.loads(line)
                except json.JSONDecodeError as e:
                    raise ToolsError("bad_argument", f"{where}: not valid JSON ({e})") from None
                if not isinstance(case, dict):
                    raise ToolsError("bad_argument", f"{where}: a case must be a JSON object")
                res = rank_case(case, bundle, catalogue, tower, args.num_items, where=where)
                out.write(json.dumps(res, separators=(",", ":"), allow_nan=False))
                out.write("\n")
                n += 1
                short += res["short"]
                cold += res["cold_start"]
                if args.limit and n >= args.limit:
                    break
    except FileNotFoundError as e:
        print(f"rank_reference: {e.filename}: no such file", file=sys.stderr)
        return 2
    except ToolsError as e:
        print(f"rank_reference: {e.message}", file=sys.stderr)
        return 2 if e.code in ("bad_bundle", "bad_argument", "bad_event") else 1
    print(json.dumps({"cases": n, "short": short, "cold_start": cold, "num_items": args.num_items,
                      "seconds": round(time.perf_counter() - t0, 3)}))
    return 0
