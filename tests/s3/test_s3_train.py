#!/usr/bin/env python3
"""`flam train` on 2 real MPI ranks with its shards, tokenizer, weights and checkpoints in s3://
(run under with_s3.py): the corpus of tests/train/test_train_e2e.py, its SentencePiece model and
an OpenFlamingo-HF weight folder (`flam export --format hf-flamingo` of a 2-step run with another
seed) are uploaded to the bucket. The run reads the LAION shards through a brace pattern and the
MMC4 ones through a .txt shard list stored in the bucket, data.tokenizer and
model.weights.hf_flamingo are s3:// names, and train.checkpoint.dir=s3://...; it stops after 4
steps and a second `flam train` resumes from the bucket's last committed checkpoint to step 8.
The same run on local disk (the same files as local paths), uninterrupted, gives the same losses
at every logged step and step 8's rank files hold the same bytes in every section (the loader
states' shards_hash aside: it hashes the shard names, s3:// URLs here and paths there).
`flam inspect checkpoint` then reads the bucket's checkpoints: the newest, a named step, a save
without manifest (exit 5) and a committed step with a flipped byte (exit 5, naming the object).
"""
import json
import os
import struct
import subprocess
import sys
import tempfile

import boto3

SRC = os.environ["FLAM_SOURCE_DIR"]
FLAM = os.environ["FLAM_BIN"]
MPIEXEC = os.environ.get("MPIEXEC") or "mpirun"
sys.path.insert(0, os.path.join(SRC, "tests", "train"))
import test_train_e2e as corpus  # noqa: E402  (make_corpus, make_tokenizer)

BUCKET = "flam-test"


def flam(*args):
    return subprocess.run([FLAM] + list(args), capture_output=True, text=True, timeout=120)


def train(run, sets, steps):
    argv = [MPIEXEC, "-np", "2", "--oversubscribe", "--bind-to", "none", FLAM, "train",
            "--config", os.path.join(SRC, "configs", "tiny.yaml")]
    for s in sets + ["run.dir=" + run, "train.steps=%d" % steps]:
        argv += ["--set", s]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=240)
    if proc.returncode != 0:
        sys.exit("flam train failed (%d):\n%s\n%s" % (proc.returncode, proc.stdout,
                                                      proc.stderr[-6000:]))
    return proc.stdout + proc.stderr


def sections(blob):
    """A rank file's sections by name (train/checkpoint/rank_file.h)."""
    assert blob[:8] == b"FLAMCKPT", blob[:8]
    _, count, _ = struct.unpack_from("<IIQ", blob, 8)
    pos, out = 24, {}
    for _ in range(count):
        (n,) = struct.unpack_from("<I", blob, pos)
        name = blob[pos + 4:pos + 4 + n].decode()
        offset, size, _ = struct.unpack_from("<QQI", blob, pos + 4 + n)
        out[name] = blob[offset:offset + size]
        pos += 4 + n + 20
    return out


def same_section(a, b):
    """Equal bytes; loader states (JSON lines) equal but for shards_hash, the hash of the shard
    names, which are s3:// URLs in one run and paths in the other."""
    if a == b:
        return True
    try:
        rows = [[json.loads(line) for line in x.decode().splitlines() if line] for x in (a, b)]
    except (UnicodeDecodeError, ValueError):
        return False
    for row in rows[0] + rows[1]:
        row.pop("shards_hash", None)
    return rows[0] == rows[1]


def losses(run):
    with open(os.path.join(run, "metrics.jsonl")) as f:
        return {r["step"]: (r["loss_laion"], r["loss_mmc4"]) for r in map(json.loads, f)}


def main():
    s3 = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
    with tempfile.TemporaryDirectory(dir=os.environ.get("FLAM_KEEP_TMP")) as out:
        laion, mmc4 = corpus.make_corpus(out)
        tokenizer, vocab = corpus.make_tokenizer(out)
        for path in laion + mmc4:
            s3.upload_file(path, BUCKET, "shards/" + os.path.basename(path))
        s3.put_object(Bucket=BUCKET, Key="lists/mmc4.txt",
                      Body=b"# MMC4 shards\ns3://%s/shards/mmc4-{00000..00001}.tar\n" %
                      BUCKET.encode())
        common = ["model.lang.vocab_size=%d" % vocab,
                  "data.mmc4.max_images=2", "data.mmc4.min_image_bytes=0",
                  "data.loader.shuffle_buffer=8", "train.log_every=1",
                  "train.schedule.warmup_steps=2", "train.checkpoint.every_steps=2",
                  "train.checkpoint.async=false"]
        local = common + ["data.laion.shards=[%s]" % ",".join(laion),
                          "data.mmc4.shards=[%s]" % ",".join(mmc4), "data.tokenizer=" + tokenizer]

        # Pretrained weights for both runs: every weight of a 2-step run with another seed.
        producer = os.path.join(out, "producer")
        train(producer, local + ["run.seed=7"], 2)
        hf = os.path.join(out, "hf")
        proc = flam("export", "--checkpoint",
                    os.path.join(producer, "checkpoints", "step_00000002"),
                    "--format", "hf-flamingo", "--out", hf)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        for name in sorted(os.listdir(hf)):
            s3.upload_file(os.path.join(hf, name), BUCKET, "weights/hf/" + name)
        s3.upload_file(tokenizer, BUCKET, "weights/tok.model")
        local.append("model.weights.hf_flamingo=" + hf)
        remote = common + [
            "data.laion.shards=[s3://%s/shards/laion-{00000..00001}.tar]" % BUCKET,
            "data.mmc4.shards=[s3://%s/lists/mmc4.txt]" % BUCKET,
            "data.tokenizer=s3://%s/weights/tok.model" % BUCKET,
            "model.weights.hf_flamingo=s3://%s/weights/hf/" % BUCKET,
            "train.checkpoint.dir=s3://%s/run/checkpoints" % BUCKET]

        disk = os.path.join(out, "disk")
        train(disk, local, 8)
        bucket_run = os.path.join(out, "bucket")
        train(bucket_run, remote, 4)
        log = train(bucket_run, remote, 8)
        assert "resumed from s3://%s/run/checkpoints/step_00000004" % BUCKET in log, log[-3000:]

        want, got = losses(disk), losses(bucket_run)
        assert sorted(got) == list(range(1, 9)), sorted(got)
        assert got == want, "losses differ:\n%s\n%s" % (got, want)

        local_step = os.path.join(disk, "checkpoints", "step_00000008")
        ranks = sorted(f for f in os.listdir(local_step) if f.startswith("rank_"))
        assert len(ranks) == 2, ranks
        for name in ranks:
            key = "run/checkpoints/step_00000008/" + name
            body = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
            with open(os.path.join(local_step, name), "rb") as f:
                local_body = f.read()
            remote_sections, local_sections = sections(body), sections(local_body)
            assert sorted(remote_sections) == sorted(local_sections), key
            for section, data in local_sections.items():
                assert same_section(remote_sections[section], data), \
                    "s3://%s/%s: section %s differs from the local run's" % (BUCKET, key, section)
        latest = s3.get_object(Bucket=BUCKET, Key="run/checkpoints/latest")["Body"].read()
        assert latest == b"step_00000008\n", latest
        inspect_bucket(s3)
    print("ok: shards, tokenizer, weights and checkpoints in s3, resumed at step 4, rank files "
          "of step 8 identical, bucket checkpoints inspected")


def inspect_bucket(s3):
    root = "s3://%s/run/checkpoints" % BUCKET
    proc = flam("inspect", "checkpoint", root)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "checkpoint  %s/step_00000008\n" % root in proc.stdout, proc.stdout
    assert "checkpoints in %s: 4 6 8" % root in proc.stdout, proc.stdout
    assert "resumable   yes" in proc.stdout, proc.stdout
    proc = flam("inspect", "checkpoint", root + "/step_00000006", "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    j = json.loads(proc.stdout)
    assert j["path"] == root + "/step_00000006" and j["step"] == 6 and j["resumable"], j

    # A save that did not commit (no manifest) is not a checkpoint.
    s3.put_object(Bucket=BUCKET, Key="run/checkpoints/step_00000010/rank_00000.bin", Body=b"x")
    proc = flam("inspect", "checkpoint", root + "/step_00000010")
    assert proc.returncode == 5, (proc.returncode, proc.stdout, proc.stderr)
    assert "did not commit" in proc.stderr and root + "/step_00000010" in proc.stderr, proc.stderr
    # A committed step with a flipped byte: not resumable, the message names the object.
    for key in ("manifest.json", "rank_00000.bin", "rank_00001.bin"):
        body = s3.get_object(Bucket=BUCKET, Key="run/checkpoints/step_00000008/" + key)
        body = bytearray(body["Body"].read())
        if key == "rank_00001.bin":
            body[len(body) // 2] ^= 0x40
        s3.put_object(Bucket=BUCKET, Key="run/checkpoints/step_00000012/" + key, Body=bytes(body))
    proc = flam("inspect", "checkpoint", root)
    assert proc.returncode == 5, (proc.returncode, proc.stdout, proc.stderr)
    assert "checkpoint  %s/step_00000012\n" % root in proc.stdout, proc.stdout
    assert "resumable   no: " in proc.stdout, proc.stdout
    assert root + "/step_00000012/rank_00001.bin" in proc.stdout, proc.stdout
    assert "/tmp/flam-inspect-" not in proc.stdout, proc.stdout


if __name__ == "__main__":
    main()
