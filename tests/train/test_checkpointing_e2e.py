#!/usr/bin/env python3
"""`flam train` under each train.checkpointing policy, and the memory plan's refusal.

On the corpus of test_train_e2e.py, one rank, fp32, a model widened so that activations dominate
the process's memory (LLaMA width 256, a cross-attention block before every decoder layer,
128-token sequences):
  - none, cross_attention and every_layer give the same losses and gradient norms (1e-6);
  - the peak resident memory measured during training (memory.peak_resident_bytes) is ordered
    none > cross_attention > every_layer, as `flam plan` orders its per-GPU totals;
  - with train.memory_limit below the plan's peak, `flam train` exits 2 before it creates the
    run directory, naming the keys to change.
"""
import json
import os
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_train_e2e import FLAM, SRC, make_corpus, make_tokenizer  # noqa: E402

POLICIES = ["none", "cross_attention", "every_layer"]
UNITS = {"B": 1, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40}


def sets_for(out):
    laion, mmc4 = make_corpus(out)
    tokenizer, vocab = make_tokenizer(out)
    return ["data.tokenizer=" + tokenizer, "model.lang.vocab_size=%d" % vocab,
            "data.laion.shards=[%s]" % ",".join(laion),
            "data.mmc4.shards=[%s]" % ",".join(mmc4),
            "data.mmc4.max_images=2", "data.mmc4.min_image_bytes=0",
            "data.loader.shuffle_buffer=8",
            "model.lang.dim=256", "model.lang.ffn_dim=1024", "model.lang.max_seq_len=128",
            "model.xattn.every_n_layers=1", "model.xattn.ff_mult=4",
            "data.laion.batch_size=16", "data.laion.seq_len=128",
            "data.mmc4.batch_size=4", "data.mmc4.seq_len=128",
            "train.steps=3", "train.log_every=1", "train.checkpoint.every_steps=0"]


def command(verb, sets):
    argv = [FLAM, verb, "--config", os.path.join(SRC, "configs", "tiny.yaml")]
    for s in sets:
        argv += ["--set", s]
    return argv


def plan_total(sets, policy):
    proc = subprocess.run(command("plan", sets + ["train.checkpointing=" + policy]) +
                          ["--ranks", "1"], capture_output=True, text=True, timeout=60)
    m = re.search(r"^per-GPU total \(peak\): ([\d.]+) (\w+) of", proc.stdout, re.M)
    assert m, proc.stdout + proc.stderr
    return float(m.group(1)) * UNITS[m.group(2)]


def main():
    keep = os.environ.get("FLAM_KEEP_TMP")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    with tempfile.TemporaryDirectory(dir=keep) as out:
        sets = sets_for(out)
        runs = {}
        for policy in POLICIES:
            run = os.path.join(out, "run-" + policy)
            proc = subprocess.run(command("train", sets + ["run.dir=" + run,
                                                           "train.checkpointing=" + policy]),
                                  env=env, capture_output=True, text=True, timeout=600)
            if proc.returncode != 0:
                sys.exit("flam train (%s) failed (%d):\n%s" % (policy, proc.returncode,
                                                               proc.stderr[-6000:]))
            with open(os.path.join(run, "metrics.jsonl")) as f:
                runs[policy] = [json.loads(line) for line in f]
        base = runs["cross_attention"]
        for policy in POLICIES:
            lines = runs[policy]
            assert [l["step"] for l in lines] == [1, 2, 3], lines
            for a, b in zip(lines, base):
                for key in ("loss_laion", "loss_mmc4", "grad_norm"):
                    assert abs(a[key] - b[key]) <= 1e-6 * max(1.0, abs(b[key])), (policy, key, a,
                                                                                  b)
        peak = {p: max(l["memory"]["peak_resident_bytes"] for l in runs[p]) for p in POLICIES}
        plan = {p: plan_total(sets, p) for p in POLICIES}
        for p in POLICIES:
            print("%-16s measured peak %7.1f MiB, plan %7.1f MiB" % (p, peak[p] / 2**20,
                                                                    plan[p] / 2**20))
        assert plan["none"] > plan["cross_attention"] > plan["every_layer"], plan
        assert peak["none"] > peak["cross_attention"] > peak["every_layer"], peak

        # A limit below the plan's peak: refused before the run directory exists.
        run = os.path.join(out, "refused")
        proc = subprocess.run(command("train", sets + ["run.dir=" + run,
                                                       "train.memory_limit=64MiB"]),
                              env=env, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 2, "exit %d\n%s" % (proc.returncode, proc.stderr)
        for key in ("train.memory_limit", "data.laion.batch_size", "data.mmc4.batch_size",
                    "train.checkpointing", "train.shard_frozen"):
            assert key in proc.stderr, (key, proc.stderr)
        assert not os.path.exists(run), "a refused run created " + run
        # The same limit with room enough: the plan lets it start.
        proc = subprocess.run(command("train", sets + ["run.dir=" + run, "train.steps=1",
                                                       "train.memory_limit=64GiB"]),
                              env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-4000:]
    print("ok")


if __name__ == "__main__":
    main()
