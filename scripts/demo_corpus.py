#!/usr/bin/env python3
"""Makes the demo's small web-like corpus from the real photographs in tests/data/photos/.

    python3 scripts/demo_corpus.py --photos tests/data/photos --out DIR --base-url http://127.0.0.1:PORT

Writes DIR/www/img/NNNN.{jpg,png,webp}: varied crops (position, size, aspect, flips, re-encoding);
DIR/laion.tsv: a LAION-style URL table (url, caption, and an extra `source` column);
DIR/mmc4.jsonl: MMC4-style documents (text_list, image_info, similarity_matrix);
DIR/eval/karpathy.json and DIR/eval/img/: held-out crops (never in the training tables) with
five reference captions each, in Karpathy's dataset_coco.json format: a "train" split the
few-shot demos come from and a "test" split of queries, for `train.eval` and `flam eval`.
A few rows point at faults the test server injects: 404s, a server that never answers, and a
corrupt image. Deterministic for a given seed; the images are only rewritten when missing.
"""
import argparse
import csv
import io
import json
import os
import random

from PIL import Image, ImageOps

SUBJECTS = {
    "astronaut": ("an astronaut", ["in an orange flight suit", "smiling at the camera",
                                   "in front of a flag", "with a space shuttle model"]),
    "camera": ("a photographer", ["with an old camera on a tripod", "in black and white",
                                  "standing on a lawn", "wearing a dark coat"]),
    "chelsea": ("a cat", ["with striped fur", "looking to the side", "with long whiskers",
                          "resting indoors"]),
    "coffee": ("a cup of coffee", ["on a saucer", "with a spoon", "seen from above",
                                   "in a white cup"]),
    "grass": ("grass", ["in black and white", "seen up close", "with thin blades",
                        "filling the frame"]),
    "rocket": ("a rocket", ["lifting off", "with a trail of smoke", "against a blue sky",
                            "on the launch pad"]),
}
STYLES = ["a photo of", "a close-up of", "a picture of", "an image showing", "a crop of"]
FORMATS = ["jpg", "jpg", "jpg", "png", "webp"]


def make_images(photos, out_dir, count, rng):
    os.makedirs(out_dir, exist_ok=True)
    sources = sorted(p for p in os.listdir(photos) if p.split(".")[-1] in ("png", "jpg"))
    items = []
    for i in range(count):
        src = sources[i % len(sources)]
        subject = src.split(".")[0]
        fmt = FORMATS[rng.randrange(len(FORMATS))]
        name = "%04d.%s" % (i, fmt)
        path = os.path.join(out_dir, name)
        # The random draws happen whether or not the file exists, so captions stay stable.
        scale = rng.uniform(0.35, 1.0)
        aspect = rng.uniform(0.6, 1.6)
        fx, fy = rng.random(), rng.random()
        flip = rng.random() < 0.5
        target = rng.choice([96, 128, 160, 224, 320])
        if not os.path.exists(path):
            im = Image.open(os.path.join(photos, src)).convert("RGB")
            w, h = im.size
            cw = max(32, min(w, int(w * scale * min(1.0, aspect))))
            ch = max(32, min(h, int(h * scale / max(1.0, aspect))))
            x0 = int((w - cw) * fx)
            y0 = int((h - ch) * fy)
            im = im.crop((x0, y0, x0 + cw, y0 + ch))
            if flip:
                im = ImageOps.mirror(im)
            ratio = target / max(im.size)
            im = im.resize((max(16, int(im.width * ratio)), max(16, int(im.height * ratio))),
                           Image.BICUBIC)
            buf = io.BytesIO()
            if fmt == "jpg":
                im.save(buf, "JPEG", quality=rng.choice([80, 90, 95]))
            elif fmt == "png":
                im.save(buf, "PNG")
            else:
                im.save(buf, "WEBP", quality=85)
            tmp = path + ".tmp"
            with open(tmp, "wb") as f:
                f.write(buf.getvalue())
            os.replace(tmp, path)
        items.append((name, subject))
    return items


def caption(subject, rng):
    noun, details = SUBJECTS[subject]
    return "%s %s %s" % (rng.choice(STYLES), noun, rng.choice(details))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--photos", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--base-url", required=True)
    ap.add_argument("--images", type=int, default=360)
    ap.add_argument("--docs", type=int, default=60)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--eval-images", type=int, default=24)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    www = os.path.join(args.out, "www")
    items = make_images(args.photos, os.path.join(www, "img"), args.images, rng)
    # A corrupt image: a JPEG cut after its first kilobyte.
    first_jpg = next(n for n, _ in items if n.endswith(".jpg"))
    with open(os.path.join(www, "img", first_jpg), "rb") as f:
        head = f.read(1024)
    with open(os.path.join(www, "img", "corrupt.jpg"), "wb") as f:
        f.write(head)
    base = args.base_url.rstrip("/")

    laion_items = items[: int(len(items) * 0.7)]
    doc_items = items[len(laion_items):]
    with open(os.path.join(args.out, "laion.tsv"), "w", newline="") as f:
        w = csv.writer(f, delimiter="\t", lineterminator="\n")
        w.writerow(["url", "caption", "source"])
        for name, subject in laion_items:
            w.writerow(["%s/f/img/%s" % (base, name), caption(subject, rng), subject])
        for i in range(4):
            w.writerow(["%s/x/status=404/f/img/missing%d.jpg" % (base, i), "a missing photo",
                        "fault"])
        w.writerow(["%s/x/hang=600/f/img/%s" % (base, first_jpg), "a server that never answers",
                    "fault"])
        w.writerow(["%s/f/img/corrupt.jpg" % base, "a broken image", "fault"])

    with open(os.path.join(args.out, "mmc4.jsonl"), "w") as f:
        for d in range(args.docs):
            n_img = rng.randint(2, 4)
            chosen = [doc_items[rng.randrange(len(doc_items))] for _ in range(n_img)]
            n_sent = n_img + rng.randint(1, 3)
            text_list = ["This page collects pictures of everyday scenes, number %d." % d]
            matched = sorted(rng.sample(range(1, n_sent), n_img))
            rng.shuffle(matched)  # the matching is often not monotonic
            subject_of = {m: chosen[k][1] for k, m in enumerate(matched)}
            for s in range(1, n_sent):
                if s in subject_of:
                    text_list.append("Here we see %s." % caption(subject_of[s], rng))
                else:
                    text_list.append("The next part of the page talks about something else.")
            sim = []
            image_info = []
            for k, (name, subject) in enumerate(chosen):
                row = [round(rng.uniform(0.05, 0.2), 4) for _ in range(n_sent)]
                row[matched[k]] = round(rng.uniform(0.28, 0.4), 4)
                sim.append(row)
                url = "%s/f/img/%s" % (base, name)
                if d % 17 == 3 and k == 0:
                    url = "%s/x/status=404/f/img/gone%d.jpg" % (base, d)
                image_info.append({"raw_url": url, "image_name": "%03d_%d.jpg" % (d, k),
                                   "matched_text_index": matched[k],
                                   "matched_sim": row[matched[k]]})
            f.write(json.dumps({"url": "http://example.invalid/page%d" % d,
                                "text_list": text_list, "image_info": image_info,
                                "similarity_matrix": sim}) + "\n")

    # The held-out captioning set, from its own generator so the training corpus stays the same.
    eval_rng = random.Random(args.seed + 1000)
    eval_items = make_images(args.photos, os.path.join(args.out, "eval", "img"), args.eval_images,
                             eval_rng)
    images = [{"filepath": "", "filename": name, "cocoid": i + 1,
               "split": "train" if i % 2 == 0 else "test",
               "sentences": [{"raw": caption(subject, eval_rng)} for _ in range(5)]}
              for i, (name, subject) in enumerate(eval_items)]
    with open(os.path.join(args.out, "eval", "karpathy.json"), "w") as f:
        json.dump({"images": images}, f, indent=1)

    with open(os.path.join(args.out, "text.txt"), "w") as f:
        for subject in SUBJECTS:
            for _ in range(40):
                f.write(caption(subject, rng) + "\n")
        f.write("This page collects pictures of everyday scenes.\n")
        f.write("The next part of the page talks about something else.\n")
    print("corpus: %d images, %d LAION rows (+6 faults), %d MMC4 documents, %d held-out "
          "captioned images in %s" % (len(items), len(laion_items), args.docs, len(eval_items),
                                      args.out))


if __name__ == "__main__":
    main()
