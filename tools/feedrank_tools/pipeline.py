"""The Python ranking pipeline: the baseline FeedRank's Swift pipeline is compared against.

What a careful Python engineer would write with PyTorch and faiss-cpu, one thread:

1. user embedding: reference.features + the PyTorch user tower (torch.set_num_threads(1));
2. candidates, three sources:
   - organic: one faiss IndexIVFPQ (inner product) per category, over the items that can ever
     be organic (not promoted, quality >= the floor); each request searches every category for
     its best `k` (the category cap needs breadth: a 50-item list spans 16+ categories);
   - fresh: the items published in (T - 24 h, T], kept per category sorted by published_at so
     the fresh window is a contiguous slice; scored exactly, the best `fresh_k` per category
     (the 1.2 boost lifts items the index ranks low);
   - promoted: every eligible promoted item scored exactly (there are few), the best
     len(slots) + |impressions| kept;
3. exact re-scoring of the candidates (contract section 2; never the index's scores), boost;
4. the rules (feedrank_tools.rules.select); if the list comes out short, `k` grows 4x and
   retrieval is redone (at most `max_rounds` times; k reaching a category's size is exhaustive).

`Pipeline.rank(state, T, device, num_items)` ranks one user; `Pipeline.rank_batch(...)` ranks
many (tower and faiss searches batched, as the seed's batch job did). Both return `Ranked` lists
and accumulate per-stage times in `Pipeline.timers` (nanoseconds).
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass
from typing import Optional

import numpy as np

from .errors import ToolsError
from .reference import Bundle, Tower, UserState, features
from .rules import (DEFAULT_RULES, Catalogue, Ranked, RuleConfig, boosted, exact_scores, impressed_items,
                    select, sigmoid64)


@dataclass(frozen=True)
class PipelineConfig:
    k: int = 16  # organic candidates per category per request
    nprobe: int = 16  # inverted lists probed per category index
    pq_m: int = 16  # PQ sub-quantizers (D / pq_m dims each)
    lists_per_sqrt: float = 4.0  # nlist = lists_per_sqrt * sqrt(items in the category)
    fresh_k: int = 8  # fresh candidates per category
    max_rounds: int = 3  # retrieval rounds (k x4 each) when the list comes out short
    seed: int = 1234


def _nbits_for(n: int) -> int:
    """8-bit PQ codes need ~39 * 256 training points; small categories get 6-bit codes."""
    return 8 if n >= 39 * 256 else 6 if n >= 39 * 64 else 4


class Pipeline:
    def __init__(self, bundle: Bundle, catalogue: Optional[Catalogue] = None,
                 config: PipelineConfig = PipelineConfig(), rules: RuleConfig = DEFAULT_RULES,
                 index_cache: Optional[str] = None, log=None):
        import faiss
        import torch
        torch.set_num_threads(1)
        faiss.omp_set_num_threads(1)
        self.faiss = faiss
        self.bundle = bundle
        self.m = bundle.manifest
        self.cat = catalogue or Catalogue.from_bundle(bundle)
        self.config = config
        self.rules = rules
        self.tower = Tower(bundle.tower_weights)
        self.emb = np.ascontiguousarray(bundle.item_embeddings, dtype=np.float32)
        self.timers = {"features_tower": 0, "retrieval": 0, "rescore": 0, "rules": 0}
        self.counters = {"rankings": 0, "short": 0, "grown": 0, "candidates": 0}
        self._log = log or (lambda msg: None)
        C = len(self.m.categories)
        ok = self.cat.quality >= rules.quality_floor
        organic = ok & ~self.cat.promoted
        # Promoted source: rows of eligible promoted items, contiguous embeddings.
        self.promo_rows = np.flatnonzero(ok & self.cat.promoted)
        self.promo_emb = np.ascontiguousarray(self.emb[self.promo_rows])
        # Fresh source: per category, organic rows sorted by published_at (+ their embeddings).
        self.fresh_rows, self.fresh_pub, self.fresh_emb = [], [], []
        for c in range(C):
            rows = np.flatnonzero(organic & (self.cat.category == c))
            rows = rows[np.argsort(self.cat.published_at[rows], kind="stable")]
            self.fresh_rows.append(rows)
            self.fresh_pub.append(self.cat.published_at[rows])
            self.fresh_emb.append(np.ascontiguousarray(self.emb[rows]))
        self.indexes = [self._category_index(c, self.fresh_rows[c], index_cache) for c in range(C)]

    # ---- index build

    def _category_index(self, c: int, rows: np.ndarray, cache: Optional[str]):
        faiss = self.faiss
        cfg = self.config
        n = rows.size
        if n == 0:
            return None
        name = None
        if cache:
            os.makedirs(cache, exist_ok=True)
            name = os.path.join(cache, f"{self.m.model_version}-n{len(self.cat)}-c{c}-{n}"
                                       f"-m{cfg.pq_m}-l{cfg.lists_per_sqrt:g}-s{cfg.seed}.faiss")
            if os.path.isfile(name):
                index = faiss.read_index(name)
                if index.ntotal == n:
                    index.nprobe = min(cfg.nprobe, index.nlist)
                    return index
        D = self.m.embedding_dim
        if D % cfg.pq_m:
            raise ToolsError("bad_argument", f"--pq-m {cfg.pq_m} does not divide embedding_dim {D}")
        x = self.emb[rows]
        nlist = max(1, min(int(round(cfg.lists_per_sqrt * math.sqrt(n))), n // 39))
        quantizer = faiss.IndexFlatIP(D)
        index = faiss.IndexIVFPQ(quantizer, D, nlist, cfg.pq_m, _nbits_for(n), faiss.METRIC_INNER_PRODUCT)
        index.cp.seed = cfg.seed
        index.pq.cp.seed = cfg.seed
        t0 = time.perf_counter()
        index.train(x)
        index.add_with_ids(x, rows.astype(np.int64))
        self._quantizers = getattr(self, "_quantizers", []) + [quantizer]  # the index borrows it
        index.nprobe = min(cfg.nprobe, nlist)
        self._log(f"category {self.m.categories[c]}: {n} items, nlist {nlist}, "
                  f"{time.perf_counter() - t0:.1f}s")
        if name:
            faiss.write_index(index, name)
        return index

    # ---- ranking

    def embed(self, state: Optional[UserState], T: int, device: Optional[str]) -> np.ndarray:
        return self.tower(features(state, T, device, self.m))

    def rank(self, state: Optional[UserState], T: int, device: Optional[str], num_items: int = 50,
             u: Optional[np.ndarray] = None) -> Ranked:
        t0 = time.perf_counter_ns()
        if u is None:
            u = self.embed(state, T, device)
        t1 = time.perf_counter_ns()
        self.timers["features_tower"] += t1 - t0
        return self._rank_from(u, state, T, num_items, organic=None)

    def rank_batch(self, states: list, T: int, devices: list, num_items: int = 50) -> list:
        """Ranks len(states) users: one tower forward and one faiss search per category for the
        whole batch, then exact re-scoring and rules per user."""
        t0 = time.perf_counter_ns()
        X = np.stack([features(s, T, d, self.m) for s, d in zip(states, devices)])
        U = self.tower(X)
        t1 = time.perf_counter_ns()
        self.timers["features_tower"] += t1 - t0
        k = self.config.k
        per_cat = [idx.search(U, min(k, idx.ntotal))[1] if idx is not None else None for idx in self.indexes]
        self.timers["retrieval"] += time.perf_counter_ns() - t1
        out = []
        for i, s in enumerate(states):
            organic = np.concatenate([I[i] for I in per_cat if I is not None])
            out.append(self._rank_from(U[i], s, T, num_items, organic=organic[organic >= 0]))
        return out

    def _rank_from(self, u: np.ndarray, state: Optional[UserState], T: int, num_items: int,
                   organic: Optional[np.ndarray]) -> Ranked:
        impressed = impressed_items(state, T, self.rules)
        k = self.config.k
        for round_ in range(self.config.max_rounds):
            t1 = time.perf_counter_ns()
            if organic is None or round_ > 0:
                organic = self._search(u, k)
            fresh_rows, fresh_scores = self._fresh(u, T)
            promo_rows, promo_scores = self._promoted(u, T, len(self.rules.promoted_slots) + len(impressed))
            t2 = time.perf_counter_ns()
            # Exact re-score of the organic candidates (the fresh and promoted ones were scored
            # exactly by their sources); a fresh item may also come from the index: keep one.
            organic = np.setdiff1d(organic, fresh_rows, assume_unique=False)
            scores = boosted(exact_scores(u, self.emb[organic], self.m.temperature, self.m.score_bias),
                             self.cat.published_at[organic], T, self.rules)
            rows = np.concatenate([organic, fresh_rows, promo_rows])
            all_scores = np.concatenate([scores, fresh_scores, promo_scores])
            t3 = time.perf_counter_ns()
            c = self.cat
            ranked = select(c.ids[rows], all_scores, c.category[rows], c.creator[rows], c.promoted[rows],
                            c.quality[rows], impressed, num_items, self.rules)
            t4 = time.perf_counter_ns()
            self.timers["retrieval"] += t2 - t1
            self.timers["rescore"] += t3 - t2
            self.timers["rules"] += t4 - t3
            self.counters["candidates"] += int(rows.size)
            if not ranked.short or k >= max((i.ntotal for i in self.indexes if i is not None), default=0):
                break
            k *= 4
            self.counters["grown"] += 1
        self.counters["rankings"] += 1
        self.counters["short"] += int(ranked.short)
        return ranked

    def _search(self, u: np.ndarray, k: int) -> np.ndarray:
        q = np.asarray(u, dtype=np.float32).reshape(1, -1)
        found = []
        for idx in self.indexes:
            if idx is None:
                continue
            _, I = idx.search(q, min(k, idx.ntotal))
            found.append(I[0])
        rows = np.concatenate(found)
        return rows[rows >= 0]

    def _fresh(self, u: np.ndarray, T: int):
        """The best fresh_k fresh items per category, scored exactly (boost included). Within a
        category every fresh item gets the same boost, so the best by dot product are the best
        by final score: select on the float32 dots, then score the few selected exactly."""
        lo_pub = T - self.rules.fresh_window_ms  # fresh: lo_pub < published_at <= T
        kf = self.config.fresh_k
        picked = []
        q = np.asarray(u, dtype=np.float32)
        for rows, pub, emb in zip(self.fresh_rows, self.fresh_pub, self.fresh_emb):
            a = int(pub.searchsorted(lo_pub, side="right"))
            b = int(pub.searchsorted(T, side="right"))
            if b <= a or kf <= 0:
                continue
            if b - a <= kf:
                picked.append(rows[a:b])
                continue
            dots = emb[a:b] @ q
            top = np.argpartition(dots, b - a - kf)[b - a - kf:]
            thr = dots[top].min()
            picked.append(rows[a:b][dots >= thr])  # keep ties with the k-th
        if not picked:
            return np.zeros(0, dtype=np.int64), np.zeros(0)
        rows = np.concatenate(picked)
        s = exact_scores(u, self.emb[rows], self.m.temperature, self.m.score_bias) * self.rules.fresh_boost
        return rows, s

    def _promoted(self, u: np.ndarray, T: int, keep: int):
        if self.promo_rows.size == 0:
            return self.promo_rows, np.zeros(0)
        s = boosted(exact_scores(u, self.promo_emb, self.m.temperature, self.m.score_bias),
                    self.cat.published_at[self.promo_rows], T, self.rules)
        if s.size > keep:
            thr = np.partition(s, s.size - keep)[s.size - keep]
            top = np.flatnonzero(s >= thr)
            return self.promo_rows[top], s[top]
        return self.promo_rows, s

    def config_json(self) -> dict:
        d = asdict(self.config)
        d["nlist"] = [int(i.nlist) if i is not None else 0 for i in self.indexes]
        d["index_items"] = int(sum(i.ntotal for i in self.indexes if i is not None))
        d["promoted_items"] = int(self.promo_rows.size)
        return d


def overlap(a: list, b: list) -> float:
    """|a & b| / max(|a|, |b|) (1.0 for two empty lists)."""
    if not a and not b:
        return 1.0
    return len(set(a) & set(b)) / max(len(a), len(b))


__all__ = ["Pipeline", "PipelineConfig", "overlap", "sigmoid64"]
