"""Reading a world's events into states, and the states cache."""
import json

from feedrank_tools.reference import UserState, parse_event
from feedrank_tools.worldio import load_states, load_states_cached

T0 = 1_795_700_000_000


def write_events(path, rows):
    with open(path, "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")


def rows():
    out = []
    for k in range(30):
        out.append({"event_id": f"e-{k}", "user_id": 1 + k % 3, "item_id": 10 + k % 6,
                    "action": ["impression", "click", "hide"][k % 3], "ts": T0 + 1000 * k})
    return out


def test_load_states_applies_each_users_events_in_file_order(tmp_path, bundle):
    p = tmp_path / "events.jsonl"
    write_events(p, rows())
    states = load_states(str(p), bundle, user_ids={1, 3})
    assert sorted(states) == [1, 3]
    want = UserState.empty(1, bundle.manifest)
    for r in rows():
        if r["user_id"] == 1:
            want.apply(parse_event(r), bundle)
    assert states[1].to_json() == want.to_json()
    assert load_states(str(p), bundle, until=T0 + 1000 * 5)[3].t_last == T0 + 1000 * 5


def test_the_states_cache_gives_the_same_states_and_is_rebuilt_when_the_events_change(tmp_path, bundle):
    p = tmp_path / "events.jsonl"
    cache = tmp_path / "states.jsonl"
    write_events(p, rows())
    first = load_states_cached(str(p), bundle, str(cache))
    assert cache.exists()
    again = load_states_cached(str(p), bundle, str(cache))
    assert {u: s.to_json() for u, s in again.items()} == {u: s.to_json() for u, s in first.items()}
    write_events(p, rows()[:3])  # fewer events: a stale cache must not be used
    assert all(s.t_last <= T0 + 2000 for s in load_states_cached(str(p), bundle, str(cache)).values())


def test_a_cache_made_for_more_users_serves_a_subset_without_being_rewritten(tmp_path, bundle):
    p = tmp_path / "events.jsonl"
    cache = tmp_path / "states.jsonl"
    write_events(p, rows())
    load_states_cached(str(p), bundle, str(cache), user_ids={1, 2, 3})
    before = cache.read_bytes()
    subset = load_states_cached(str(p), bundle, str(cache), user_ids={1, 3})
    assert cache.read_bytes() == before
    direct = load_states(str(p), bundle, user_ids={1, 3})
    assert {u: s.to_json() for u, s in subset.items()} == {u: s.to_json() for u, s in direct.items()}
    # More users than a cache holds: rebuilt for them.
    small = tmp_path / "small.jsonl"
    load_states_cached(str(p), bundle, str(small), user_ids={1})
    assert json.loads(small.read_text().splitlines()[0])["users"] == [1]
    assert sorted(load_states_cached(str(p), bundle, str(small), user_ids={1, 2})) == [1, 2]
    assert json.loads(small.read_text().splitlines()[0])["users"] == [1, 2]
