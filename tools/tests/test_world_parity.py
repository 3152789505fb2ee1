"""The synthetic world's invariants and the parity file's contents (small and fast)."""
import json

import numpy as np

from feedrank_tools import parity as P
from feedrank_tools import world as W
from feedrank_tools.reference import IMPRESSION_WINDOW_MS, UserState, parse_event


def test_world_is_deterministic_and_its_stream_is_well_formed():
    a = W.make_world(5, 2000, 60)
    b = W.make_world(5, 2000, 60)
    assert np.array_equal(a.events.ts, b.events.ts) and np.array_equal(a.events.item_id, b.events.item_id)
    ev, cat = a.events, a.catalogue
    assert len(ev) > 1000
    assert np.unique(ev.event_id).size == len(ev)
    assert (ev.ts < W.WORLD_NOW).all()
    assert set(np.unique(ev.action).tolist()) == set(range(7))
    assert (ev.dwell_ms[ev.action == W.A_DWELL] >= 0).all() and (ev.dwell_ms[ev.action != W.A_DWELL] == -1).all()
    # an impression is never of an item published after it
    imp = ev.action == W.A_IMPRESSION
    assert (cat.published_at[ev.item_row[imp]] <= ev.ts[imp]).all()
    assert 0.08 < np.mean(cat.quality < 0.5) < 0.22
    assert (cat.published_at < W.WORLD_NOW).all() and (cat.published_at >= W.WORLD_NOW - 60 * W.DAY_MS).all()
    # a click follows an impression of the same item in the same session
    clicks = np.flatnonzero(ev.action == W.A_CLICK)
    shown = set(zip(ev.session[imp].tolist(), ev.item_row[imp].tolist()))
    assert all((s, r) in shown for s, r in zip(ev.session[clicks].tolist(), ev.item_row[clicks].tolist()))


def test_bigger_catalogues_share_the_world_truth():
    t = W.make_truth(1)
    small, big = W.make_catalogue(t, 1000), W.make_catalogue(t, 3000)
    assert small.item_features().shape[1] == big.item_features().shape[1] == W.C + W.CONTENT_DIM + 2
    # the content vector is a projection of the latent through the same matrix in both
    for c in (small, big):
        resid = c.content - c.latent @ t.content_proj
        assert abs(float(resid.std()) - 0.25) < 0.02


def test_parity_cases_replay_to_their_recorded_state(bundle, tmp_path):
    cases = P.generate(bundle, 48, seed=7)
    kinds = {c["kind"] for c in cases}
    assert kinds == set(P.KINDS)
    for c in cases:
        json.dumps(c, allow_nan=False)
        assert len(c["x"]) == bundle.manifest.feature_dim and len(c["u"]) == bundle.manifest.embedding_dim
        assert abs(np.linalg.norm(c["u"]) - 1.0) < 1e-5
        if c["kind"] == "cold_start":
            assert c["state"] is None and c["events"] == []
            continue
        st = None
        for rec in c["events"]:
            st = st or UserState.empty(c["user_id"], bundle.manifest)
            st.apply(parse_event(rec), bundle)
        assert st.to_json_obj() == c["state"]
        if c["kind"] == "prune_boundary":
            t_last = c["state"]["t_last"]
            assert [ts for _, ts in c["state"]["impressions"]] == [t_last - IMPRESSION_WINDOW_MS,
                                                                   t_last - IMPRESSION_WINDOW_MS + 1,
                                                                   t_last - 2 * 3_600_000]
        if c["kind"] == "redelivery":
            ids = [e["event_id"] for e in c["events"]]
            assert len(ids) > len(set(ids))
        if c["kind"] == "before_t_last":
            assert c["at"] < c["state"]["t_last"]
        if c["kind"] == "unknown_items":
            assert any(e["item_id"] not in bundle.row_of for e in c["events"])


def test_click_logit_matrix_equals_the_per_impression_ground_truth():
    w = W.make_world(2, 500, 20)
    s = np.arange(min(10, w.sessions.start.size))
    ur, T, dev = w.sessions.user_row[s], w.sessions.start[s], w.sessions.device[s]
    Z = W.click_logit_matrix(w.truth, w.catalogue, w.users, ur, T, dev)
    rows = np.arange(len(w.catalogue))
    for i in range(s.size):
        z = W.click_logit(w.truth, w.catalogue, w.users, np.full(rows.size, ur[i]), rows, np.full(rows.size, T[i]),
                          np.full(rows.size, dev[i]))
        np.testing.assert_allclose(Z[i], z, rtol=0, atol=1e-9)
