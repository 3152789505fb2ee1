"""Contract section 1 response records, as the Python baselines write them."""

from __future__ import annotations

import json
import time
from typing import Optional

from .rules import Catalogue, Ranked, RuleConfig, DEFAULT_RULES


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def response(ranked: Ranked, user_id: int, trigger: str, request_id: Optional[str], latency_ms: float,
             model_version: str, cold_start: bool, T: int, published_at: dict,
             rules: RuleConfig = DEFAULT_RULES, generated_at: Optional[int] = None) -> dict:
    """The `ranking-responses` record; `published_at` maps item_id -> published_at (for the
    fresh_boost reason)."""
    items = []
    for r, (i, s, p) in enumerate(zip(ranked.item_ids, ranked.scores, ranked.promoted)):
        it = {"item_id": i, "score": s, "rank": r + 1, "promoted": p}
        reasons = []
        age = T - published_at.get(i, T - rules.fresh_window_ms)
        if 0 <= age < rules.fresh_window_ms:
            reasons.append("fresh_boost")
        if p:
            reasons.append("promoted_slot")
        if reasons:
            it["reasons"] = reasons
        items.append(it)
    return {"status": "ok", "request_id": request_id, "user_id": user_id, "trigger": trigger, "items": items,
            "latency_ms": round(latency_ms, 3), "model_version": model_version, "cold_start": cold_start,
            "generated_at": generated_at if generated_at is not None else now_ms()}


def error_response(request_id, user_id, message: str) -> dict:
    return {"status": "error", "request_id": request_id, "user_id": user_id, "error": message}


def published_index(cat: Catalogue) -> dict:
    return dict(zip(cat.ids.tolist(), cat.published_at.tolist()))


def dumps(obj) -> bytes:
    return json.dumps(obj, separators=(",", ":"), allow_nan=False).encode()
