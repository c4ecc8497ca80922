#!/usr/bin/env python3
"""`flam train --from s3://bucket/run/checkpoints/step_N` (run under with_s3.py), on one rank with
configs/tiny.yaml on the corpus and tokenizer of tests/train/test_train_e2e.py:
  1. run A of 4 steps checkpoints into the bucket (train.checkpoint.dir=s3://..., every 2 steps);
  2. a new run B --from A's step 2 in the bucket: the step is downloaded into B/checkpoints/
     (manifest and both rank files' bytes equal the bucket's), B resumes at step 2 and its
     losses at steps 3 and 4 equal A's bit for bit;
  3. --from a step in the bucket without manifest (a save that did not commit): exit 5 naming it;
     --from a committed step whose rank file has a flipped byte: exit 5 naming that s3:// object;
     neither leaves anything in its run's checkpoints/ (no step, no .tmp).
"""
import json
import os
import subprocess
import sys
import tempfile

import boto3

SRC = os.environ["FLAM_SOURCE_DIR"]
FLAM = os.environ["FLAM_BIN"]
sys.path.insert(0, os.path.join(SRC, "tests", "train"))
import test_train_e2e as corpus  # noqa: E402  (make_corpus, make_tokenizer)

BUCKET = "flam-test"
ROOT = "s3://%s/a/checkpoints" % BUCKET


def train(common, run, *extra, expect=0):
    argv = [FLAM, "train", "--config", os.path.join(SRC, "configs", "tiny.yaml")]
    for s in common + ["run.dir=" + run]:
        argv += ["--set", s]
    proc = subprocess.run(argv + list(extra), capture_output=True, text=True, timeout=240)
    if proc.returncode != expect:
        sys.exit("FAIL: flam train %s exited %d, want %d:\n%s" %
                 (" ".join(extra), proc.returncode, expect, proc.stderr[-4000:]))
    return proc


def losses(run):
    with open(os.path.join(run, "metrics.jsonl")) as f:
        return {r["step"]: (r["loss_laion"], r["loss_mmc4"]) for r in map(json.loads, f)}


def left_in(run):
    d = os.path.join(run, "checkpoints")
    return sorted(os.listdir(d)) if os.path.isdir(d) else []


def main():
    s3 = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
    with tempfile.TemporaryDirectory(dir=os.environ.get("FLAM_KEEP_TMP")) as out:
        laion, mmc4 = corpus.make_corpus(out)
        tokenizer, vocab = corpus.make_tokenizer(out)
        common = ["data.tokenizer=" + tokenizer, "model.lang.vocab_size=%d" % vocab,
                  "data.laion.shards=[%s]" % ",".join(laion),
                  "data.mmc4.shards=[%s]" % ",".join(mmc4), "data.mmc4.max_images=2",
                  "data.mmc4.min_image_bytes=0", "data.loader.shuffle_buffer=8",
                  "train.steps=4", "train.log_every=1", "train.schedule.warmup_steps=2",
                  "train.optimizer.lr=3.0e-3", "train.checkpoint.every_steps=2",
                  "train.checkpoint.keep=3", "train.checkpoint.async=false", "train.eval.every=0"]

        print("== 1. run A, checkpoints in the bucket")
        a = os.path.join(out, "a")
        train(common + ["train.checkpoint.dir=" + ROOT], a)
        ref = losses(a)
        assert sorted(ref) == [1, 2, 3, 4], sorted(ref)

        print("== 2. --from the bucket's step 2 into a new run B")
        b = os.path.join(out, "b")
        proc = train(common, b, "--from", ROOT + "/step_00000002")
        got = losses(b)
        assert sorted(got) == [3, 4], "B logged steps %s, not 3 and 4" % sorted(got)
        for step in (3, 4):
            assert got[step] == ref[step], (step, got[step], ref[step])
        local = os.path.join(b, "checkpoints", "step_00000002")
        names = sorted(os.listdir(local))
        assert names == ["manifest.json", "rank_00000.bin"], names
        for name in names:
            body = s3.get_object(Bucket=BUCKET, Key="a/checkpoints/step_00000002/" + name)
            with open(os.path.join(local, name), "rb") as f:
                assert f.read() == body["Body"].read(), name + " differs from the bucket's"
        assert "--from" in proc.stderr, proc.stderr[-2000:]

        print("== 3. a save that did not commit, and a flipped byte")
        s3.put_object(Bucket=BUCKET, Key="a/checkpoints/step_00000010/rank_00000.bin", Body=b"x")
        c = os.path.join(out, "c")
        err = train(common, c, "--from", ROOT + "/step_00000010", expect=5).stderr
        assert ROOT + "/step_00000010" in err and "did not commit" in err, err[-2000:]
        assert left_in(c) == [], left_in(c)
        for key in ("manifest.json", "rank_00000.bin"):
            body = bytearray(s3.get_object(Bucket=BUCKET,
                                           Key="a/checkpoints/step_00000002/" + key)["Body"].read())
            if key == "rank_00000.bin":
                body[len(body) // 2] ^= 0x40
            s3.put_object(Bucket=BUCKET, Key="a/checkpoints/step_00000012/" + key,
                          Body=bytes(body))
        d = os.path.join(out, "d")
        err = train(common, d, "--from", ROOT + "/step_00000012", expect=5).stderr
        assert ROOT + "/step_00000012/rank_00000.bin" in err, err[-2000:]
        assert left_in(d) == [], left_in(d)
    print("ok: --from s3:// downloaded, verified and resumed; an uncommitted and a corrupt step "
          "refused (exit 5)")


if __name__ == "__main__":
    main()
