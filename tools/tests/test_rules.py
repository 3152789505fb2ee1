"""Contract section 3 in feedrank_tools.rules, on tiny hand-made catalogues and random ones."""
import numpy as np
import pytest

from feedrank_tools.reference import HOUR_MS, UserState, score
from feedrank_tools.rules import (DEFAULT_RULES, RuleConfig, boosted, exact_scores, impressed_items, is_fresh,
                                  select)

T = 1_795_700_000_000


def cat(rows):
    """rows: (item_id, score, category, creator, promoted[, quality]) -> select()'s arrays."""
    ids = np.array([r[0] for r in rows], dtype=np.int64)
    sc = np.array([r[1] for r in rows], dtype=np.float64)
    cats = np.array([r[2] for r in rows], dtype=np.int64)
    creators = np.array([r[3] for r in rows], dtype=np.int64)
    promo = np.array([r[4] for r in rows], dtype=bool)
    q = np.array([r[5] if len(r) > 5 else 0.9 for r in rows], dtype=np.float64)
    return ids, sc, cats, creators, promo, q


def run(rows, n, impressed=(), rules=DEFAULT_RULES):
    ids, sc, cats, creators, promo, q = cat(rows)
    return select(ids, sc, cats, creators, promo, q, set(impressed), n, rules)


def test_organic_items_come_in_descending_score_with_ties_by_ascending_id():
    rows = [(5, 0.5, 0, 1, False), (3, 0.5, 1, 2, False), (9, 0.9, 2, 3, False), (4, 0.5, 3, 4, False)]
    r = run(rows, 4, rules=RuleConfig(promoted_slots=()))
    assert r.item_ids == [9, 3, 4, 5]
    assert r.scores == [0.9, 0.5, 0.5, 0.5]
    assert not r.short


def test_quality_floor_drops_below_half_and_keeps_exactly_half():
    rows = [(1, 0.9, 0, 1, False, 0.49), (2, 0.8, 1, 2, False, 0.5), (3, 0.7, 2, 3, False, 0.51)]
    r = run(rows, 3)
    assert r.item_ids == [2, 3]
    assert r.short


def test_category_cap_keeps_three_best_per_category_greedily():
    rows = [(i, 1.0 - 0.01 * i, 0, 100 + i, False) for i in range(1, 6)] + [(50, 0.1, 1, 200, False)]
    r = run(rows, 10, rules=RuleConfig(promoted_slots=()))
    assert r.item_ids == [1, 2, 3, 50]
    assert r.short


def test_creator_cap_keeps_two_best_per_creator_across_categories():
    rows = [(1, 0.9, 0, 7, False), (2, 0.8, 1, 7, False), (3, 0.7, 2, 7, False), (4, 0.1, 3, 8, False)]
    r = run(rows, 4, rules=RuleConfig(promoted_slots=()))
    assert r.item_ids == [1, 2, 4]


def test_a_capped_item_stays_dropped_even_when_nothing_else_is_left():
    # Greedy, not optimal: item 2 (creator 7, third of category 0) is skipped for the cap and the
    # list ends short rather than bringing it back.
    rows = [(1, 0.9, 0, 7, False), (2, 0.8, 0, 7, False), (3, 0.7, 0, 7, False)]
    r = run(rows, 3, rules=RuleConfig(promoted_slots=()))
    assert r.item_ids == [1, 2]
    assert r.short


def test_promoted_items_sit_at_ranks_3_10_20_best_first_and_never_organic():
    organic = [(100 + i, 0.5 - 0.001 * i, i % 20, 1000 + i, False) for i in range(30)]
    promoted = [(1, 0.99, 0, 1, True), (2, 0.2, 0, 1, True), (3, 0.6, 0, 1, True), (4, 0.01, 0, 1, True)]
    r = run(organic + promoted, 25)
    assert [r.item_ids[k - 1] for k in (3, 10, 20)] == [1, 3, 2]
    assert [k + 1 for k, p in enumerate(r.promoted) if p] == [3, 10, 20]
    assert 4 not in r.item_ids  # only three slots
    assert r.item_ids[:2] == [100, 101]  # the best promoted item does not take rank 1
    assert len(r.item_ids) == 25 and len(set(r.item_ids)) == 25


def test_promoted_items_do_not_count_toward_caps():
    organic = [(100 + i, 0.5 - 0.01 * i, 0, 1000 + i, False) for i in range(3)] + [(200, 0.01, 1, 7, False)]
    promoted = [(1, 0.9, 0, 7, True)]  # same category and creator as the organic items
    r = run(organic + promoted, 5)
    assert r.item_ids == [100, 101, 1, 102, 200]


def test_a_slot_without_promoted_items_is_filled_organically():
    organic = [(100 + i, 0.5 - 0.001 * i, i, 1000 + i, False) for i in range(12)]
    r = run(organic + [(1, 0.9, 0, 1, True)], 12)
    assert r.promoted == [False, False, True] + [False] * 9
    assert r.item_ids[9] == 108  # rank 10: organic


def test_list_ends_where_organic_items_run_out_unless_that_rank_is_a_slot_with_promoted_left():
    promoted = [(1, 0.9, 0, 1, True), (2, 0.8, 0, 1, True)]
    # Organic runs out after rank 4: rank 5 is no slot, so promoted item 2 cannot be placed.
    r = run([(100 + i, 0.5, i, 10 + i, False) for i in range(3)] + promoted, 50)
    assert r.item_ids == [100, 101, 1, 102] and r.short
    # Organic runs out after rank 2: rank 3 is a slot with a promoted item left.
    r = run([(100 + i, 0.5, i, 10 + i, False) for i in range(2)] + promoted, 50)
    assert r.item_ids == [100, 101, 1] and r.short
    # Rank 10 is a slot: 8 organic + slot 3 + slot 10.
    r = run([(100 + i, 0.5, i, 10 + i, False) for i in range(8)] + promoted, 50)
    assert len(r.item_ids) == 10 and r.item_ids[9] == 2 and r.short


def test_impressions_in_the_last_24h_up_to_T_are_dropped():
    st = UserState.empty(42, _manifest())
    day = 24 * HOUR_MS
    st.impressions = [[1, T - day], [2, T - day - 1], [3, T], [4, T + 1], [5, T - HOUR_MS]]
    assert impressed_items(st, T) == {1, 3, 5}
    assert impressed_items(None, T) == set()
    rows = [(i, 1.0 - 0.01 * i, i, i, False) for i in range(1, 6)]
    assert run(rows, 5, impressed=impressed_items(st, T)).item_ids == [2, 4]


def test_impressed_promoted_items_are_skipped_for_the_next_best():
    rows = [(100 + i, 0.5, i, 10 + i, False) for i in range(5)] + [(1, 0.9, 0, 1, True), (2, 0.8, 0, 1, True)]
    assert run(rows, 5, impressed={1}).item_ids[2] == 2


def test_fresh_boost_applies_for_age_in_zero_to_24h():
    day = 24 * HOUR_MS
    pub = np.array([T, T - 1, T - day + 1, T - day, T + 1], dtype=np.int64)
    assert is_fresh(pub, T).tolist() == [True, True, True, False, False]
    s = np.full(5, 0.5)
    assert boosted(s, pub, T).tolist() == [0.5 * 1.2] * 3 + [0.5, 0.5]


def test_boost_can_reorder_items():
    rows = [(1, 0.5, 0, 1, False), (2, 0.45, 1, 2, False)]
    ids, sc, cats, creators, promo, q = cat(rows)
    sc = boosted(sc, np.array([T - 2 * 24 * HOUR_MS, T - 1]), T)
    assert select(ids, sc, cats, creators, promo, q, set(), 2).item_ids == [2, 1]


def test_exact_scores_match_the_reference_score_function(bundle):
    rng = np.random.default_rng(1)
    u = rng.normal(size=4).astype(np.float32)
    u /= np.linalg.norm(u)
    m = bundle.manifest
    got = exact_scores(u, bundle.item_embeddings, m.temperature, 0.3)
    want = [score(u, e, m.temperature, 0.3) for e in bundle.item_embeddings]
    # A matrix-vector product and a dot product may round the float32 sum differently (1 ulp of
    # z, about 1e-8 of the score); anything beyond float32 rounding is a bug.
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)
    assert got.dtype == np.float64


def naive_select(ids, sc, cats, creators, promo, q, impressed, n, rules=DEFAULT_RULES):
    """The rules written the slowest, most literal way: a fully sorted list, one rank at a time."""
    order = sorted(range(len(ids)), key=lambda j: (-sc[j], ids[j]))
    ok = [j for j in order if q[j] >= rules.quality_floor and int(ids[j]) not in impressed]
    promos = [j for j in ok if promo[j]]
    organic = [j for j in ok if not promo[j]]
    out, per_cat, per_creator = [], {}, {}
    while len(out) < n:
        rank = len(out) + 1
        if rank in rules.promoted_slots and promos:
            out.append(promos.pop(0))
            continue
        while organic and (per_cat.get(cats[organic[0]], 0) >= rules.category_cap
                           or per_creator.get(creators[organic[0]], 0) >= rules.creator_cap):
            organic.pop(0)
        if not organic:
            break
        j = organic.pop(0)
        per_cat[cats[j]] = per_cat.get(cats[j], 0) + 1
        per_creator[creators[j]] = per_creator.get(creators[j], 0) + 1
        out.append(j)
    return [int(ids[j]) for j in out]


@pytest.mark.parametrize("seed", range(40))
def test_select_equals_the_literal_rules_on_random_catalogues(seed):
    rng = np.random.default_rng(seed)
    n_items = int(rng.integers(1, 5000))
    ncat = int(rng.integers(1, 25))
    ids = rng.permutation(np.arange(1, 10 * n_items + 1))[:n_items].astype(np.int64)
    sc = rng.random(n_items)
    if seed % 3 == 0:
        sc = np.round(sc, 2)  # many ties
    cats = rng.integers(0, ncat, n_items)
    creators = rng.integers(0, max(1, n_items // int(rng.integers(1, 20))), n_items)
    promo = rng.random(n_items) < rng.choice([0.0, 0.01, 0.2])
    q = rng.random(n_items)
    impressed = set(rng.choice(ids, size=min(n_items, int(rng.integers(0, 50))), replace=False).tolist())
    n = int(rng.integers(1, 501))
    got = select(ids, sc, cats, creators, promo, q, impressed, n)
    want = naive_select(ids, sc, cats, creators, promo, q, impressed, n)
    assert got.item_ids == want
    assert got.short == (len(want) < n)
    assert len(set(got.item_ids)) == len(got.item_ids)


def _manifest():
    from conftest import tiny_manifest
    return tiny_manifest()


def test_rank_case_rebuilds_the_state_and_returns_a_ranked_contract_list(bundle):
    from feedrank_tools.rank_reference import rank_case
    from feedrank_tools.reference import Tower
    from feedrank_tools.rules import Catalogue
    cat = Catalogue.from_bundle(bundle)
    tower = Tower(bundle.tower_weights)
    at = 1795600000000 + 10  # items 10..15 were published at +0..+5 ms: all fresh
    events = [{"event_id": "e-1", "user_id": 7, "item_id": 12, "action": "impression", "ts": at - 1000},
              {"event_id": "e-2", "user_id": 7, "item_id": 13, "action": "click", "ts": at - 500}]
    res = rank_case({"user_id": 7, "events": events, "at": at, "device": "ios"}, bundle, cat, tower, 6)
    ids = [it["item_id"] for it in res["items"]]
    assert res["user_id"] == 7 and res["cold_start"] is False
    assert 12 not in ids  # impressed 1 s before T
    # Items 10..15: 10 is promoted (rank 3 only); 4 organic left after the impression: the list
    # ends after rank 5 (rank 6 is no slot).
    assert len(ids) == 5 and res["short"] is True
    assert [it["promoted"] for it in res["items"]] == [False, False, True, False, False] and ids[2] == 10
    assert [it["rank"] for it in res["items"]] == [1, 2, 3, 4, 5]
    cold = rank_case({"user_id": 8, "events": [], "at": at, "device": None}, bundle, cat, tower, 6)
    assert cold["cold_start"] is True and not cold["short"]
    assert sorted(it["item_id"] for it in cold["items"]) == [10, 11, 12, 13, 14, 15]
