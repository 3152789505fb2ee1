"""The reference implementation of the product contract's section 2, written to be read.

Everything the Swift RankingModel module computes is specified here, literally:

* `Bundle.load(dir)` reads a feedrank.bundle.v1 directory (manifest.json, weights.safetensors,
  items.jsonl).
* `UserState.apply(event, bundle)` is the incremental state update. The team's decisions where
  the contract is loose:
    - S, c, n are float64; the decay factor is computed in float64;
      half_life_ms = half_life_hours * 3_600_000.
    - First event of a user: t_last = t, the sums start at zero.
    - An event at t >= t_last: g = 2^(-(t - t_last)/half_life_ms); S = g*S (+ w*e if the item is
      in the bundle); c = g*c (c[cat] += w if known); n = g*n; n[a] += 1; t_last = t.
    - An event at t < t_last: g' = 2^(-(t_last - t)/half_life_ms); S += g'*w*e and
      c[cat] += g'*w (if known); n[a] += g'; t_last unchanged.
    - e = the item's float32 embedding as float64; w = the action's weight from the manifest.
    - An item not in the bundle: S and c decay but get no addition; n and impressions as usual.
    - action "impression" appends [item_id, ts] to the impressions; after every event the
      entries with ts < t_last - 25 h are dropped; otherwise insertion order is kept.
    - recent_event_ids: the last 16 applied event_ids, oldest first. src: the source position
      {"p": partition, "o": offset} of the last applied record that came with one, else null.
    - Redelivery: an event whose event_id is in recent_event_ids, or whose source position has
      src's partition and an offset <= src's offset, is a duplicate and is not applied.
* `features(state, T, device, manifest)` is the user tower's input x (F = D + C + A + K), in
  float64: with f = 2^(-(T - t_last)/half_life_ms) (as is, even when T < t_last) and Sd = f*S,
  cd = f*c, nd = f*n: x[0:D] = Sd/|Sd| (zeros when |Sd| = 0), x[D:D+C] = cd/(sum|cd| + 1),
  x[D+C:D+C+A] = log1p(nd), then sin/cos of the UTC hour (h/24) and weekday (Monday = 0, d/7)
  of T and a one-hot of the device over the manifest's devices plus a last "unknown" slot.
  A cold start (no state) has zero activity features.
* `Tower` runs the user tower in PyTorch (float32): Linear, ReLU, ..., Linear, then
  u = torch.nn.functional.normalize(.).
* `score(u, e, temperature, score_bias)`: z = float32 dot (dot32) / temperature + score_bias (float64),
  score = sigmoid(z) in float64.
* `UserState.to_json()` is the state's JSON encoding (floats printed with Python's repr, which
  is the shortest string that parses back to the same float64).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from typing import Any, Iterable, Optional, Sequence

import numpy as np

from .errors import ToolsError

HOUR_MS = 3_600_000
DAY_MS = 86_400_000
IMPRESSION_WINDOW_MS = 25 * HOUR_MS
RECENT_EVENT_IDS = 16
BUNDLE_FORMAT = "feedrank.bundle.v1"
ACTION_NAMES = ("impression", "click", "like", "comment", "share", "dwell", "hide")
DEFAULT_ACTIONS = (
    ("impression", 0.05),
    ("click", 1.0),
    ("like", 2.0),
    ("comment", 2.0),
    ("share", 3.0),
    ("dwell", 0.5),
    ("hide", -3.0),
)
EMBEDDING_NORM_TOLERANCE = 1e-3


# --------------------------------------------------------------------------------------------
# Manifest and bundle


@dataclass(frozen=True)
class Manifest:
    model_version: str
    embedding_dim: int
    categories: tuple
    devices: tuple
    actions: tuple  # ((name, weight), ...) in the order of n
    half_life_hours: float
    hidden: tuple
    activation: str
    temperature: float
    score_bias: float
    format: str = BUNDLE_FORMAT

    @property
    def half_life_ms(self) -> float:
        return float(self.half_life_hours) * 3_600_000.0

    @property
    def context_dim(self) -> int:
        return 4 + len(self.devices) + 1

    @property
    def feature_dim(self) -> int:
        return self.embedding_dim + len(self.categories) + len(self.actions) + self.context_dim

    def action_index(self, name: str) -> int:
        try:
            return [a for a, _ in self.actions].index(name)
        except ValueError:
            pass
        raise ToolsError("bad_event", f"action {name!r} is not in the manifest's actions")

    def to_json(self) -> dict:
        return {
            "format": self.format,
            "model_version": self.model_version,
            "embedding_dim": self.embedding_dim,
            "categories": list(self.categories),
            "devices": list(self.devices),
            "actions": [{"name": n, "weight": float(w)} for n, w in self.actions],
            "half_life_hours": float(self.half_life_hours),
            "user_tower": {"hidden": list(self.hidden), "activation": self.activation},
            "temperature": float(self.temperature),
            "score_bias": float(self.score_bias),
        }

    @staticmethod
    def from_json(obj: Any, where: str = "manifest.json") -> "Manifest":
        def need(key, types):
            if not isinstance(obj, dict) or key not in obj:
                raise ToolsError("bad_bundle", f"{where}: missing field {key!r}")
            v = obj[key]
            if not isinstance(v, types) or isinstance(v, bool) and bool not in _as_tuple(types):
                raise ToolsError("bad_bundle", f"{where}: field {key!r} has the wrong type")
            return v

        fmt = need("format", str)
        if fmt != BUNDLE_FORMAT:
            raise ToolsError("bad_bundle", f"{where}: format is {fmt!r}, expected {BUNDLE_FORMAT!r}")
        actions = need("actions", list)
        parsed_actions = []
        for i, a in enumerate(actions):
            if not isinstance(a, dict) or not isinstance(a.get("name"), str) \
                    or not _is_number(a.get("weight")):
                raise ToolsError("bad_bundle", f"{where}: actions[{i}] needs a name and a numeric weight")
            parsed_actions.append((a["name"], float(a["weight"])))
        tower = need("user_tower", dict)
        hidden = tower.get("hidden")
        if not isinstance(hidden, list) or not all(_is_int(h) and h > 0 for h in hidden):
            raise ToolsError("bad_bundle", f"{where}: user_tower.hidden must be a list of positive integers")
        score_bias = obj.get("score_bias", 0.0)
        if not _is_number(score_bias):
            raise ToolsError("bad_bundle", f"{where}: field 'score_bias' has the wrong type")
        m = Manifest(
            format=fmt,
            model_version=need("model_version", str),
            embedding_dim=need("embedding_dim", int),
            categories=tuple(need("categories", list)),
            devices=tuple(need("devices", list)),
            actions=tuple(parsed_actions),
            half_life_hours=float(need("half_life_hours", (int, float))),
            hidden=tuple(hidden),
            activation=str(tower.get("activation", "relu")),
            temperature=float(need("temperature", (int, float))),
            score_bias=float(score_bias),
        )
        validate_manifest(m, where=where, code="bad_bundle")
        return m


def _as_tuple(t):
    return t if isinstance(t, tuple) else (t,)


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def validate_manifest(m: Manifest, where: str, code: str) -> None:
    """The manifest checks shared by the exporter and the reader."""
    def fail(msg):
        raise ToolsError(code, f"{where}: {msg}")

    if not isinstance(m.model_version, str) or not m.model_version:
        fail("model_version must be a non-empty string")
    if not _is_int(m.embedding_dim) or m.embedding_dim <= 0:
        fail("embedding_dim must be a positive integer")
    for name, values in (("categories", m.categories), ("devices", m.devices)):
        if len(values) == 0 and name == "categories":
            fail("categories must not be empty")
        for v in values:
            if not isinstance(v, str) or not v:
                fail(f"{name} must be non-empty strings, got {v!r}")
        if len(set(values)) != len(values):
            fail(f"{name} has duplicates")
    if len(m.actions) == 0:
        fail("actions must not be empty")
    names = [n for n, _ in m.actions]
    for n in names:
        if n not in ACTION_NAMES:
            fail(f"action {n!r} is not one of {', '.join(ACTION_NAMES)}")
    if len(set(names)) != len(names):
        fail("actions has duplicate names")
    for n, w in m.actions:
        if not math.isfinite(w):
            fail(f"action {n!r} has a non-finite weight")
    for n in ACTION_NAMES:
        if n not in names:
            fail(f"actions lacks {n!r} (every user-activity action needs a weight)")
    if not (math.isfinite(m.half_life_hours) and m.half_life_hours > 0):
        fail("half_life_hours must be a positive finite number")
    if not (math.isfinite(m.temperature) and m.temperature > 0):
        fail("temperature must be a positive finite number")
    if not math.isfinite(m.score_bias):
        fail("score_bias must be finite")
    if m.activation != "relu":
        fail(f"user_tower.activation is {m.activation!r}; only 'relu' is supported")


@dataclass(frozen=True)
class Item:
    item_id: int
    category: str
    creator_id: int
    published_at: int
    quality: float
    promoted: bool

    def to_json(self) -> dict:
        return {"item_id": self.item_id, "category": self.category, "creator_id": self.creator_id,
                "published_at": self.published_at, "quality": self.quality, "promoted": self.promoted}


def parse_item(obj: Any, where: str, code: str = "bad_bundle") -> Item:
    """One items.jsonl line (already JSON-decoded) -> Item, with errors naming `where` + field."""
    if not isinstance(obj, dict):
        raise ToolsError(code, f"{where}: an item must be a JSON object")
    for key, check, what in (
        ("item_id", _is_int, "an integer"),
        ("category", lambda v: isinstance(v, str), "a string"),
        ("creator_id", _is_int, "an integer"),
        ("published_at", _is_int, "an integer (ms since the epoch)"),
        ("quality", lambda v: _is_number(v) and math.isfinite(v), "a finite number"),
        ("promoted", lambda v: isinstance(v, bool), "true or false"),
    ):
        if key not in obj:
            raise ToolsError(code, f"{where}: missing field {key!r}")
        if not check(obj[key]):
            raise ToolsError(code, f"{where}: field {key!r} must be {what}")
    if not (-2**63 <= obj["item_id"] < 2**63):
        raise ToolsError(code, f"{where}: item_id does not fit in int64")
    return Item(obj["item_id"], obj["category"], obj["creator_id"], obj["published_at"],
                float(obj["quality"]), obj["promoted"])


class Bundle:
    """A loaded bundle: manifest, tower weights, item matrix, item table, id -> row lookup."""

    def __init__(self, manifest: Manifest, tower: list, item_embeddings: np.ndarray,
                 item_ids: np.ndarray, items: dict, path: str = "<memory>"):
        self.manifest = manifest
        self.tower_weights = tower  # [(W [out,in] float32, b [out] float32), ...]
        self.item_embeddings = item_embeddings  # [N, D] float32
        self.item_ids = item_ids  # [N] int64
        self.items = items  # item_id -> Item (may hold extra, non-embedded items)
        self.path = path
        self.row_of = {int(i): r for r, i in enumerate(item_ids.tolist())}
        cat_index = {c: k for k, c in enumerate(manifest.categories)}
        self.item_category = np.array([cat_index[items[int(i)].category] for i in item_ids.tolist()],
                                      dtype=np.int64)
        self._embeddings64 = None

    @property
    def embeddings64(self) -> np.ndarray:
        if self._embeddings64 is None:
            self._embeddings64 = self.item_embeddings.astype(np.float64)
        return self._embeddings64

    def lookup(self, item_id: int):
        """(row, embedding as float64, category index) or None for an item not in the bundle."""
        r = self.row_of.get(item_id)
        if r is None:
            return None
        return r, self.embeddings64[r], int(self.item_category[r])

    @staticmethod
    def load(directory: str) -> "Bundle":
        from safetensors.numpy import load_file

        def path(name):
            p = os.path.join(directory, name)
            if not os.path.isfile(p):
                raise ToolsError("bad_bundle", f"{p}: missing bundle file")
            return p

        mpath = path("manifest.json")
        try:
            with open(mpath, "rb") as f:
                manifest = Manifest.from_json(json.loads(f.read()), where=mpath)
        except json.JSONDecodeError as e:
            raise ToolsError("bad_bundle", f"{mpath}: not valid JSON ({e})") from None
        wpath = path("weights.safetensors")
        try:
            tensors = load_file(wpath)
        except Exception as e:  # safetensors raises its own error types
            raise ToolsError("bad_bundle", f"{wpath}: cannot read safetensors ({e})") from None
        tower = _tower_from_tensors(tensors, where=wpath, code="bad_bundle")
        for name in ("item_embeddings", "item_ids"):
            if name not in tensors:
                raise ToolsError("bad_bundle", f"{wpath}: tensor {name} is missing")
        emb, ids = tensors["item_embeddings"], tensors["item_ids"]
        _check_weights(manifest, tower, emb, ids, where=wpath, code="bad_bundle")
        ipath = path("items.jsonl")
        items = {}
        with open(ipath, "rb") as f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                where = f"{ipath}:{lineno}"
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as e:
                    raise ToolsError("bad_bundle", f"{where}: not valid JSON ({e})") from None
                it = parse_item(obj, where)
                if it.item_id in items:
                    raise ToolsError("bad_bundle", f"{where}: duplicate item_id {it.item_id}")
                if it.category not in manifest.categories:
                    raise ToolsError("bad_bundle", f"{where}: unknown category {it.category!r}")
                items[it.item_id] = it
        for i in ids.tolist():
            if i not in items:
                raise ToolsError("bad_bundle", f"{ipath}: embedded item {i} has no line")
        return Bundle(manifest, tower, emb, ids, items, path=directory)


def _tower_from_tensors(tensors: dict, where: str, code: str) -> list:
    """user_tower.{k}.weight/bias for k = 0..L-1, rejecting gaps, strays and missing biases."""
    layers = {}
    for name in tensors:
        if not name.startswith("user_tower."):
            continue
        parts = name.split(".")
        if len(parts) != 3 or not parts[1].isdigit() or parts[2] not in ("weight", "bias"):
            raise ToolsError(code, f"{where}: unexpected tensor {name}")
        layers.setdefault(int(parts[1]), {})[parts[2]] = tensors[name]
    if not layers:
        raise ToolsError(code, f"{where}: no user_tower.{{k}} tensors")
    tower = []
    for k in range(max(layers) + 1):
        if k not in layers:
            raise ToolsError(code, f"{where}: user_tower layers must be numbered 0..L-1; user_tower.{k} is missing")
        for part in ("weight", "bias"):
            if part not in layers[k]:
                raise ToolsError(code, f"{where}: tensor user_tower.{k}.{part} is missing")
        tower.append((layers[k]["weight"], layers[k]["bias"]))
    return tower


def _check_weights(manifest: Manifest, tower: list, emb: np.ndarray, ids: np.ndarray,
                   where: str, code: str) -> None:
    """Shape, dtype and value checks shared by the exporter and the reader."""
    D = manifest.embedding_dim
    F = manifest.feature_dim
    fan_in = F
    for k, (w, b) in enumerate(tower):
        if w.dtype != np.float32 or b.dtype != np.float32:
            raise ToolsError(code, f"{where}: tensor user_tower.{k} must be float32")
        if w.ndim != 2 or w.shape[1] != fan_in:
            raise ToolsError(code, f"{where}: tensor user_tower.{k}.weight has shape {list(w.shape)}, "
                                   f"expected [out, {fan_in}]")
        if b.shape != (w.shape[0],):
            raise ToolsError(code, f"{where}: tensor user_tower.{k}.bias has shape {list(b.shape)}, "
                                   f"expected [{w.shape[0]}]")
        for name, t in (("weight", w), ("bias", b)):
            if not np.all(np.isfinite(t)):
                raise ToolsError(code, f"{where}: tensor user_tower.{k}.{name} holds NaN or inf")
        fan_in = w.shape[0]
    if fan_in != D:
        raise ToolsError(code, f"{where}: the last user_tower layer outputs {fan_in}, expected embedding_dim {D}")
    hidden = tuple(w.shape[0] for w, _ in tower[:-1])
    if hidden != tuple(manifest.hidden):
        raise ToolsError(code, f"{where}: user_tower hidden sizes are {list(hidden)}, "
                               f"the manifest says {list(manifest.hidden)}")
    if emb.dtype != np.float32 or emb.ndim != 2 or emb.shape[1] != D:
        raise ToolsError(code, f"{where}: tensor item_embeddings must be float32 [N, {D}], "
                               f"got {emb.dtype} {list(emb.shape)}")
    if ids.dtype != np.int64 or ids.shape != (emb.shape[0],):
        raise ToolsError(code, f"{where}: tensor item_ids must be int64 [{emb.shape[0]}], "
                               f"got {ids.dtype} {list(ids.shape)}")
    if not np.all(np.isfinite(emb)):
        row = int(np.argwhere(~np.isfinite(emb))[0][0])
        raise ToolsError(code, f"{where}: tensor item_embeddings holds NaN or inf (row {row})")
    norms = np.sqrt(np.sum(emb.astype(np.float64) ** 2, axis=1))
    bad = np.flatnonzero(np.abs(norms - 1.0) > EMBEDDING_NORM_TOLERANCE)
    if bad.size:
        raise ToolsError(code, f"{where}: tensor item_embeddings row {int(bad[0])} has norm {norms[bad[0]]:.6f}, "
                               "expected unit length")
    if np.unique(ids).size != ids.size:
        uniq, counts = np.unique(ids, return_counts=True)
        raise ToolsError(code, f"{where}: tensor item_ids has duplicate id {int(uniq[counts > 1][0])}")


# --------------------------------------------------------------------------------------------
# Activity events


@dataclass(frozen=True)
class ActivityEvent:
    event_id: str
    user_id: int
    item_id: int
    action: str
    ts: int
    dwell_ms: Optional[int] = None

    def to_json(self) -> dict:
        d = {"event_id": self.event_id, "user_id": self.user_id, "item_id": self.item_id,
             "action": self.action, "ts": self.ts}
        if self.dwell_ms is not None:
            d["dwell_ms"] = self.dwell_ms
        return d


def parse_event(obj: Any, where: str = "event") -> ActivityEvent:
    """A contract `user-activity` record (JSON-decoded) -> ActivityEvent; unknown fields ignored."""
    if not isinstance(obj, dict):
        raise ToolsError("bad_event", f"{where}: a user-activity record must be a JSON object")
    def need(key, check, what):
        if key not in obj:
            raise ToolsError("bad_event", f"{where}: missing field {key!r}")
        if not check(obj[key]):
            raise ToolsError("bad_event", f"{where}: field {key!r} must be {what}")
        return obj[key]
    event_id = need("event_id", lambda v: isinstance(v, str) and v != "", "a non-empty string")
    user_id = need("user_id", _is_int, "an integer")
    item_id = need("item_id", _is_int, "an integer")
    action = need("action", lambda v: v in ACTION_NAMES, "one of " + ", ".join(ACTION_NAMES))
    ts = need("ts", _is_int, "an integer (ms since the epoch)")
    dwell = obj.get("dwell_ms")
    if dwell is not None and not (_is_int(dwell) and dwell >= 0):
        raise ToolsError("bad_event", f"{where}: field 'dwell_ms' must be a non-negative integer")
    return ActivityEvent(event_id, user_id, item_id, action, ts, dwell)


# --------------------------------------------------------------------------------------------
# User state


@dataclass
class UserState:
    user_id: int
    t_last: Optional[int]
    S: np.ndarray  # [D] float64, decayed to t_last
    c: np.ndarray  # [C] float64
    n: np.ndarray  # [A] float64
    impressions: list = field(default_factory=list)  # [[item_id, ts], ...]
    src: Optional[dict] = None  # {"p": partition, "o": offset}
    recent_event_ids: list = field(default_factory=list)

    @staticmethod
    def empty(user_id: int, manifest: Manifest) -> "UserState":
        return UserState(user_id, None,
                         np.zeros(manifest.embedding_dim, dtype=np.float64),
                         np.zeros(len(manifest.categories), dtype=np.float64),
                         np.zeros(len(manifest.actions), dtype=np.float64))

    def is_duplicate(self, event: ActivityEvent, src: Optional[tuple] = None) -> bool:
        if event.event_id in self.recent_event_ids:
            return True
        if src is not None and self.src is not None and src[0] == self.src["p"] and src[1] <= self.src["o"]:
            return True
        return False

    def apply(self, event: ActivityEvent, bundle: "Bundle", src: Optional[tuple] = None) -> str:
        """Applies one event. Returns "applied", "unknown_item" (applied; item not in the bundle)
        or "duplicate" (a redelivery: nothing changed). `src` is (partition, offset) or None."""
        if event.user_id != self.user_id:
            raise ToolsError("bad_event", f"event {event.event_id} is for user {event.user_id}, "
                                          f"not {self.user_id}")
        if self.is_duplicate(event, src):
            return "duplicate"
        m = bundle.manifest
        a = m.action_index(event.action)
        w = m.actions[a][1]
        hl = m.half_life_ms
        known = bundle.lookup(event.item_id)
        t = event.ts
        S, c, n = self.S, self.c, self.n  # updated in place (same roundings as S = g*S + w*e)
        if self.t_last is None or t >= self.t_last:
            g = 1.0 if self.t_last is None else 2.0 ** (-(t - self.t_last) / hl)
            S *= g
            c *= g
            n *= g
            if known is not None:
                _, e, cat = known
                S += w * e
                c[cat] += w
            n[a] += 1.0
            self.t_last = t
        else:
            g = 2.0 ** (-(self.t_last - t) / hl)
            if known is not None:
                _, e, cat = known
                S += (g * w) * e
                c[cat] += g * w
            n[a] += g
        if event.action == "impression":
            self.impressions.append([event.item_id, t])
        cutoff = self.t_last - IMPRESSION_WINDOW_MS
        if any(p[1] < cutoff for p in self.impressions):
            self.impressions = [p for p in self.impressions if p[1] >= cutoff]
        self.recent_event_ids.append(event.event_id)
        if len(self.recent_event_ids) > RECENT_EVENT_IDS:
            del self.recent_event_ids[: len(self.recent_event_ids) - RECENT_EVENT_IDS]
        if src is not None:
            self.src = {"p": int(src[0]), "o": int(src[1])}
        return "applied" if known is not None else "unknown_item"

    # ---- JSON (contract section 2)

    def to_json_obj(self) -> dict:
        return {
            "v": 1,
            "user_id": self.user_id,
            "t_last": self.t_last,
            "S": [float(v) for v in self.S],
            "c": [float(v) for v in self.c],
            "n": [float(v) for v in self.n],
            "impressions": [[int(i), int(ts)] for i, ts in self.impressions],
            "src": None if self.src is None else {"p": self.src["p"], "o": self.src["o"]},
            "recent_event_ids": list(self.recent_event_ids),
        }

    def to_json(self) -> str:
        """Compact JSON; json.dumps prints floats with repr (shortest round-trip form)."""
        return json.dumps(self.to_json_obj(), separators=(",", ":"), allow_nan=False)

    @staticmethod
    def from_json(text, manifest: Optional[Manifest] = None) -> "UserState":
        try:
            obj = json.loads(text) if isinstance(text, (str, bytes)) else text
        except json.JSONDecodeError as e:
            raise ToolsError("bad_state", f"user state: not valid JSON ({e})") from None
        if not isinstance(obj, dict):
            raise ToolsError("bad_state", "user state: must be a JSON object")
        if obj.get("v") != 1:
            raise ToolsError("bad_state", f"user state: field 'v' must be 1, got {obj.get('v')!r}")
        for key in ("user_id", "t_last"):
            if not _is_int(obj.get(key)):
                raise ToolsError("bad_state", f"user state: field {key!r} must be an integer")
        vecs = {}
        for key, size in (("S", manifest and manifest.embedding_dim), ("c", manifest and len(manifest.categories)),
                          ("n", manifest and len(manifest.actions))):
            v = obj.get(key)
            if not isinstance(v, list) or not all(_is_number(x) for x in v):
                raise ToolsError("bad_state", f"user state: field {key!r} must be a list of numbers")
            if size is not None and len(v) != size:
                raise ToolsError("bad_state", f"user state: field {key!r} has {len(v)} values, expected {size}")
            vecs[key] = np.array(v, dtype=np.float64)
        imps = obj.get("impressions")
        if not isinstance(imps, list) or not all(isinstance(p, list) and len(p) == 2 and all(_is_int(x) for x in p)
                                                 for p in imps):
            raise ToolsError("bad_state", "user state: field 'impressions' must be a list of [item_id, ts]")
        src = obj.get("src")
        if src is not None and not (isinstance(src, dict) and _is_int(src.get("p")) and _is_int(src.get("o"))):
            raise ToolsError("bad_state", "user state: field 'src' must be null or {\"p\": int, \"o\": int}")
        rids = obj.get("recent_event_ids")
        if not isinstance(rids, list) or not all(isinstance(x, str) for x in rids):
            raise ToolsError("bad_state", "user state: field 'recent_event_ids' must be a list of strings")
        return UserState(obj["user_id"], obj["t_last"], vecs["S"], vecs["c"], vecs["n"],
                         [list(p) for p in imps], None if src is None else {"p": src["p"], "o": src["o"]},
                         list(rids))


def replay(user_id: int, events: Iterable[ActivityEvent], bundle: Bundle) -> Optional[UserState]:
    """Applies `events` (in order) to a fresh state; None if no event was applied (cold start)."""
    st = None
    for ev in events:
        if st is None:
            st = UserState.empty(user_id, bundle.manifest)
        st.apply(ev, bundle)
    return st


# --------------------------------------------------------------------------------------------
# Features


def utc_hour(T: int) -> int:
    return (T // HOUR_MS) % 24


def utc_weekday(T: int) -> int:
    """Monday = 0. 1970-01-01 was a Thursday (3)."""
    return (T // DAY_MS + 3) % 7


def context_features(T: int, device: Optional[str], manifest: Manifest) -> np.ndarray:
    h = utc_hour(T)
    d = utc_weekday(T)
    k = np.zeros(manifest.context_dim, dtype=np.float64)
    k[0] = math.sin(2.0 * math.pi * h / 24.0)
    k[1] = math.cos(2.0 * math.pi * h / 24.0)
    k[2] = math.sin(2.0 * math.pi * d / 7.0)
    k[3] = math.cos(2.0 * math.pi * d / 7.0)
    devices = manifest.devices
    slot = devices.index(device) if device in devices else len(devices)
    k[4 + slot] = 1.0
    return k


def features(state: Optional[UserState], T: int, device: Optional[str], manifest: Manifest) -> np.ndarray:
    """The user tower's input x at time T (float64, length F). `state` None = cold start."""
    D, C, A = manifest.embedding_dim, len(manifest.categories), len(manifest.actions)
    x = np.zeros(manifest.feature_dim, dtype=np.float64)
    if state is not None and state.t_last is not None:
        f = 2.0 ** (-(T - state.t_last) / manifest.half_life_ms)
        Sd = f * state.S
        norm = math.sqrt(float(np.dot(Sd, Sd)))
        if norm > 0.0:
            x[0:D] = Sd / norm
        cd = f * state.c
        x[D:D + C] = cd / (float(np.sum(np.abs(cd))) + 1.0)
        nd = f * state.n
        x[D + C:D + C + A] = np.log1p(nd)
    x[D + C + A:] = context_features(T, device, manifest)
    return x


# --------------------------------------------------------------------------------------------
# Tower and score


class Tower:
    """The user tower in PyTorch, float32: Linear, ReLU, ..., Linear, then L2 normalisation."""

    def __init__(self, weights: Sequence):
        import torch
        layers = []
        for k, (w, b) in enumerate(weights):
            lin = torch.nn.Linear(w.shape[1], w.shape[0])
            with torch.no_grad():
                lin.weight.copy_(torch.from_numpy(np.ascontiguousarray(w, dtype=np.float32)))
                lin.bias.copy_(torch.from_numpy(np.ascontiguousarray(b, dtype=np.float32)))
            layers.append(lin)
            if k < len(weights) - 1:
                layers.append(torch.nn.ReLU())
        self.module = torch.nn.Sequential(*layers).eval()

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """x: [F] or [B, F] (any float dtype; cast to float32) -> u float32, same leading shape."""
        import torch
        with torch.inference_mode():
            t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
            u = torch.nn.functional.normalize(self.module(t), dim=-1)
            return u.numpy()


def dot32(u: np.ndarray, e: np.ndarray) -> np.ndarray:
    """The float32 dot product rounded once: float32 inputs, products and sum in float64, the
    result rounded to float32 (order-independent, so Swift computes the same bits). e: [D] or [n, D]."""
    return (np.asarray(e, dtype=np.float32).astype(np.float64) @ np.asarray(u, dtype=np.float32).astype(np.float64)).astype(np.float32)


def score(u: np.ndarray, e: np.ndarray, temperature: float, score_bias: float) -> float:
    """z = dot(u, e) / temperature + score_bias with the dot in float32 (dot32) and z in
    float64; sigmoid(z) in float64."""
    z = float(dot32(u, e)) / float(temperature) + float(score_bias)
    return sigmoid(z)


def sigmoid(z: float) -> float:
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    ez = math.exp(z)
    return ez / (1.0 + ez)
