#!/usr/bin/env python3
"""End to end: `flam train` on 2 real MPI ranks learns from real shards made here.

Makes LAION shards (KEY.jpg + KEY.txt) and MMC4 shards (KEY.json + KEY.N.jpg members) with
Python's tarfile from crops of tests/data/photos/, a SentencePiece tokenizer with spm_train on the
captions, then trains configs/tiny.yaml's model for a few dozen steps and checks:
  - the run directory holds the resolved config and metrics.jsonl with the documented fields;
  - the loss goes down (mean of the last log lines below the first);
  - a checkpoint was committed;
  - with train.shard_frozen the first losses equal the replicated run's;
  - an empty data.tokenizer is a config error (exit code 2) naming the key.
"""
import io
import json
import os
import random
import subprocess
import sys
import tarfile
import tempfile

from PIL import Image

SRC = os.environ["FLAM_SOURCE_DIR"]
FLAM = os.environ["FLAM_BIN"]
MPIEXEC = os.environ.get("MPIEXEC") or "mpirun"
PHOTOS = os.path.join(SRC, "tests", "data", "photos")
SUBJECTS = {"astronaut": "an astronaut", "camera": "a photographer", "chelsea": "a cat",
            "coffee": "a cup of coffee", "grass": "some grass", "rocket": "a rocket"}


def jpeg(photo, rng, size=40):
    im = Image.open(os.path.join(PHOTOS, photo)).convert("RGB")
    w, h = im.size
    s = int(min(w, h) * rng.uniform(0.6, 1.0))
    x, y = rng.randrange(w - s + 1), rng.randrange(h - s + 1)
    buf = io.BytesIO()
    im.crop((x, y, x + s, y + s)).resize((size, size)).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def add(tar, name, data):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def caption(subject, rng):
    return "%s of %s" % (rng.choice(["a photo", "a picture", "an image"]), SUBJECTS[subject])


def make_corpus(out):
    rng = random.Random(5)
    photos = sorted(p for p in os.listdir(PHOTOS) if p.endswith((".png", ".jpg")))
    texts = []
    laion, mmc4 = [], []
    for shard in range(2):
        path = os.path.join(out, "laion-%05d.tar" % shard)
        with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as tar:
            for i in range(24):
                photo = photos[(shard * 24 + i) % len(photos)]
                key = "%05d%04d" % (shard, i)
                text = caption(photo.split(".")[0], rng)
                texts.append(text)
                add(tar, key + ".jpg", jpeg(photo, rng))
                add(tar, key + ".txt", text.encode())
        laion.append(path)
        path = os.path.join(out, "mmc4-%05d.tar" % shard)
        with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as tar:
            for i in range(12):
                key = "%05d%04d" % (shard, i)
                chosen = [photos[(shard + i + k) % len(photos)] for k in range(2)]
                sentences = [caption(p.split(".")[0], rng) + "." for p in chosen]
                sentences.append("it was a nice day.")
                texts.extend(sentences)
                info = []
                for k, photo in enumerate(chosen):
                    add(tar, "%s.%d.jpg" % (key, k), jpeg(photo, rng))
                    info.append({"image_name": "%d.jpg" % k, "matched_text_index": k,
                                 "matched_sim": 0.5, "image_member": "%d.jpg" % k})
                sim = [[0.5 if s == k else 0.1 for s in range(3)] for k in range(2)]
                doc = {"text_list": sentences, "image_info": info, "similarity_matrix": sim}
                add(tar, key + ".json", json.dumps(doc).encode())
        mmc4.append(path)
    with open(os.path.join(out, "text.txt"), "w") as f:
        f.write("\n".join(texts * 4) + "\n")
    return laion, mmc4


def make_tokenizer(out):
    prefix = os.path.join(out, "tok")
    subprocess.run(["spm_train", "--input=" + os.path.join(out, "text.txt"),
                    "--model_prefix=" + prefix, "--vocab_size=120", "--model_type=bpe",
                    "--hard_vocab_limit=false", "--bos_id=1", "--eos_id=2", "--unk_id=0"],
                   check=True, capture_output=True)
    with open(prefix + ".vocab") as f:
        vocab = sum(1 for _ in f)
    return prefix + ".model", vocab


def main():
    keep = os.environ.get("FLAM_KEEP_TMP")
    with tempfile.TemporaryDirectory(dir=keep) as out:
        laion, mmc4 = make_corpus(out)
        tokenizer, vocab = make_tokenizer(out)
        run = os.path.join(out, "run")
        env = dict(os.environ)
        config = os.path.join(SRC, "configs", "tiny.yaml")
        sets = ["run.dir=" + run, "data.tokenizer=" + tokenizer,
                "model.lang.vocab_size=%d" % vocab,
                "data.laion.shards=[%s]" % ",".join(laion),
                "data.mmc4.shards=[%s]" % ",".join(mmc4),
                "data.mmc4.max_images=2", "data.mmc4.min_image_bytes=0",
                "data.loader.shuffle_buffer=8",
                "train.steps=30", "train.log_every=2", "train.schedule.warmup_steps=2",
                "train.optimizer.lr=3.0e-3", "train.checkpoint.every_steps=15",
                "train.checkpoint.async=false"]
        argv = [MPIEXEC, "-np", "2", "--oversubscribe", "--bind-to", "none", FLAM, "train",
                "--config", config]
        for s in sets:
            argv += ["--set", s]
        proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=240)
        if proc.returncode != 0:
            sys.exit("flam train failed (%d):\n%s\n%s" % (proc.returncode, proc.stdout,
                                                          proc.stderr[-6000:]))
        assert os.path.exists(os.path.join(run, "config.yaml")), "no resolved config"
        with open(os.path.join(run, "metrics.jsonl")) as f:
            lines = [json.loads(line) for line in f]
        assert len(lines) == 15, "expected 15 metric lines, got %d" % len(lines)
        for field in ["step", "loss_laion", "loss_mmc4", "lr", "grad_norm", "samples_per_s",
                      "tokens_per_s", "step_time", "data_wait", "memory"]:
            assert field in lines[0], "metrics.jsonl lacks " + field
        assert lines[-1]["step"] == 30
        loss = [l["loss_laion"] + l["loss_mmc4"] for l in lines]
        first, last = loss[0], sum(loss[-3:]) / 3
        print("loss (laion + mmc4) first %.3f, mean of last three %.3f" % (first, last))
        assert last < 0.8 * first, "loss did not decrease: %s" % loss
        ckpts = os.listdir(os.path.join(run, "checkpoints"))
        assert any(c.startswith("step_") and not c.endswith(".tmp") for c in ckpts), ckpts

        # train.shard_frozen: the frozen CLIP and LLaMA weights sharded over the two ranks give
        # the losses of the replicated run (same seed), for the first steps.
        sharded = os.path.join(out, "sharded")
        argv = [MPIEXEC, "-np", "2", "--oversubscribe", "--bind-to", "none", FLAM, "train",
                "--config", config]
        for s in sets + ["run.dir=" + sharded, "train.steps=6", "train.shard_frozen=true"]:
            argv += ["--set", s]
        proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=240)
        if proc.returncode != 0:
            sys.exit("flam train (shard_frozen) failed (%d):\n%s" % (proc.returncode,
                                                                     proc.stderr[-6000:]))
        assert "units, sharded; per rank" in proc.stderr + proc.stdout, proc.stderr[-3000:]
        with open(os.path.join(sharded, "metrics.jsonl")) as f:
            sharded_lines = [json.loads(line) for line in f]
        assert [l["step"] for l in sharded_lines] == [2, 4, 6], sharded_lines
        for a, b in zip(sharded_lines, lines):
            for key in ("loss_laion", "loss_mmc4"):
                assert abs(a[key] - b[key]) <= 1e-6 * max(1.0, abs(b[key])), (key, a, b)
        print("shard_frozen: losses of steps 2..6 equal the replicated run's")

        bad = subprocess.run([FLAM, "train", "--config", config, "--set", "data.tokenizer=",
                              "--set", "run.dir=" + os.path.join(out, "bad")],
                             env=env, capture_output=True, text=True, timeout=60)
        assert bad.returncode == 2, "empty tokenizer: exit %d\n%s" % (bad.returncode, bad.stderr)
        assert "data.tokenizer" in bad.stderr, bad.stderr
    print("ok")


if __name__ == "__main__":
    main()
