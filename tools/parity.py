#!/usr/bin/env python3
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

(Implemented in feedrank_tools/parity.py.)
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from feedrank_tools.parity import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
