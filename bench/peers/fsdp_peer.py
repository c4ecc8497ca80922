"""The peer for bench/peers/fsdp.sh, one process per rank (RANK, WORLD_SIZE, MASTER_ADDR,
MASTER_PORT in the environment, as torchrun sets them): PyTorch FSDP2 on gloo, fp32, CPU.
The model of of_model.py with FSDP2's recommended wrapping: fully_shard on every transformer block
(each CLIP resblock, each LLaMA decoder layer, each gated cross-attention block, each perceiver
layer), then on the root; frozen parameters are sharded too (FSDP2 shards every parameter of a
wrapped module). The loop body is OpenFlamingo's train_one_epoch with args.fsdp (step_peer.py),
its FSDP1 model.clip_grad_norm_ supplied as torch.nn.utils.clip_grad_norm_ over the DTensor
parameters (FSDP2 has no such method; the global norm is the same). Every rank trains on the
batches in BATCHES.pt (written by `step_peer.py dump` from OpenFlamingo's DataLoaders).
    python fsdp_peer.py BATCHES.pt HF_TOKENIZER_DIR WARMUP
Rank 0 prints: step_s (median after WARMUP), rss_mib (peak RSS, the largest over ranks)."""
import os
import sys

import torch
import torch.distributed as dist
from torch.distributed.fsdp import fully_shard

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import of_model  # noqa: E402
import step_peer  # noqa: E402


def main():
    batches, tok_dir, warmup = sys.argv[1], sys.argv[2], int(sys.argv[3])
    dist.init_process_group("gloo")
    torch.manual_seed(0)
    tokenizer = step_peer.tokenizer_from(tok_dir)
    fetched = torch.load(batches, weights_only=False)
    model = of_model.build(tokenizer)
    for block in model.vision_encoder.transformer.resblocks:
        fully_shard(block)
    for layer in model.perceiver.layers:  # ModuleList([attention, feed-forward]): one group
        fully_shard(list(layer))
    for xattn in model.lang_encoder.gated_cross_attn_layers:
        if xattn is not None:
            fully_shard(xattn)
    for layer in model.lang_encoder.old_decoder_blocks:
        fully_shard(layer)
    fully_shard(model)
    model.clip_grad_norm_ = lambda max_norm: torch.nn.utils.clip_grad_norm_(
        model.parameters(), max_norm)
    step_s, _ = step_peer.train_steps(model, tokenizer, fetched, warmup, fsdp=True)
    out = torch.tensor([step_s, step_peer.peak_rss_mib()], dtype=torch.float64)
    dist.all_reduce(out, op=dist.ReduceOp.MAX)
    if dist.get_rank() == 0:
        print("step_s %.4f rss_mib %.1f" % (out[0].item(), out[1].item()), flush=True)
    dist.barrier()
    os._exit(0)


if __name__ == "__main__":
    main()
