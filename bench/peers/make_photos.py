"""Web-like JPEGs for the peer benches: N varied crops of the real photos in tests/data/photos,
longer side 300-640 px, quality 75-95 (what a LAION URL typically serves).
    python make_photos.py PHOTOS_DIR OUT_DIR N"""
import os
import random
import sys

from PIL import Image

src, out, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
os.makedirs(out, exist_ok=True)
photos = [Image.open(os.path.join(src, f)).convert("RGB") for f in sorted(os.listdir(src))
          if f.endswith((".png", ".jpg"))]
rng = random.Random(0)
for i in range(n):
    img = photos[i % len(photos)]
    w, h = img.size
    cw, ch = rng.randint(w // 3, w), rng.randint(h // 3, h)
    x, y = rng.randint(0, w - cw), rng.randint(0, h - ch)
    crop = img.crop((x, y, x + cw, y + ch))
    if rng.random() < 0.5:
        crop = crop.transpose(Image.FLIP_LEFT_RIGHT)
    scale = rng.uniform(300, 640) / max(cw, ch)
    crop = crop.resize((max(1, int(cw * scale)), max(1, int(ch * scale))), Image.BICUBIC)
    crop.save(os.path.join(out, "%05d.jpg" % i), quality=rng.randint(75, 95))
