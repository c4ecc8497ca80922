"""The peer for bench/peers/step.sh and fsdp.sh: OpenFlamingo's own training loop body,
open_flamingo.train.train_utils.train_one_epoch, unchanged (LAION forward + backward, MMC4 labels,
forward + backward, input-embedding gradient mask, clip 1.0, AdamW step, scheduler, zero_grad),
on the model of of_model.py, with train.py's optimizer (AdamW lr 1e-4, weight decay 0.1 on
gated_cross_attn parameters) and constant-with-warmup schedule, fp32 on CPU.
 - step.sh: DDP on a one-rank gloo group (what train.py does without --fsdp).
 - fsdp.sh (fsdp_peer.py): FSDP2 (fully_shard), args.fsdp as train.py sets it.
The batches come from OpenFlamingo's own DataLoaders (loader_peer.of_dataloader), fetched before
the clock starts (or loaded from a file `dump` wrote), so step times hold no data time (ours:
metrics step_time - data_wait). A step's time runs from the hand-over of its batches to the end
of optimizer.zero_grad.
    python step_peer.py run SHARD_DIR HF_TOKENIZER_DIR WARMUP STEPS WORKERS
    python step_peer.py dump OUT.pt SHARD_DIR HF_TOKENIZER_DIR N WORKERS LAION_BATCH MMC4_BATCH
`run` prints: step_s (median after WARMUP), cpu_s (process CPU per step, median), rss_mib."""
import os
import resource
import statistics
import sys
import time
from types import SimpleNamespace

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import loader_peer  # noqa: E402  (OpenFlamingo's data.py with its import shims)
import of_model  # noqa: E402
from open_flamingo.train.train_utils import train_one_epoch  # noqa: E402
from transformers import AutoTokenizer, get_constant_schedule_with_warmup  # noqa: E402

marks = []  # (event, wall, cpu)


def mark(event):
    marks.append((event, time.monotonic(), time.process_time()))


class Batches:
    """Prefetched batches that mark the hand-over of each (the zip in train_one_epoch takes the
    LAION batch, then the MMC4 one; the MMC4 hand-over starts a step)."""

    def __init__(self, batches, starts_step):
        self.batches, self.starts_step, self.num_batches = batches, starts_step, len(batches)

    def __iter__(self):
        for b in self.batches:
            if self.starts_step:
                mark("start")
            yield b


def tokenizer_from(tok_dir):
    return AutoTokenizer.from_pretrained(tok_dir, local_files_only=True)


def fetch_batches(shard_dir, tokenizer, n, workers, laion_batch=None, mmc4_batch=None):
    s = of_model.SHAPE
    fetched = {}
    for kind in ("laion", "mmc4"):
        it = iter(loader_peer.of_dataloader(
            kind, "%s/%s-{00000..00001}.tar" % (shard_dir, kind), tokenizer, workers,
            laion_batch=laion_batch or s["laion_batch"], mmc4_batch=mmc4_batch or s["mmc4_batch"],
            max_images=s["mmc4_images"],
            image_size=s["image_size"]))
        fetched[kind] = [next(it) for _ in range(n)]
    return fetched


def train_steps(model, tokenizer, fetched, warmup, fsdp):
    """train_one_epoch over the fetched batches; returns (median step s, median CPU s) after
    warmup."""
    params = [(k, p) for k, p in model.named_parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(  # train.py: weight decay on the xattn layers only
        [{"params": [p for k, p in params if "gated_cross_attn" in k], "weight_decay": 0.1},
         {"params": [p for k, p in params if "gated_cross_attn" not in k], "weight_decay": 0.0}],
        lr=1e-4)
    lr_scheduler = get_constant_schedule_with_warmup(optimizer, num_warmup_steps=5000)
    zero_grad = optimizer.zero_grad

    def timed_zero_grad(*a, **kw):
        zero_grad(*a, **kw)
        mark("end")

    optimizer.zero_grad = timed_zero_grad
    args = SimpleNamespace(
        precision="fp32", fsdp=fsdp, fsdp_use_orig_params=False, freeze_lm_embeddings=False,
        gradient_accumulation_steps=1, loss_multiplier_laion=1.0, loss_multiplier_mmc4=1.0,
        num_epochs=1, rank=0, report_to_wandb=False, logging_steps=10 ** 9)
    marks.clear()
    train_one_epoch(args, model, 0, Batches(fetched["laion"], False),
                    Batches(fetched["mmc4"], True), tokenizer, optimizer, lr_scheduler, "cpu", None)
    starts = [m for m in marks if m[0] == "start"]
    ends = [m for m in marks if m[0] == "end"]
    n = len(fetched["mmc4"])
    assert len(starts) == n and len(ends) == n, (len(starts), len(ends))
    wall = [e[1] - b[1] for b, e in zip(starts, ends)][warmup:]
    cpu = [e[2] - b[2] for b, e in zip(starts, ends)][warmup:]
    return statistics.median(wall), statistics.median(cpu)


def peak_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main():
    if sys.argv[1] == "dump":
        out, shard_dir, tok_dir, n, workers, lb, mb = sys.argv[2:9]
        torch.save(fetch_batches(shard_dir, tokenizer_from(tok_dir), int(n), int(workers),
                                 int(lb), int(mb)), out)
        os._exit(0)
    shard_dir, tok_dir = sys.argv[2], sys.argv[3]
    warmup, steps, workers = map(int, sys.argv[4:7])
    from torch.nn.parallel import DistributedDataParallel as DDP
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", str(29500 + os.getpid() % 1000))
    torch.distributed.init_process_group("gloo", rank=0, world_size=1)
    torch.manual_seed(0)
    tokenizer = tokenizer_from(tok_dir)
    fetched = fetch_batches(shard_dir, tokenizer, warmup + steps, workers)
    ddp_model = DDP(of_model.build(tokenizer))
    step_s, cpu_s = train_steps(ddp_model, tokenizer, fetched, warmup, fsdp=False)
    print("step_s %.4f cpu_s %.4f rss_mib %.1f" % (step_s, cpu_s, peak_rss_mib()), flush=True)
    os._exit(0)


if __name__ == "__main__":
    main()
