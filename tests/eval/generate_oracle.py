"""Our generation (generate_tool) against OpenFlamingo's own Flamingo.generate.

For several random seeds: a tiny OpenFlamingo model built from the open-flamingo package exactly
as its factory.py does (open_clip VisionTransformer with QuickGELU, transformers
LlamaForCausalLM extended with FlamingoLMMixin, embeddings resized by the three new tokens,
Perceiver and cross-attention at OpenFlamingo's default sizes), random weights (gates too, so that
the images matter), float64 on CPU. Prompts shaped like evaluation prompts (demos ending in
<|endofchunk|>, one <image> per image), of different lengths and left-padded as OpenFlamingo's
evaluation pads them; batches with two images per query and with one. Greedy (num_beams 1) and
beam search (num_beams 3, length_penalty 0), stop at <|endofchunk|>, 12 new tokens at most.
<image> and <PAD> are suppressed on both sides (HF suppress_tokens): OpenFlamingo turns a
generated <image> into a new media location for the whole batch, which is outside what either
side means to compare. Every row of ours must equal OpenFlamingo's, token for token.
usage: generate_oracle.py GENERATE_TOOL
"""
import json
import os
import subprocess
import sys
import tempfile

import torch
from torch import nn
from open_clip.model import QuickGELU
from open_clip.transformer import VisionTransformer
from transformers import LlamaConfig, LlamaForCausalLM
from transformers.utils import logging as hf_logging
from open_flamingo.src.flamingo import Flamingo
from open_flamingo.src.flamingo_lm import FlamingoLMMixin
from open_flamingo.src.utils import extend_instance

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "model"))
from reference import save  # noqa: E402  (our safetensors writer)

hf_logging.set_verbosity_error()
torch.set_num_threads(1)  # the test machines are shared; one thread each side
TOOL = sys.argv[1]
V = 40
SHAPE = dict(image_size=28, patch_size=14, vision_width=16, vision_layers=2, vision_heads=2,
             vision_mlp=32, vocab=V, dim=32, layers=4, heads=4, ffn=64, every_n_layers=2)
EOC, IMAGE, PAD = V, V + 1, V + 2
MAX_NEW = 12


class Clip(nn.Module):  # what Flamingo expects: an object with .visual
    def __init__(self, visual):
        super().__init__()
        self.visual = visual


def build(seed):
    torch.manual_seed(seed)
    s = SHAPE
    vit = VisionTransformer(image_size=s["image_size"], patch_size=s["patch_size"],
                            width=s["vision_width"], layers=s["vision_layers"],
                            heads=s["vision_heads"], mlp_ratio=s["vision_mlp"] / s["vision_width"],
                            output_dim=8, act_layer=QuickGELU, output_tokens=True)
    cfg = LlamaConfig(vocab_size=V, hidden_size=s["dim"], intermediate_size=s["ffn"],
                      num_hidden_layers=s["layers"], num_attention_heads=s["heads"],
                      num_key_value_heads=s["heads"], max_position_embeddings=256,
                      rms_norm_eps=1e-6, bos_token_id=1, eos_token_id=2)
    lm = LlamaForCausalLM(cfg)
    extend_instance(lm, FlamingoLMMixin)
    lm.set_decoder_layers_attr_name("model.layers")
    lm.resize_token_embeddings(V + 3)
    model = Flamingo(Clip(vit), lm, EOC, IMAGE, vis_dim=s["vision_width"],
                     cross_attn_every_n_layers=s["every_n_layers"])
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("_gate"):
                p.uniform_(-1.0, 1.0)
            elif "lm_head" in name or "embed_tokens" in name:
                p.normal_(0.0, 1.0)
    return model.double().eval()


def our_weights(model):
    out = {}
    for name, t in model.state_dict().items():
        if (".gated_cross_attn_layer." in name or "old_decoder_blocks" in name
                or name == "vision_encoder.proj"):
            continue  # duplicates of OpenFlamingo's wrapper, and the unused CLIP projection
        out[name] = t
    out["lang_encoder.special_token_embeddings"] = (
        model.state_dict()["lang_encoder.model.embed_tokens.weight"][EOC:EOC + 2].clone())
    return out


def prompts(g, rows, images):
    """Token rows like evaluation prompts: (<image> text <|endofchunk|>)* <image> text."""
    seqs = []
    for _ in range(rows):
        seq = []
        for k in range(images):
            seq.append(IMAGE)
            seq += torch.randint(3, V, (int(torch.randint(1, 5, (1,), generator=g)),),
                                 generator=g).tolist()
            if k + 1 < images:
                seq.append(EOC)
        seqs.append(seq)
    T = max(len(s) for s in seqs)
    ids = torch.full((rows, T), PAD, dtype=torch.int64)
    mask = torch.zeros((rows, T), dtype=torch.int64)
    for r, s in enumerate(seqs):  # left padding
        ids[r, T - len(s):] = torch.tensor(s)
        mask[r, T - len(s):] = 1
    return ids, mask


def theirs(model, images, ids, mask, beams):
    with torch.no_grad():
        out = model.generate(images, ids, mask, max_new_tokens=MAX_NEW, num_beams=beams,
                             length_penalty=0.0, min_new_tokens=0, pad_token_id=PAD,
                             suppress_tokens=[IMAGE, PAD], do_sample=False)
    rows = []
    for r in out[:, ids.shape[1]:].tolist():
        toks = []
        for t in r:
            toks.append(t)
            if t == EOC:
                break
        rows.append(toks)
    return rows


def main():
    equal = total = stopped = generated = 0
    failures = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(2):
            model = build(seed)
            g = torch.Generator().manual_seed(100 + seed)
            batches = []
            for rows, n_img in ((3, 2), (2, 1), (4, 3)):
                ids, mask = prompts(g, rows, n_img)
                imgs = torch.randn(rows, n_img, 1, 3, 28, 28, generator=g, dtype=torch.float64)
                batches.append((imgs, ids, mask))
            wpath, ipath = os.path.join(tmp, f"w{seed}.safetensors"), os.path.join(tmp, f"i{seed}.safetensors")
            save(wpath, our_weights(model))
            inputs = {}
            for k, (imgs, ids, mask) in enumerate(batches):
                inputs.update({f"images_{k}": imgs, f"input_ids_{k}": ids,
                               f"attention_mask_{k}": mask})
            save(ipath, inputs)
            case = {"model": SHAPE, "weights": wpath, "inputs": ipath, "batches": len(batches),
                    "max_new_tokens": MAX_NEW, "num_beams": [1, 3], "stop_tokens": [EOC],
                    "suppress_tokens": [IMAGE, PAD]}
            cpath = os.path.join(tmp, f"c{seed}.json")
            with open(cpath, "w") as f:
                json.dump(case, f)
            ours = json.loads(subprocess.check_output(
                [TOOL, cpath], env=dict(os.environ, OMP_NUM_THREADS="1")))
            for beams in (1, 3):
                ref = [row for imgs, ids, mask in batches
                       for row in theirs(model, imgs, ids, mask, beams)]
                for r, (a, b) in enumerate(zip(ref, ours[str(beams)])):
                    total += 1
                    stopped += bool(a) and a[-1] == EOC
                    generated += len(a)
                    if a == b:
                        equal += 1
                    else:
                        failures.append(f"seed {seed} beams {beams} row {r}: OpenFlamingo {a} ours {b}")
    print(f"generation: {equal}/{total} rows equal to OpenFlamingo's Flamingo.generate "
          f"(greedy and 3-beam, {generated} tokens, {stopped} rows stopped at <|endofchunk|>)")
    for f in failures:
        print("FAIL:", f)
    return 0 if equal == total and total > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
