"""Compares two OpenFlamingo-HF safetensors folders: same key set, and per key the same shape,
dtype and values; every shard of A at most MAX bytes; A's config.json a flamingo config.
usage: test_hf_flamingo_compare.py A B MAX_SHARD_BYTES"""
import json
import os
import sys

import torch
from safetensors.torch import load_file

a_dir, b_dir, max_bytes = sys.argv[1], sys.argv[2], int(sys.argv[3])

def load(d):
    index = json.load(open(f"{d}/model.safetensors.index.json"))
    out = {}
    for file in sorted(set(index["weight_map"].values())):
        part = load_file(f"{d}/{file}")
        assert all(index["weight_map"][k] == file for k in part), file
        out.update(part)
    assert sorted(out) == sorted(index["weight_map"]), d
    return out

a, b = load(a_dir), load(b_dir)
assert sorted(a) == sorted(b), (sorted(set(a) - set(b))[:5], sorted(set(b) - set(a))[:5])
for k in b:
    assert a[k].dtype == b[k].dtype, (k, a[k].dtype, b[k].dtype)
    assert a[k].shape == b[k].shape, (k, a[k].shape, b[k].shape)
    assert torch.equal(a[k], b[k]), k
files = [f for f in os.listdir(a_dir) if f.endswith(".safetensors")]
assert len(files) > 1, files
for f in files:  # the header is small; the data must respect the limit
    assert os.path.getsize(f"{a_dir}/{f}") <= max_bytes + 64 * 1024, f
config = json.load(open(f"{a_dir}/config.json"))
ref = json.load(open(f"{b_dir}/config.json"))
assert config["model_type"] == "flamingo"
for key in ("cross_attn_every_n_layers", "only_attend_previous"):
    assert config[key] == ref[key], key
for section, keys in (("text_config", ("hidden_size", "intermediate_size", "num_attention_heads",
                                       "num_hidden_layers", "rms_norm_eps")),
                      ("vision_config", ("hidden_size", "intermediate_size", "num_attention_heads",
                                         "num_hidden_layers", "image_size", "patch_size"))):
    for key in keys:
        assert config[section][key] == ref[section][key], (section, key)
print(f"{len(a)} tensors equal")
