#!/usr/bin/env python3
"""make_jpegs.py PHOTO_DIR OUT_DIR [COUNT [SHORT]]: a shard-like set of q95 JPEGs cut from the
photos.

Random crops (seeded) of the real photos, resized so the shorter side is SHORT (default 256) and
the longer 1-1.33 times that (what `flam shard` with keep_ratio 256 produces at 256), saved as
RGB JPEG quality 95.
"""
import os
import random
import sys

from PIL import Image

photo_dir, out = sys.argv[1], sys.argv[2]
count = int(sys.argv[3]) if len(sys.argv) > 3 else 300
short = int(sys.argv[4]) if len(sys.argv) > 4 else 256
os.makedirs(out, exist_ok=True)
rng = random.Random(5)
photos = [Image.open(os.path.join(photo_dir, n)).convert("RGB")
          for n in sorted(os.listdir(photo_dir)) if n.endswith((".png", ".jpg"))]
for i in range(count):
    im = photos[i % len(photos)]
    w, h = im.size
    cw = rng.randint(w // 3, w)
    ch = rng.randint(h // 3, h)
    x, y = rng.randint(0, w - cw), rng.randint(0, h - ch)
    crop = im.crop((x, y, x + cw, y + ch))
    aspect = rng.uniform(1.0, 1.33)
    size = (int(short * aspect), short) if rng.random() < 0.6 else (short, int(short * aspect))
    crop.resize(size, Image.BICUBIC).save(os.path.join(out, f"{i:05d}.jpg"), quality=95)
