#!/usr/bin/env python3
"""bench_pil.py DIR: python3-pil + numpy doing OpenFlamingo's image preprocessing (without
normalisation) on every *.jpg in DIR, one thread: open, convert RGB, resize the shorter side to
224 (bicubic, torchvision's rounding), center crop 224, np.asarray. Prints the median rate of
several rounds as "pil_images_per_s X", per second of this thread's CPU time (the machines are
shared: wall time would measure the neighbours)."""
import os
import sys
import time

import numpy as np
from PIL import Image

SIZE = 224
paths = sorted(os.path.join(sys.argv[1], n) for n in os.listdir(sys.argv[1]) if n.endswith(".jpg"))


def preprocess(path):
    with open(path, "rb") as f:
        im = Image.open(f).convert("RGB")
    w, h = im.size
    short, long = (w, h) if w <= h else (h, w)
    new_long = int(SIZE * long / short)
    nw, nh = (SIZE, new_long) if w <= h else (new_long, SIZE)
    im = im.resize((nw, nh), Image.BICUBIC)
    left, top = int(round((nw - SIZE) / 2.0)), int(round((nh - SIZE) / 2.0))
    return np.asarray(im.crop((left, top, left + SIZE, top + SIZE)))


def one_round():
    start = time.thread_time()
    for p in paths:
        preprocess(p)
    return len(paths) / (time.thread_time() - start)


one_round()
rates = []
deadline = time.perf_counter() + 6
while len(rates) < 3 or (time.perf_counter() < deadline and len(rates) < 15):
    rates.append(one_round())
print(f"pil_images_per_s {sorted(rates)[len(rates) // 2]:.1f}")
