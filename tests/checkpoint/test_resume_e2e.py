#!/usr/bin/env python3
"""End to end: exact resume, pre-emption and resharding of `flam train` on real MPI ranks.

Uses the tiny model and the corpus of tests/train/test_train_e2e.py (real shards made with
tarfile from tests/data/photos, a SentencePiece tokenizer). A reference run trains STEPS steps
without interruption. Then:
  - exact resume: the same run is killed with kill -9 (one rank's process, as a node failure
    would) at several points and resumed each time; every loss it logs, before and after each
    kill, equals the reference's bit for bit, and `flam export` of the final checkpoint gives
    bit-identical parameters;
  - SIGUSR1 (Slurm's pre-emption warning) to every rank: exit code 3 after a checkpoint of the
    step it stopped at; the resumed run again matches the reference;
  - SIGUSR1 when the checkpoint cannot be written: exit code 6 (I/O error);
  - resharding 2 -> 3 -> 1 ranks: each resume continues from the previous world size's
    checkpoint and the run finishes with checkpoints written by 3 and then 1 rank;
  - export: OpenFlamingo's full embed_tokens table in which only the two trained rows change,
    and a .pt that loads strictly into OpenFlamingo's module tree (names and shapes).
"""
import json
import os
import signal
import struct
import subprocess
import sys
import tempfile
import time

import torch

SRC = os.environ["FLAM_SOURCE_DIR"]
FLAM = os.environ["FLAM_BIN"]
MPIEXEC = os.environ.get("MPIEXEC") or "mpirun"
sys.path.insert(0, os.path.join(SRC, "tests", "train"))
import test_train_e2e as corpus  # noqa: E402  (make_corpus, make_tokenizer)

STEPS = 12
KILL_AFTER = [3, 8]  # logged steps after which a rank is killed (early; after several checkpoints)


def argv_for(ranks, run, common):
    argv = [MPIEXEC, "-np", str(ranks), "--oversubscribe", "--bind-to", "none", FLAM, "train",
            "--config", os.path.join(SRC, "configs", "tiny.yaml")]
    for s in common + ["run.dir=" + run]:
        argv += ["--set", s]
    return argv


def metrics(run):
    path = os.path.join(run, "metrics.jsonl")
    if not os.path.exists(path):
        return []
    out = []
    with open(path) as f:
        for line in f:
            if line.endswith("\n"):
                out.append(json.loads(line))
    return out


def train(ranks, run, common, expect=0):
    proc = subprocess.run(argv_for(ranks, run, common), capture_output=True, text=True,
                          timeout=300)
    if proc.returncode != expect:
        sys.exit("flam train exited %d, want %d:\n%s\n%s" % (proc.returncode, expect, proc.stdout,
                                                            proc.stderr[-6000:]))
    return proc


def rank_pids(mpirun_pid):
    """The flam processes started by mpirun (its descendants running `flam`)."""
    children = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % pid) as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                cmd = f.read().split(b"\0")
        except OSError:
            continue
        children.setdefault(ppid, []).append((int(pid), cmd))
    found, todo = [], [mpirun_pid]
    while todo:
        for pid, cmd in children.get(todo.pop(), []):
            todo.append(pid)
            if cmd and cmd[0].endswith(b"flam"):
                found.append(pid)
    return sorted(found)


def train_until(ranks, run, common, step, sig, before_signal=None):
    """Starts training, waits until metrics.jsonl shows `step`, calls before_signal(), then sends
    `sig` to one rank (SIGKILL) or to every rank (SIGUSR1). Returns the exit code."""
    seen = len(metrics(run))
    proc = subprocess.Popen(argv_for(ranks, run, common), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        lines = metrics(run)[seen:]
        if lines and lines[-1]["step"] >= step:
            break
        time.sleep(0.05)
    if proc.poll() is not None:
        sys.exit("training ended before step %d:\n%s" % (step, proc.stdout.read()[-6000:]))
    if before_signal:
        before_signal()
    pids = rank_pids(proc.pid)
    if not pids:
        proc.kill()
        sys.exit("no rank processes found under mpirun")
    for pid in (pids[-1:] if sig == signal.SIGKILL else pids):
        os.kill(pid, sig)
    out, _ = proc.communicate(timeout=120)
    return proc.returncode, out


def losses_match(reference, run, what):
    ref = {l["step"]: (l["loss_laion"], l["loss_mmc4"]) for l in reference}
    lines = metrics(run)
    for l in lines:
        got = (l["loss_laion"], l["loss_mmc4"])
        if got != ref[l["step"]]:
            sys.exit("%s: step %d losses %r differ from the uninterrupted run's %r"
                     % (what, l["step"], got, ref[l["step"]]))
    missing = set(ref) - {l["step"] for l in lines}
    if missing:
        sys.exit("%s: steps %s never logged" % (what, sorted(missing)))
    return len(lines)


def exported(checkpoint, out):
    """`flam export` of a run's newest checkpoint or of a step directory: name -> raw bytes."""
    subprocess.run([FLAM, "export", "--checkpoint", checkpoint, "--out", out], check=True,
                   capture_output=True)
    raw = open(out, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    header.pop("__metadata__", None)
    return {k: (v["shape"], raw[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]])
            for k, v in header.items()}


def openflamingo_skeleton(config):
    """OpenFlamingo's module tree for the weights it trains, written from open_flamingo/src/
    helpers.py and flamingo_lm.py (names and shapes only): perceiver (PerceiverResampler without
    frame or media-time embeddings, OpenFlamingo's defaults), lang_encoder.model.embed_tokens
    [V + 3, D], and lang_encoder.gated_cross_attn_layers with a GatedCrossAttentionBlock after
    every n-th decoder layer (None elsewhere)."""
    from torch import nn

    def feed_forward(dim, mult):
        return nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, dim * mult, bias=False), nn.GELU(),
                             nn.Linear(dim * mult, dim, bias=False))

    class Attention(nn.Module):  # PerceiverAttention (norm_media) / MaskedCrossAttention (norm)
        def __init__(self, dim, dim_kv, inner, perceiver):
            super().__init__()
            if perceiver:
                self.norm_media, self.norm_latents = nn.LayerNorm(dim), nn.LayerNorm(dim)
            else:
                self.norm = nn.LayerNorm(dim)
            self.to_q = nn.Linear(dim, inner, bias=False)
            self.to_kv = nn.Linear(dim_kv, 2 * inner, bias=False)
            self.to_out = nn.Linear(inner, dim, bias=False)

    class Perceiver(nn.Module):
        def __init__(self, dim, p):
            super().__init__()
            inner = p["heads"] * p["dim_head"]
            self.latents = nn.Parameter(torch.zeros(p["num_latents"], dim))
            self.layers = nn.ModuleList(
                nn.ModuleList([Attention(dim, dim, inner, True), feed_forward(dim, p["ff_mult"])])
                for _ in range(p["depth"]))
            self.norm = nn.LayerNorm(dim)

    class GatedCrossAttentionBlock(nn.Module):
        def __init__(self, dim, dim_visual, x):
            super().__init__()
            self.attn = Attention(dim, dim_visual, x["heads"] * x["dim_head"], False)
            self.attn_gate = nn.Parameter(torch.zeros(1))
            self.ff = feed_forward(dim, x["ff_mult"])
            self.ff_gate = nn.Parameter(torch.zeros(1))

    m = config["model"]
    vis, lang, every = m["vision"]["width"], m["lang"], m["xattn"]["every_n_layers"]
    root = nn.Module()
    root.perceiver = Perceiver(vis, m["perceiver"])
    root.lang_encoder = nn.Module()
    root.lang_encoder.model = nn.Module()
    root.lang_encoder.model.embed_tokens = nn.Embedding(lang["vocab_size"] + 3, lang["dim"])
    root.lang_encoder.gated_cross_attn_layers = nn.ModuleList(
        GatedCrossAttentionBlock(lang["dim"], vis, m["xattn"]) if (i + 1) % every == 0 else None
        for i in range(lang["layers"]))
    return root


def check_openflamingo_load(run, out, safetensors):
    """`flam export --out X.pt` loads into OpenFlamingo's module tree with load_state_dict
    (strict: every trained weight present, nothing unexpected, every shape right), with the same
    values as `safetensors`, exported() of the same checkpoint."""
    import yaml
    pt = os.path.join(out, "openflamingo.pt")
    subprocess.run([FLAM, "export", "--checkpoint", run, "--out", pt], check=True,
                   capture_output=True)
    skeleton = openflamingo_skeleton(yaml.safe_load(open(os.path.join(run, "config.yaml"))))
    state = torch.load(pt)
    skeleton.load_state_dict(state, strict=True)
    for name, t in state.items():
        assert safetensors[name][1] == t.contiguous().numpy().tobytes(), "%s: .pt != .safetensors" % name
    return len(state)


def check_openflamingo_table(ref_run, out, vocab):
    """The export holds OpenFlamingo's full input table, not our two-row parameter: between two
    checkpoints only rows <|endofchunk|> and <image> (vocab, vocab + 1) of it change."""
    ckpts = os.path.join(ref_run, "checkpoints")
    a = exported(os.path.join(ckpts, "step_%08d" % (STEPS - 1)), os.path.join(out, "a.safetensors"))
    b = exported(os.path.join(ckpts, "step_%08d" % STEPS), os.path.join(out, "b.safetensors"))
    name = "lang_encoder.model.embed_tokens.weight"
    assert "lang_encoder.special_token_embeddings" not in b, sorted(b)
    shape, table_b = b[name]
    assert shape[0] == vocab + 3, shape
    row = shape[1] * 4
    table_a = a[name][1]
    changed = [r for r in range(shape[0])
               if table_a[r * row:(r + 1) * row] != table_b[r * row:(r + 1) * row]]
    assert changed == [vocab, vocab + 1], "rows that changed between steps: %s" % changed


def tiny_run(out, steps, checkpoint_every):
    """Makes the corpus and tokenizer in `out`; returns the --set list of a tiny run on them
    (configs/tiny.yaml, a loss logged every step) and the tokenizer's vocabulary size."""
    laion, mmc4 = corpus.make_corpus(out)
    tokenizer, vocab = corpus.make_tokenizer(out)
    return ["data.tokenizer=" + tokenizer, "model.lang.vocab_size=%d" % vocab,
            "data.laion.shards=[%s]" % ",".join(laion),
            "data.mmc4.shards=[%s]" % ",".join(mmc4),
            "data.mmc4.max_images=2", "data.mmc4.min_image_bytes=0",
            "data.loader.shuffle_buffer=8",
            "train.steps=%d" % steps, "train.log_every=1",
            "train.schedule.warmup_steps=2", "train.optimizer.lr=3.0e-3",
            "train.checkpoint.every_steps=%d" % checkpoint_every,
            "train.checkpoint.keep=2"], vocab


def main():
    with tempfile.TemporaryDirectory() as out:
        common, vocab = tiny_run(out, STEPS, 1)

        ref_run = os.path.join(out, "reference")
        train(2, ref_run, common)
        reference = metrics(ref_run)
        assert [l["step"] for l in reference] == list(range(1, STEPS + 1)), reference
        # A checkpoint every step: each line after the first reports the previous save's stall.
        assert all(l["checkpoint_stall"] > 0 for l in reference[1:]), reference
        ref_params = exported(ref_run, os.path.join(out, "reference.safetensors"))
        check_openflamingo_table(ref_run, out, vocab)
        print("export: OpenFlamingo's embed_tokens [%d + 3, D], only the two trained rows move"
              % vocab)
        n = check_openflamingo_load(ref_run, out, ref_params)
        print("export: %d tensors load strictly into OpenFlamingo's module tree" % n)

        # Exact resume across kill -9 at several points.
        run = os.path.join(out, "killed")
        for step in KILL_AFTER:
            rc, log = train_until(2, run, common, step, signal.SIGKILL)
            if rc == 0:
                sys.exit("a run killed after step %d exited 0:\n%s" % (step, log[-3000:]))
            print("killed after step %d: exit %d" % (step, rc))
        train(2, run, common)
        n = losses_match(reference, run, "kill -9")
        params = exported(run, os.path.join(out, "killed.safetensors"))
        assert params.keys() == ref_params.keys(), "exported tensors differ in names"
        for k in params:
            assert params[k] == ref_params[k], "parameter %s differs after resuming" % k
        print("exact resume: %d logged steps and %d exported tensors identical" % (n, len(params)))

        # SIGUSR1: checkpoint and the requeue exit code, then an identical continuation.
        run = os.path.join(out, "preempted")
        rc, log = train_until(2, run, common, 5, signal.SIGUSR1)
        assert rc == 3, "SIGUSR1: exit %d, want 3 (requeue)\n%s" % (rc, log[-3000:])
        stopped = metrics(run)[-1]["step"]
        ckpt = os.path.join(run, "checkpoints", "step_%08d" % stopped)
        assert os.path.exists(os.path.join(ckpt, "manifest.json")), "no checkpoint at " + ckpt
        train(2, run, common)
        losses_match(reference, run, "SIGUSR1")
        print("SIGUSR1 at step %d: exit 3, checkpoint written, continuation identical" % stopped)

        # SIGUSR1 when that checkpoint cannot be written (checkpoints/ replaced by a file, which
        # fails even for root): exit 6 (I/O error), the failure logged, nothing half-written.
        run = os.path.join(out, "preempted_nodisk")
        ckpts = os.path.join(run, "checkpoints")

        def break_checkpoints():
            os.rename(ckpts, ckpts + ".moved")
            open(ckpts, "w").close()
        rc, log = train_until(2, run, [c for c in common if "every_steps" not in c]
                              + ["train.checkpoint.every_steps=1000"], 3, signal.SIGUSR1,
                              break_checkpoints)
        assert rc == 6, "SIGUSR1 with no writable checkpoint: exit %d, want 6\n%s" % (rc, log[-3000:])
        assert "checkpoint of step" in log and "failed" in log, log[-3000:]
        print("SIGUSR1 with checkpoints/ unwritable: exit 6, failure logged")

        # Resharding 2 -> 3 -> 1.
        run = os.path.join(out, "reshard")
        train(2, run, [c for c in common if not c.startswith("train.steps")] + ["train.steps=4"])
        log3 = train(3, run, [c for c in common if not c.startswith("train.steps")]
                     + ["train.steps=8"])
        train(1, run, common)
        steps = [l["step"] for l in metrics(run)]
        assert steps == list(range(1, STEPS + 1)), "steps logged: %s" % steps
        ckpts = os.path.join(run, "checkpoints")
        sizes = {d: json.load(open(os.path.join(ckpts, d, "manifest.json")))["world_size"]
                 for d in os.listdir(ckpts) if d.startswith("step_") and not d.endswith(".tmp")}
        assert sizes.get("step_%08d" % STEPS) == 1, sizes
        assert "resharding from 2 to 3" in log3.stderr + log3.stdout, "no resharding logged"
        print("resharding 2 -> 3 -> 1: steps 1..%d, checkpoints %s" % (STEPS, sizes))
    print("ok")


if __name__ == "__main__":
    main()
