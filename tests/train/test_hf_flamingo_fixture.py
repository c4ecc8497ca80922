"""Builds a tiny OpenFlamingo-9B-HF-shaped folder, as luodian/openflamingo-9b-hf is laid out
(Otter's conversion), from transformers' own LlamaForCausalLM and CLIPVisionModel at tiny sizes
plus the Perceiver and cross-attention weights our exporter wrote (OpenFlamingo names). Writes:
  OUT/of/      clip.safetensors, llama.safetensors, checkpoint.pt (our OpenFlamingo import path)
  OUT/hf_bin/  config.json, pytorch_model-0000K-of-00003.bin, pytorch_model.bin.index.json
  OUT/hf_st/   config.json, model-0000K-of-00003.safetensors, model.safetensors.index.json
  OUT/no_perceiver_shard.txt  a .bin shard holding no perceiver.* tensor
usage: test_hf_flamingo_fixture.py OUT TRAINED.safetensors
"""
import json
import os
import re
import sys

import torch
from safetensors.torch import load_file, save_file
from transformers import CLIPVisionConfig, CLIPVisionModel, LlamaConfig, LlamaForCausalLM

out, trained_path = sys.argv[1], sys.argv[2]
V = 40  # tests/model/tiny_model.h: lang.vocab_size, before the three added tokens
torch.manual_seed(0)
llama = LlamaForCausalLM(LlamaConfig(
    vocab_size=V, hidden_size=32, intermediate_size=64, num_hidden_layers=4,
    num_attention_heads=4, num_key_value_heads=4, rms_norm_eps=1e-6,
    max_position_embeddings=64, rope_theta=10000.0, tie_word_embeddings=False))
llama.resize_token_embeddings(V + 3)
clip = CLIPVisionModel(CLIPVisionConfig(
    hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2,
    image_size=28, patch_size=14, hidden_act="quick_gelu"))
with torch.no_grad():  # norms and biases away from their 1 / 0 initialisation
    for p in list(llama.parameters()) + list(clip.parameters()):
        p.add_(0.1 * torch.randn_like(p))

def state(module):
    return {k: v.detach().contiguous().clone() for k, v in module.state_dict().items()
            if not k.endswith("position_ids") and not k.endswith("inv_freq")}

clip_sd, llama_sd = state(clip), state(llama)
trained = load_file(trained_path)
table = llama_sd["model.embed_tokens.weight"].clone()  # [V + 3, D]; the two trained rows:
table[V:V + 2] = trained["lang_encoder.model.embed_tokens.weight"][V:V + 2]
trained["lang_encoder.model.embed_tokens.weight"] = table

os.makedirs(f"{out}/of", exist_ok=True)
save_file(clip_sd, f"{out}/of/clip.safetensors")
save_file(llama_sd, f"{out}/of/llama.safetensors")
torch.save(trained, f"{out}/of/checkpoint.pt")

hf = {f"vision_encoder.{k}": v for k, v in clip_sd.items()}
for k, v in llama_sd.items():
    m = re.fullmatch(r"model\.layers\.(\d+)\.(.*)", k)
    if m:
        hf[f"lang_encoder.model.layers.{m[1]}.decoder_layer.{m[2]}"] = v
    elif k != "model.embed_tokens.weight":
        hf[f"lang_encoder.{k}"] = v  # model.norm.weight, lm_head.weight
hf["lang_encoder.model.embed_tokens.weight"] = table
for k, v in trained.items():
    if k == "lang_encoder.model.embed_tokens.weight":
        continue
    if m := re.fullmatch(r"perceiver\.layers\.(\d+)\.0\.(.*)", k):
        k = f"perceiver.layers.{m[1]}.{m[2]}"
    elif m := re.fullmatch(r"perceiver\.layers\.(\d+)\.1\.(.*)", k):
        k = f"perceiver.layers.{m[1]}.feed_forward.{m[2]}"
    elif m := re.fullmatch(r"lang_encoder\.gated_cross_attn_layers\.(\d+)\.(.*)", k):
        rest = re.sub(r"^ff\.", "feed_forward.", m[2])
        k = f"lang_encoder.model.layers.{m[1]}.gated_cross_attn_layer.{rest}"
    hf[k] = v

config = {
    "model_type": "flamingo", "architectures": ["FlamingoModel"],
    "cross_attn_every_n_layers": 2, "only_attend_previous": True,
    "text_config": json.loads(llama.config.to_json_string()),
    "vision_config": json.loads(clip.config.to_json_string()),
}
names = sorted(hf)
shards = [names[i::3] for i in range(3)]  # interleaved: every shard mixes components
shards = [sorted(s) for s in shards]
shards[0] = [n for n in shards[0] if not n.startswith("perceiver.")]
shards[1] += [n for n in names[0::3] if n.startswith("perceiver.")]
for kind, pattern, index_name in (("bin", "pytorch_model-{:05d}-of-00003.bin",
                                   "pytorch_model.bin.index.json"),
                                  ("st", "model-{:05d}-of-00003.safetensors",
                                   "model.safetensors.index.json")):
    d = f"{out}/hf_{kind}"
    os.makedirs(d, exist_ok=True)
    weight_map = {}
    for i, shard in enumerate(shards):
        file = pattern.format(i + 1)
        part = {n: hf[n] for n in shard}
        if kind == "bin":
            torch.save(part, f"{d}/{file}")
        else:
            save_file(part, f"{d}/{file}", metadata={"format": "pt"})
        weight_map.update({n: file for n in shard})
    total = sum(t.numel() * t.element_size() for t in hf.values())
    with open(f"{d}/{index_name}", "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)
    with open(f"{d}/config.json", "w") as f:
        json.dump(config, f, indent=2)
with open(f"{out}/no_perceiver_shard.txt", "w") as f:
    f.write("pytorch_model-00001-of-00003.bin")
