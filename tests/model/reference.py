#!/usr/bin/env python3
"""PyTorch reference for `flam parity`, written from the equations of OpenFlamingo's helpers.py
(PerceiverResampler, GatedCrossAttentionBlock), open_clip's VisionTransformer (OpenAI CLIP,
QuickGELU) and Hugging Face's LlamaDecoderLayer, in float64. For each module and case it writes
random weights and inputs as .safetensors (our own minimal writer: the format is 8 bytes of
header length, a JSON header, raw little-endian data), runs `$FLAM_BIN parity`, and compares the
output with the reference: max |ours - reference| must be <= 1e-5.

Usage: reference.py [WORKDIR]   (env FLAM_BIN: the built flam)
"""
import json
import math
import os
import struct
import subprocess
import sys
import tempfile

import torch

TOL = 1e-5
DTYPES = {torch.float32: "F32", torch.int64: "I64", torch.bool: "BOOL", torch.float64: "F64"}
NAMES = {v: k for k, v in DTYPES.items()}


def save(path, tensors):
    header, blobs, offset = {}, [], 0
    for name, t in tensors.items():
        t = t.contiguous()
        data = t.numpy().tobytes()
        header[name] = {"dtype": DTYPES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def load(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        b, end = e["data_offsets"]
        buf = bytearray(raw[8 + n + b:8 + n + end])
        out[name] = torch.frombuffer(buf, dtype=NAMES[e["dtype"]]).reshape(e["shape"]).clone()
    return out


def rnd(*shape, scale=1.0):
    return torch.randn(*shape, dtype=torch.float64) * scale


def layer_norm(x, w, b, eps=1e-5):
    mu = x.mean(-1, keepdim=True)
    var = ((x - mu) ** 2).mean(-1, keepdim=True)
    return (x - mu) / torch.sqrt(var + eps) * w + b


def gelu(x):
    return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))


def softmax(s):
    s = s - s.max(-1, keepdim=True).values
    e = s.exp()
    return e / e.sum(-1, keepdim=True)


def ln_params(w, prefix, dim):
    w[prefix + ".weight"] = 1.0 + rnd(dim, scale=0.1)
    w[prefix + ".bias"] = rnd(dim, scale=0.1)


def ff_params(w, prefix, dim, mult):
    ln_params(w, prefix + ".0", dim)
    w[prefix + ".1.weight"] = rnd(dim * mult, dim, scale=dim ** -0.5)
    w[prefix + ".3.weight"] = rnd(dim, dim * mult, scale=(dim * mult) ** -0.5)


def ff(w, prefix, x):
    h = layer_norm(x, w[prefix + ".0.weight"], w[prefix + ".0.bias"])
    return gelu(h @ w[prefix + ".1.weight"].T) @ w[prefix + ".3.weight"].T


def heads_split(x, h):  # [..., n, h*d] -> [..., h, n, d]
    *lead, n, hd = x.shape
    return x.reshape(*lead, n, h, hd // h).transpose(-3, -2)


def heads_merge(x):  # [..., h, n, d] -> [..., n, h*d]
    x = x.transpose(-3, -2)
    return x.reshape(*x.shape[:-2], x.shape[-2] * x.shape[-1])


# ---- Perceiver ----
def perceiver_weights(dim, depth, heads, dim_head, n_latents, mult, max_media, max_frames):
    w, inner = {}, heads * dim_head
    w["latents"] = rnd(n_latents, dim)
    if max_frames:
        w["frame_embs"] = rnd(max_frames, dim, scale=0.5)
    if max_media:
        w["media_time_embs"] = rnd(max_media, 1, dim, scale=0.5)
    for i in range(depth):
        p = f"layers.{i}.0."
        ln_params(w, p + "norm_media", dim)
        ln_params(w, p + "norm_latents", dim)
        w[p + "to_q.weight"] = rnd(inner, dim, scale=dim ** -0.5)
        w[p + "to_kv.weight"] = rnd(2 * inner, dim, scale=dim ** -0.5)
        w[p + "to_out.weight"] = rnd(dim, inner, scale=inner ** -0.5)
        ff_params(w, f"layers.{i}.1", dim, mult)
    ln_params(w, "norm", dim)
    return w


def perceiver(w, x, heads, dim_head, depth):
    b, T, F, v, D = x.shape
    if "frame_embs" in w:
        x = x + w["frame_embs"][:F].reshape(1, 1, F, 1, D)
    x = x.reshape(b, T, F * v, D)
    if "media_time_embs" in w:
        x = x + w["media_time_embs"][:T].unsqueeze(0)
    lat = w["latents"].expand(b, T, *w["latents"].shape)
    for i in range(depth):
        p = f"layers.{i}.0."
        xm = layer_norm(x, w[p + "norm_media.weight"], w[p + "norm_media.bias"])
        lt = layer_norm(lat, w[p + "norm_latents.weight"], w[p + "norm_latents.bias"])
        q = heads_split(lt @ w[p + "to_q.weight"].T, heads)
        k, v_ = (torch.cat([xm, lt], -2) @ w[p + "to_kv.weight"].T).chunk(2, -1)
        k, v_ = heads_split(k, heads), heads_split(v_, heads)
        attn = softmax((q * dim_head ** -0.5) @ k.transpose(-1, -2))
        lat = heads_merge(attn @ v_) @ w[p + "to_out.weight"].T + lat
        lat = ff(w, f"layers.{i}.1", lat) + lat
    return layer_norm(lat, w["norm.weight"], w["norm.bias"])


# ---- Gated cross-attention ----
def xattn_weights(dim, dim_v, heads, dim_head, mult):
    w, inner = {}, heads * dim_head
    ln_params(w, "attn.norm", dim)
    w["attn.to_q.weight"] = rnd(inner, dim, scale=dim ** -0.5)
    w["attn.to_kv.weight"] = rnd(2 * inner, dim_v, scale=dim_v ** -0.5)
    w["attn.to_out.weight"] = rnd(dim, inner, scale=inner ** -0.5)
    w["attn_gate"] = torch.tensor([0.7], dtype=torch.float64)
    ff_params(w, "ff", dim, mult)
    w["ff_gate"] = torch.tensor([-0.4], dtype=torch.float64)
    return w


def xattn(w, x, media, media_locations, heads, dim_head, only_immediate):
    B, T_img, n, Dv = media.shape
    h = layer_norm(x, w["attn.norm.weight"], w["attn.norm.bias"])
    q = heads_split(h @ w["attn.to_q.weight"].T, heads) * dim_head ** -0.5
    k, v = (media.reshape(B, T_img * n, Dv) @ w["attn.to_kv.weight"].T).chunk(2, -1)
    k, v = heads_split(k, heads), heads_split(v, heads)
    sim = q @ k.transpose(-1, -2)  # [B, H, T_txt, T_img*n]
    text_time = media_locations.long().cumsum(-1)  # [B, T_txt]
    media_time = torch.arange(1, T_img + 1).repeat_interleave(n)
    tt, mt = text_time[:, None, :, None], media_time[None, None, None, :]
    allowed = (tt == mt) if only_immediate else (tt >= mt)
    sim = sim.masked_fill(~allowed, float("-inf"))
    any_allowed = allowed.any(-1, keepdim=True)
    attn = softmax(torch.where(any_allowed, sim, torch.zeros_like(sim)))
    attn = torch.where(any_allowed, attn, torch.zeros_like(attn))  # no image yet: attend nothing
    out = heads_merge(attn @ v) @ w["attn.to_out.weight"].T
    x = out * math.tanh(w["attn_gate"].item()) + x
    return ff(w, "ff", x) * math.tanh(w["ff_gate"].item()) + x


# ---- Vision (open_clip VisionTransformer, OpenAI layout) ----
def vision_weights(width, patch, grid, layers, mlp):
    w = {"conv1.weight": rnd(width, 3, patch, patch, scale=(3 * patch * patch) ** -0.5),
         "class_embedding": rnd(width, scale=0.5),
         "positional_embedding": rnd(grid * grid + 1, width, scale=0.5)}
    ln_params(w, "ln_pre", width)
    for l in range(layers):
        p = f"transformer.resblocks.{l}."
        ln_params(w, p + "ln_1", width)
        w[p + "attn.in_proj_weight"] = rnd(3 * width, width, scale=width ** -0.5)
        w[p + "attn.in_proj_bias"] = rnd(3 * width, scale=0.1)
        w[p + "attn.out_proj.weight"] = rnd(width, width, scale=width ** -0.5)
        w[p + "attn.out_proj.bias"] = rnd(width, scale=0.1)
        ln_params(w, p + "ln_2", width)
        w[p + "mlp.c_fc.weight"] = rnd(mlp, width, scale=width ** -0.5)
        w[p + "mlp.c_fc.bias"] = rnd(mlp, scale=0.1)
        w[p + "mlp.c_proj.weight"] = rnd(width, mlp, scale=mlp ** -0.5)
        w[p + "mlp.c_proj.bias"] = rnd(width, scale=0.1)
    ln_params(w, "ln_post", width)
    return w


def vision(w, pixels, heads, layers, after_ln_post):
    cw = w["conv1.weight"]
    width, patch = cw.shape[0], cw.shape[2]
    N, _, H, W = pixels.shape
    g = H // patch
    # patch embedding as an explicit sum over each patch's pixels
    patches = pixels.reshape(N, 3, g, patch, g, patch).permute(0, 2, 4, 1, 3, 5)
    x = patches.reshape(N, g * g, 3 * patch * patch) @ cw.reshape(width, -1).T
    x = torch.cat([w["class_embedding"].expand(N, 1, width), x], 1) + w["positional_embedding"]
    x = layer_norm(x, w["ln_pre.weight"], w["ln_pre.bias"])
    for l in range(layers):
        p = f"transformer.resblocks.{l}."
        h = layer_norm(x, w[p + "ln_1.weight"], w[p + "ln_1.bias"])
        q, k, v = (h @ w[p + "attn.in_proj_weight"].T + w[p + "attn.in_proj_bias"]).chunk(3, -1)
        q, k, v = heads_split(q, heads), heads_split(k, heads), heads_split(v, heads)
        attn = softmax(q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1]))
        x = x + heads_merge(attn @ v) @ w[p + "attn.out_proj.weight"].T + w[p + "attn.out_proj.bias"]
        h = layer_norm(x, w[p + "ln_2.weight"], w[p + "ln_2.bias"])
        h = h @ w[p + "mlp.c_fc.weight"].T + w[p + "mlp.c_fc.bias"]
        h = h * torch.sigmoid(1.702 * h)
        x = x + h @ w[p + "mlp.c_proj.weight"].T + w[p + "mlp.c_proj.bias"]
    tokens = x[:, 1:]
    if after_ln_post:
        tokens = layer_norm(tokens, w["ln_post.weight"], w["ln_post.bias"])
    return tokens


# ---- LLaMA decoder layer (Hugging Face) ----
def decoder_weights(dim, ffn):
    w = {}
    for n in ["q", "k", "v", "o"]:
        w[f"self_attn.{n}_proj.weight"] = rnd(dim, dim, scale=dim ** -0.5)
    w["mlp.gate_proj.weight"] = rnd(ffn, dim, scale=dim ** -0.5)
    w["mlp.up_proj.weight"] = rnd(ffn, dim, scale=dim ** -0.5)
    w["mlp.down_proj.weight"] = rnd(dim, ffn, scale=ffn ** -0.5)
    w["input_layernorm.weight"] = 1.0 + rnd(dim, scale=0.1)
    w["post_attention_layernorm.weight"] = 1.0 + rnd(dim, scale=0.1)
    return w


def rms(x, wt, eps):
    return wt * x / torch.sqrt((x * x).mean(-1, keepdim=True) + eps)


def rope(x, positions, theta):
    # rotate-half layout: pairs (i, i + d/2) rotate by angle pos * theta^(-2i/d)
    d = x.shape[-1]
    inv = theta ** (-torch.arange(0, d, 2, dtype=torch.float64) / d)
    ang = positions.double()[..., None] * inv  # [B, T, d/2]
    c, s = ang.cos()[:, None], ang.sin()[:, None]
    x1, x2 = x[..., : d // 2], x[..., d // 2:]
    return torch.cat([x1 * c - x2 * s, x2 * c + x1 * s], -1)


def decoder_layer(w, x, positions, heads, eps, theta):
    B, T, D = x.shape
    if positions.dim() == 1:
        positions = positions.expand(B, T)
    h = rms(x, w["input_layernorm.weight"], eps)
    q = rope(heads_split(h @ w["self_attn.q_proj.weight"].T, heads), positions, theta)
    k = rope(heads_split(h @ w["self_attn.k_proj.weight"].T, heads), positions, theta)
    v = heads_split(h @ w["self_attn.v_proj.weight"].T, heads)
    s = q @ k.transpose(-1, -2) / math.sqrt(D // heads)
    causal = torch.ones(T, T, dtype=torch.bool).tril()
    s = s.masked_fill(~causal, float("-inf"))
    x = x + heads_merge(softmax(s) @ v) @ w["self_attn.o_proj.weight"].T
    h = rms(x, w["post_attention_layernorm.weight"], eps)
    g = h @ w["mlp.gate_proj.weight"].T
    return x + (g * torch.sigmoid(g) * (h @ w["mlp.up_proj.weight"].T)) @ w["mlp.down_proj.weight"].T


def f32(d):
    return {k: (v.float() if v.dtype == torch.float64 else v) for k, v in d.items()}


def run_case(work, name, module, weights, inputs, expected, flags):
    wp, ip, op = (os.path.join(work, f"{name}.{s}.safetensors") for s in ("w", "in", "out"))
    save(wp, f32(weights))
    save(ip, f32(inputs))
    cmd = [os.environ["FLAM_BIN"], "parity", "--module", module, "--weights", wp, "--inputs", ip,
           "--out", op] + flags
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    got = load(op)["out"].double()
    err = (got - expected).abs().max().item()
    status = "ok" if err <= TOL and got.shape == expected.shape else "FAIL"
    print(f"{status} {name}: shape {tuple(got.shape)} max|diff| {err:.2e}")
    return status == "ok"


def rounded(d):
    return {k: (v.float().double() if v.dtype == torch.float64 else v) for k, v in d.items()}


def main():
    torch.manual_seed(0)
    torch.set_num_threads(1)
    work = sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp()
    ok = True

    # Perceiver: plain, then with media-time and frame embeddings (F = 2).
    for case, (max_media, max_frames, F) in {"perceiver": (0, 0, 1),
                                             "perceiver_embs": (4, 3, 2)}.items():
        w = rounded(perceiver_weights(32, 2, 4, 8, 6, 2, max_media, max_frames))
        x = rounded({"x": rnd(2, 3, F, 5, 32)})
        ok &= run_case(work, case, "perceiver", w, x,
                       perceiver(w, x["x"], 4, 8, 2), ["--heads", "4", "--dim-head", "8"])

    # Cross-attention: text before the first image, several images, none, more <image> tokens
    # than images; both masking modes.
    w = rounded(xattn_weights(32, 24, 2, 8, 2))
    T_txt, T_img = 10, 3
    loc = torch.zeros(4, T_txt, dtype=torch.bool)
    loc[0, [2, 5, 8]] = True      # text before the first image, then three images
    # row 1: no image at all
    loc[2, [0]] = True            # an image at the very start
    loc[3, [1, 3, 4, 6]] = True   # four <image> tokens, three images
    x = rounded({"x": rnd(4, T_txt, 32), "media": rnd(4, T_img, 5, 24)})
    for immediate in (1, 0):
        inputs = dict(x, media_locations=loc)
        exp = xattn(w, x["x"], x["media"], loc, 2, 8, bool(immediate))
        ok &= run_case(work, f"xattn_immediate{immediate}", "xattn", w, inputs, exp,
                       ["--heads", "2", "--only-attend-immediate-media", str(immediate)])

    # Vision: 28 px, patch 7 (16 tokens), width 32, 4 heads, 2 layers; before / after ln_post.
    w = rounded(vision_weights(32, 7, 4, 2, 64))
    px = rounded({"pixels": rnd(2, 3, 28, 28)})
    for after in (0, 1):
        ok &= run_case(work, f"vision_ln_post{after}", "vision", w, px,
                       vision(w, px["pixels"], 4, 2, bool(after)),
                       ["--heads", "4", "--after-ln-post", str(after)])

    # LLaMA decoder layer with shifted positions per row.
    w = rounded(decoder_weights(32, 48))
    x = rounded({"x": rnd(2, 7, 32)})
    pos = torch.stack([torch.arange(7), torch.arange(7) + 5])
    ok &= run_case(work, "decoder_layer", "decoder_layer", w, dict(x, positions=pos),
                   decoder_layer(w, x["x"], pos, 4, 1e-6, 10000.0), ["--heads", "4"])

    # Weights of the wrong module: rejected (exit 5, data error) naming the missing tensor.
    bad = subprocess.run([os.environ["FLAM_BIN"], "parity", "--module", "vision", "--heads", "4",
                          "--weights", os.path.join(work, "perceiver.w.safetensors"),
                          "--inputs", os.path.join(work, "perceiver.in.safetensors"),
                          "--out", os.path.join(work, "bad.safetensors")],
                         capture_output=True, text=True)
    named = "conv1.weight" in bad.stderr
    print(f"{'ok' if bad.returncode == 5 and named else 'FAIL'} wrong weights: exit "
          f"{bad.returncode}, {bad.stderr.strip()}")
    ok &= bad.returncode == 5 and named
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
