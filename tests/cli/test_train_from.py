#!/usr/bin/env python3
"""flam train over an existing run, on one rank (configs/tiny.yaml on the corpus and tokenizer
of tests/train/test_train_e2e.py):
  1. a reference run A of 6 steps (checkpoints at 2, 4, 6);
  2. --from A's step 4 into a new run B: B resumes at step 4 (weights, optimizer, loader, RNG)
     and its losses at steps 5 and 6 equal A's bit for bit; --from into a run that holds
     checkpoints, or from a directory that is not a committed checkpoint, exits 2 naming it;
  3. A again with a changed train.optimizer.lr: exit 2 listing "key: old -> new" for every
     changed key, nothing written; slurm.* and run.log_level changes are let through;
     with --allow-config-change the run continues to step 8 and RUN/history.jsonl records the
     change;
  4. flam status of A (no state.json: started without flam submit) exits 0 and shows the step
     and the samples dropped.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

SRC = os.environ["FLAM_SOURCE_DIR"]
FLAM = os.environ["FLAM_BIN"]
sys.path.insert(0, os.path.join(SRC, "tests", "train"))
import test_train_e2e as corpus  # noqa: E402  (make_corpus, make_tokenizer)


def fail(message):
    print("FAIL: " + message)
    sys.exit(1)


def metrics(run):
    with open(os.path.join(run, "metrics.jsonl")) as f:
        return [json.loads(line) for line in f if line.endswith("\n")]


def train(common, run, *extra, expect=0):
    argv = [FLAM, "train", "--config", os.path.join(SRC, "configs", "tiny.yaml")]
    for s in common + ["run.dir=" + run]:
        argv += ["--set", s]
    proc = subprocess.run(argv + list(extra), capture_output=True, text=True, timeout=240)
    if proc.returncode != expect:
        fail("flam train %s exited %d, want %d:\n%s" % (" ".join(extra), proc.returncode, expect,
                                                       proc.stderr[-4000:]))
    return proc


def main():
    tmp = tempfile.mkdtemp(prefix="flam_train_from.")
    try:
        laion, mmc4 = corpus.make_corpus(tmp)
        tokenizer, vocab = corpus.make_tokenizer(tmp)
        common = ["data.tokenizer=" + tokenizer, "model.lang.vocab_size=%d" % vocab,
                  "data.laion.shards=[%s]" % ",".join(laion),
                  "data.mmc4.shards=[%s]" % ",".join(mmc4), "data.mmc4.max_images=2",
                  "data.mmc4.min_image_bytes=0", "data.loader.shuffle_buffer=8",
                  "train.steps=6", "train.log_every=1", "train.schedule.warmup_steps=2",
                  "train.optimizer.lr=3.0e-3", "train.checkpoint.every_steps=2",
                  "train.checkpoint.keep=3", "train.eval.every=0"]
        a, b = os.path.join(tmp, "a"), os.path.join(tmp, "b")

        print("== 1. reference run A")
        train(common, a)
        ref = {m["step"]: (m["loss_laion"], m["loss_mmc4"]) for m in metrics(a)}
        if sorted(ref) != list(range(1, 7)):
            fail("A logged steps %s" % sorted(ref))

        print("== 2. --from A's step 4 into B")
        step4 = os.path.join(a, "checkpoints", "step_00000004")
        out = train(common, b, "--from", step4)
        got = {m["step"]: (m["loss_laion"], m["loss_mmc4"]) for m in metrics(b)}
        if sorted(got) != [5, 6]:
            fail("B logged steps %s, not 5 and 6 (resumed at 4)" % sorted(got))
        for step in (5, 6):
            if got[step] != ref[step]:
                fail("B's step %d losses %r differ from A's %r" % (step, got[step], ref[step]))
        if "--from" not in out.stderr:
            fail("no --from line in the log:\n" + out.stderr[-2000:])
        err = train(common, b, "--from", step4, expect=2).stderr
        if "already holds checkpoints" not in err or "resumes from its own step 6" not in err:
            fail("--from into a run with checkpoints:\n" + err)
        err = train(common, os.path.join(tmp, "c"), "--from", a, expect=2).stderr
        if "is not a committed checkpoint" not in err or a not in err:
            fail("--from a run directory:\n" + err)
        if os.path.exists(os.path.join(tmp, "c")):
            fail("a refused --from created the run directory")

        print("== 3. a changed config over a started run")
        before = open(os.path.join(a, "config.yaml")).read()
        changed = common + ["train.optimizer.lr=1.0e-3", "train.steps=8"]
        err = train(changed, a, expect=2).stderr
        for needle in ("differs from the one run", "in 1 key(s)",
                       "train.optimizer.lr: 0.003 -> 0.001", "--allow-config-change"):
            if needle not in err:
                fail("refusal lacks %r:\n%s" % (needle, err))
        if "train.steps" in err:  # extending a run is exempt
            fail("the refusal lists train.steps:\n" + err)
        if open(os.path.join(a, "config.yaml")).read() != before:
            fail("a refused run rewrote config.yaml")
        if os.path.exists(os.path.join(a, "history.jsonl")):
            fail("a refused run wrote history.jsonl")
        # Exempt keys: resources, display and run length, which cannot change what a step does.
        train(common + ["slurm.nodes=4", "run.log_level=warn"], a)
        train(changed, a, "--allow-config-change")
        steps = [m["step"] for m in metrics(a)]
        if steps[-1] != 8:
            fail("after --allow-config-change A logged steps %s" % steps)
        with open(os.path.join(a, "history.jsonl")) as f:
            history = [json.loads(line) for line in f]
        if len(history) != 1 or history[0]["command"] != "train":
            fail("history.jsonl: %r" % history)
        keys = {(c["key"], c["old"], c["new"]) for c in history[0]["changes"]}
        if keys != {("train.optimizer.lr", "0.003", "0.001")}:
            fail("history.jsonl changes: %r" % keys)

        print("== 4. flam status of a run without state.json")
        st = subprocess.run([FLAM, "status", a], capture_output=True, text=True, timeout=60)
        if st.returncode != 0:
            fail("status exited %d:\n%s" % (st.returncode, st.stderr))
        for needle in ("local", "step 8 of 8", "samples dropped:", "newest checkpoint: step 8"):
            if needle not in st.stdout:
                fail("status lacks %r:\n%s" % (needle, st.stdout))
        d = json.loads(subprocess.run([FLAM, "status", a, "--json"], capture_output=True,
                                      text=True, timeout=60, check=True).stdout)
        if d["status"] != "local" or d["step"] != 8 or d["supervised"] or "dropped_total" not in d:
            fail("status --json: %r" % d)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
