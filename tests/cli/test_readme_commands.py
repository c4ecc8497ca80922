"""Every `build/flam ...` command line of README.md (its ```sh blocks and its inline `code`)
names a real subcommand and only options that subcommand's parser accepts, with a value where the
option takes one: the README cannot drift from the command line. The tables come from the binary
itself (`flam SUB [TARGET] --flam-describe-options`, the parser's own Args table).

The ```sh blocks marked `<!-- runnable -->` (on the line before the fence) also run, as written,
under `bash -euo pipefail` in a scratch directory where `build/` is the tested binary's folder and
`configs/`, `scripts/` and `tests/` are the source tree's; each must exit 0."""
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile

FLAM = os.environ["FLAM_BIN"]
README = os.path.join(os.environ["FLAM_SOURCE_DIR"], "README.md")
TARGETS = {"inspect"}  # subcommands whose first word picks the table


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


def run_blocks(text):
    """Runs the runnable blocks; returns the failures as (block, why)."""
    blocks = re.findall(r"<!-- runnable -->\n```sh\n(.*?)```", text, re.S)
    failures = []
    work = tempfile.mkdtemp(prefix="flam_readme.")
    try:
        os.symlink(os.path.dirname(os.path.abspath(FLAM)), os.path.join(work, "build"))
        for d in ("configs", "scripts", "tests"):
            os.symlink(os.path.join(os.environ["FLAM_SOURCE_DIR"], d), os.path.join(work, d))
        for block in blocks:
            r = subprocess.run(["bash", "-euo", "pipefail", "-c", block], cwd=work,
                               capture_output=True, text=True, timeout=120)
            if r.returncode != 0:
                failures.append((block, "exit %d\n%s%s" % (r.returncode, r.stdout[-2000:],
                                                          r.stderr[-2000:])))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("%d runnable README blocks run, %d failed" % (len(blocks), len(failures)))
    return blocks, failures


def main():
    text = open(README).read()
    cmds = commands(logical_lines(text))
    failures = [(line, why) for line, argv in cmds if (why := check(line, argv))]
    for line, why in failures:
        print("README: %s\n  %s" % (line, why))
    print("%d flam command lines checked, %d bad" % (len(cmds), len(failures)))
    if len(cmds) < 8:
        print("FAIL: too few command lines found; is the README's format still understood?")
        return 1
    blocks, block_failures = run_blocks(text)
    for block, why in block_failures:
        print("README runnable block failed:\n%s  %s" % (block, why))
    if not blocks:
        print("FAIL: no runnable block found (<!-- runnable --> before a ```sh fence)")
        return 1
    return 1 if failures or block_failures else 0


if __name__ == "__main__":
    sys.exit(main())
