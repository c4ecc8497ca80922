"""The peer for bench/peers/loader.sh: OpenFlamingo's own training data pipeline, unchanged:
open_flamingo/train/data.py's get_laion_dataset / get_mmc4_dataset (webdataset: shard shuffle,
split by worker, tarfile_to_samples, sample shuffle, PIL decode, preprocess_image with open_clip's
CLIP transform and preprocess_laion_text / preprocess_interleaved with the Hugging Face tokenizer,
batched) behind wds.WebLoader (a torch.utils.data.DataLoader), num_workers = WORKERS,
persistent_workers as OpenFlamingo sets them. The first batch is a warm-up (workers start,
shuffle buffers fill); then BATCHES batches are timed. CPU time is this process plus its worker
processes (from /proc), so the figure is samples per CPU-second of the whole pipeline.
    python loader_peer.py laion|mmc4 SHARDS HF_TOKENIZER_DIR BATCHES WORKERS"""
import os
import sys
import time
from types import SimpleNamespace

import open_flamingo.train

sys.path.insert(0, os.path.dirname(open_flamingo.train.__file__))  # data.py does `from data_utils import *`
import data_utils  # noqa: E402
import open_clip  # noqa: E402
from open_flamingo.train.data import get_laion_dataset, get_mmc4_dataset  # noqa: E402
from transformers import AutoTokenizer  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")

# Shim: webdataset 0.2.111's tar_file_expander yields an empty dict at the end of each shard,
# which open-flamingo 2.0.1's group_by_keys_nothrow (written for an older webdataset) indexes and
# dies on; drop those markers before it (its grouping already starts a new sample per key).
_group = data_utils.group_by_keys_nothrow
data_utils.group_by_keys_nothrow = lambda data, **kw: _group((s for s in data if s), **kw)


def tree_cpu_seconds():
    """utime + stime of this process and its live children (the DataLoader workers)."""
    pids = [os.getpid()]
    for task in os.listdir("/proc/self/task"):
        with open("/proc/self/task/%s/children" % task) as f:
            pids += [int(p) for p in f.read().split()]
    total = 0.0
    for pid in set(pids):
        try:
            with open("/proc/%d/stat" % pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / TICK
        except FileNotFoundError:
            pass
    return total


def of_dataloader(kind, shards, tokenizer, workers, laion_batch=32, mmc4_batch=16, max_images=6,
                  image_size=224):
    """OpenFlamingo's DataLoader for `kind` with the CLIP ViT-L/14 preprocess that
    open_clip.create_model_and_transforms returns (no weights needed): Resize(224, bicubic),
    CenterCrop(224), RGB, ToTensor, Normalize(OpenAI mean/std) (image_size: another side)."""
    image_processor = open_clip.image_transform(
        image_size, is_train=False, mean=open_clip.OPENAI_DATASET_MEAN, std=open_clip.OPENAI_DATASET_STD)
    args = SimpleNamespace(  # open_flamingo/train/train.py's defaults for the 9B run
        laion_shards=shards, mmc4_shards=shards, batch_size_laion=laion_batch,
        batch_size_mmc4=mmc4_batch, train_num_samples_laion=10 ** 7,
        train_num_samples_mmc4=10 ** 7, workers=workers, world_size=1, seed=1234,
        dataset_resampled=False, mmc4_textsim_threshold=0.24, mmc4_min_num_images=1,
        mmc4_max_num_images=max_images)
    fn = get_laion_dataset if kind == "laion" else get_mmc4_dataset
    return fn(args, image_processor, tokenizer).dataloader


def main():
    kind, shards, tok_dir, batches, workers = sys.argv[1:6]
    batches, workers = int(batches), int(workers)
    tokenizer = AutoTokenizer.from_pretrained(tok_dir, local_files_only=True)
    it = iter(of_dataloader(kind, shards, tokenizer, workers))
    next(it)  # warm-up
    cpu0, t0 = tree_cpu_seconds(), time.monotonic()
    samples = 0
    for _ in range(batches):
        images, text = next(it)
        samples += images.shape[0]
    wall = time.monotonic() - t0
    cpu = tree_cpu_seconds() - cpu0
    print("samples %d cpu_s %.3f wall_s %.3f samples_per_cpu_s %.2f" % (
        samples, cpu, wall, samples / cpu), flush=True)
    os._exit(0)  # skip the workers' orderly shutdown (not part of the figure)


if __name__ == "__main__":
    main()
