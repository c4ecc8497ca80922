#!/usr/bin/env python3
"""Behaviour pin: a short `flam train` of configs/tiny.yaml (fp32, seed 1234, one rank) prints the
same losses as the stored reference, tests/train/data/tiny_fp32_losses.json, captured from the
code before the structure refactor of issue #15.

Two runs on the corpus and tokenizer of test_train_e2e.py (same generator, same seeds):
  - "straight": 12 steps, an async checkpoint every 4 steps;
  - "resumed": 6 steps (ending in a sync checkpoint), then the same run directory to 12 steps,
    which resumes from that checkpoint.
Each run's (step, loss_laion, loss_mmc4) at every step must equal the reference's to 1e-6
relative (room for a different CPU's float kernels, far below what any change of behaviour
moves after a few steps at lr 3e-3).

  test_train_reference.py            compare with the stored reference
  test_train_reference.py --capture  (re)write the reference from the current build
"""
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_train_e2e import make_corpus, make_tokenizer  # noqa: E402

SRC = os.environ["FLAM_SOURCE_DIR"]
FLAM = os.environ["FLAM_BIN"]
MPIEXEC = os.environ.get("MPIEXEC") or "mpirun"
REFERENCE = os.path.join(SRC, "tests", "train", "data", "tiny_fp32_losses.json")
RTOL = 1e-6


def train(out, run, steps, laion, mmc4, tokenizer, vocab):
    sets = ["run.dir=" + run, "run.seed=1234", "data.tokenizer=" + tokenizer,
            "model.lang.vocab_size=%d" % vocab,
            "data.laion.shards=[%s]" % ",".join(laion),
            "data.mmc4.shards=[%s]" % ",".join(mmc4),
            "data.mmc4.max_images=2", "data.mmc4.min_image_bytes=0",
            "data.loader.shuffle_buffer=8", "train.precision=fp32",
            "train.steps=%d" % steps, "train.log_every=1", "train.schedule.warmup_steps=2",
            "train.optimizer.lr=3.0e-3", "train.checkpoint.every_steps=4",
            "train.checkpoint.keep=10"]
    argv = [MPIEXEC, "-np", "1", "--oversubscribe", "--bind-to", "none", FLAM, "train",
            "--config", os.path.join(SRC, "configs", "tiny.yaml")]
    for s in sets:
        argv += ["--set", s]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=240)
    if proc.returncode != 0:
        sys.exit("flam train failed (%d):\n%s\n%s" % (proc.returncode, proc.stdout,
                                                      proc.stderr[-6000:]))


def losses(run):
    with open(os.path.join(run, "metrics.jsonl")) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    return [[r["step"], r["loss_laion"], r["loss_mmc4"]] for r in rows]


def close(a, b):
    return abs(a - b) <= RTOL * max(abs(a), abs(b))


def main():
    capture = "--capture" in sys.argv[1:]
    keep = os.environ.get("FLAM_KEEP_TMP")
    with tempfile.TemporaryDirectory(dir=keep) as out:
        laion, mmc4 = make_corpus(out)
        tokenizer, vocab = make_tokenizer(out)
        got = {}
        straight = os.path.join(out, "straight")
        train(out, straight, 12, laion, mmc4, tokenizer, vocab)
        got["straight"] = losses(straight)
        resumed = os.path.join(out, "resumed")
        train(out, resumed, 6, laion, mmc4, tokenizer, vocab)
        train(out, resumed, 12, laion, mmc4, tokenizer, vocab)
        got["resumed"] = losses(resumed)
    if capture:
        os.makedirs(os.path.dirname(REFERENCE), exist_ok=True)
        with open(REFERENCE, "w") as f:
            json.dump(got, f, indent=1)
            f.write("\n")
        print("wrote", REFERENCE)
        return
    with open(REFERENCE) as f:
        want = json.load(f)
    for name in ("straight", "resumed"):
        assert [r[0] for r in got[name]] == [r[0] for r in want[name]], \
            "%s: steps %s, reference %s" % (name, got[name], want[name])
        for g, w in zip(got[name], want[name]):
            assert close(g[1], w[1]) and close(g[2], w[2]), \
                "%s: step %d losses %s, reference %s" % (name, g[0], g[1:], w[1:])
        print("%s: %d steps match the reference" % (name, len(got[name])))
    print("ok")


if __name__ == "__main__":
    main()
