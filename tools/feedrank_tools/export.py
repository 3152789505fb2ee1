"""The bundle exporter: what a real user calls with their own PyTorch user tower, item embeddings
and item table to produce a `feedrank.bundle.v1` directory (contract section 2) that the Swift
worker loads.

Python API:

    from feedrank_tools.export import export_bundle
    report = export_bundle(
        "out/bundle", user_tower,            # nn.Sequential of Linear/ReLU (Dropout/Identity skipped)
        item_embeddings, item_ids, items,    # (N, D) floats, (N,) ints, [{"item_id":..,"category":..,...}]
        categories=[...], devices=["ios", "android", "web"],
        actions=[("impression", 0.05), ("click", 1.0), ...],   # the order of n
        half_life_hours=72.0, temperature=0.05, score_bias=0.0, model_version="v7")

It checks everything the Swift loader checks -- the tower's layer pattern and shapes (the first
Linear takes F = D + C + A + 4 + len(devices) + 1 inputs, the last gives D), finite weights,
finite non-zero embeddings (then L2-normalised), unique item ids, an item line for every
embedded item, known categories, a sane manifest -- and raises `ToolsError` (code
"bad_argument") naming the argument, tensor, row or item otherwise. Linear layers are
renumbered 0..L-1 (`nn.Sequential` indices 0, 2, 4 -> user_tower.0, .1, .2). Files are written
to temporary names and renamed into place.

Command line (see `python tools/export.py --help`):

    python tools/export.py --out DIR \
        --user-tower tower.pt          # TorchScript of an nn.Sequential, or a state_dict saved
                                       # with torch.save (keys "0.weight", "0.bias", "2.weight", ...;
                                       # a "user_tower." or "module." prefix is accepted)
        --item-embeddings emb.npy      # float (N, D)
        --item-ids ids.npy             # integer (N,)
        --items items.jsonl            # one contract item object per line
        --categories sports,music,...  # or @FILE with one category per line (index = category id)
        [--devices ios,android,web] [--actions impression=0.05,click=1,...]
        [--half-life-hours 72] --temperature 0.05 [--score-bias 0] --model-version v7
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
import zipfile
from typing import Any, Iterable, Optional, Sequence

import numpy as np

from .errors import ToolsError
from .reference import (BUNDLE_FORMAT, DEFAULT_ACTIONS, Item, Manifest, _check_weights, parse_item,
                        validate_manifest)


def _bad(msg: str) -> ToolsError:
    return ToolsError("bad_argument", msg)


def tower_layers(user_tower) -> list:
    """nn.Sequential of Linear/ReLU -> [(W float32 [out,in], b float32 [out]), ...] in order.

    The pattern must be Linear, ReLU, Linear, ..., Linear: exactly one ReLU between two Linears
    and none after the last. Dropout and Identity are no-ops at inference and are skipped.
    """
    import torch
    from torch import nn

    if not isinstance(user_tower, nn.Sequential):
        raise _bad(f"user_tower must be a torch.nn.Sequential, got {type(user_tower).__name__}")
    layers = []
    pending_relu = False
    for idx, mod in user_tower.named_children():
        if isinstance(mod, (nn.Dropout, nn.Identity)):
            continue
        if isinstance(mod, nn.Linear):
            if layers and not pending_relu:
                raise _bad(f"user_tower[{idx}]: two Linear layers without a ReLU between them")
            w = mod.weight.detach().to("cpu", torch.float32).numpy().copy()
            if mod.bias is not None:
                b = mod.bias.detach().to("cpu", torch.float32).numpy().copy()
            else:
                b = np.zeros(w.shape[0], dtype=np.float32)
            layers.append((w, b))
            pending_relu = False
        elif isinstance(mod, nn.ReLU):
            if not layers or pending_relu:
                raise _bad(f"user_tower[{idx}]: a ReLU must follow a Linear layer")
            pending_relu = True
        else:
            raise _bad(f"user_tower[{idx}]: unsupported layer {type(mod).__name__} "
                       "(the bundle format holds Linear and ReLU only)")
    if not layers:
        raise _bad("user_tower has no Linear layer")
    if pending_relu:
        raise _bad("user_tower ends with a ReLU; the last layer must be Linear")
    return layers


def _as_numpy(a, name: str) -> np.ndarray:
    try:
        import torch
        if isinstance(a, torch.Tensor):
            return a.detach().to("cpu").numpy()
    except ImportError:  # pragma: no cover - torch is a requirement
        pass
    if isinstance(a, np.ndarray):
        return a
    try:
        return np.asarray(a)
    except Exception as e:
        raise _bad(f"{name}: cannot be read as an array ({e})") from None


def normalize_embeddings(item_embeddings, embedding_dim: Optional[int] = None) -> np.ndarray:
    """(N, D) finite floats with no zero row -> float32 rows of unit L2 norm."""
    emb = _as_numpy(item_embeddings, "item_embeddings")
    if emb.ndim != 2:
        raise _bad(f"item_embeddings must be 2-D (N, D), got shape {list(emb.shape)}")
    if not np.issubdtype(emb.dtype, np.floating):
        raise _bad(f"item_embeddings must hold floats, got {emb.dtype}")
    if embedding_dim is not None and emb.shape[1] != embedding_dim:
        raise _bad(f"item_embeddings has {emb.shape[1]} columns, the user tower outputs {embedding_dim}")
    e64 = emb.astype(np.float64)
    finite = np.isfinite(e64).all(axis=1)
    if not finite.all():
        raise _bad(f"item_embeddings row {int(np.flatnonzero(~finite)[0])} holds NaN or inf")
    norms = np.sqrt(np.sum(e64 * e64, axis=1))
    zero = norms == 0.0
    if zero.any():
        raise _bad(f"item_embeddings row {int(np.flatnonzero(zero)[0])} is all zeros and cannot be normalised")
    return (e64 / norms[:, None]).astype(np.float32)


def export_bundle(out_dir: str, user_tower, item_embeddings, item_ids, items: Iterable,
                  categories: Sequence[str], devices: Sequence[str],
                  actions: Sequence = DEFAULT_ACTIONS, half_life_hours: float = 72.0,
                  temperature: float = 0.05, score_bias: float = 0.0,
                  model_version: str = "v1") -> dict:
    """Validates and writes `out_dir`/{manifest.json, weights.safetensors, items.jsonl}.

    `actions`: [(name, weight), ...] or [{"name":..,"weight":..}, ...]. `items`: dicts with the
    contract's item fields (or `Item`s); items that are not embedded are left out with a warning.
    Returns {"items": N, "feature_dim": F, "hidden": [...], "warnings": [...], "path": out_dir}.
    """
    from safetensors.numpy import save_file

    warnings = []
    layers = tower_layers(user_tower)
    D = layers[-1][0].shape[0]

    parsed_actions = []
    for i, a in enumerate(actions):
        if isinstance(a, dict):
            name, weight = a.get("name"), a.get("weight")
        else:
            try:
                name, weight = a
            except (TypeError, ValueError):
                raise _bad(f"actions[{i}] must be (name, weight) or {{'name':..,'weight':..}}") from None
        if not isinstance(name, str) or isinstance(weight, bool) or not isinstance(weight, (int, float, np.floating)):
            raise _bad(f"actions[{i}] must have a string name and a numeric weight")
        parsed_actions.append((name, float(weight)))
    for name, value in (("half_life_hours", half_life_hours), ("temperature", temperature),
                        ("score_bias", score_bias)):
        if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)):
            raise _bad(f"{name} must be a number, got {value!r}")
    manifest = Manifest(
        model_version=model_version,
        embedding_dim=int(D),
        categories=tuple(categories),
        devices=tuple(devices),
        actions=tuple(parsed_actions),
        half_life_hours=float(half_life_hours),
        hidden=tuple(int(w.shape[0]) for w, _ in layers[:-1]),
        activation="relu",
        temperature=float(temperature),
        score_bias=float(score_bias),
    )
    validate_manifest(manifest, where="export_bundle", code="bad_argument")

    emb = normalize_embeddings(item_embeddings, embedding_dim=D)
    ids = _as_numpy(item_ids, "item_ids")
    if ids.ndim != 1 or ids.shape[0] != emb.shape[0]:
        raise _bad(f"item_ids must have shape [{emb.shape[0]}] (one per embedding row), got {list(ids.shape)}")
    if not (np.issubdtype(ids.dtype, np.integer) or ids.size == 0):
        raise _bad(f"item_ids must hold integers, got {ids.dtype}")
    if np.issubdtype(ids.dtype, np.unsignedinteger) and ids.size and ids.max() > np.iinfo(np.int64).max:
        raise _bad("item_ids has an id that does not fit in int64")
    ids = ids.astype(np.int64)
    if emb.shape[0] == 0:
        raise _bad("item_embeddings is empty: a bundle needs at least one item")

    cat_set = set(manifest.categories)
    table = {}
    for i, obj in enumerate(items):
        where = f"items[{i}]"
        it = obj if isinstance(obj, Item) else parse_item(obj, where, code="bad_argument")
        if it.item_id in table:
            raise _bad(f"{where}: duplicate item_id {it.item_id}")
        if it.category not in cat_set:
            raise _bad(f"{where}: item {it.item_id} has unknown category {it.category!r}")
        table[it.item_id] = it

    _check_weights(manifest, layers, emb, ids, where="export_bundle", code="bad_argument")
    missing = [int(i) for i in ids.tolist() if int(i) not in table]
    if missing:
        raise _bad(f"items: embedded item {missing[0]} has no item line ({len(missing)} missing)")
    embedded = set(ids.tolist())
    extra = len(table) - len(embedded)
    if extra:
        warnings.append(f"items: {extra} items without an embedding were left out of items.jsonl")

    os.makedirs(out_dir, exist_ok=True)
    tensors = {}
    for k, (w, b) in enumerate(layers):
        tensors[f"user_tower.{k}.weight"] = np.ascontiguousarray(w, dtype=np.float32)
        tensors[f"user_tower.{k}.bias"] = np.ascontiguousarray(b, dtype=np.float32)
    tensors["item_embeddings"] = np.ascontiguousarray(emb)
    tensors["item_ids"] = np.ascontiguousarray(ids)

    def target(name):
        return os.path.join(out_dir, name), os.path.join(out_dir, f".{name}.tmp")

    try:
        final_w, tmp_w = target("weights.safetensors")
        # One metadata key: safetensors writes the metadata map in hash order, and a byte-identical
        # file for identical inputs keeps regenerated bundles diff-free.
        save_file(tensors, tmp_w, metadata={"format": BUNDLE_FORMAT})
        final_i, tmp_i = target("items.jsonl")
        with open(tmp_i, "w", encoding="utf-8") as f:
            for i in ids.tolist():
                f.write(json.dumps(table[int(i)].to_json(), separators=(",", ":")))
                f.write("\n")
        final_m, tmp_m = target("manifest.json")
        with open(tmp_m, "w", encoding="utf-8") as f:
            json.dump(manifest.to_json(), f, indent=2)
            f.write("\n")
        # The manifest goes last: a reader never sees a new manifest with old weights.
        os.replace(tmp_w, final_w)
        os.replace(tmp_i, final_i)
        os.replace(tmp_m, final_m)
        for f in (final_w, final_i, final_m):
            os.chmod(f, 0o644)
    except OSError as e:
        raise ToolsError("io", f"{out_dir}: cannot write the bundle ({e})", retryable=True) from None
    return {"path": out_dir, "items": int(emb.shape[0]), "embedding_dim": int(D),
            "feature_dim": manifest.feature_dim, "hidden": list(manifest.hidden), "warnings": warnings}


# --------------------------------------------------------------------------------------------
# Command line


def _is_torchscript(path: str) -> bool:
    """TorchScript archives hold a code/ folder; torch.save'd state_dicts do not."""
    try:
        with zipfile.ZipFile(path) as z:
            return any("/code/" in n for n in z.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def load_user_tower(path: str):
    """A TorchScript file of an nn.Sequential, or a torch.save'd state_dict -> nn.Sequential."""
    import torch
    from torch import nn

    if not os.path.isfile(path):
        raise _bad(f"--user-tower {path}: no such file")
    scripted = None
    if _is_torchscript(path):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                scripted = torch.jit.load(path, map_location="cpu")
        except Exception as e:
            raise _bad(f"--user-tower {path}: cannot load TorchScript ({e})") from None
    if scripted is not None:
        layers = []
        for name, child in scripted.named_children():
            kind = getattr(child, "original_name", type(child).__name__)
            if kind == "Linear":
                w = child.weight.detach()
                lin = nn.Linear(w.shape[1], w.shape[0], bias=child.bias is not None)
                with torch.no_grad():
                    lin.weight.copy_(w)
                    if child.bias is not None:
                        lin.bias.copy_(child.bias.detach())
                layers.append(lin)
            elif kind == "ReLU":
                layers.append(nn.ReLU())
            elif kind in ("Dropout", "Identity"):
                continue
            else:
                raise _bad(f"--user-tower {path}: layer {name} is {kind}; only Linear and ReLU are supported")
        return nn.Sequential(*layers)
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise _bad(f"--user-tower {path}: neither TorchScript nor a state_dict ({e})") from None
    if not isinstance(sd, dict):
        raise _bad(f"--user-tower {path}: expected a state_dict (a dict of tensors), got {type(sd).__name__}")
    by_index = {}
    for key, t in sd.items():
        k = key
        for prefix in ("module.", "user_tower."):
            if k.startswith(prefix):
                k = k[len(prefix):]
        parts = k.split(".")
        if len(parts) != 2 or not parts[0].isdigit() or parts[1] not in ("weight", "bias"):
            raise _bad(f"--user-tower {path}: unexpected key {key!r} (want '<index>.weight' / '<index>.bias')")
        by_index.setdefault(int(parts[0]), {})[parts[1]] = t
    layers = []
    for n, idx in enumerate(sorted(by_index)):
        p = by_index[idx]
        if "weight" not in p or p["weight"].dim() != 2:
            raise _bad(f"--user-tower {path}: layer {idx} has no 2-D weight")
        w = p["weight"]
        lin = nn.Linear(w.shape[1], w.shape[0], bias="bias" in p)
        with torch.no_grad():
            lin.weight.copy_(w)
            if "bias" in p:
                lin.bias.copy_(p["bias"])
        if n > 0:
            layers.append(nn.ReLU())
        layers.append(lin)
    return nn.Sequential(*layers)


def _list_arg(value: str) -> list:
    if value.startswith("@"):
        with open(value[1:], encoding="utf-8") as f:
            return [line.strip() for line in f if line.strip()]
    return [v.strip() for v in value.split(",") if v.strip()]


def _actions_arg(value: str) -> list:
    out = []
    for part in value.split(","):
        name, sep, weight = part.partition("=")
        if not sep:
            raise _bad(f"--actions: {part!r} is not NAME=WEIGHT")
        try:
            out.append((name.strip(), float(weight)))
        except ValueError:
            raise _bad(f"--actions: weight of {name!r} is not a number") from None
    return out


def _read_items(path: str) -> list:
    items = []
    try:
        with open(path, "rb") as f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as e:
                    raise _bad(f"--items {path}:{lineno}: not valid JSON ({e})") from None
                items.append(parse_item(obj, f"{path}:{lineno}", code="bad_argument"))
    except OSError as e:
        raise _bad(f"--items {path}: {e}") from None
    return items


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        prog="export.py",
        description="Write a feedrank.bundle.v1 directory from a PyTorch user tower, item embeddings "
                    "and an item table.")
    p.add_argument("--out", required=True, help="bundle directory to write")
    p.add_argument("--user-tower", required=True,
                   help="TorchScript nn.Sequential (torch.jit.save) or state_dict (torch.save)")
    p.add_argument("--item-embeddings", required=True, help=".npy float array (N, D)")
    p.add_argument("--item-ids", required=True, help=".npy integer array (N,)")
    p.add_argument("--items", required=True, help="items.jsonl: one contract item per line")
    p.add_argument("--categories", required=True, help="comma-separated, or @FILE (one per line)")
    p.add_argument("--devices", default="ios,android,web", help="comma-separated (default %(default)s)")
    p.add_argument("--actions", default=",".join(f"{n}={w:g}" for n, w in DEFAULT_ACTIONS),
                   help="NAME=WEIGHT,... in the order of n (default %(default)s)")
    p.add_argument("--half-life-hours", type=float, default=72.0)
    p.add_argument("--temperature", type=float, required=True)
    p.add_argument("--score-bias", type=float, default=0.0)
    p.add_argument("--model-version", required=True)
    args = p.parse_args(argv)
    try:
        tower = load_user_tower(args.user_tower)
        try:
            emb = np.load(args.item_embeddings, allow_pickle=False)
            ids = np.load(args.item_ids, allow_pickle=False)
        except (OSError, ValueError) as e:
            raise _bad(f"cannot read .npy input: {e}") from None
        report = export_bundle(args.out, tower, emb, ids, _read_items(args.items),
                               categories=_list_arg(args.categories), devices=_list_arg(args.devices),
                               actions=_actions_arg(args.actions), half_life_hours=args.half_life_hours,
                               temperature=args.temperature, score_bias=args.score_bias,
                               model_version=args.model_version)
    except ToolsError as e:
        print(f"export: {e.message}", file=sys.stderr)
        return 2 if e.code == "bad_argument" else 1
    for w in report["warnings"]:
        print(f"export: warning: {w}", file=sys.stderr)
    print(json.dumps(report))
    return 0
