"""`train.eval` end to end: `flam train` on 2 MPI ranks evaluates COCO-style captioning at 0 and
2 shots at step 0 and every 2 steps; the scores land in metrics.jsonl (that step's line), in the
TensorBoard events and on `flam status --plot`'s SVG. Interrupted runs give the same evaluation
lines as the uninterrupted one:
  - kill -9 of one rank after step 3, then a resume: every evaluation line, before and after the
    kill, equals the reference's (the steps redone after the kill evaluate again, identically);
  - a run of 4 steps (its final checkpoint holds the evaluation of step 4), then the same run
    continued to 6 steps: step 4 is not evaluated again and step 6 is, so every evaluation step
    appears exactly once, with the reference's scores.

Uses the corpus and tokenizer of tests/train/test_train_e2e.py (shards from tests/data/photos) and
a Karpathy-format caption file over the same photos (3 train images as demos, 3 test queries).
"""
import glob
import json
import os
import signal
import subprocess
import sys
import tempfile

SRC = os.environ["FLAM_SOURCE_DIR"]
FLAM = os.environ["FLAM_BIN"]
sys.path.insert(0, os.path.join(SRC, "tests", "train"))
sys.path.insert(0, os.path.join(SRC, "tests", "checkpoint"))
import test_train_e2e as corpus  # noqa: E402  (make_corpus, make_tokenizer)
import test_resume_e2e as resume  # noqa: E402  (argv_for, metrics, train_until)

STEPS = 6
EVERY = 2
KEYS = ["eval_coco_0shot", "eval_coco_2shot"]


def karpathy(out):
    photos = sorted(p for p in os.listdir(corpus.PHOTOS) if p.endswith((".png", ".jpg")))
    images = []
    for i, photo in enumerate(photos):
        subject = corpus.SUBJECTS[photo.split(".")[0]]
        images.append({"filepath": "", "filename": photo, "cocoid": i + 1,
                       "split": "train" if i % 2 == 0 else "test",
                       "sentences": [{"raw": "a photo of %s" % subject},
                                     {"raw": "an image of %s." % subject}]})
    path = os.path.join(out, "karpathy.json")
    with open(path, "w") as f:
        json.dump({"images": images}, f)
    return path


def eval_lines(run):
    return [l for l in resume.metrics(run) if any(k in l for k in KEYS)]


def scores(line):
    return tuple(line[k] for k in KEYS)


def main():
    keep = os.environ.get("FLAM_KEEP_TMP")
    with tempfile.TemporaryDirectory(dir=keep) as out:
        laion, mmc4 = corpus.make_corpus(out)
        tokenizer, vocab = corpus.make_tokenizer(out)
        common = ["data.tokenizer=" + tokenizer, "model.lang.vocab_size=%d" % vocab,
                  "data.laion.shards=[%s]" % ",".join(laion),
                  "data.mmc4.shards=[%s]" % ",".join(mmc4),
                  "data.mmc4.max_images=2", "data.mmc4.min_image_bytes=0",
                  "data.loader.shuffle_buffer=8", "train.steps=%d" % STEPS, "train.log_every=1",
                  "train.schedule.warmup_steps=2", "train.optimizer.lr=3.0e-3",
                  "train.checkpoint.every_steps=2", "train.checkpoint.async=false",
                  "train.eval.every=%d" % EVERY, "train.eval.tasks=[coco]",
                  "train.eval.shots=[0,2]", "train.eval.num_samples=3",
                  "eval.karpathy_json=" + karpathy(out), "eval.image_dir=" + corpus.PHOTOS,
                  "eval.query_set_size=3", "eval.batch_size=2", "eval.num_beams=1",
                  "eval.max_new_tokens=4"]

        ref_run = os.path.join(out, "ref")
        resume.train(2, ref_run, common)
        ref = eval_lines(ref_run)
        steps = [l["step"] for l in ref]
        assert steps == list(range(0, STEPS + 1, EVERY)), "evaluated at steps %s" % steps
        for l in ref:
            assert l["eval_seconds"] > 0, l
            assert all(0.0 <= v for v in scores(l)), l
        assert "loss_laion" in ref[1] and "loss_laion" not in ref[0], (ref[0], ref[1])
        assert len(resume.metrics(ref_run)) == STEPS + 1, "one line per step plus step 0"
        by_step = {l["step"]: scores(l) for l in ref}
        print("reference evaluation: %s" % by_step)
        events = b"".join(open(p, "rb").read()
                          for p in glob.glob(os.path.join(ref_run, "events.out.tfevents.*")))
        for key in KEYS + ["eval_seconds"]:
            assert key.encode() in events, "TensorBoard events lack " + key
        svg = os.path.join(out, "ref.svg")
        with open(os.path.join(ref_run, "state.json"), "w") as f:  # `flam submit` writes it
            json.dump({"version": 1, "status": "completed", "jobs": []}, f)
        st = subprocess.run([FLAM, "status", ref_run, "--plot", svg], capture_output=True,
                            text=True)
        assert st.returncode == 0, "flam status: %d\n%s" % (st.returncode, st.stderr)
        text = open(svg).read()
        for name in ["evaluation score", "coco 0-shot", "coco 2-shot"]:
            assert name in text, "the run plot lacks " + name

        # kill -9 of one rank once step 3 is logged, then a resume from the step-2 checkpoint.
        killed = os.path.join(out, "killed")
        code, log = resume.train_until(2, killed, common, 3, signal.SIGKILL)
        assert code != 0, "a killed rank should fail the job:\n" + log[-3000:]
        resume.train(2, killed, common)
        lines = eval_lines(killed)
        for l in lines:
            assert scores(l) == by_step[l["step"]], \
                "kill/resume: step %d scores %r, uninterrupted %r" % (l["step"], scores(l),
                                                                      by_step[l["step"]])
        assert sorted(set(l["step"] for l in lines)) == sorted(by_step), lines
        print("kill -9 and resume: %d evaluation lines equal the reference's" % len(lines))

        # 4 steps, then continued to 6: the evaluation of step 4 is in the checkpoint.
        split = os.path.join(out, "split")
        resume.train(2, split, common + ["train.steps=4"])
        resume.train(2, split, common)
        lines = eval_lines(split)
        assert [l["step"] for l in lines] == sorted(by_step), \
            "resumed at step 4: evaluated at steps %s" % [l["step"] for l in lines]
        for l in lines:
            assert scores(l) == by_step[l["step"]], (l, by_step)
        print("stop at 4 and continue to %d: each evaluation once, equal to the reference" % STEPS)
    print("ok")


if __name__ == "__main__":
    main()
