"""Reading a generated world (tools/world.py): users.jsonl, events.jsonl, world.json -> states.

    users = load_users("data/world-100k/users.jsonl")            # [{"user_id", "device", ...}]
    states = load_states("data/world-100k/events.jsonl", bundle, user_ids={1, 2})

`load_states` applies the events (contract user-activity records) in file order with
reference.UserState.apply, for the users asked for (all users when user_ids is None); it skips
the JSON parse of other users' lines with a cheap scan for "user_id".
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Optional

from .errors import ToolsError
from .reference import Bundle, UserState, parse_event


def world_info(world_dir: str) -> dict:
    p = os.path.join(world_dir, "world.json")
    if not os.path.isfile(p):
        return {}
    with open(p, "rb") as f:
        return json.loads(f.read())


def load_users(path: str) -> list:
    users = []
    with open(path, "rb") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise ToolsError("bad_argument", f"{path}:{lineno}: not valid JSON ({e})") from None
            if not isinstance(obj, dict) or not isinstance(obj.get("user_id"), int):
                raise ToolsError("bad_argument", f"{path}:{lineno}: a user needs an integer user_id")
            users.append(obj)
    return users


def _user_of(line: bytes) -> Optional[int]:
    i = line.find(b'"user_id":')
    if i < 0:
        return None
    j = i + 10
    k = j
    while k < len(line) and line[k] in b" 0123456789-":
        k += 1
    try:
        return int(line[j:k])
    except ValueError:
        return None


def load_states(events_path: str, bundle: Bundle, user_ids: Optional[set] = None,
                until: Optional[int] = None, log=None) -> dict:
    """user_id -> UserState after applying the user's events (ts <= until, when given)."""
    states: dict = {}
    t0 = time.perf_counter()
    n = 0
    with open(events_path, "rb") as f:
        for lineno, line in enumerate(f, 1):
            uid = _user_of(line)
            if uid is None:
                if line.strip():
                    raise ToolsError("bad_event", f"{events_path}:{lineno}: no user_id")
                continue
            if user_ids is not None and uid not in user_ids:
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise ToolsError("bad_event", f"{events_path}:{lineno}: not valid JSON ({e})") from None
            ev = parse_event(obj, where=f"{events_path}:{lineno}")
            if until is not None and ev.ts > until:
                continue
            st = states.get(ev.user_id)
            if st is None:
                st = states[ev.user_id] = UserState.empty(ev.user_id, bundle.manifest)
            st.apply(ev, bundle)
            n += 1
    if log:
        log(f"{events_path}: applied {n} events for {len(states)} users in {time.perf_counter() - t0:.1f}s")
    return states


def load_states_cached(events_path: str, bundle: Bundle, cache: Optional[str], user_ids: Optional[set] = None,
                       until: Optional[int] = None, log=None) -> dict:
    """load_states, kept in `cache` (JSON lines: a header naming the events file, its size and
    mtime, the model_version, `until` and the users; then one state JSON per line). A cache
    whose header does not match is rebuilt; one made for more users (or all) than asked for is
    used as is, keeping only the users asked for, so a smaller sample does not overwrite it."""
    if not cache:
        return load_states(events_path, bundle, user_ids, until, log)
    st = os.stat(events_path)
    header = {"events": os.path.abspath(events_path), "size": st.st_size, "mtime_ns": st.st_mtime_ns,
              "model_version": bundle.manifest.model_version, "until": until,
              "users": None if user_ids is None else sorted(user_ids)}
    if os.path.isfile(cache):
        with open(cache, "rb") as f:
            first = f.readline()
            try:
                held = json.loads(first)
            except json.JSONDecodeError:
                held = None
            if not isinstance(held, dict):
                held = {"users": []}
            source = {k: v for k, v in header.items() if k != "users"}
            same_source = {k: v for k, v in held.items() if k != "users"} == source
            cached = held.get("users", [])
            covers = cached is None or (user_ids is not None and set(user_ids) <= set(cached))
            if same_source and covers:
                states = {}
                for lineno, line in enumerate(f, 2):
                    s = UserState.from_json(line, bundle.manifest)
                    if user_ids is None or s.user_id in user_ids:
                        states[s.user_id] = s
                if log:
                    log(f"{cache}: {len(states)} states")
                return states
    states = load_states(events_path, bundle, user_ids, until, log)
    tmp = cache + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(json.dumps(header) + "\n")
        for s in states.values():
            f.write(s.to_json() + "\n")
    os.replace(tmp, cache)
    return states


def stderr_log(prefix: str):
    def log(msg: str) -> None:
        print(f"[{prefix}] {msg}", file=sys.stderr, flush=True)
    return log
