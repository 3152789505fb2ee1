"""The contract's section-2 reference: state update, state JSON, features, tower, score."""
import datetime as dt
import json
import math

import numpy as np
import pytest

from feedrank_tools.errors import ToolsError
from feedrank_tools.reference import (DAY_MS, HOUR_MS, IMPRESSION_WINDOW_MS, ActivityEvent, Tower, UserState,
                                      features, parse_event, score, utc_hour, utc_weekday)

HL = 72 * HOUR_MS
T0 = 1_795_700_000_000


def ev(i, item, action, ts, user=42):
    return ActivityEvent(f"e-{i}", user, item, action, ts)


def e64(bundle, item):
    return bundle.item_embeddings[bundle.row_of[item]].astype(np.float64)


def test_first_event_sets_t_last_and_adds_weighted_embedding(bundle):
    st = UserState.empty(42, bundle.manifest)
    assert st.apply(ev(0, 11, "click", T0), bundle) == "applied"
    assert st.t_last == T0
    np.testing.assert_array_equal(st.S, 1.0 * e64(bundle, 11))
    assert st.c.tolist() == [0.0, 1.0, 0.0]  # item 11 is "music"
    assert st.n.tolist() == [0, 1, 0, 0, 0, 0, 0]


def test_in_order_event_decays_sums_by_half_life_then_adds(bundle):
    st = UserState.empty(42, bundle.manifest)
    st.apply(ev(0, 10, "like", T0), bundle)
    st.apply(ev(1, 12, "hide", T0 + HL), bundle)  # exactly one half-life later: g = 0.5
    np.testing.assert_allclose(st.S, 0.5 * 2.0 * e64(bundle, 10) - 3.0 * e64(bundle, 12), rtol=0, atol=1e-15)
    np.testing.assert_allclose(st.c, [1.0, 0.0, -3.0], atol=1e-15)
    np.testing.assert_allclose(st.n, [0, 0, 0.5, 0, 0, 0, 1.0], atol=1e-15)
    assert st.t_last == T0 + HL


def test_out_of_order_event_is_added_with_its_own_decay_and_t_last_stays(bundle):
    st = UserState.empty(42, bundle.manifest)
    st.apply(ev(0, 10, "click", T0), bundle)
    st.apply(ev(1, 13, "share", T0 - 2 * HL), bundle)  # two half-lives older: g' = 0.25
    assert st.t_last == T0
    np.testing.assert_allclose(st.S, e64(bundle, 10) + 0.25 * 3.0 * e64(bundle, 13), atol=1e-15)
    np.testing.assert_allclose(st.c, [1.0 + 0.75, 0.0, 0.0], atol=1e-15)  # 13 is "sports"
    np.testing.assert_allclose(st.n, [0, 1.0, 0, 0, 0.25, 0, 0], atol=1e-15)


def test_unknown_item_decays_S_and_c_without_adding_but_counts_n_and_impression(bundle):
    st = UserState.empty(42, bundle.manifest)
    st.apply(ev(0, 10, "click", T0), bundle)
    assert st.apply(ev(1, 999, "impression", T0 + HL), bundle) == "unknown_item"
    np.testing.assert_allclose(st.S, 0.5 * e64(bundle, 10), atol=1e-15)
    np.testing.assert_allclose(st.c, [0.5, 0, 0], atol=1e-15)
    np.testing.assert_allclose(st.n, [1.0, 0.5, 0, 0, 0, 0, 0], atol=1e-15)
    assert st.impressions == [[999, T0 + HL]]


def test_impressions_older_than_25h_are_pruned_and_the_boundary_stays(bundle):
    st = UserState.empty(42, bundle.manifest)
    t_last = T0 + 3 * DAY_MS
    st.apply(ev(0, 10, "impression", t_last - IMPRESSION_WINDOW_MS - 1), bundle)
    st.apply(ev(1, 11, "impression", t_last - IMPRESSION_WINDOW_MS), bundle)
    st.apply(ev(2, 12, "click", t_last), bundle)
    assert st.impressions == [[11, t_last - IMPRESSION_WINDOW_MS]]
    st.apply(ev(3, 13, "impression", t_last - IMPRESSION_WINDOW_MS - 5), bundle)  # late and too old
    st.apply(ev(4, 14, "impression", t_last - 10), bundle)  # late, inside: appended in arrival order
    assert st.impressions == [[11, t_last - IMPRESSION_WINDOW_MS], [14, t_last - 10]]


def test_recent_event_ids_keep_the_last_16_and_redeliveries_are_not_applied(bundle):
    st = UserState.empty(42, bundle.manifest)
    for i in range(20):
        st.apply(ev(i, 10, "click", T0 + i), bundle)
    assert st.recent_event_ids == [f"e-{i}" for i in range(4, 20)]
    before = st.to_json()
    assert st.apply(ev(19, 10, "click", T0 + 19), bundle) == "duplicate"
    assert st.to_json() == before
    assert st.apply(ev(100, 10, "click", T0 + 30), bundle, src=(3, 50)) == "applied"
    assert st.src == {"p": 3, "o": 50}
    assert st.apply(ev(101, 10, "click", T0 + 31), bundle, src=(3, 50)) == "duplicate"
    assert st.apply(ev(102, 10, "click", T0 + 31), bundle, src=(4, 1)) == "applied"


def test_event_of_another_user_is_rejected(bundle):
    st = UserState.empty(42, bundle.manifest)
    with pytest.raises(ToolsError, match="user 7"):
        st.apply(ev(0, 10, "click", T0, user=7), bundle)


def test_incremental_update_equals_the_closed_form_sum(bundle):
    rng = np.random.default_rng(11)
    st = UserState.empty(42, bundle.manifest)
    events = []
    t = T0
    for i in range(200):
        t += int(rng.integers(-6 * HOUR_MS, 8 * HOUR_MS))
        item = int(rng.choice([10, 11, 12, 13, 14, 15, 77]))
        events.append(ev(i, item, ["impression", "click", "like", "comment", "share", "dwell", "hide"][i % 7], t))
    for e in events:
        st.apply(e, bundle)
    T = st.t_last + 5 * HOUR_MS
    w = dict(bundle.manifest.actions)
    S = np.zeros(4)
    c = np.zeros(3)
    n = np.zeros(7)
    names = [a for a, _ in bundle.manifest.actions]
    for e in events:
        d = 2.0 ** (-(T - e.ts) / HL)
        n[names.index(e.action)] += d
        if e.item_id in bundle.row_of:
            S += w[e.action] * d * e64(bundle, e.item_id)
            c[bundle.item_category[bundle.row_of[e.item_id]]] += w[e.action] * d
    x = features(st, T, "ios", bundle.manifest)
    np.testing.assert_allclose(x[:4], S / np.linalg.norm(S), atol=1e-12)
    np.testing.assert_allclose(x[4:7], c / (np.abs(c).sum() + 1), atol=1e-12)
    np.testing.assert_allclose(x[7:14], np.log1p(n), atol=1e-12)


def test_cold_start_features_are_zero_activity_plus_context(bundle):
    T = 1_795_700_000_000
    x = features(None, T, "android", bundle.manifest)
    assert bundle.manifest.feature_dim == len(x) == 4 + 3 + 7 + 4 + 3
    assert not x[:14].any()
    when = dt.datetime.fromtimestamp(T / 1000, tz=dt.timezone.utc)
    h, d = when.hour, when.weekday()
    np.testing.assert_allclose(x[14:18], [math.sin(2 * math.pi * h / 24), math.cos(2 * math.pi * h / 24),
                                          math.sin(2 * math.pi * d / 7), math.cos(2 * math.pi * d / 7)])
    assert x[18:].tolist() == [0.0, 1.0, 0.0]


@pytest.mark.parametrize("device,slot", [("ios", 0), ("android", 1), ("tablet", 2), (None, 2)])
def test_device_one_hot_has_a_last_unknown_slot(bundle, device, slot):
    x = features(None, T0, device, bundle.manifest)
    onehot = [0.0, 0.0, 0.0]
    onehot[slot] = 1.0
    assert x[18:].tolist() == onehot


def test_utc_hour_and_weekday_match_datetime_including_before_1970():
    rng = np.random.default_rng(5)
    for T in list(rng.integers(-10**12, 4 * 10**12, 500)) + [0, -1, DAY_MS - 1, DAY_MS]:
        T = int(T)
        when = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(milliseconds=T)
        assert utc_hour(T) == when.hour, T
        assert utc_weekday(T) == when.weekday(), T


def test_features_decay_to_T_even_before_t_last(bundle):
    st = UserState.empty(42, bundle.manifest)
    st.apply(ev(0, 10, "like", T0), bundle)
    x = features(st, T0 - HL, None, bundle.manifest)  # f = 2
    assert x[4] == pytest.approx(4.0 / 5.0)  # c = 2 -> cd = 4 -> 4 / (4 + 1)
    assert x[9] == pytest.approx(math.log1p(2.0))  # n[like] = 1 -> 2
    np.testing.assert_allclose(x[:4], e64(bundle, 10) / np.linalg.norm(e64(bundle, 10)), atol=1e-12)


def test_hide_only_history_gives_negative_direction(bundle):
    st = UserState.empty(42, bundle.manifest)
    st.apply(ev(0, 10, "hide", T0), bundle)
    x = features(st, T0, None, bundle.manifest)
    e = e64(bundle, 10)
    np.testing.assert_allclose(x[:4], -e / np.linalg.norm(e), atol=1e-12)
    assert x[4] == pytest.approx(-3.0 / 4.0)


def test_state_json_round_trip_is_bit_exact_and_uses_repr(bundle):
    rng = np.random.default_rng(9)
    st = UserState.empty(42, bundle.manifest)
    for i in range(50):
        st.apply(ev(i, int(rng.choice([10, 11, 12, 99])), "impression" if i % 3 else "click",
                    T0 + int(rng.integers(-HOUR_MS, 50 * HOUR_MS))), bundle)
    text = st.to_json()
    obj = json.loads(text)
    assert list(obj) == ["v", "user_id", "t_last", "S", "c", "n", "impressions", "src", "recent_event_ids"]
    assert obj["v"] == 1 and obj["src"] is None
    assert f'"S":[{repr(float(st.S[0]))},' in text
    back = UserState.from_json(text, bundle.manifest)
    assert back.S.tobytes() == st.S.tobytes() and back.c.tobytes() == st.c.tobytes()
    assert back.n.tobytes() == st.n.tobytes()
    assert back.to_json() == text


@pytest.mark.parametrize("mutate,field", [
    (lambda o: o.update(v=2), "'v'"),
    (lambda o: o.update(S=[1.0]), "'S'"),
    (lambda o: o.update(t_last="x"), "'t_last'"),
    (lambda o: o.update(impressions=[[1]]), "'impressions'"),
    (lambda o: o.update(src={"p": 1}), "'src'"),
])
def test_bad_state_json_names_the_field(bundle, mutate, field):
    st = UserState.empty(42, bundle.manifest)
    st.apply(ev(0, 10, "click", T0), bundle)
    obj = st.to_json_obj()
    mutate(obj)
    with pytest.raises(ToolsError) as e:
        UserState.from_json(json.dumps(obj), bundle.manifest)
    assert field in e.value.message


@pytest.mark.parametrize("record,field", [
    ({"user_id": 1, "item_id": 2, "action": "click", "ts": 5}, "event_id"),
    ({"event_id": "a", "user_id": "1", "item_id": 2, "action": "click", "ts": 5}, "user_id"),
    ({"event_id": "a", "user_id": 1, "item_id": 2, "action": "poke", "ts": 5}, "action"),
    ({"event_id": "a", "user_id": 1, "item_id": 2, "action": "dwell", "ts": 5, "dwell_ms": -1}, "dwell_ms"),
    ({"event_id": "a", "user_id": 1, "item_id": 2, "action": "click", "ts": 5.5}, "ts"),
])
def test_bad_activity_record_names_the_field(record, field):
    with pytest.raises(ToolsError) as e:
        parse_event(record)
    assert field in e.value.message


def test_tower_is_linear_relu_linear_then_l2_normalised(bundle):
    x = np.random.default_rng(2).normal(size=bundle.manifest.feature_dim)
    (w0, b0), (w1, b1) = bundle.tower_weights
    h = np.maximum(w0.astype(np.float64) @ x.astype(np.float32) + b0, 0)
    y = w1.astype(np.float64) @ h + b1
    u = Tower(bundle.tower_weights)(x)
    assert u.dtype == np.float32
    np.testing.assert_allclose(u, y / np.linalg.norm(y), atol=1e-5)
    batch = Tower(bundle.tower_weights)(np.stack([x, x]))
    np.testing.assert_allclose(batch[1], u, atol=1e-6)


def test_score_is_sigmoid_of_dot_over_temperature_plus_bias():
    u = np.array([0.6, 0.8], dtype=np.float32)
    e = np.array([1.0, 0.0], dtype=np.float32)
    assert score(u, e, 0.05, -10.0) == pytest.approx(1 / (1 + math.exp(-(0.6 / 0.05 - 10.0))), rel=1e-6)
    assert 0.0 < score(u, -e, 0.01, 0.0) < 1e-20  # sigmoid in float64: no underflow to 0 at z = -60
