import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from feedrank_tools.reference import DEFAULT_ACTIONS, Bundle, Item, Manifest  # noqa: E402

CATEGORIES = ("sports", "music", "news")
DEVICES = ("ios", "android")


def tiny_manifest(D=4, hidden=(5,)):
    return Manifest(model_version="t-1", embedding_dim=D, categories=CATEGORIES, devices=DEVICES,
                    actions=DEFAULT_ACTIONS, half_life_hours=72.0, hidden=hidden, activation="relu",
                    temperature=0.1, score_bias=0.0)


def tiny_items(ids, cats=None):
    cats = cats or [CATEGORIES[i % len(CATEGORIES)] for i in range(len(ids))]
    return [{"item_id": int(i), "category": c, "creator_id": 1 + k, "published_at": 1795600000000 + k,
             "quality": 0.5 + 0.01 * k, "promoted": k == 0} for k, (i, c) in enumerate(zip(ids, cats))]


@pytest.fixture
def bundle():
    """An in-memory bundle: D = 4, three categories, two devices, six items (ids 10..15)."""
    rng = np.random.default_rng(3)
    m = tiny_manifest()
    emb = rng.normal(size=(6, 4)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    ids = np.arange(10, 16, dtype=np.int64)
    F = m.feature_dim
    tower = [(rng.normal(size=(5, F)).astype(np.float32), rng.normal(size=5).astype(np.float32)),
             (rng.normal(size=(4, 5)).astype(np.float32), rng.normal(size=4).astype(np.float32))]
    items = {it["item_id"]: Item(**it) for it in tiny_items(ids)}
    return Bundle(m, tower, emb, ids, items)
