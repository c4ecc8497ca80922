#!/usr/bin/env python3
"""`flam train --from s3://bucket/run/checkpoints/step_N` (run under with_s3.py), on one rank with
configs/tiny.yaml on the corpus and tokenizer of tests/train/test_train_e2e.py:
  1. run A of 4 steps checkpoints into the bucket (train.checkpoint.dir=s3://..., every 2 steps);
  2. a new run B --from A's step 2 in the bucket: the step is downloaded into B/checkpoints/
     (manifest and both rank files' bytes equal the bucket's), B resumes at step 2 and its
     losses at steps 3 and 4 equal A's bit for bit;
  3. `flam export` and `flam eval` of A's newest step named by the bucket's checkpoints prefix
     give the same safetensors bytes and the same results JSON as of its copy on local disk, and
     leave no temporary download behind;
  4. --from a step in the bucket without manifest (a save that did not commit): exit 5 naming it;
     --from a committed step whose rank file has a flipped byte: exit 5 naming that s3:// object;
     neither leaves anything in its run's checkpoints/ (no step, no .tmp); `flam export` of the
     flipped step fails naming the same object.
"""
import glob
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
SCRATCH = tempfile.mkdtemp(prefix="flam_s3_from_tmpdir.")  # the commands' TMPDIR
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


def flam(*args, expect=0):
    proc = subprocess.run([FLAM, *args], capture_output=True, text=True, timeout=240,
                          env=dict(os.environ, TMPDIR=SCRATCH))
    if proc.returncode != expect:
        sys.exit("FAIL: flam %s exited %d, want %d:\n%s" %
                 (" ".join(args), proc.returncode, expect, proc.stderr[-4000:]))
    return proc


def eval_sets(common, out):
    """flam eval's --set list: COCO-style captions of three photos (two as demos)."""
    names = ["astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg"]
    images = [{"filepath": "", "filename": n, "cocoid": i + 1,
               "split": "train" if i < 2 else "test",
               "sentences": [{"raw": "a photo of a " + n.split(".")[0]}]}
              for i, n in enumerate(names)]
    with open(os.path.join(out, "karpathy.json"), "w") as f:
        json.dump({"images": images}, f)
    sets = common + ["eval.karpathy_json=" + os.path.join(out, "karpathy.json"),
                     "eval.image_dir=" + os.path.join(SRC, "tests", "data", "photos"),
                     "eval.batch_size=2", "eval.max_new_tokens=4", "eval.num_beams=1",
                     "eval.query_set_size=2"]
    return [a for s in sets for a in ("--set", s)]


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

        print("== 3. export and eval of the bucket's newest step, against its local copy")
        step4 = os.path.join(out, "step4", "step_00000004")
        os.makedirs(step4)
        for name in names:
            s3.download_file(BUCKET, "a/checkpoints/step_00000004/" + name,
                             os.path.join(step4, name))
        config = os.path.join(a, "config.yaml")
        flam("export", "--checkpoint", ROOT, "--config", config,
             "--out", os.path.join(out, "s3.safetensors"))
        flam("export", "--checkpoint", step4, "--config", config,
             "--out", os.path.join(out, "local.safetensors"))
        with open(os.path.join(out, "s3.safetensors"), "rb") as f, \
                open(os.path.join(out, "local.safetensors"), "rb") as g:
            assert f.read() == g.read(), "the bucket's export differs from the local copy's"
        tiny = os.path.join(SRC, "configs", "tiny.yaml")
        reports = []
        for source in (ROOT + "/step_00000004", step4):
            result = os.path.join(out, "eval_%d.json" % len(reports))
            flam("eval", "--config", tiny, "--checkpoint", source, "--task", "coco", "--shots",
                 "0,1", "--trials", "1", "--out", result, *eval_sets(common, out))
            with open(result) as f:
                reports.append(json.load(f))
        assert reports[0] == reports[1], "flam eval of the bucket's step differs from the local"
        assert len(reports[0]["results"]) == 2, reports[0]
        left = glob.glob(os.path.join(SCRATCH, "*"))
        assert left == [], "temporary downloads left behind: %s" % left

        print("== 4. a save that did not commit, and a flipped byte")
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
        err = flam("export", "--checkpoint", ROOT + "/step_00000012",
                   "--out", os.path.join(out, "bad.safetensors"), expect=5).stderr
        assert ROOT + "/step_00000012/rank_00000.bin" in err and SCRATCH not in err, err[-2000:]
    os.rmdir(SCRATCH)
    print("ok: --from s3:// downloaded, verified and resumed; export and eval of a bucket's step "
          "equal the local copy's; an uncommitted and a corrupt step refused (exit 5)")


if __name__ == "__main__":
    main()
