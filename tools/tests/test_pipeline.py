"""The Python pipeline baseline (feedrank_tools.pipeline) against the exact reference, and the
Python worker's record validation."""
import numpy as np
import pytest

from feedrank_tools.reference import DEFAULT_ACTIONS, HOUR_MS, ActivityEvent, Bundle, Item, Manifest, UserState
from feedrank_tools.rules import DEFAULT_RULES, Catalogue, rank_exact

faiss = pytest.importorskip("faiss")
pytest.importorskip("torch")

from feedrank_tools.pipeline import Pipeline, PipelineConfig, overlap  # noqa: E402

T = 1_795_700_000_000
CATS = ("a", "b", "c", "d", "e")


def world(n=3000, D=8, seed=5):
    rng = np.random.default_rng(seed)
    m = Manifest(model_version="p-1", embedding_dim=D, categories=CATS, devices=("ios",), actions=DEFAULT_ACTIONS,
                 half_life_hours=72.0, hidden=(16,), activation="relu", temperature=0.1, score_bias=-1.0)
    emb = rng.normal(size=(n, D)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    ids = (rng.permutation(n) + 500).astype(np.int64)
    items = {}
    for r, i in enumerate(ids.tolist()):
        age = int(rng.integers(0, 3 * 24 * HOUR_MS)) if rng.random() < 0.9 else -int(rng.integers(1, HOUR_MS))
        items[i] = Item(i, CATS[int(rng.integers(0, len(CATS)))], int(rng.integers(0, n // 4)), T - age,
                        float(rng.random()), bool(rng.random() < 0.03))
    F = m.feature_dim
    tower = [(rng.normal(size=(16, F)).astype(np.float32), rng.normal(size=16).astype(np.float32)),
             (rng.normal(size=(D, 16)).astype(np.float32), rng.normal(size=D).astype(np.float32))]
    b = Bundle(m, tower, emb, ids, items)
    users = []
    for u in range(12):
        st = None if u % 4 == 0 else UserState.empty(u, m)
        if st is not None:
            for e in range(30):
                st.apply(ActivityEvent(f"e{u}-{e}", u, int(ids[rng.integers(0, n)]),
                                       ["impression", "click", "like", "hide"][e % 4], T - (30 - e) * 60_000), b)
        users.append(st)
    return b, users


def check_invariants(ranked, cat: Catalogue, state, num_items):
    row = {int(i): r for r, i in enumerate(cat.ids.tolist())}
    seen = {int(i) for i, ts in (state.impressions if state else []) if T - 24 * HOUR_MS <= ts <= T}
    assert len(set(ranked.item_ids)) == len(ranked.item_ids)
    per_cat, per_creator = {}, {}
    for k, (i, p) in enumerate(zip(ranked.item_ids, ranked.promoted)):
        r = row[i]
        assert cat.quality[r] >= 0.5 and i not in seen
        assert p == bool(cat.promoted[r])
        if p:
            assert k + 1 in DEFAULT_RULES.promoted_slots
        else:
            per_cat[cat.category[r]] = per_cat.get(cat.category[r], 0) + 1
            per_creator[cat.creator[r]] = per_creator.get(cat.creator[r], 0) + 1
    assert max(per_cat.values(), default=0) <= 3 and max(per_creator.values(), default=0) <= 2
    organic = [s for s, p in zip(ranked.scores, ranked.promoted) if not p]
    assert organic == sorted(organic, reverse=True)


@pytest.fixture(scope="module")
def small():
    b, users = world()
    return b, Catalogue.from_bundle(b), users


def test_exhaustive_retrieval_gives_exactly_the_reference_lists(small):
    b, cat, users = small
    pipe = Pipeline(b, cat, PipelineConfig(k=10_000, nprobe=10_000, pq_m=2))
    for st in users:
        got = pipe.rank(st, T, "ios", 15)
        want = rank_exact(pipe.embed(st, T, "ios"), b, cat, st, T, 15)
        assert got.item_ids == want.item_ids
        np.testing.assert_allclose(got.scores, want.scores, rtol=0, atol=1e-6)
        assert got.promoted == want.promoted


def test_default_retrieval_gives_full_lists_that_keep_every_rule_and_overlap_the_exact_ones(small):
    b, cat, users = small
    pipe = Pipeline(b, cat, PipelineConfig(k=8, nprobe=4, pq_m=2))
    ov = []
    for st in users:
        got = pipe.rank(st, T, None, 15)
        assert len(got.item_ids) == 15 and not got.short  # 5 categories x 3 + 3 slots fit 15
        check_invariants(got, cat, st, 15)
        ov.append(overlap(got.item_ids, rank_exact(pipe.embed(st, T, None), b, cat, st, T, 15).item_ids))
    assert np.mean(ov) >= 0.8


def test_a_short_list_makes_retrieval_grow_until_the_rules_are_the_limit(small):
    b, cat, users = small
    pipe = Pipeline(b, cat, PipelineConfig(k=1, nprobe=4, pq_m=2, fresh_k=0, max_rounds=6))
    st = users[1]
    # 5 categories x 3 organic items + the slots 3 and 10 = 17 (rank 18 is no slot: the list ends).
    got = pipe.rank(st, T, "ios", 17)
    assert len(got.item_ids) == 17 and not got.short
    assert pipe.counters["grown"] >= 1
    check_invariants(got, cat, st, 17)
    more = pipe.rank(st, T, "ios", 40)
    assert len(more.item_ids) == 17 and more.short


def test_fresh_items_come_from_their_own_source_with_the_boost(small):
    b, cat, users = small
    pipe = Pipeline(b, cat, PipelineConfig(k=1, nprobe=1, pq_m=2, fresh_k=50, max_rounds=1))
    rows, scores = pipe._fresh(pipe.embed(None, T, "ios"), T)
    age = T - cat.published_at[rows]
    assert rows.size > 0 and np.all((age >= 0) & (age < 24 * HOUR_MS))
    assert not cat.promoted[rows].any()


def test_batch_ranking_equals_one_user_at_a_time(small):
    b, cat, users = small
    pipe = Pipeline(b, cat, PipelineConfig(k=8, nprobe=4, pq_m=2))
    batch = pipe.rank_batch(users, T, ["ios"] * len(users), 12)
    for st, r in zip(users, batch):
        one = pipe.rank(st, T, "ios", 12)
        assert r.item_ids == one.item_ids


def test_worker_rejects_bad_requests_with_a_reason_and_keeps_the_request_id():
    from feedrank_tools.worker_baseline import BadRecord, parse_request
    ok = parse_request(b'{"request_id":"r-1","user_id":42,"context":{"ts":5,"fresh":true}}', b"42")
    assert ok["num_items"] == 50 and ok["ts"] == 5 and ok["fresh"] is True
    cases = [
        (b'{"request_id":"r-1","user_id":42', None, "not valid JSON"),
        (b'{"request_id":"r-1","user_id":42,"num_items":0}', b"42", "num_items"),
        (b'{"request_id":"r-1","user_id":42,"num_items":1000000}', b"42", "num_items"),
        (b'{"request_id":"r-1","user_id":"42"}', b"42", "user_id"),
        (b'{"request_id":"r-1","user_id":42}', b"43", "disagrees"),
        (b'{"user_id":42}', b"42", "request_id"),
        (b'{"request_id":"r-1","user_id":42,"context":{"ts":"x"}}', b"42", "context.ts"),
    ]
    for value, key, reason in cases:
        with pytest.raises(BadRecord) as e:
            parse_request(value, key)
        assert reason in e.value.message
    with pytest.raises(BadRecord) as e:
        parse_request(b'{"request_id":"r-9","user_id":42,"num_items":0}', b"42")
    assert e.value.request_id == "r-9" and e.value.user_id == 42


def test_worker_rejects_bad_activity_and_mismatched_keys():
    from feedrank_tools.worker_baseline import BadRecord, parse_activity
    good = b'{"event_id":"e-1","user_id":7,"item_id":9,"action":"click","ts":1}'
    assert parse_activity(good, b"7").user_id == 7
    for value, key in ((good, b"8"), (b'{"event_id":"e-1","user_id":7,"item_id":9,"action":"poke","ts":1}', b"7"),
                       (b"\xff", None)):
        with pytest.raises(BadRecord):
            parse_activity(value, key)
