"""A deterministic synthetic world for FeedRank: catalogue, users with tastes, a hidden
ground-truth engagement model, and a stream of contract `user-activity` records.

Everything derives from one seed through numpy's SeedSequence, in independent streams:
  [seed, 0]            world-level truth (category centroids, content projection, context effects)
                       -- shared by every world size, so one trained item tower embeds them all;
  [seed, 1, n_items]   the catalogue;
  [seed, 2, n_users]   the users;
  [seed, 3, ...]       the event stream.

The catalogue. C = 20 categories; ~n_items/10 creators, each with a home category and a style;
an item has a hidden latent taste vector (its category centroid + its creator's style + noise),
an observable content vector (a fixed random projection of the latent, plus noise -- think of a
text/image embedding), a `quality` in [0, 1] (Beta(4.5, 2): ~15% below 0.5), a popularity
"buzz", `published_at` spread over the 60 days before WORLD_NOW (3% in the last 24 h) and
~1% `promoted`. The item tower (train.py) embeds items from their observable features only
(category one-hot, content vector, quality, a noisy popularity signal), so any number of items
can be embedded without per-item parameters.

The users. Category preferences (a sparse Dirichlet mix), a latent taste vector near their
categories' centroids, a main device, an activity rate, a daily peak hour and a join time
(some join during the activity window: cold starts).

The ground truth. P(click | impression) = sigmoid(b0 + 3 <user latent, item latent>
+ 0.9 log(C pref[cat]) + 1.5 (quality - 0.65) + 0.35 log(buzz) + 0.5 [published < 24 h ago]
+ 0.25 cos(2 pi (hour - peak[cat]) / 24) + device effect[cat, device] + user bias).
A click may be followed by dwell (with dwell_ms), like, comment, share; an impression that is
not clicked may be hidden. Sessions come from a logging policy mixing personalised, popular,
fresh and random items (published before the session).

The stream. Events are ordered by delivery time; ~1% are delivered 30 s to 10 min late
(out of order). event_ids are unique ("e-<hex>"). All ts are before WORLD_NOW.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass

import numpy as np

WORLD_NOW = 1_795_700_000_000
HOUR_MS = 3_600_000
DAY_MS = 86_400_000
CATEGORIES = ["sports", "music", "movies", "gaming", "news", "politics", "science", "technology",
              "travel", "food", "fashion", "beauty", "fitness", "comedy", "art", "books", "pets",
              "cars", "finance", "education"]
DEVICES = ["ios", "android", "web"]
ACTIONS = ["impression", "click", "like", "comment", "share", "dwell", "hide"]
A_IMPRESSION, A_CLICK, A_LIKE, A_COMMENT, A_SHARE, A_DWELL, A_HIDE = range(7)
LATENT_DIM = 16
CONTENT_DIM = 32
ITEM_ID_BASE = 100_000
CATALOGUE_DAYS = 60
C = len(CATEGORIES)


def _normalize(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def _rng(*key) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(k) for k in key]))


@dataclass
class Truth:
    seed: int
    centroids: np.ndarray  # [C, L] unit
    content_proj: np.ndarray  # [L, CONTENT]
    peak_hour: np.ndarray  # [C] hour of the day when the category is most clicked
    device_effect: np.ndarray  # [C, len(DEVICES)] logit shifts
    category_share: np.ndarray  # [C] how many creators/items each category has
    b0: float = -3.6


def make_truth(seed: int) -> Truth:
    r = _rng(seed, 0)
    return Truth(
        seed=seed,
        centroids=_normalize(r.normal(size=(C, LATENT_DIM))),
        content_proj=r.normal(size=(LATENT_DIM, CONTENT_DIM)) / math.sqrt(LATENT_DIM),
        peak_hour=r.uniform(0, 24, size=C),
        device_effect=r.normal(0, 0.25, size=(C, len(DEVICES))),
        category_share=r.dirichlet(np.full(C, 4.0)),
    )


@dataclass
class Catalogue:
    item_ids: np.ndarray  # int64 [N]
    category: np.ndarray  # int64 [N]
    creator_id: np.ndarray  # int64 [N]
    published_at: np.ndarray  # int64 [N]
    quality: np.ndarray  # float64 [N], 3 decimals
    promoted: np.ndarray  # bool [N]
    buzz: np.ndarray  # float64 [N] hidden popularity
    latent: np.ndarray  # float32 [N, L] hidden taste vector
    content: np.ndarray  # float32 [N, CONTENT] observable content vector
    buzz_signal: np.ndarray  # float32 [N] observable, noisy log(buzz)

    def __len__(self):
        return int(self.item_ids.shape[0])

    def item_features(self) -> np.ndarray:
        """The item tower's input: category one-hot | content | quality | popularity signal."""
        n = len(self)
        f = np.zeros((n, C + CONTENT_DIM + 2), dtype=np.float32)
        f[np.arange(n), self.category] = 1.0
        f[:, C:C + CONTENT_DIM] = self.content
        f[:, C + CONTENT_DIM] = self.quality.astype(np.float32)
        f[:, C + CONTENT_DIM + 1] = self.buzz_signal
        return f

    def write_items_jsonl(self, path: str, rows=None) -> None:
        rows = range(len(self)) if rows is None else rows
        cats = CATEGORIES
        with open(path, "w", encoding="utf-8") as f:
            for i in rows:
                f.write('{"item_id":%d,"category":"%s","creator_id":%d,"published_at":%d,"quality":%s,'
                        '"promoted":%s}\n' % (self.item_ids[i], cats[self.category[i]], self.creator_id[i],
                                              self.published_at[i], repr(float(self.quality[i])),
                                              "true" if self.promoted[i] else "false"))

    def items(self) -> list:
        """The contract's item dicts (for the exporter)."""
        return [{"item_id": int(self.item_ids[i]), "category": CATEGORIES[self.category[i]],
                 "creator_id": int(self.creator_id[i]), "published_at": int(self.published_at[i]),
                 "quality": float(self.quality[i]), "promoted": bool(self.promoted[i])}
                for i in range(len(self))]


def make_catalogue(truth: Truth, n_items: int) -> Catalogue:
    r = _rng(truth.seed, 1, n_items)
    n_creators = max(1, n_items // 10)
    creator_cat = r.choice(C, size=n_creators, p=truth.category_share)
    creator_style = r.normal(0, 0.35, size=(n_creators, LATENT_DIM)) / math.sqrt(LATENT_DIM) * 4
    creator_weight = r.pareto(1.5, size=n_creators) + 1.0
    creator = r.choice(n_creators, size=n_items, p=creator_weight / creator_weight.sum())
    category = np.where(r.random(n_items) < 0.85, creator_cat[creator], r.choice(C, size=n_items, p=truth.category_share))
    latent = _normalize(truth.centroids[category] + 0.25 * creator_style[creator]
                        + r.normal(0, 0.45 / math.sqrt(LATENT_DIM) * 4, size=(n_items, LATENT_DIM)) * 0.5)
    fresh = r.random(n_items) < 0.03
    age = np.where(fresh, r.uniform(0, DAY_MS, n_items), r.uniform(DAY_MS, CATALOGUE_DAYS * DAY_MS, n_items))
    published_at = (WORLD_NOW - 1 - np.floor(age)).astype(np.int64)
    quality = np.round(r.beta(4.5, 2.0, size=n_items), 3)
    promoted = r.random(n_items) < 0.01
    buzz = np.exp(r.normal(0, 0.8, size=n_items)) * (0.5 + quality)
    content = latent @ truth.content_proj + r.normal(0, 0.25, size=(n_items, CONTENT_DIM))
    buzz_signal = np.log(buzz) + r.normal(0, 0.3, size=n_items)
    return Catalogue(
        item_ids=(ITEM_ID_BASE + np.arange(n_items)).astype(np.int64),
        category=category.astype(np.int64),
        creator_id=(1 + creator).astype(np.int64),
        published_at=published_at,
        quality=quality,
        promoted=promoted,
        buzz=buzz,
        latent=latent.astype(np.float32),
        content=content.astype(np.float32),
        buzz_signal=buzz_signal.astype(np.float32),
    )


@dataclass
class Users:
    user_ids: np.ndarray  # int64 [U]
    pref: np.ndarray  # [U, C]
    latent: np.ndarray  # [U, L]
    device: np.ndarray  # int [U] main device
    rate: np.ndarray  # sessions per day
    peak_hour: np.ndarray  # [U]
    join: np.ndarray  # int64 ms
    bias: np.ndarray  # [U] click propensity

    def __len__(self):
        return int(self.user_ids.shape[0])

    def write_jsonl(self, path: str) -> None:
        with open(path, "w", encoding="utf-8") as f:
            for u in range(len(self)):
                top = np.argsort(-self.pref[u])[:3]
                f.write(json.dumps({"user_id": int(self.user_ids[u]), "device": DEVICES[self.device[u]],
                                    "joined_at": int(self.join[u]),
                                    "sessions_per_day": round(float(self.rate[u]), 3),
                                    "top_categories": [CATEGORIES[k] for k in top]},
                                   separators=(",", ":")) + "\n")


def make_users(truth: Truth, n_users: int, activity_days: int, sessions_per_day: float) -> Users:
    r = _rng(truth.seed, 2, n_users)
    pref = 0.85 * r.dirichlet(np.full(C, 0.25), size=n_users) + 0.15 * truth.category_share
    latent = _normalize(pref @ truth.centroids * 2.0 + r.normal(0, 0.6 / math.sqrt(LATENT_DIM) * 2,
                                                                 size=(n_users, LATENT_DIM)))
    window_start = WORLD_NOW - activity_days * DAY_MS
    late = r.random(n_users) < 0.25
    join = np.where(late, window_start + r.uniform(0, activity_days * DAY_MS, n_users), window_start - DAY_MS)
    return Users(
        user_ids=np.arange(1, n_users + 1, dtype=np.int64),
        pref=pref,
        latent=latent,
        device=r.choice(len(DEVICES), size=n_users, p=[0.45, 0.4, 0.15]),
        rate=sessions_per_day * np.exp(r.normal(-0.25, 0.7, n_users)),
        peak_hour=(r.normal(20.0, 4.0, n_users)) % 24.0,
        join=join.astype(np.int64),
        bias=r.normal(0, 0.3, n_users),
    )


@dataclass
class Events:
    """The stream in delivery order. Columns, not JSON: the trainer reads these directly."""
    user_id: np.ndarray  # int64
    item_id: np.ndarray  # int64
    item_row: np.ndarray  # int64 row in the catalogue
    action: np.ndarray  # int8 index into ACTIONS
    ts: np.ndarray  # int64 ms
    dwell_ms: np.ndarray  # int64, -1 when absent
    session: np.ndarray  # int64 session index
    event_id: np.ndarray  # int64 (printed as "e-<hex>")

    def __len__(self):
        return int(self.ts.shape[0])

    def record(self, i: int) -> dict:
        d = {"event_id": "e-%x" % self.event_id[i], "user_id": int(self.user_id[i]), "item_id": int(self.item_id[i]),
             "action": ACTIONS[self.action[i]], "ts": int(self.ts[i])}
        if self.dwell_ms[i] >= 0:
            d["dwell_ms"] = int(self.dwell_ms[i])
        return d

    def write_jsonl(self, path: str, rows=None) -> int:
        rows = range(len(self)) if rows is None else rows
        n = 0
        with open(path, "w", encoding="utf-8") as f:
            for i in rows:
                line = '{"event_id":"e-%x","user_id":%d,"item_id":%d,"action":"%s","ts":%d' % (
                    self.event_id[i], self.user_id[i], self.item_id[i], ACTIONS[self.action[i]], self.ts[i])
                if self.dwell_ms[i] >= 0:
                    line += ',"dwell_ms":%d' % self.dwell_ms[i]
                f.write(line + "}\n")
                n += 1
        return n


@dataclass
class Sessions:
    user_row: np.ndarray  # int64
    start: np.ndarray  # int64 ms: the first impression's ts
    device: np.ndarray  # int


def click_logit(truth: Truth, cat: Catalogue, users: Users, user_rows: np.ndarray, rows: np.ndarray,
                T: np.ndarray, device: np.ndarray) -> np.ndarray:
    """The hidden ground truth: logit of P(click) for impressions of items `rows` to users
    `user_rows` at times T on `device` (arrays of one length, or broadcastable)."""
    k = cat.category[rows]
    hour = (T // HOUR_MS) % 24
    z = (truth.b0
         + 3.0 * np.einsum("ij,ij->i", cat.latent[rows].astype(np.float64), users.latent[user_rows])
         + 0.9 * np.clip(np.log(C * users.pref[user_rows, k]), -2.5, 1.5)
         + 1.5 * (cat.quality[rows] - 0.65)
         + 0.35 * np.log(cat.buzz[rows])
         + 0.5 * ((T - cat.published_at[rows]) < DAY_MS)
         + 0.25 * np.cos(2 * np.pi * (hour - truth.peak_hour[k]) / 24.0)
         + truth.device_effect[k, device]
         + users.bias[user_rows])
    return z


def click_logit_matrix(truth: Truth, cat: Catalogue, users: Users, user_rows: np.ndarray, T: np.ndarray,
                       device: np.ndarray) -> np.ndarray:
    """click_logit for sessions (user_rows[i], T[i], device[i]) x every item: [len(user_rows), N]."""
    k = cat.category
    hour = (T // HOUR_MS) % 24
    z = (truth.b0
         + 3.0 * (users.latent[user_rows] @ cat.latent.astype(np.float64).T)
         + 0.9 * np.clip(np.log(C * users.pref[user_rows][:, k]), -2.5, 1.5)
         + (1.5 * (cat.quality - 0.65) + 0.35 * np.log(cat.buzz))[None, :]
         + 0.5 * ((T[:, None] - cat.published_at[None, :]) < DAY_MS)
         + 0.25 * np.cos(2 * np.pi * (hour[:, None] - truth.peak_hour[k][None, :]) / 24.0)
         + truth.device_effect[k][:, device].T
         + users.bias[user_rows][:, None])
    return z


class _Sampler:
    """The logging policy's item pools, restricted to items published at or before a time.
    Items are kept sorted by published_at so "published <= t" is a prefix."""

    def __init__(self, cat: Catalogue):
        self.order = np.argsort(cat.published_at, kind="stable")
        self.pub = cat.published_at[self.order]
        self.cum = np.cumsum(cat.buzz[self.order])
        self.by_cat = []
        for k in range(C):
            idx = np.flatnonzero(cat.category == k)
            idx = idx[np.argsort(cat.published_at[idx], kind="stable")]
            self.by_cat.append((idx, cat.published_at[idx], np.cumsum(cat.buzz[idx])))

    @staticmethod
    def _weighted(r, idx, pub, cum, t):
        end = np.searchsorted(pub, t, side="right")
        ok = end > 0
        x = r.random(t.size) * cum[np.maximum(end - 1, 0)]
        pos = np.minimum(np.searchsorted(cum, x, side="right"), np.maximum(end - 1, 0))
        return np.where(ok, idx[pos] if idx.size else -1, -1)

    def popular(self, r, t):
        return self._weighted(r, self.order, self.pub, self.cum, t)

    def in_category(self, r, t, k):
        """k: category per slot."""
        out = np.full(t.size, -1, dtype=np.int64)
        for c in range(C):
            sel = np.flatnonzero(k == c)
            if sel.size:
                idx, pub, cum = self.by_cat[c]
                if idx.size:
                    out[sel] = self._weighted(r, idx, pub, cum, t[sel])
        return out

    def fresh(self, r, t, window=3 * DAY_MS):
        lo = np.searchsorted(self.pub, t - window, side="left")
        hi = np.searchsorted(self.pub, t, side="right")
        pos = lo + np.floor(r.random(t.size) * (hi - lo)).astype(np.int64)
        return np.where(hi > lo, self.order[np.minimum(pos, self.pub.size - 1)], -1)

    def uniform(self, r, t):
        end = np.searchsorted(self.pub, t, side="right")
        pos = np.floor(r.random(t.size) * end).astype(np.int64)
        return np.where(end > 0, self.order[np.minimum(pos, self.pub.size - 1)], -1)


@dataclass
class World:
    truth: Truth
    catalogue: Catalogue
    users: Users
    events: Events
    sessions: Sessions
    activity_days: int


USER_CHUNK = 2000  # users per event-generation chunk (each chunk has its own RNG stream)


def _chunk_events(truth, cat, users, sampler, lo, hi, activity_days, r):
    """Sessions and events of users lo..hi-1 (vectorised over all their sessions)."""
    window_start = WORLD_NOW - activity_days * DAY_MS
    urows = np.arange(lo, hi)
    start = np.maximum(users.join[urows], window_start)
    days = (WORLD_NOW - start) / DAY_MS
    n_sess = np.maximum(1, r.poisson(users.rate[urows] * days))
    s_user = np.repeat(urows, n_sess)
    s_start_day = np.repeat(start // DAY_MS, n_sess)
    s_days = np.repeat(np.ceil(days).astype(np.int64), n_sess)
    day = s_start_day + np.floor(r.random(s_user.size) * np.maximum(1, s_days)).astype(np.int64)
    hour = (users.peak_hour[s_user] + r.normal(0, 3.0, s_user.size)) % 24.0
    t0 = (day * DAY_MS + (hour * HOUR_MS).astype(np.int64) + r.integers(0, 60_000, s_user.size)).astype(np.int64)
    ok = (t0 >= np.repeat(start, n_sess)) & (t0 < WORLD_NOW - 10 * 60_000)
    s_user, t0 = s_user[ok], t0[ok]
    order = np.lexsort((t0, s_user))
    s_user, t0 = s_user[order], t0[order]
    S = s_user.size
    s_dev = np.where(r.random(S) < 0.8, users.device[s_user], r.integers(0, len(DEVICES), S))

    # Slots: K per session, a policy source per slot.
    K = 8 + r.poisson(4, S)
    slot_sess = np.repeat(np.arange(S), K)
    n = slot_sess.size
    t = t0[slot_sess]
    u = s_user[slot_sess]
    src = r.choice(4, size=n, p=[0.45, 0.25, 0.15, 0.15])
    policy = 0.7 * users.pref[urows] + 0.3 / C
    cum = np.cumsum(policy / policy.sum(axis=1, keepdims=True), axis=1)
    k = np.minimum((cum[u - lo] < r.random(n)[:, None]).sum(axis=1), C - 1)
    rows = np.full(n, -1, dtype=np.int64)
    for code, fn in ((0, lambda sel: sampler.in_category(r, t[sel], k[sel])),
                     (1, lambda sel: sampler.popular(r, t[sel])),
                     (2, lambda sel: sampler.fresh(r, t[sel])),
                     (3, lambda sel: sampler.uniform(r, t[sel]))):
        sel = np.flatnonzero(src == code)
        if sel.size:
            rows[sel] = fn(sel)
    # Drop failed draws and repeats within a session; shuffle the feed order.
    keep = rows >= 0
    slot_sess, rows = slot_sess[keep], rows[keep]
    o = np.lexsort((rows, slot_sess))
    slot_sess, rows = slot_sess[o], rows[o]
    first = np.ones(rows.size, dtype=bool)
    first[1:] = (slot_sess[1:] != slot_sess[:-1]) | (rows[1:] != rows[:-1])
    slot_sess, rows = slot_sess[first], rows[first]
    o = np.lexsort((r.random(rows.size), slot_sess))
    slot_sess, rows = slot_sess[o], rows[o]
    n = rows.size
    sess_first = np.ones(n, dtype=bool)
    sess_first[1:] = slot_sess[1:] != slot_sess[:-1]
    starts = np.flatnonzero(sess_first)
    pos = np.arange(n) - np.repeat(starts, np.diff(np.append(starts, n)))
    u = s_user[slot_sess]
    t_imp = t0[slot_sess] + pos * 1200 + np.where(pos == 0, 0, r.integers(0, 800, n))
    z = click_logit(truth, cat, users, u, rows, t0[slot_sess], s_dev[slot_sess])
    click = r.random(n) < 1.0 / (1.0 + np.exp(-z))
    # A user clicks an item at most once: keep the first click of each (user, item).
    ci = np.flatnonzero(click)
    o = np.lexsort((t_imp[ci], rows[ci], u[ci]))
    ci = ci[o]
    dup = np.zeros(ci.size, dtype=bool)
    dup[1:] = (u[ci][1:] == u[ci][:-1]) & (rows[ci][1:] == rows[ci][:-1])
    click[ci[dup]] = False
    hide = ~click & (r.random(n) < 0.05 / (1.0 + np.exp(z + 2.0)))

    parts = [(np.arange(n), np.full(n, A_IMPRESSION), t_imp, np.full(n, -1))]
    ci = np.flatnonzero(click)
    zc = z[ci]
    tc = t_imp[ci] + r.lognormal(math.log(6000), 0.5, ci.size).astype(np.int64)
    parts.append((ci, np.full(ci.size, A_CLICK), tc, np.full(ci.size, -1)))
    m = r.random(ci.size) < 0.7
    dwell = r.lognormal(np.log(8000 + 30000 / (1 + np.exp(-zc))), 0.6).astype(np.int64)
    parts.append((ci[m], np.full(m.sum(), A_DWELL), tc[m] + dwell[m], dwell[m]))
    for action, shift, lo_ms, hi_ms in ((A_LIKE, 1.0, 2000, 40000), (A_COMMENT, 3.0, 10000, 90000),
                                        (A_SHARE, 2.5, 5000, 60000)):
        m = r.random(ci.size) < 1.0 / (1.0 + np.exp(-(zc - shift)))
        parts.append((ci[m], np.full(m.sum(), action), tc[m] + r.integers(lo_ms, hi_ms, m.sum()),
                      np.full(m.sum(), -1)))
    hi_ = np.flatnonzero(hide)
    parts.append((hi_, np.full(hi_.size, A_HIDE), t_imp[hi_] + r.integers(1000, 8000, hi_.size),
                  np.full(hi_.size, -1)))
    slot = np.concatenate([p[0] for p in parts])
    ev = {
        "user": u[slot], "row": rows[slot], "action": np.concatenate([p[1] for p in parts]),
        "ts": np.concatenate([p[2] for p in parts]).astype(np.int64),
        "dwell": np.concatenate([p[3] for p in parts]).astype(np.int64), "session": slot_sess[slot],
    }
    return ev, (s_user, t0, s_dev)


def make_events(truth: Truth, cat: Catalogue, users: Users, activity_days: int, progress=None):
    sampler = _Sampler(cat)
    chunks, sess = [], []
    n_users = len(users)
    offset = 0
    for ci, lo in enumerate(range(0, n_users, USER_CHUNK)):
        if progress:
            progress(lo, n_users)
        r = _rng(truth.seed, 3, len(cat), activity_days, ci)
        ev, (su, st, sd) = _chunk_events(truth, cat, users, sampler, lo, min(n_users, lo + USER_CHUNK),
                                         activity_days, r)
        ev["session"] = ev["session"] + offset
        offset += su.size
        chunks.append(ev)
        sess.append((su, st, sd))
    cols = {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}
    r = _rng(truth.seed, 4, len(cat), n_users, activity_days)
    ts = cols["ts"]
    n = ts.size
    delay = np.where(r.random(n) < 0.01, r.integers(30_000, 600_000, size=n), 0)
    order = np.lexsort((np.arange(n), ts + delay))
    order = order[ts[order] < WORLD_NOW]
    user_row = cols["user"][order]
    rows = cols["row"][order]
    events = Events(
        user_id=users.user_ids[user_row],
        item_id=cat.item_ids[rows],
        item_row=rows,
        action=cols["action"].astype(np.int8)[order],
        ts=ts[order],
        dwell_ms=cols["dwell"][order],
        session=cols["session"][order],
        event_id=np.arange(order.size, dtype=np.int64) + 0x10000,
    )
    sessions = Sessions(np.concatenate([s[0] for s in sess]), np.concatenate([s[1] for s in sess]),
                        np.concatenate([s[2] for s in sess]))
    return events, sessions


def make_world(seed: int, n_items: int, n_users: int, activity_days: int = 28,
               sessions_per_day: float = 0.6, progress=None) -> World:
    truth = make_truth(seed)
    cat = make_catalogue(truth, n_items)
    users = make_users(truth, n_users, activity_days, sessions_per_day)
    events, sessions = make_events(truth, cat, users, activity_days, progress=progress)
    return World(truth, cat, users, events, sessions, activity_days)


def describe(world: World) -> dict:
    ev = world.events
    counts = {a: int(np.sum(ev.action == i)) for i, a in enumerate(ACTIONS)}
    cat = world.catalogue
    return {
        "items": len(cat), "users": len(world.users), "events": len(ev), "sessions": int(world.sessions.start.size),
        "actions": counts,
        "ctr": round(counts["click"] / max(1, counts["impression"]), 4),
        "quality_below_0.5": round(float(np.mean(cat.quality < 0.5)), 4),
        "promoted": int(cat.promoted.sum()),
        "published_last_24h": int(np.sum(cat.published_at >= WORLD_NOW - DAY_MS)),
        "out_of_order_events": int(np.sum(_out_of_order(ev))),
    }


def _out_of_order(ev: Events) -> np.ndarray:
    """Events whose ts is older than an earlier event of the same user in the stream."""
    order = np.lexsort((np.arange(len(ev)), ev.user_id))
    uid, ts = ev.user_id[order], ev.ts[order]
    out = np.zeros(len(ev), dtype=bool)
    start = 0
    bounds = np.flatnonzero(np.diff(uid)) + 1
    for end in list(bounds) + [len(ev)]:
        seg = ts[start:end]
        runmax = np.maximum.accumulate(seg)
        flags = np.zeros(seg.size, dtype=bool)
        flags[1:] = seg[1:] < runmax[:-1]
        out[order[start:end]] = flags
        start = end
    return out


# --------------------------------------------------------------------------------------------
# Command line: worlds of any size, embedded by the trained item tower


def main(argv=None) -> int:
    import argparse
    import sys
    import time

    from .errors import ToolsError

    p = argparse.ArgumentParser(
        prog="world.py",
        description="Generate a synthetic FeedRank world (catalogue, users, activity stream) and, given the "
                    "trained item tower and a bundle to take the user tower from, its model bundle.")
    p.add_argument("--items", type=int, required=True)
    p.add_argument("--users", type=int, required=True)
    p.add_argument("--seed", type=int, default=1, help="world seed (must match the item tower's)")
    p.add_argument("--activity-days", type=int, default=28)
    p.add_argument("--sessions-per-day", type=float, default=0.6)
    p.add_argument("--out", required=True, help="directory: events.jsonl, users.jsonl, world.json [, bundle/]")
    p.add_argument("--item-tower", help="item_tower.safetensors written by train.py (e.g. demo/model/...)")
    p.add_argument("--user-bundle", help="bundle whose user tower, temperature and score_bias to reuse "
                                         "(e.g. demo/bundle)")
    p.add_argument("--no-events", action="store_true", help="skip the event stream (bundle only)")
    args = p.parse_args(argv)
    if (args.item_tower is None) != (args.user_bundle is None):
        print("world: --item-tower and --user-bundle go together", file=sys.stderr)
        return 2
    if args.items < 1 or args.users < 1:
        print("world: --items and --users must be at least 1", file=sys.stderr)
        return 2

    def say(msg):
        print(f"[world {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)

    try:
        os.makedirs(args.out, exist_ok=True)
        truth = make_truth(args.seed)
        t = time.time()
        cat = make_catalogue(truth, args.items)
        say(f"catalogue: {args.items} items ({time.time() - t:.1f} s)")
        if args.item_tower:
            from .export import export_bundle
            from .reference import Bundle
            from .train import embed_items, load_item_tower
            import torch
            torch.set_num_threads(1)
            item_tower, tower_seed = load_item_tower(args.item_tower)
            if tower_seed != args.seed:
                raise ToolsError("bad_argument", f"--item-tower {args.item_tower} was trained on world seed "
                                                 f"{tower_seed}, not --seed {args.seed}")
            src = Bundle.load(args.user_bundle)
            t = time.time()
            E = embed_items(item_tower, cat.item_features())
            from torch import nn
            layers = []
            for k, (w, b) in enumerate(src.tower_weights):
                lin = nn.Linear(w.shape[1], w.shape[0])
                with torch.no_grad():
                    lin.weight.copy_(torch.from_numpy(w))
                    lin.bias.copy_(torch.from_numpy(b))
                layers += ([nn.ReLU()] if k else []) + [lin]
            m = src.manifest
            suffix = f"{args.items // 1000}k" if args.items < 1_000_000 else f"{args.items // 1_000_000}m"
            rep = export_bundle(os.path.join(args.out, "bundle"), nn.Sequential(*layers), E, cat.item_ids,
                                cat.items(), list(m.categories), list(m.devices), list(m.actions),
                                m.half_life_hours, m.temperature, m.score_bias, f"{m.model_version}-w{suffix}")
            say(f"bundle: {rep['items']} items embedded and written ({time.time() - t:.1f} s)")
        users = make_users(truth, args.users, args.activity_days, args.sessions_per_day)
        users.write_jsonl(os.path.join(args.out, "users.jsonl"))
        summary = {"seed": args.seed, "items": args.items, "users": args.users}
        if not args.no_events:
            t = time.time()
            events, sessions = make_events(truth, cat, users, args.activity_days,
                                           progress=lambda u, n: say(f"events: {u}/{n} users"))
            world = World(truth, cat, users, events, sessions, args.activity_days)
            summary = describe(world)
            events.write_jsonl(os.path.join(args.out, "events.jsonl"))
            say(f"events: {len(events)} written ({time.time() - t:.1f} s)")
        summary["world_now"] = WORLD_NOW
        with open(os.path.join(args.out, "world.json"), "w") as f:
            json.dump(summary, f, indent=2)
            f.write("\n")
    except ToolsError as e:
        print(f"world: {e.message}", file=sys.stderr)
        return 2 if e.code == "bad_argument" else 1
    print(json.dumps(summary))
    return 0
