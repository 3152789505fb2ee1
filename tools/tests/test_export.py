"""The exporter: what it writes, and every check it makes before writing."""
import json
import os

import numpy as np
import pytest
import torch
from torch import nn

from conftest import CATEGORIES, DEVICES, tiny_items
from feedrank_tools import export as X
from feedrank_tools.errors import ToolsError
from feedrank_tools.reference import Bundle, Tower, features

D = 4
F = D + len(CATEGORIES) + 7 + 4 + len(DEVICES) + 1  # 21


def tower(*sizes, act=nn.ReLU):
    torch.manual_seed(0)
    layers = []
    for k in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[k], sizes[k + 1]))
        if k < len(sizes) - 2:
            layers.append(act())
    return nn.Sequential(*layers)


def inputs(n=5, seed=0):
    rng = np.random.default_rng(seed)
    ids = np.arange(100, 100 + n, dtype=np.int64) * 3
    return dict(user_tower=tower(F, 8, 6, D), item_embeddings=rng.normal(size=(n, D)) * 3.0, item_ids=ids,
                items=tiny_items(ids), categories=list(CATEGORIES), devices=list(DEVICES),
                temperature=0.07, score_bias=-1.5, model_version="test-1")


def test_export_writes_a_bundle_the_reader_loads_with_renumbered_layers(tmp_path):
    args = inputs()
    rep = X.export_bundle(str(tmp_path), **args)
    assert rep["items"] == 5 and rep["feature_dim"] == F and rep["hidden"] == [8, 6] and rep["warnings"] == []
    assert sorted(os.listdir(tmp_path)) == ["items.jsonl", "manifest.json", "weights.safetensors"]
    b = Bundle.load(str(tmp_path))
    from safetensors.numpy import load_file
    names = sorted(load_file(str(tmp_path / "weights.safetensors")))
    assert names == ["item_embeddings", "item_ids"] + [f"user_tower.{k}.{p}" for k in range(3) for p in ("bias", "weight")]
    seq = args["user_tower"]
    for k, idx in enumerate((0, 2, 4)):  # nn.Sequential indices 0, 2, 4 -> user_tower.0, .1, .2
        np.testing.assert_array_equal(b.tower_weights[k][0], seq[idx].weight.detach().numpy())
        np.testing.assert_array_equal(b.tower_weights[k][1], seq[idx].bias.detach().numpy())
    np.testing.assert_allclose(np.linalg.norm(b.item_embeddings.astype(np.float64), axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(b.item_embeddings, args["item_embeddings"] /
                               np.linalg.norm(args["item_embeddings"], axis=1, keepdims=True), atol=1e-6)
    assert b.item_ids.dtype == np.int64 and b.item_ids.tolist() == args["item_ids"].tolist()
    m = json.loads((tmp_path / "manifest.json").read_text())
    assert m["format"] == "feedrank.bundle.v1" and m["embedding_dim"] == D
    assert [a["name"] for a in m["actions"]] == ["impression", "click", "like", "comment", "share", "dwell", "hide"]
    assert m["user_tower"] == {"hidden": [8, 6], "activation": "relu"}
    assert (m["temperature"], m["score_bias"], m["half_life_hours"]) == (0.07, -1.5, 72.0)
    lines = (tmp_path / "items.jsonl").read_text().splitlines()
    assert [json.loads(l)["item_id"] for l in lines] == args["item_ids"].tolist()
    # The exported tower computes what the PyTorch module computes.
    x = features(None, 1_795_700_000_000, "ios", b.manifest)
    with torch.no_grad():
        want = nn.functional.normalize(seq(torch.from_numpy(x.astype(np.float32))), dim=-1).numpy()
    np.testing.assert_allclose(Tower(b.tower_weights)(x), want, atol=1e-6)


def test_items_without_embedding_are_left_out_with_a_warning(tmp_path):
    args = inputs()
    args["items"] = args["items"] + tiny_items([5000])
    rep = X.export_bundle(str(tmp_path), **args)
    assert len(rep["warnings"]) == 1 and "1 items without an embedding" in rep["warnings"][0]
    assert 5000 not in Bundle.load(str(tmp_path)).items


def test_dropout_and_identity_are_skipped(tmp_path):
    args = inputs()
    seq = args["user_tower"]
    args["user_tower"] = nn.Sequential(seq[0], nn.Dropout(0.1), seq[1], seq[2], seq[3], nn.Identity(), seq[4])
    assert X.export_bundle(str(tmp_path), **args)["hidden"] == [8, 6]


def _nan_weight(a):
    with torch.no_grad():
        a["user_tower"][2].weight[0, 0] = float("nan")


def _zero_row(a):
    a["item_embeddings"][3] = 0.0


def _inf_row(a):
    a["item_embeddings"][2, 1] = np.inf


@pytest.mark.parametrize("mutate,message", [
    (lambda a: a.update(user_tower=tower(F + 1, 8, D)), "user_tower.0.weight has shape [8, 22], expected [out, 21]"),
    (lambda a: a.update(user_tower=tower(F, 8, D + 1)), "item_embeddings has 4 columns, the user tower outputs 5"),
    (lambda a: a.update(user_tower=nn.Sequential(nn.Linear(F, 8), nn.ReLU(), nn.Linear(8, D), nn.ReLU())),
     "ends with a ReLU"),
    (lambda a: a.update(user_tower=nn.Sequential(nn.Linear(F, 8), nn.Linear(8, D))), "without a ReLU between"),
    (lambda a: a.update(user_tower=tower(F, 8, D, act=nn.Tanh)), "user_tower[1]: unsupported layer Tanh"),
    (lambda a: a.update(user_tower=nn.Linear(F, D)), "must be a torch.nn.Sequential"),
    (_nan_weight, "user_tower.1.weight holds NaN or inf"),
    (_zero_row, "item_embeddings row 3 is all zeros"),
    (_inf_row, "item_embeddings row 2 holds NaN or inf"),
    (lambda a: a.update(item_ids=a["item_ids"][:4]), "item_ids must have shape [5]"),
    (lambda a: a.update(item_ids=a["item_ids"].astype(np.float64)), "item_ids must hold integers"),
    (lambda a: a["item_ids"].__setitem__(4, a["item_ids"][0]), "duplicate"),
    (lambda a: a.update(items=a["items"][:-1]), "embedded item 312 has no item line"),
    (lambda a: a["items"][1].update(category="cooking"), "items[1]: item 303 has unknown category 'cooking'"),
    (lambda a: a["items"][2].pop("published_at"), "items[2]: missing field 'published_at'"),
    (lambda a: a["items"][2].update(quality=float("nan")), "items[2]: field 'quality' must be a finite number"),
    (lambda a: a.update(items=a["items"] + [dict(a["items"][0])]), "items[5]: duplicate item_id 300"),
    (lambda a: a.update(categories=["sports", "sports", "news"]), "categories has duplicates"),
    (lambda a: a.update(temperature=0.0), "temperature must be a positive finite number"),
    (lambda a: a.update(score_bias=float("inf")), "score_bias must be finite"),
    (lambda a: a.update(actions=[("impression", 0.05), ("poke", 1.0)]), "action 'poke' is not one of"),
    (lambda a: a.update(actions=[("click", float("nan"))]), "action 'click' has a non-finite weight"),
    (lambda a: a.update(actions=[("impression", 0.05), ("click", 1.0)]), "actions lacks 'like'"),
    (lambda a: a.update(model_version=""), "model_version must be a non-empty string"),
])
def test_invalid_input_is_rejected_with_a_message_naming_it(tmp_path, mutate, message):
    args = inputs()
    mutate(args)
    out = tmp_path / "b"
    with pytest.raises(ToolsError) as e:
        X.export_bundle(str(out), **args)
    assert e.value.code == "bad_argument"
    assert message in e.value.message
    assert not out.exists() or os.listdir(out) == []  # nothing half-written


def test_reader_rejects_a_gap_in_tower_layer_numbers(tmp_path):
    X.export_bundle(str(tmp_path), **inputs())
    from safetensors.numpy import load_file, save_file
    t = load_file(str(tmp_path / "weights.safetensors"))
    t["user_tower.3.weight"], t["user_tower.3.bias"] = t.pop("user_tower.2.weight"), t.pop("user_tower.2.bias")
    save_file(t, str(tmp_path / "weights.safetensors"))
    with pytest.raises(ToolsError, match="user_tower.2 is missing"):
        Bundle.load(str(tmp_path))


def test_reader_rejects_an_items_line_with_bad_json_naming_the_line(tmp_path):
    X.export_bundle(str(tmp_path), **inputs())
    p = tmp_path / "items.jsonl"
    lines = p.read_text().splitlines()
    lines[2] = lines[2][:-1]
    p.write_text("\n".join(lines) + "\n")
    with pytest.raises(ToolsError, match=r"items.jsonl:3: not valid JSON"):
        Bundle.load(str(tmp_path))


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("form", ["state_dict", "torchscript"])
def test_command_line_reads_a_tower_file_and_npy_arrays(tmp_path, form, capsys):
    args = inputs()
    seq = args["user_tower"]
    tower_path = tmp_path / "tower.pt"
    if form == "state_dict":
        torch.save(seq.state_dict(), tower_path)
    else:
        torch.jit.save(torch.jit.script(seq), str(tower_path))
    np.save(tmp_path / "emb.npy", args["item_embeddings"].astype(np.float32))
    np.save(tmp_path / "ids.npy", args["item_ids"])
    with open(tmp_path / "items.jsonl", "w") as f:
        for it in args["items"]:
            f.write(json.dumps(it) + "\n")
    (tmp_path / "cats.txt").write_text("\n".join(CATEGORIES) + "\n")
    out = tmp_path / "bundle"
    rc = X.main(["--out", str(out), "--user-tower", str(tower_path), "--item-embeddings", str(tmp_path / "emb.npy"),
                 "--item-ids", str(tmp_path / "ids.npy"), "--items", str(tmp_path / "items.jsonl"),
                 "--categories", "@" + str(tmp_path / "cats.txt"), "--devices", "ios,android",
                 "--temperature", "0.07", "--model-version", "cli-1"])
    assert rc == 0
    b = Bundle.load(str(out))
    assert b.manifest.model_version == "cli-1" and b.manifest.hidden == (8, 6)
    np.testing.assert_array_equal(b.tower_weights[2][0], seq[4].weight.detach().numpy())


def test_command_line_reports_bad_input_on_one_line_with_exit_2(tmp_path, capsys):
    rc = X.main(["--out", str(tmp_path / "b"), "--user-tower", str(tmp_path / "missing.pt"), "--item-embeddings", "x",
                 "--item-ids", "y", "--items", "z", "--categories", "a", "--temperature", "1", "--model-version", "v"])
    assert rc == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "missing.pt: no such file" in err[0]
