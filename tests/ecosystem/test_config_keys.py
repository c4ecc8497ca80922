#!/usr/bin/env python3
"""`flam config keys` against `flam config show`: the same keys in the same order, each default
equal to the value `show` prints for the defaults, every key documented; a prefix selects a
subtree; an unknown prefix is a usage error (exit 2)."""
import os
import re
import subprocess
import sys

import yaml

FLAM = os.environ["FLAM_BIN"]


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def flatten(prefix, node, out):
    for k, v in node.items():
        path = prefix + k
        if isinstance(v, dict):
            flatten(path + ".", v, out)
        else:
            out.append((path, v))


def run(*args):
    return subprocess.run([FLAM, "config", *args], capture_output=True, text=True)


shown = []
flatten("", yaml.safe_load(run("show").stdout), shown)
text = run("keys").stdout
entries = re.findall(r"^(\S+) \((\w[\w ]*), default (.*?)(?:; (.*))?\)\n    (.+)$",
                     text, re.M)
if len(entries) != text.count("\n") // 2:
    fail("unparsed lines in:\n" + text)
keys = [e[0] for e in entries]
if keys != [k for k, _ in shown]:
    fail("keys %s\nvs show %s" % (sorted(set(keys) ^ set(k for k, _ in shown)), len(shown)))
for (path, type_, default, range_, meaning), (_, value) in zip(entries, shown):
    if yaml.safe_load(default) != value:
        fail("%s: keys says default %r, show prints %r" % (path, default, value))
    if meaning == "(undocumented)":
        fail("%s has no meaning in cli/cmd_config.cpp" % path)
    if type_ == "choice" and str(value) not in range_.split(" | "):
        fail("%s: default %r not among %r" % (path, value, range_))
train = run("keys", "train").stdout
if [l.split()[0] for l in train.splitlines() if not l.startswith(" ")] != \
        [k for k in keys if k.startswith("train.")]:
    fail("keys train:\n" + train)
bad = run("keys", "trai")
if bad.returncode != 2 or "no config key under 'trai'" not in bad.stderr:
    fail("keys trai: exit %d, %s" % (bad.returncode, bad.stderr))
print("ok: %d keys, documented, as config show prints them" % len(keys))
