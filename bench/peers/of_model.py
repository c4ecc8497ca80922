"""OpenFlamingo's model at a small CPU shape for bench/peers/step.sh and fsdp.sh, built the way
open_flamingo.src.factory.create_model_and_transforms builds it, without downloading anything:
an open_clip VisionTransformer (OpenAI layout, QuickGELU, random weights) with output_tokens, a
Hugging Face LlamaForCausalLM (random weights) extended with FlamingoLMMixin, resized to the
tokenizer's length, wrapped in open_flamingo.src.flamingo.Flamingo; then the factory's freezing
(perceiver, gated cross-attention and input embeddings trained).
SHAPE below is mirrored by flam_config() for our side (bench/peers/step.sh, fsdp.sh)."""
import torch

SHAPE = dict(
    image_size=112, patch_size=14, vision_width=256, vision_layers=2, vision_heads=4,
    vision_mlp=1024, vocab=500, dim=256, lang_layers=4, lang_heads=4, ffn=704,
    cross_attn_every=2, laion_batch=4, mmc4_batch=2, mmc4_images=3)
# Fixed by OpenFlamingo's code: PerceiverResampler(dim=vis_dim) defaults (depth 6, 8 heads of 64,
# 64 latents, ff_mult 4), GatedCrossAttentionBlock defaults (8 heads of 64, ff_mult 4), LAION 32
# tokens, MMC4 256 tokens.


def build(tokenizer, shape=SHAPE):
    import open_clip
    from open_clip.model import CLIPVisionCfg, _build_vision_tower
    from open_flamingo.src.flamingo import Flamingo
    from open_flamingo.src.flamingo_lm import FlamingoLMMixin
    from open_flamingo.src.utils import extend_instance
    from transformers import LlamaConfig, LlamaForCausalLM

    s = shape
    cfg = CLIPVisionCfg(layers=s["vision_layers"], width=s["vision_width"],
                        head_width=s["vision_width"] // s["vision_heads"],
                        mlp_ratio=s["vision_mlp"] / s["vision_width"], patch_size=s["patch_size"],
                        image_size=s["image_size"])

    class Clip(torch.nn.Module):  # what create_model_and_transforms returns, vision half
        def __init__(self):
            super().__init__()
            self.visual = _build_vision_tower(s["vision_width"], cfg, quick_gelu=True)

    vision = Clip()
    vision.visual.output_tokens = True
    lang = LlamaForCausalLM(LlamaConfig(
        vocab_size=s["vocab"], hidden_size=s["dim"], intermediate_size=s["ffn"],
        num_hidden_layers=s["lang_layers"], num_attention_heads=s["lang_heads"],
        num_key_value_heads=s["lang_heads"], rms_norm_eps=1e-6, max_position_embeddings=512,
        tie_word_embeddings=False, attn_implementation="sdpa"))
    extend_instance(lang, FlamingoLMMixin)
    lang.set_decoder_layers_attr_name("model.layers")
    lang.resize_token_embeddings(len(tokenizer))
    model = Flamingo(vision, lang, tokenizer.encode("<|endofchunk|>")[-1],
                     tokenizer.encode("<image>")[-1], vis_dim=s["vision_width"],
                     cross_attn_every_n_layers=s["cross_attn_every"])
    model.requires_grad_(False)
    model.perceiver.requires_grad_(True)
    model.lang_encoder.gated_cross_attn_layers.requires_grad_(True)
    model.lang_encoder.get_input_embeddings().requires_grad_(True)
    return model


def flam_config(shape=SHAPE):
    """The `model:` section of a flam config with the same shape."""
    s = shape
    return """model:
  vision: {image_size: %d, patch_size: %d, width: %d, layers: %d, heads: %d, mlp_dim: %d}
  lang: {vocab_size: %d, dim: %d, layers: %d, heads: %d, ffn_dim: %d, max_seq_len: 512}
  perceiver: {depth: 6, heads: 8, dim_head: 64, num_latents: 64, ff_mult: 4}
  xattn: {every_n_layers: %d, heads: 8, dim_head: 64, ff_mult: 4}
""" % (s["image_size"], s["patch_size"], s["vision_width"], s["vision_layers"], s["vision_heads"],
       s["vision_mlp"], s["vocab"], s["dim"], s["lang_layers"], s["lang_heads"], s["ffn"],
       s["cross_attn_every"])


if __name__ == "__main__":
    import sys
    if sys.argv[1] == "flam-config":
        print(flam_config(), end="")
