"""Contract section 3 (ranking semantics), written plainly in numpy, independent of the Swift code.

* `Catalogue.from_bundle(bundle)`: the item table as row-aligned numpy arrays (row r = the
  bundle's item_embeddings[r]).
* `exact_scores(u, embeddings, temperature, score_bias)`: z = float32 dot (rounded once from
  float64, reference.dot32) / temperature + score_bias in float64, score = sigmoid(z) in float64.
* `boosted(scores, published_at, T, rules)`: x1.2 (float64) when 0 <= T - published_at < 24 h.
* `impressed_items(state, T, rules)`: item ids with an `impression` at T - 24 h <= ts <= T.
* `select(...)`: rules 3-6 on any candidate set (the full catalogue for the exact reference,
  retrieved candidates in the pipelines):
    - quality < 0.5 and impressed items are dropped;
    - promoted items (catalogue promoted=true) are never organic; they sit only at the slots
      (ranks 3, 10, 20), each slot taking the next-best eligible promoted item, a slot with
      none left is filled organically;
    - organic items are taken greedily in descending final score (ties: ascending item_id)
      under category cap 3 and creator cap 2 (promoted items do not count toward the caps);
    - no duplicates; the list has num_items entries unless the candidates run out under the
      rules. Promoted items sit only at slots, so when the organic items run out at rank r the
      list ends there, unless r is a slot with a promoted item left.
* `rank_exact(...)`: the exact reference list of one user over the whole catalogue.

Everything is configurable through `RuleConfig` (defaults per contract).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from .reference import HOUR_MS, Bundle, UserState, dot32


@dataclass(frozen=True)
class RuleConfig:
    category_cap: int = 3
    creator_cap: int = 2
    promoted_slots: tuple = (3, 10, 20)
    quality_floor: float = 0.5
    fresh_boost: float = 1.2
    fresh_window_ms: int = 24 * HOUR_MS
    impression_window_ms: int = 24 * HOUR_MS


DEFAULT_RULES = RuleConfig()


@dataclass
class Catalogue:
    """Row-aligned item table: ids [N] int64, category [N] int64 (index into the manifest's
    categories), creator [N] int64, published_at [N] int64, quality [N] float64, promoted [N] bool."""
    ids: np.ndarray
    category: np.ndarray
    creator: np.ndarray
    published_at: np.ndarray
    quality: np.ndarray
    promoted: np.ndarray

    @staticmethod
    def from_bundle(bundle: Bundle) -> "Catalogue":
        items = [bundle.items[int(i)] for i in bundle.item_ids.tolist()]
        return Catalogue(
            ids=np.asarray(bundle.item_ids, dtype=np.int64),
            category=np.asarray(bundle.item_category, dtype=np.int64),
            creator=np.array([it.creator_id for it in items], dtype=np.int64),
            published_at=np.array([it.published_at for it in items], dtype=np.int64),
            quality=np.array([it.quality for it in items], dtype=np.float64),
            promoted=np.array([it.promoted for it in items], dtype=bool),
        )

    def __len__(self) -> int:
        return int(self.ids.size)


def sigmoid64(z: np.ndarray) -> np.ndarray:
    """Numerically stable logistic function in float64."""
    z = np.asarray(z, dtype=np.float64)
    out = np.empty_like(z)
    pos = z >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-z[pos]))
    ez = np.exp(z[~pos])
    out[~pos] = ez / (1.0 + ez)
    return out


def exact_scores(u: np.ndarray, embeddings: np.ndarray, temperature: float, score_bias: float) -> np.ndarray:
    """Scores of the rows of `embeddings` ([n, D] float32) for user embedding u ([D]): the
    float32 dot rounded once from float64 (reference.dot32), z in float64, sigmoid in float64."""
    n = len(embeddings)
    dots = np.empty(n, dtype=np.float32)
    for start in range(0, n, 65536):  # bounded float64 temporaries at 1M items
        dots[start:start + 65536] = dot32(u, embeddings[start:start + 65536])
    z = dots.astype(np.float64) / float(temperature) + float(score_bias)
    return sigmoid64(z)


def is_fresh(published_at: np.ndarray, T: int, rules: RuleConfig = DEFAULT_RULES) -> np.ndarray:
    age = T - np.asarray(published_at, dtype=np.int64)
    return (age >= 0) & (age < rules.fresh_window_ms)


def boosted(scores: np.ndarray, published_at: np.ndarray, T: int, rules: RuleConfig = DEFAULT_RULES) -> np.ndarray:
    return np.where(is_fresh(published_at, T, rules), scores * rules.fresh_boost, scores)


def impressed_items(state: Optional[UserState], T: int, rules: RuleConfig = DEFAULT_RULES) -> set:
    """Item ids the user had an `impression` of at T - window <= ts <= T (rule 3)."""
    if state is None:
        return set()
    lo = T - rules.impression_window_ms
    return {int(item) for item, ts in state.impressions if lo <= ts <= T}


@dataclass
class Ranked:
    """One ranked list: parallel lists, rank i+1 at index i."""
    item_ids: list
    scores: list
    promoted: list
    short: bool

    def to_items(self) -> list:
        return [{"item_id": int(i), "score": float(s), "rank": r + 1, "promoted": bool(p)}
                for r, (i, s, p) in enumerate(zip(self.item_ids, self.scores, self.promoted))]


def order_desc(scores: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Indices in descending score, ties by ascending id."""
    return np.lexsort((ids, -scores))


def select(ids: np.ndarray, scores: np.ndarray, category: np.ndarray, creator: np.ndarray,
           promoted: np.ndarray, quality: np.ndarray, impressed: set, num_items: int,
           rules: RuleConfig = DEFAULT_RULES) -> Ranked:
    """Rules 3-6 over a candidate set (parallel arrays, unique ids; scores are final scores)."""
    ids = np.asarray(ids, dtype=np.int64)
    eligible = np.asarray(quality) >= rules.quality_floor
    if impressed:
        eligible &= ~np.isin(ids, np.fromiter(impressed, dtype=np.int64, count=len(impressed)))
    promo_idx = np.flatnonzero(eligible & promoted)
    promo_idx = promo_idx[order_desc(scores[promo_idx], ids[promo_idx])]
    org_idx = np.flatnonzero(eligible & ~promoted)
    organic = _greedy_organic(_sorted_blocks(org_idx, scores, ids), category, creator, num_items, rules)
    slots = set(rules.promoted_slots)
    out_ids, out_scores, out_promoted = [], [], []
    next_promo = next_org = 0
    while len(out_ids) < num_items:
        rank = len(out_ids) + 1
        if rank in slots and next_promo < promo_idx.size:
            j = int(promo_idx[next_promo])
            next_promo += 1
            is_promo = True
        elif next_org < len(organic):
            j = organic[next_org]
            next_org += 1
            is_promo = False
        else:
            break
        out_ids.append(int(ids[j]))
        out_scores.append(float(scores[j]))
        out_promoted.append(is_promo)
    return Ranked(out_ids, out_scores, out_promoted, short=len(out_ids) < num_items)


def _sorted_blocks(idx: np.ndarray, scores: np.ndarray, ids: np.ndarray, first: int = 512):
    """Yields `idx` in descending score (ties: ascending id) as consecutive sorted blocks, so a
    walk that stops early never sorts the whole catalogue: each block holds every remaining
    item whose score is >= the block's threshold (so ties never straddle two blocks)."""
    rest = idx
    size = first
    while rest.size:
        if rest.size <= size:
            block, rest = rest, rest[:0]
        else:
            s = scores[rest]
            thr = np.partition(s, rest.size - size)[rest.size - size]  # the size-th largest
            take = s >= thr
            block, rest = rest[take], rest[~take]
        yield block[order_desc(scores[block], ids[block])]
        size *= 4


def _greedy_organic(blocks, category: np.ndarray, creator: np.ndarray, limit: int,
                    rules: RuleConfig) -> list:
    """The first `limit` organic picks: walk in order, keep an item if its category has fewer
    than category_cap picks and its creator fewer than creator_cap. (Skipped items can never
    become eligible later: the counts only grow.) Skips the items of categories that are
    already full with a vectorised mask per block, which is the same walk, only faster."""
    picks: list = []
    cat_count: dict = {}
    creator_count: dict = {}
    full_cats = np.zeros(int(category.max()) + 1 if category.size else 1, dtype=bool)
    for block in blocks:
        if len(picks) >= limit:
            break
        block = block[~full_cats[category[block]]]
        for j in block.tolist():
            c = int(category[j])
            if cat_count.get(c, 0) >= rules.category_cap:
                continue
            a = int(creator[j])
            if creator_count.get(a, 0) >= rules.creator_cap:
                continue
            picks.append(j)
            cat_count[c] = cat_count.get(c, 0) + 1
            creator_count[a] = creator_count.get(a, 0) + 1
            if cat_count[c] >= rules.category_cap:
                full_cats[c] = True
            if len(picks) >= limit:
                break
    return picks


def rank_exact(u: np.ndarray, bundle: Bundle, catalogue: Catalogue, state: Optional[UserState], T: int,
               num_items: int, rules: RuleConfig = DEFAULT_RULES) -> Ranked:
    """The exact reference list: every item scored exactly, then the rules over the whole catalogue."""
    m = bundle.manifest
    scores = boosted(exact_scores(u, bundle.item_embeddings, m.temperature, m.score_bias),
                     catalogue.published_at, T, rules)
    return select(catalogue.ids, scores, catalogue.category, catalogue.creator, catalogue.promoted,
                  catalogue.quality, impressed_items(state, T, rules), num_items, rules)
