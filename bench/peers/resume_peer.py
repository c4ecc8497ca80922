"""The peer for bench/peers/resume.sh: MosaicML streaming's deterministic mid-epoch resume.
    python resume_peer.py make DIR JPEG PER_SHARD SHARDS   (writes an MDS dataset)
    python resume_peer.py resume DIR TARGET REPEATS
`make` writes one MDS shard of PER_SHARD samples (jpg: bytes, txt: str) with MDSWriter and lists
it SHARDS times in index.json (symlinked names; the same trick our tar side uses), so the index
holds PER_SHARD x SHARDS samples. `resume` builds a StreamingDataset with its recommended
settings (shuffle on, default shuffle_algo py1e, batch_size 32), load_state_dict({"epoch": 0,
"sample_in_epoch": TARGET, ...}) as StreamingDataLoader's state_dict would give it, and times the
first batch from a StreamingDataLoader (num_workers 0: the resume logic runs in this process).
Prints the seconds of each resume (a fresh dataset each time)."""
import json
import os
import shutil
import sys
import time


def make(out, jpeg, per_shard, shards):
    from streaming import MDSWriter
    data = open(jpeg, "rb").read()
    tmp = out + ".one"
    with MDSWriter(out=tmp, columns={"jpg": "bytes", "txt": "str"}, size_limit=1 << 31) as w:
        for i in range(per_shard):
            w.write({"jpg": data, "txt": "a photo, sample %d" % i})
    index = json.load(open(os.path.join(tmp, "index.json")))
    shard = index["shards"][0]
    os.makedirs(out)
    src = os.path.join(tmp, shard["raw_data"]["basename"])
    shard_list = []
    for s in range(shards):
        name = "shard.%05d.mds" % s
        os.symlink(os.path.abspath(src), os.path.join(out, name))
        entry = json.loads(json.dumps(shard))
        entry["raw_data"]["basename"] = name
        shard_list.append(entry)
    index["shards"] = shard_list
    json.dump(index, open(os.path.join(out, "index.json"), "w"))


def resume(local, target, repeats):
    from streaming import StreamingDataLoader, StreamingDataset
    from streaming.base.util import clean_stale_shared_memory
    for _ in range(repeats):
        clean_stale_shared_memory()
        t0 = time.monotonic()
        ds = StreamingDataset(local=local, shuffle=True, batch_size=32)
        loader = StreamingDataLoader(ds, batch_size=32, num_workers=0)
        ds.load_state_dict({"epoch": 0, "sample_in_epoch": target, "num_canonical_nodes": 1,
                            "shuffle_seed": ds.shuffle_seed, "initial_physical_nodes": 1})
        batch = next(iter(loader))
        s = time.monotonic() - t0
        print("resume_s %.4f first_txt %s" % (s, batch["txt"][0]), flush=True)
        del loader, ds


if __name__ == "__main__":
    if sys.argv[1] == "make":
        make(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
    else:
        resume(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
