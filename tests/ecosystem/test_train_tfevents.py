#!/usr/bin/env python3
"""`flam train` writes TensorBoard event files beside metrics.jsonl: TensorBoard's own
EventAccumulator reads, for every metrics line, the same scalars at the same step (corpus and
tokenizer made as tests/train/test_train_e2e.py makes them)."""
import json
import os
import subprocess
import sys
import tempfile

from tensorboard.backend.event_processing import event_accumulator

sys.path.insert(0, os.path.join(os.environ["FLAM_SOURCE_DIR"], "tests", "train"))
from test_train_e2e import FLAM, SRC, make_corpus, make_tokenizer  # noqa: E402


def main():
    with tempfile.TemporaryDirectory() as out:
        laion, mmc4 = make_corpus(out)
        tokenizer, vocab = make_tokenizer(out)
        run = os.path.join(out, "run")
        sets = ["run.dir=" + run, "data.tokenizer=" + tokenizer,
                "model.lang.vocab_size=%d" % vocab,
                "data.laion.shards=[%s]" % ",".join(laion),
                "data.mmc4.shards=[%s]" % ",".join(mmc4),
                "data.mmc4.max_images=2", "data.mmc4.min_image_bytes=0",
                "train.steps=6", "train.log_every=2", "train.checkpoint.every_steps=0"]
        argv = [FLAM, "train", "--config", os.path.join(SRC, "configs", "tiny.yaml")]
        for s in sets:
            argv += ["--set", s]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=240)
        if proc.returncode != 0:
            sys.exit("flam train failed (%d):\n%s" % (proc.returncode, proc.stderr[-6000:]))
        lines = [json.loads(l) for l in open(os.path.join(run, "metrics.jsonl"))]
        events = [f for f in os.listdir(run) if f.startswith("events.out.tfevents.")]
        assert len(events) == 1, os.listdir(run)
        acc = event_accumulator.EventAccumulator(run, size_guidance={"scalars": 0})
        acc.Reload()
        tags = acc.Tags()["scalars"]
        for name in ["loss_laion", "loss_mmc4", "lr", "grad_norm", "images_per_s", "data_wait",
                     "checkpoint_stall", "memory/master_bytes"]:
            assert name in tags, "no %s among %s" % (name, tags)
            got = [(e.step, e.value) for e in acc.Scalars(name)]
            outer, _, inner = name.partition("/")
            want = [(l["step"], l[outer][inner] if inner else l[outer]) for l in lines]
            assert [s for s, _ in got] == [s for s, _ in want], (name, got, want)
            for (_, g), (_, w) in zip(got, want):
                assert abs(g - w) <= 1e-6 * max(1.0, abs(w)), (name, got, want)
        print("ok: %d steps x %d scalars in %s" % (len(lines), len(tags), events[0]))


if __name__ == "__main__":
    main()
