"""Every `build/flam ...` command line of README.md (its ```sh blocks and its inline `code`)
names a real subcommand and only options that subcommand's parser accepts, with a value where the
option takes one: the README cannot drift from the command line. The tables come from the binary
itself (`flam SUB [TARGET] --flam-describe-options`, the parser's own Args table).

The ```sh blocks marked `<!-- runnable -->` (on the line before the fence) also run, as written,
under `bash -euo pipefail` in a scratch directory where `build/` is the tested binary's folder,
`configs/`, `scripts/` and `tests/` are the source tree's and `.venv/` is this Python's
environment; each must exit 0, and what it leaves running in the background is killed after it.

The blocks marked `<!-- runnable slurm -->` run only with --slurm (ctest's test_readme_toy, which
takes the local Slurm's lock), and then only they: the README's toy walk-through on a one-node
Slurm (scripts/slurm-local.sh, started here first, exit 77 saying SKIP when it cannot start, and
stopped at the end). After them, what it left in runs/toy/: its three runs completed; each shard
run's summary.json counts successes and its output holds the shards `flam shard` names
({shard:05d}.tar, as configs/of-9b.yaml lists them) with a sizes.json entry each; webdataset reads
every sample of them (LAION: image of the json's size, caption, the parquet columns kept; MMC4:
documents whose images decode at their recorded sizes, one similarity row each); the training run
logged both datasets' losses up to its train.steps; run.svg is an SVG. FLAM_SLURM_TEST_DIR and the
ports as in tests/orchestrator/test_slurm_orchestrator.py; FLAM_KEEP_TMP=1 keeps the scratch
directory."""
import base64
import glob
import io
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile

import yaml

FLAM = os.environ["FLAM_BIN"]
SRC = os.environ["FLAM_SOURCE_DIR"]
README = os.path.join(SRC, "README.md")
TARGETS = {"inspect"}  # subcommands whose first word picks the table
SAVE_COLS = ("WIDTH", "HEIGHT", "similarity", "punsafe", "pwatermark")  # the toy's LAION save_cols


def logical_lines(text):
    """The README's shell lines: ```sh block lines (continuations joined) and inline code."""
    lines = []
    for block in re.findall(r"```sh\n(.*?)```", text, re.S):
        lines += block.replace("\\\n", " ").splitlines()
    prose = re.sub(r"```.*?```", "", text, flags=re.S)
    lines += re.findall(r"`([^`\n]*build/flam [^`\n]*)`", prose)
    return lines


def split(text):
    """Shell words up to a shell operator or a comment. A command that closes a quote opened
    before it (the end of `bash -c '... build/flam ...'`) is split without that last quote."""
    lexer = shlex.shlex(text, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    lexer.commenters = "#"
    argv = []
    try:
        for tok in lexer:
            if tok and set(tok) <= set("()|&;<>"):
                break
            argv.append(tok)
    except ValueError:
        closing = max(text.rfind("'"), text.rfind('"'))
        if closing < 0:
            raise
        return split(text[:closing] + text[closing + 1:])
    return argv


def commands(lines):
    """The argv after `build/flam` on each line, up to a shell operator or a comment."""
    out = []
    for line in lines:
        m = re.search(r"(?:^|[\s(])build/flam\s+(.*)", line)
        if not m:
            continue
        out.append((line.strip(), split(m.group(1))))
    return out


_tables = {}


def table(argv):
    key = argv[:2] if argv[0] in TARGETS else argv[:1]
    if tuple(key) not in _tables:
        _tables[tuple(key)] = describe(key)
    return _tables[tuple(key)]


def describe(key):
    r = subprocess.run([FLAM, *key, "--flam-describe-options"], capture_output=True, text=True)
    if r.returncode != 0:
        return None
    options, flags = set(), set()
    for line in r.stdout.splitlines():
        name, *value = line.split()
        (options if value else flags).add(name[2:])
    return key, options, flags


def check(line, argv):
    if argv and argv[0].startswith("-"):
        return None if argv in (["--version"], ["--help"]) else "unknown top-level option"
    t = table(argv)
    if t is None:
        return "unknown subcommand: " + " ".join(argv[:2])
    key, options, flags = t
    rest = argv[len(key):]
    i = 0
    while i < len(rest):
        a = rest[i]
        if a in ("--help", "-h"):  # every subcommand takes it (cli/main.cpp)
            return None
        if a.startswith("--"):
            name, eq, _ = a[2:].partition("=")
            if name in flags and not eq:
                pass
            elif name in options:
                if not eq:
                    i += 1
                    if i >= len(rest):
                        return "--%s needs a value" % name
            else:
                return "unknown option --%s for flam %s" % (name, " ".join(key))
        i += 1
    return None


def blocks(text, marker):
    """The ```sh blocks right after `<!-- MARKER -->`."""
    return re.findall(r"<!-- %s -->\n```sh\n(.*?)```" % re.escape(marker), text, re.S)


def scratch(work=None):
    """WORK (a new scratch directory when None) laid out as the source tree is for the blocks (see
    the docstring)."""
    work = work or tempfile.mkdtemp(prefix="flam_readme.")
    os.symlink(os.path.dirname(os.path.abspath(FLAM)), os.path.join(work, "build"))
    for d in ("configs", "scripts", "tests"):
        os.symlink(os.path.join(SRC, d), os.path.join(work, d))
    os.symlink(sys.prefix, os.path.join(work, ".venv"))
    return work


def run_block(block, work, timeout):
    """Runs one block in its own process group, killed after it; returns (exit code or None when
    it timed out, its output)."""
    with tempfile.TemporaryFile("w+") as log:
        proc = subprocess.Popen(["bash", "-euo", "pipefail", "-c", block], cwd=work, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            rc = None
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # the block itself, or what it left behind
        except ProcessLookupError:
            pass
        proc.wait()
        log.seek(0)
        return rc, log.read()


def run_blocks(found, work, timeout):
    """Runs the blocks; returns the failures as (block, why)."""
    failures = []
    for block in found:
        rc, out = run_block(block, work, timeout)
        if rc != 0:
            why = "timed out after %d s" % timeout if rc is None else "exit %d" % rc
            failures.append((block, "%s\n%s" % (why, out[-4000:])))
    return failures


def check_toy(work):
    """What the toy walk-through left in WORK/runs/toy; returns what is wrong, one line each."""
    import webdataset as wds  # slow to import: only here
    from PIL import Image

    toy = os.path.join(work, "runs", "toy")
    wrong = []
    for run in ("laion-shards", "mmc4-shards", "train"):
        with open(os.path.join(toy, run, "state.json")) as f:
            state = json.load(f)
        if state["status"] != "completed":
            wrong.append("run %s: %s (%s)" % (run, state["status"], state.get("explanation")))
    for name, kind in (("laion2b", "laion"), ("mmc4", "mmc4")):
        out = os.path.join(toy, name)
        with open(os.path.join(out, "summary.json")) as f:
            summary = json.load(f)
        with open(os.path.join(out, "sizes.json")) as f:
            sizes = json.load(f)
        shards = sorted(os.path.basename(p) for p in glob.glob(os.path.join(out, "*.tar")))
        if summary["successes"] < 1 or not shards or \
                not all(re.fullmatch(r"\d{5}\.tar", s) for s in shards) or sorted(sizes) != shards:
            wrong.append("%s: %d successes, shards %s, sizes.json %s" % (
                out, summary["successes"], shards, sorted(sizes)))
            continue
        samples = list(wds.WebDataset([os.path.join(out, s) for s in shards], shardshuffle=False))
        for sample in samples:
            meta = json.loads(sample["json"])
            if kind == "laion":
                image = Image.open(io.BytesIO(sample["jpg"]))
                good = (image.size == (meta["width"], meta["height"]) and sample["txt"] and
                        all(k in meta for k in SAVE_COLS))
            else:
                good = len(meta["similarity_matrix"]) == len(meta["image_info"]) > 0 and all(
                    Image.open(io.BytesIO(base64.b64decode(i["image_base64"]))).size ==
                    (i["width"], i["height"]) for i in meta["image_info"])
            if not good:
                wrong.append("%s: sample %s: %s" % (out, sample["__key__"], str(meta)[:300]))
        if len(samples) != summary["successes"]:
            wrong.append("%s: webdataset read %d samples, summary.json counts %d" % (
                out, len(samples), summary["successes"]))
        print("%s: %s read by webdataset, %d samples; %d failed (%s)" % (
            out, ", ".join(shards), len(samples), summary["failures"], summary["reasons"]))
    train = os.path.join(toy, "train")
    with open(os.path.join(train, "config.yaml")) as f:
        steps = yaml.safe_load(f)["train"]["steps"]
    with open(os.path.join(train, "metrics.jsonl")) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    if not rows or rows[-1]["step"] != steps or \
            not all("loss_laion" in r and "loss_mmc4" in r for r in rows):
        wrong.append("train: metrics.jsonl's last step %s (train.steps %d), or a row without "
                     "loss_laion and loss_mmc4" % (rows[-1]["step"] if rows else None, steps))
    with open(os.path.join(toy, "run.svg")) as f:
        if "<svg" not in f.read(500):
            wrong.append("run.svg is not an SVG")
    return wrong


def run_toy(text):
    """--slurm: the slurm blocks on a local Slurm, then check_toy; returns the exit code."""
    found = blocks(text, "runnable slurm")
    if not found:
        print("FAIL: no runnable slurm block found (<!-- runnable slurm --> before a ```sh fence)")
        return 1
    sys.path.insert(0, os.path.join(SRC, "tests", "common"))
    from slurm_jobs import local_slurm

    with local_slurm("flam_readme.") as work:
        scratch(work)
        for block in found:
            rc, out = run_block(block, work, timeout=240)
            print("".join(out.splitlines(True)[-40:]), end="")
            if rc != 0:
                for path in sorted(glob.glob(os.path.join(work, "runs", "*", "*", "jobs",
                                                          "*.out"))):
                    with open(path, errors="replace") as f:
                        print("--- %s\n%s" % (path, "".join(f.readlines()[-30:])), end="")
                print("FAIL: README runnable slurm block %s:\n%s" % (
                    "timed out" if rc is None else "exit %d" % rc, block))
                return 1
        wrong = check_toy(work)
    for line in wrong:
        print("FAIL: " + line)
    print("%d runnable slurm README block(s) run; %d wrong in what they left" % (len(found),
                                                                                 len(wrong)))
    return 1 if wrong else 0


def main():
    text = open(README).read()
    if sys.argv[1:] == ["--slurm"]:
        return run_toy(text)
    if sys.argv[1:]:
        print("usage: test_readme_commands.py [--slurm]")
        return 2
    cmds = commands(logical_lines(text))
    failures = [(line, why) for line, argv in cmds if (why := check(line, argv))]
    for line, why in failures:
        print("README: %s\n  %s" % (line, why))
    print("%d flam command lines checked, %d bad" % (len(cmds), len(failures)))
    if len(cmds) < 8:
        print("FAIL: too few command lines found; is the README's format still understood?")
        return 1
    found = blocks(text, "runnable")
    if not found:
        print("FAIL: no runnable block found (<!-- runnable --> before a ```sh fence)")
        return 1
    work = scratch()
    try:
        block_failures = run_blocks(found, work, timeout=120)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for block, why in block_failures:
        print("README runnable block failed:\n%s  %s" % (block, why))
    print("%d runnable README blocks run, %d failed; %d runnable slurm block(s) left to "
          "`test_readme_commands.py --slurm` (ctest test_readme_toy)" % (
              len(found), len(block_failures), len(blocks(text, "runnable slurm"))))
    return 1 if failures or block_failures else 0


if __name__ == "__main__":
    sys.exit(main())
