"""Trains FeedRank's two-tower model on a synthetic world, calibrates it and exports the bundle.

    python tools/train.py --out demo [--items 20000 --users 4000 --seed 1 ...]

Writes OUT/bundle/ (the feedrank.bundle.v1 the worker loads), OUT/events.jsonl (a slice of the
stream: the whole history of the first users), OUT/model/item_tower.safetensors (the item tower,
so tools/world.py can embed worlds of any size with the same model), OUT/report.json and
OUT/README.md (how it was made and the training report). The full event stream goes to
--world-dir (default data/demo-world/) with the users.

The model. Item tower: items' observable features (category one-hot | content vector | quality |
popularity signal) -> Linear(54,128) ReLU Linear(128,64) -> L2 normalise; its outputs are the
bundle's item embeddings. User tower: the contract's features x (section 2; F = D+C+A+K = 99) ->
Linear ReLU Linear ReLU Linear -> L2 normalise.

Examples. A feed session of a user at time T (its first impression) with the items clicked in it
as positives; x is the user's state before the session (every event of the user earlier in the
stream), decayed to T, with the session's hour, weekday and device.

Training, in two phases (single thread, seeded, deterministic):
 1. Both towers jointly, sampled softmax (in-batch positives + uniform random negatives). Since
    the state's S is linear in the item embeddings, x[0:D] is computed differentiably as
    normalise(sum_j w_j 2^(-(T - t_j)/half_life) e_j) over the user's earlier events (the closed
    form of the contract's incremental update).
 2. Item embeddings frozen (exactly the float32 rows the bundle will hold); every user's events
    are replayed through `reference.UserState.apply` and x is taken from `reference.features` at
    each session -- the exact serving features -- and the user tower is fine-tuned on them.
Then Platt scaling on held-out impressions (sessions in the last --holdout-days): fit
P(click) = sigmoid(a * dot(u, e) + b) on half of the users, so temperature = 1/a and
score_bias = b; the calibration table is reported on the other half. Finally recall@50 on the
held-out clicks (retrieval over the whole catalogue) of the exported model vs popularity baselines.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from . import world as W
from .errors import ToolsError
from .export import export_bundle, normalize_embeddings
from .reference import (DEFAULT_ACTIONS, ActivityEvent, Bundle, Item, Manifest, Tower, UserState,
                        context_features, features)

ITEM_TOWER_FILE = "item_tower.safetensors"


@dataclass
class TrainConfig:
    seed: int = 1
    items: int = 20_000
    users: int = 4_000
    activity_days: int = 28
    sessions_per_day: float = 0.6
    holdout_days: int = 4
    dim: int = 64
    hidden: tuple = (128, 128)
    item_hidden: int = 128
    epochs_joint: int = 10
    epochs_user: int = 4
    batch: int = 512
    negatives: int = 2048
    tau: float = 0.07
    lr: float = 3e-3
    lr_user: float = 1e-3
    cold_dropout: float = 0.1
    half_life_hours: float = 72.0
    model_version: str = "demo-1"
    events_slice_bytes: int = 2_000_000


def log(msg: str) -> None:
    print(f"[train {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------
# Towers


def make_item_tower(n_in: int, hidden: int, dim: int):
    from torch import nn
    return nn.Sequential(nn.Linear(n_in, hidden), nn.ReLU(), nn.Linear(hidden, dim))


def make_user_tower(n_in: int, hidden: tuple, dim: int):
    from torch import nn
    layers, fan_in = [], n_in
    for h in hidden:
        layers += [nn.Linear(fan_in, h), nn.ReLU()]
        fan_in = h
    layers.append(nn.Linear(fan_in, dim))
    return nn.Sequential(*layers)


def save_item_tower(path: str, tower, cfg: TrainConfig) -> None:
    from safetensors.torch import save_file
    tensors = {f"item_tower.{k}.{p}": t.detach().contiguous()
               for k, lin in enumerate(m for m in tower if hasattr(m, "weight"))
               for p, t in (("weight", lin.weight), ("bias", lin.bias))}
    info = {"world_seed": cfg.seed, "features": f"category_onehot({W.C})|content({W.CONTENT_DIM})|quality|buzz_signal",
            "activation": "relu", "normalize": "l2", "model_version": cfg.model_version}
    # One metadata key (a JSON string): safetensors writes the metadata map in hash order.
    save_file(tensors, path, metadata={"feedrank_item_tower": json.dumps(info, sort_keys=True)})
    os.chmod(path, 0o644)


def load_item_tower(path: str):
    """-> (nn.Sequential, world_seed). The tower of save_item_tower: Linear, ReLU, ..., Linear."""
    import torch
    from safetensors import safe_open
    from torch import nn
    if not os.path.isfile(path):
        raise ToolsError("bad_argument", f"{path}: item tower file not found (run scripts/make-demo.sh)")
    with safe_open(path, framework="pt") as f:
        meta = f.metadata() or {}
        names = set(f.keys())
        layers = []
        k = 0
        while f"item_tower.{k}.weight" in names:
            w, b = f.get_tensor(f"item_tower.{k}.weight"), f.get_tensor(f"item_tower.{k}.bias")
            lin = nn.Linear(w.shape[1], w.shape[0])
            with torch.no_grad():
                lin.weight.copy_(w)
                lin.bias.copy_(b)
            if layers:
                layers.append(nn.ReLU())
            layers.append(lin)
            k += 1
    try:
        info = json.loads(meta["feedrank_item_tower"])
        seed = int(info["world_seed"])
    except (KeyError, ValueError, TypeError):
        info = None
    if not layers or info is None:
        raise ToolsError("bad_argument", f"{path}: not an item tower written by train.py")
    return nn.Sequential(*layers).eval(), seed


def embed_items(item_tower, feats: np.ndarray, chunk: int = 65536) -> np.ndarray:
    """Item features -> float32 L2-normalised embeddings (chunked: works for 1M items)."""
    import torch
    out = np.empty((feats.shape[0], item_tower[-1].out_features), dtype=np.float32)
    with torch.inference_mode():
        for lo in range(0, feats.shape[0], chunk):
            e = item_tower(torch.from_numpy(feats[lo:lo + chunk]))
            out[lo:lo + chunk] = torch.nn.functional.normalize(e, dim=-1).numpy()
    return out


# --------------------------------------------------------------------------------------------
# Examples


@dataclass
class Examples:
    """One row per session: the state before it, as needed by both phases."""
    session_user: np.ndarray  # user row
    T: np.ndarray  # session start (ms)
    device: np.ndarray
    first_pos: np.ndarray  # stream position of the session's first event
    hist_ptr: np.ndarray  # CSR over sessions: aggregated (item row, coefficient) of earlier events
    hist_rows: np.ndarray
    hist_coef: np.ndarray
    c_feat: np.ndarray  # [S, C] float32, closed form
    n_feat: np.ndarray  # [S, A] float32, closed form
    ctx: np.ndarray  # [S, K] float32
    cold: np.ndarray  # bool: no earlier event


def build_examples(world: W.World, manifest: Manifest) -> Examples:
    ev, ses, cat = world.events, world.sessions, world.catalogue
    S = ses.start.size
    hl = manifest.half_life_ms
    weights = np.array([w for _, w in manifest.actions])
    pos = np.arange(len(ev))
    first_pos = np.full(S, len(ev), dtype=np.int64)
    np.minimum.at(first_pos, ev.session, pos)
    user_row = ev.user_id - 1  # user ids are 1..U
    by_user = np.lexsort((pos, user_row))
    bounds = np.searchsorted(user_row[by_user], np.arange(len(world.users) + 1))
    s_by_user = np.lexsort((first_pos, ses.user_row))
    s_bounds = np.searchsorted(ses.user_row[s_by_user], np.arange(len(world.users) + 1))
    A, C = len(manifest.actions), len(manifest.categories)
    c_feat = np.zeros((S, C))
    n_feat = np.zeros((S, A))
    hist_lists = [None] * S
    cold = np.zeros(S, dtype=bool)
    item_cat = cat.category
    for u in range(len(world.users)):
        sess = s_by_user[s_bounds[u]:s_bounds[u + 1]]
        if sess.size == 0:
            continue
        evs = by_user[bounds[u]:bounds[u + 1]]
        m = np.searchsorted(evs, first_pos[sess])  # events strictly before each session's first
        total = int(m.sum())
        cold[sess[m == 0]] = True
        if total == 0:
            for s in sess:
                hist_lists[s] = (np.empty(0, np.int64), np.empty(0))
            continue
        rep_s = np.repeat(np.arange(sess.size), m)
        j = np.arange(total) - np.repeat(np.cumsum(m) - m, m)
        e_idx = evs[j]
        decay = np.exp2(-(ses.start[sess][rep_s] - ev.ts[e_idx]) / hl)
        a = ev.action[e_idx].astype(np.int64)
        coef = weights[a] * decay
        rows = ev.item_row[e_idx]
        np.add.at(c_feat, (sess[rep_s], item_cat[rows]), coef)
        np.add.at(n_feat, (sess[rep_s], a), decay)
        key = rep_s.astype(np.int64) * len(cat) + rows
        uk, inv = np.unique(key, return_inverse=True)
        agg = np.bincount(inv, weights=coef)
        ks, kr = uk // len(cat), uk % len(cat)
        starts = np.searchsorted(ks, np.arange(sess.size + 1))
        for i, s in enumerate(sess):
            hist_lists[s] = (kr[starts[i]:starts[i + 1]], agg[starts[i]:starts[i + 1]])
    lengths = np.array([h[0].size for h in hist_lists])
    hist_ptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    hist_rows = np.concatenate([h[0] for h in hist_lists]).astype(np.int64)
    hist_coef = np.concatenate([h[1] for h in hist_lists]).astype(np.float32)
    c_feat = c_feat / (np.abs(c_feat).sum(axis=1, keepdims=True) + 1.0)
    n_feat = np.log1p(n_feat)
    ctx = np.stack([context_features(int(t), W.DEVICES[d], manifest) for t, d in zip(ses.start, ses.device)])
    return Examples(ses.user_row, ses.start, ses.device, first_pos, hist_ptr, hist_rows, hist_coef,
                    c_feat.astype(np.float32), n_feat.astype(np.float32), ctx.astype(np.float32), cold)


def reference_features(world: W.World, bundle: Bundle, ex: Examples, progress_every: int = 1000) -> np.ndarray:
    """x of every session from the reference implementation: each user's events replayed in
    stream order through UserState.apply, features() taken before each session's first event."""
    ev, cat = world.events, world.catalogue
    manifest = bundle.manifest
    X = np.zeros((ex.T.size, manifest.feature_dim))
    pos = np.arange(len(ev))
    user_row = ev.user_id - 1
    by_user = np.lexsort((pos, user_row))
    bounds = np.searchsorted(user_row[by_user], np.arange(len(world.users) + 1))
    s_by_user = np.lexsort((ex.first_pos, ex.session_user))
    s_bounds = np.searchsorted(ex.session_user[s_by_user], np.arange(len(world.users) + 1))
    actions = W.ACTIONS
    t0 = time.time()
    for u in range(len(world.users)):
        if progress_every and u % progress_every == 0 and u:
            log(f"  reference replay: {u}/{len(world.users)} users ({time.time() - t0:.0f} s)")
        evs = by_user[bounds[u]:bounds[u + 1]]
        sess = s_by_user[s_bounds[u]:s_bounds[u + 1]]
        uid = int(world.users.user_ids[u])
        state = None
        k = 0
        for i in evs.tolist():
            while k < sess.size and ex.first_pos[sess[k]] <= i:
                s = sess[k]
                X[s] = features(state, int(ex.T[s]), W.DEVICES[ex.device[s]], manifest)
                k += 1
            if state is None:
                state = UserState.empty(uid, manifest)
            state.apply(ActivityEvent("e-%x" % ev.event_id[i], uid, int(ev.item_id[i]), actions[ev.action[i]],
                                      int(ev.ts[i]), None), bundle)
        while k < sess.size:
            s = sess[k]
            X[s] = features(state, int(ex.T[s]), W.DEVICES[ex.device[s]], manifest)
            k += 1
    return X


def _gather_ranges(ptr: np.ndarray, sel: np.ndarray):
    lengths = ptr[sel + 1] - ptr[sel]
    total = int(lengths.sum())
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    idx = np.repeat(ptr[sel] - offsets, lengths) + np.arange(total)
    return idx, offsets


# --------------------------------------------------------------------------------------------
# Training


def _softmax_loss(u, E_cand, cand, pos_rows, tau):
    """Cross-entropy of each user against [batch positives, sampled negatives]; a candidate that
    is the same item as the row's own positive (other than its own column) is masked out."""
    import torch
    logits = u @ E_cand.T / tau
    B = pos_rows.shape[0]
    same = cand[None, :] == pos_rows[:, None]
    same[torch.arange(B), torch.arange(B)] = False  # the example's own positive stays
    logits = logits.masked_fill(same, float("-inf"))
    return torch.nn.functional.cross_entropy(logits, torch.arange(B))


def sampled_softmax_loss(u, E, pos_rows, n_items, negatives, tau, gen):
    import torch
    neg = torch.randint(0, n_items, (negatives,), generator=gen)
    cand = torch.cat([pos_rows, neg])
    return _softmax_loss(u, E[cand], cand, pos_rows, tau)


def train_joint(cfg, item_feats, ex: Examples, pos_sess, pos_rows, item_tower, user_tower, log_every=50):
    import torch
    F = torch.nn.functional
    gen = torch.Generator().manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    params = list(item_tower.parameters()) + list(user_tower.parameters())
    opt = torch.optim.Adam(params, lr=cfg.lr)
    feats = torch.from_numpy(item_feats)
    c_feat, n_feat, ctx = (torch.from_numpy(a) for a in (ex.c_feat, ex.n_feat, ex.ctx))
    n = pos_sess.size
    steps = 0
    for epoch in range(cfg.epochs_joint):
        perm = rng.permutation(n)
        total, t0 = 0.0, time.time()
        for lo in range(0, n, cfg.batch):
            b = perm[lo:lo + cfg.batch]
            sess = pos_sess[b]
            # History embeddings without gradient (the state is an input); the item tower learns
            # through the candidates' embeddings.
            with torch.no_grad():
                E_all = F.normalize(item_tower(feats), dim=-1)
            idx, offsets = _gather_ranges(ex.hist_ptr, sess)
            bag = F.embedding_bag(torch.from_numpy(ex.hist_rows[idx]), E_all, torch.from_numpy(offsets),
                                  mode="sum", per_sample_weights=torch.from_numpy(ex.hist_coef[idx]))
            st = torch.from_numpy(sess)
            x = torch.cat([F.normalize(bag, dim=-1), c_feat[st], n_feat[st], ctx[st]], dim=1)
            u = F.normalize(user_tower(x), dim=-1)
            pos = torch.from_numpy(pos_rows[b])
            neg = torch.randint(0, feats.shape[0], (cfg.negatives,), generator=gen)
            cand = torch.cat([pos, neg])
            E_c = F.normalize(item_tower(feats[cand]), dim=-1)
            loss = _softmax_loss(u, E_c, cand, pos, cfg.tau)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * b.size
            steps += 1
        log(f"joint epoch {epoch + 1}/{cfg.epochs_joint}: loss {total / n:.4f} ({time.time() - t0:.1f} s)")


def train_user(cfg, E: np.ndarray, X: np.ndarray, pos_sess, pos_rows, user_tower, n_context: int):
    import torch
    F = torch.nn.functional
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    rng = np.random.default_rng(cfg.seed + 1)
    opt = torch.optim.Adam(user_tower.parameters(), lr=cfg.lr_user)
    Et = torch.from_numpy(E)
    Xt = torch.from_numpy(X.astype(np.float32))
    activity = torch.arange(X.shape[1]) < X.shape[1] - n_context
    n = pos_sess.size
    for epoch in range(cfg.epochs_user):
        perm = rng.permutation(n)
        total, t0 = 0.0, time.time()
        for lo in range(0, n, cfg.batch):
            b = perm[lo:lo + cfg.batch]
            x = Xt[torch.from_numpy(pos_sess[b])]
            # Cold-start augmentation: some rows lose their activity features, as a new user's do.
            cold = torch.rand(b.size, generator=gen) < cfg.cold_dropout
            x = torch.where(cold[:, None] & activity[None, :], torch.zeros_like(x), x)
            u = F.normalize(user_tower(x), dim=-1)
            loss = sampled_softmax_loss(u, Et, torch.from_numpy(pos_rows[b]), Et.shape[0], cfg.negatives, cfg.tau, gen)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * b.size
        log(f"user-tower epoch {epoch + 1}/{cfg.epochs_user} (exact reference features): loss {total / n:.4f} "
            f"({time.time() - t0:.1f} s)")


# --------------------------------------------------------------------------------------------
# Calibration and evaluation


def platt_fit(z: np.ndarray, y: np.ndarray, iters: int = 50):
    """Logistic regression y ~ sigmoid(a*z + b) by Newton's method (float64). -> (a, b)."""
    X = np.stack([z.astype(np.float64), np.ones_like(z, dtype=np.float64)], axis=1)
    theta = np.array([1.0, math.log(max(y.mean(), 1e-6) / max(1 - y.mean(), 1e-6))])
    for _ in range(iters):
        p = 1.0 / (1.0 + np.exp(-(X @ theta)))
        g = X.T @ (p - y) + 1e-6 * theta
        H = (X * (p * (1 - p))[:, None]).T @ X + 1e-6 * np.eye(2)
        step = np.linalg.solve(H, g)
        theta -= step
        if np.max(np.abs(step)) < 1e-12:
            break
    return float(theta[0]), float(theta[1])


def calibration_table(p: np.ndarray, y: np.ndarray, bins: int = 10) -> list:
    edges = np.quantile(p, np.linspace(0, 1, bins + 1))
    which = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, bins - 1)
    rows = []
    for b in range(bins):
        m = which == b
        if m.any():
            rows.append({"bin": b + 1, "p_lo": float(edges[b]), "p_hi": float(edges[b + 1]), "count": int(m.sum()),
                         "predicted": float(p[m].mean()), "observed": float(y[m].mean())})
    return rows


def recall_at_k(scores_fn, sessions: np.ndarray, pos_by_session: dict, k: int) -> tuple:
    hits = total = 0
    for s in sessions:
        top = scores_fn(s)
        targets = pos_by_session[s]
        hits += int(np.isin(targets, top).sum())
        total += targets.size
    return hits, total


# --------------------------------------------------------------------------------------------
# The whole run


def run(cfg: TrainConfig, out_dir: str, world_dir: str) -> dict:
    import torch
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    t_start = time.time()
    timings = {}

    t = time.time()
    world = W.make_world(cfg.seed, cfg.items, cfg.users, cfg.activity_days, cfg.sessions_per_day)
    timings["world_s"] = time.time() - t
    desc = W.describe(world)
    log(f"world: {json.dumps(desc)} ({timings['world_s']:.1f} s)")
    os.makedirs(world_dir, exist_ok=True)
    world.events.write_jsonl(os.path.join(world_dir, "events.jsonl"))
    world.users.write_jsonl(os.path.join(world_dir, "users.jsonl"))

    cat, ev, ses = world.catalogue, world.events, world.sessions
    split = W.WORLD_NOW - cfg.holdout_days * W.DAY_MS
    provisional = Manifest(model_version=cfg.model_version, embedding_dim=cfg.dim, categories=tuple(W.CATEGORIES),
                           devices=tuple(W.DEVICES), actions=tuple(DEFAULT_ACTIONS),
                           half_life_hours=cfg.half_life_hours, hidden=tuple(cfg.hidden), activation="relu",
                           temperature=cfg.tau, score_bias=0.0)
    t = time.time()
    ex = build_examples(world, provisional)
    timings["examples_s"] = time.time() - t
    clicks = np.flatnonzero(ev.action == W.A_CLICK)
    click_sess, click_rows = ev.session[clicks], ev.item_row[clicks]
    train_sel = ex.T[click_sess] < split
    pos_sess, pos_rows = click_sess[train_sel], click_rows[train_sel]
    log(f"examples: {ses.start.size} sessions, {pos_sess.size} training clicks, "
        f"{int((~train_sel).sum())} held-out clicks ({timings['examples_s']:.1f} s)")

    item_feats = cat.item_features()
    item_tower = make_item_tower(item_feats.shape[1], cfg.item_hidden, cfg.dim)
    user_tower = make_user_tower(provisional.feature_dim, cfg.hidden, cfg.dim)
    t = time.time()
    item_tower.train(), user_tower.train()
    train_joint(cfg, item_feats, ex, pos_sess, pos_rows, item_tower, user_tower)
    timings["train_joint_s"] = time.time() - t
    item_tower.eval()
    E = normalize_embeddings(embed_items(item_tower, item_feats))  # the rows export_bundle writes

    # Phase 2: the exact serving features from the reference implementation.
    t = time.time()
    bundle = Bundle(provisional, [], E, cat.item_ids, {int(i["item_id"]): Item(**i) for i in cat.items()})
    X = reference_features(world, bundle, ex)
    timings["reference_features_s"] = time.time() - t
    # The closed form (phase 1's input) and the incremental reference must agree.
    import torch.nn.functional as F
    idx, offsets = _gather_ranges(ex.hist_ptr, np.arange(ex.T.size))
    bag = F.embedding_bag(torch.from_numpy(ex.hist_rows[idx]), torch.from_numpy(E), torch.from_numpy(offsets),
                          mode="sum", per_sample_weights=torch.from_numpy(ex.hist_coef[idx]))
    closed = np.concatenate([F.normalize(bag, dim=-1).numpy(), ex.c_feat, ex.n_feat, ex.ctx], axis=1)
    closed_vs_ref = float(np.max(np.abs(closed - X)))
    log(f"reference features: {X.shape} ({timings['reference_features_s']:.1f} s); "
        f"max |closed form - incremental| = {closed_vs_ref:.2e}")
    if closed_vs_ref > 1e-4:
        raise ToolsError("bad_argument", f"closed-form features disagree with the reference by {closed_vs_ref}")
    t = time.time()
    user_tower.train()
    train_user(cfg, E, X, pos_sess, pos_rows, user_tower, provisional.context_dim)
    user_tower.eval()
    timings["train_user_s"] = time.time() - t

    # Calibration on held-out impressions.
    tower = Tower([(l.weight.detach().numpy(), l.bias.detach().numpy()) for l in user_tower if hasattr(l, "weight")])
    U = tower(X)
    imps = np.flatnonzero((ev.action == W.A_IMPRESSION) & (ex.T[ev.session] >= split))
    clicked = set(zip(click_sess.tolist(), click_rows.tolist()))
    y = np.array([(s, r) in clicked for s, r in zip(ev.session[imps].tolist(), ev.item_row[imps].tolist())],
                 dtype=np.float64)
    dots = np.einsum("ij,ij->i", U[ev.session[imps]], E[ev.item_row[imps]]).astype(np.float32).astype(np.float64)
    fit_half = (ev.user_id[imps] % 2) == 0
    a, b = platt_fit(dots[fit_half], y[fit_half])
    if a <= 0:
        raise ToolsError("bad_argument", f"Platt scaling found a non-positive slope {a}: the model does not rank clicks")
    temperature, score_bias = 1.0 / a, b
    z = (dots[~fit_half].astype(np.float32) / np.float32(temperature) + np.float32(score_bias)).astype(np.float64)
    p_rep = 1.0 / (1.0 + np.exp(-z))
    y_rep = y[~fit_half]
    table = calibration_table(p_rep, y_rep)
    eps = 1e-12
    calib = {
        "fit_impressions": int(fit_half.sum()), "report_impressions": int((~fit_half).sum()),
        "temperature": temperature, "score_bias": score_bias,
        "mean_predicted": float(p_rep.mean()), "observed_ctr": float(y_rep.mean()),
        "log_loss": float(-np.mean(y_rep * np.log(p_rep + eps) + (1 - y_rep) * np.log(1 - p_rep + eps))),
        "log_loss_constant": float(-np.mean(y_rep * math.log(y_rep.mean()) + (1 - y_rep) * math.log(1 - y_rep.mean()))),
        "ece": float(sum(r["count"] * abs(r["predicted"] - r["observed"]) for r in table) / y_rep.size),
        "auc": _auc(p_rep, y_rep),
        "table": table,
    }
    log(f"Platt: temperature {temperature:.5f}, score_bias {score_bias:.4f}; report half: mean predicted "
        f"{calib['mean_predicted']:.4f} vs observed {calib['observed_ctr']:.4f}, AUC {calib['auc']:.3f}")
    log("calibration (held-out impressions of odd user ids, deciles of predicted):")
    log("   bin  impressions  predicted  observed")
    for row in table:
        log(f"  {row['bin']:4d}  {row['count']:11d}  {row['predicted']:9.4f}  {row['observed']:8.4f}")

    # Export, then evaluate what was exported.
    bundle_dir = os.path.join(out_dir, "bundle")
    t = time.time()
    rep = export_bundle(bundle_dir, user_tower, E, cat.item_ids, cat.items(), W.CATEGORIES, W.DEVICES,
                        DEFAULT_ACTIONS, cfg.half_life_hours, temperature, score_bias, cfg.model_version)
    os.makedirs(os.path.join(out_dir, "model"), exist_ok=True)
    save_item_tower(os.path.join(out_dir, "model", ITEM_TOWER_FILE), item_tower, cfg)
    timings["export_s"] = time.time() - t
    loaded = Bundle.load(bundle_dir)
    tower = Tower(loaded.tower_weights)
    U = tower(X)
    recall = evaluate_recall(world, ex, loaded.item_embeddings, U, click_sess, click_rows, split, k=50)
    log(f"recall@50 held-out: {json.dumps({k: v for k, v in recall.items() if k != 'detail'})}")

    # The committed slice of the stream: whole histories of the first users, a couple of MB.
    rows = _events_slice(world, cfg.events_slice_bytes)
    n_slice = world.events.write_jsonl(os.path.join(out_dir, "events.jsonl"), rows)
    timings["total_s"] = time.time() - t_start
    report = {
        "config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(cfg).items()},
        "world": desc, "split_ts": split, "bundle": rep, "calibration": calib, "recall": recall,
        "closed_form_vs_reference_max_abs": closed_vs_ref,
        "events_slice": {"events": n_slice, "users": int(np.unique(world.events.user_id[rows]).size)},
        "timings_s": {k: round(v, 1) for k, v in timings.items()},
        "machine": {"python": platform.python_version(), "torch": torch.__version__, "cpu": _cpu_name(),
                    "threads": torch.get_num_threads()},
    }
    with open(os.path.join(out_dir, "report.json"), "w") as f:
        json.dump(report, f, indent=2)
        f.write("\n")
    with open(os.path.join(out_dir, "README.md"), "w") as f:
        f.write(render_readme(report))
    log(f"done in {timings['total_s']:.0f} s")
    return report


def _auc(p: np.ndarray, y: np.ndarray) -> float:
    order = np.argsort(p, kind="stable")
    ranks = np.empty(p.size)
    ranks[order] = np.arange(1, p.size + 1)
    # average ranks of ties
    _, inv, counts = np.unique(p, return_inverse=True, return_counts=True)
    sums = np.bincount(inv, weights=ranks)
    ranks = (sums / counts)[inv]
    n_pos = y.sum()
    n_neg = y.size - n_pos
    return float((ranks[y == 1].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def evaluate_recall(world, ex, E, U, click_sess, click_rows, split, k=50) -> dict:
    ev = world.events
    train_clicks = click_sess[ex.T[click_sess] < split]
    train_rows = click_rows[ex.T[click_sess] < split]
    n_items = E.shape[0]
    counts = np.bincount(train_rows, minlength=n_items)
    pop_all = np.argsort(-counts, kind="stable")[:k]
    recent = ex.T[train_clicks] >= split - 7 * W.DAY_MS
    pop_recent = np.argsort(-np.bincount(train_rows[recent], minlength=n_items), kind="stable")[:k]
    held = ex.T[click_sess] >= split
    hs, hr = click_sess[held], click_rows[held]
    sessions = np.unique(hs)
    by_s = {}
    for s, r in zip(hs.tolist(), hr.tolist()):
        by_s.setdefault(s, []).append(r)
    model_hits = pop_hits = recent_hits = 0
    cold_hits = cold_total = 0
    Us = U[sessions].astype(np.float32)
    for lo in range(0, sessions.size, 256):
        scores = Us[lo:lo + 256] @ E.T
        top = np.argpartition(-scores, k, axis=1)[:, :k]
        for i, s in enumerate(sessions[lo:lo + 256].tolist()):
            targets = np.array(by_s[s])
            h = int(np.isin(targets, top[i]).sum())
            model_hits += h
            pop_hits += int(np.isin(targets, pop_all).sum())
            recent_hits += int(np.isin(targets, pop_recent).sum())
            if ex.cold[s]:
                cold_hits += h
                cold_total += targets.size
    # The hidden ground truth's own top-k (items published by T): how much recall the world allows.
    cat, users = world.catalogue, world.users
    oracle_hits = 0
    for lo in range(0, sessions.size, 64):
        ss = sessions[lo:lo + 64]
        z = W.click_logit_matrix(world.truth, cat, users, ex.session_user[ss], ex.T[ss], ex.device[ss])
        z[cat.published_at[None, :] > ex.T[ss][:, None]] = -np.inf
        top = np.argpartition(-z, k, axis=1)[:, :k]
        for i, s in enumerate(ss.tolist()):
            oracle_hits += int(np.isin(np.array(by_s[s]), top[i]).sum())
    total = hr.size
    return {
        "ground_truth_oracle": oracle_hits / total,
        "k": k, "heldout_clicks": int(total), "heldout_sessions": int(sessions.size),
        "model": model_hits / total, "popularity_alltime": pop_hits / total,
        "popularity_last7d": recent_hits / total,
        "model_cold_start_sessions": (cold_hits / cold_total) if cold_total else None,
        "cold_start_clicks": int(cold_total),
    }


def _events_slice(world: W.World, max_bytes: int) -> np.ndarray:
    ev = world.events
    per_user = np.bincount(ev.user_id, minlength=len(world.users) + 1)
    approx = np.cumsum(per_user * 105)  # ~105 bytes per JSON line
    last_user = max(1, int(np.searchsorted(approx, max_bytes)) - 1)
    return np.flatnonzero(ev.user_id <= last_user)


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def render_readme(r: dict) -> str:
    c, rc, w, cfgd = r["calibration"], r["recall"], r["world"], r["config"]
    lines = [
        "# The demo world",
        "",
        "A small, complete FeedRank world made by the Python tools: a model bundle, a slice of the",
        "activity stream, and the trained item tower. Everything here is generated -- do not edit by hand.",
        "",
        "Regenerate (deterministic: seeded numpy, `torch.manual_seed`, one thread):",
        "",
        "    scripts/make-demo.sh        # = .venv/bin/python tools/train.py --out demo",
        "",
        "| path | what |",
        "|---|---|",
        f"| `bundle/` | the feedrank.bundle.v1 (contract section 2): {r['bundle']['items']} items, D = "
        f"{r['bundle']['embedding_dim']}, F = {r['bundle']['feature_dim']}, user tower hidden {r['bundle']['hidden']}, "
        f"model_version `{cfgd['model_version']}` |",
        f"| `events.jsonl` | {r['events_slice']['events']} `user-activity` records: the whole history of users "
        f"1..{r['events_slice']['users']} in stream order (ts before {W.WORLD_NOW}; a few arrive out of order) |",
        "| `model/item_tower.safetensors` | the item tower; `scripts/make-worlds.sh` embeds 100k/1M-item worlds with it |",
        "| `report.json` | everything below, machine-readable |",
        "",
        "## How it was made",
        "",
        f"World (`tools/feedrank_tools/world.py`, seed {cfgd['seed']}): {w['items']} items in 20 categories by "
        f"~{w['items'] // 10} creators, published over the 60 days before {W.WORLD_NOW} ({w['published_last_24h']} in the "
        f"last 24 h), {w['quality_below_0.5'] * 100:.1f}% with quality < 0.5, {w['promoted']} promoted; {w['users']} users "
        f"with category preferences and a latent taste; a hidden ground-truth click model (taste match, category "
        f"preference, quality, popularity, freshness, hour-of-day and device effects); {w['sessions']} feed sessions "
        f"over {cfgd['activity_days']} days from a logging policy (personalised, popular, fresh and random items) "
        f"giving {w['events']} events: {json.dumps(w['actions'])} (CTR {w['ctr']:.3f}; "
        f"{w['out_of_order_events']} events delivered out of order).",
        "",
        "Model (`tools/feedrank_tools/train.py`): an item tower over the items' observable features (category, a",
        "content vector, quality, a noisy popularity signal) and a user tower over the contract's features, both",
        "L2-normalised. Examples are sessions: the user's state before the session, decayed to its start, with its",
        "hour, weekday and device; positives are the items clicked in it. Phase 1 trains both towers with sampled",
        f"softmax (in-batch positives + {cfgd['negatives']} uniform negatives, tau {cfgd['tau']}); phase 2 freezes the item",
        "embeddings, replays every user's events through `reference.UserState.apply` and fine-tunes the user tower",
        "on `reference.features` -- the exact serving features (they match phase 1's closed form to "
        f"{r['closed_form_vs_reference_max_abs']:.1e}), with {cfgd['cold_dropout']:.0%} of rows stripped of their "
        f"activity features to teach cold starts. Held-out: the last {cfgd['holdout_days']} days.",
        "",
        "## Calibration (Platt scaling on held-out impressions)",
        "",
        f"Fitted on the held-out impressions of even user ids ({c['fit_impressions']}): temperature = "
        f"{c['temperature']:.6f}, score_bias = {c['score_bias']:.6f}. Reported on odd user ids "
        f"({c['report_impressions']} impressions): mean predicted {c['mean_predicted']:.4f} vs observed click rate "
        f"{c['observed_ctr']:.4f}; log loss {c['log_loss']:.4f} (constant predictor {c['log_loss_constant']:.4f}); "
        f"AUC {c['auc']:.3f}; expected calibration error {c['ece']:.4f}.",
        "",
        "| bin (deciles of predicted) | impressions | predicted | observed |",
        "|---|---:|---:|---:|",
    ]
    for t in c["table"]:
        lines.append(f"| {t['bin']}: {t['p_lo']:.4f}-{t['p_hi']:.4f} | {t['count']} | {t['predicted']:.4f} | "
                     f"{t['observed']:.4f} |")
    cold = rc["model_cold_start_sessions"]
    lines += [
        "",
        f"## Retrieval: recall@{rc['k']} on held-out clicks",
        "",
        f"{rc['heldout_clicks']} clicks in {rc['heldout_sessions']} held-out sessions; top-{rc['k']} over the whole "
        "catalogue by `dot(u, e)` with u from the exported bundle (reference features -> PyTorch tower).",
        "",
        "| retriever | recall@50 |",
        "|---|---:|",
        f"| two-tower model (this bundle) | {rc['model']:.4f} |",
        f"| popularity (training clicks, all time) | {rc['popularity_alltime']:.4f} |",
        f"| popularity (training clicks, last 7 days) | {rc['popularity_last7d']:.4f} |",
        f"| ranking by the world's hidden true click probability (reference, not a model) | {rc['ground_truth_oracle']:.4f} |",
    ]
    if cold is not None:
        lines.append(f"| two-tower model, cold-start sessions only ({rc['cold_start_clicks']} clicks) | {cold:.4f} |")
    t = r["timings_s"]
    m = r["machine"]
    lines += [
        "",
        "## Time",
        "",
        f"Total {t['total_s']:.0f} s on {m['cpu']}, one thread (torch {m['torch']}, Python {m['python']}): world "
        f"{t['world_s']:.0f} s, examples {t['examples_s']:.0f} s, joint training {t['train_joint_s']:.0f} s, reference "
        f"replay {t['reference_features_s']:.0f} s, user-tower fine-tune {t['train_user_s']:.0f} s, export "
        f"{t['export_s']:.0f} s.",
        "",
    ]
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="train.py", description=__doc__.split("\n\n")[0])
    d = TrainConfig()
    p.add_argument("--out", required=True, help="output directory (bundle/, events.jsonl, model/, README.md)")
    p.add_argument("--world-dir", default=None, help="where the full event stream and users go "
                                                     "(default: data/demo-world next to tools/)")
    for name in ("seed", "items", "users", "activity_days", "holdout_days", "epochs_joint", "epochs_user", "batch",
                 "negatives"):
        p.add_argument("--" + name.replace("_", "-"), type=int, default=getattr(d, name))
    for name in ("sessions_per_day", "tau", "lr", "lr_user", "cold_dropout", "half_life_hours"):
        p.add_argument("--" + name.replace("_", "-"), type=float, default=getattr(d, name))
    p.add_argument("--model-version", default=d.model_version)
    p.add_argument("--hidden", default=",".join(map(str, d.hidden)), help="user tower hidden sizes")
    args = p.parse_args(argv)
    cfg = TrainConfig(**{k: getattr(args, k) for k in ("seed", "items", "users", "activity_days", "holdout_days",
                                                        "epochs_joint", "epochs_user", "batch", "negatives",
                                                        "sessions_per_day", "tau", "lr", "lr_user", "cold_dropout",
                                                        "half_life_hours", "model_version")},
                      hidden=tuple(int(h) for h in args.hidden.split(",") if h))
    world_dir = args.world_dir or os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__)))), "data", "demo-world")
    try:
        report = run(cfg, args.out, world_dir)
    except ToolsError as e:
        print(f"train: {e.message}", file=sys.stderr)
        return 1
    print(json.dumps({"recall": report["recall"], "temperature": report["calibration"]["temperature"],
                      "score_bias": report["calibration"]["score_bias"], "timings_s": report["timings_s"]}))
    return 0
