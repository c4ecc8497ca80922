#!/usr/bin/env python3
"""The inputs of the README's toy walk-through, in the form the two datasets ship them: a LAION
metadata parquet part and an MMC4 document zip whose image URLs point at crops of
tests/data/photos/ served from 127.0.0.1 by tests/common/http_server.py.

    python scripts/toy_data.py --out DIR --port-file FILE

FILE is the server's --port-file (it is waited for up to 10 s); the server's --root is DIR/www.
Writes
  DIR/www/img/NNNN.{jpg,png,webp}: the crops (scripts/demo_corpus.py's make_images);
  DIR/laion/part-00000.parquet: snappy, LAION's columns URL, TEXT, WIDTH, HEIGHT (of the image
    behind the URL), similarity, punsafe, pwatermark; one row's URL answers 404;
  DIR/mmc4/docs_shard_0_v2.jsonl.zip: one JSON-lines member of documents with MMC4's fields
    (url, text_list, image_info [image_name, raw_url, matched_text_index, matched_sim],
    similarity_matrix); one image's URL answers 404;
  DIR/text.txt: text for a SentencePiece tokenizer (enough for configs/tiny.yaml's 256 pieces).
Deterministic but for the port.
"""
import argparse
import json
import os
import random
import sys
import time
import zipfile

import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from demo_corpus import caption, make_images

# The columns of LAION-5B's metadata parts that the walk-through uses, with their types.
LAION_SCHEMA = pa.schema([
    ("URL", pa.string()), ("TEXT", pa.string()), ("WIDTH", pa.int32()), ("HEIGHT", pa.int32()),
    ("similarity", pa.float64()), ("punsafe", pa.float32()), ("pwatermark", pa.float32())])
LAION_ROWS, MMC4_DOCS, SEED = 40, 30, 11
PHOTOS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "photos")


def wait_for_port(port_file, seconds=10.0):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if os.path.exists(port_file):
            with open(port_file) as f:
                return int(f.read())
        time.sleep(0.1)
    sys.exit("toy_data.py: no port in %s after %g s: start tests/common/http_server.py "
             "--port-file %s first" % (port_file, seconds, port_file))


def write_laion(path, items, www, base, rng):
    """One parquet part: a row per item (its crop's URL, a caption, its size, LAION-like scores),
    then a row whose URL answers 404."""
    rows = []
    for name, subject in items:
        with Image.open(os.path.join(www, "img", name)) as im:
            width, height = im.size
        rows.append(("%s/f/img/%s" % (base, name), caption(subject, rng), width, height,
                     rng.uniform(0.28, 0.4), rng.uniform(0.0, 0.1), rng.uniform(0.0, 0.5)))
    rows.append(("%s/x/status=404/f/img/gone.jpg" % base, "a missing photo", 640, 480, 0.3,
                 0.01, 0.1))
    table = pa.Table.from_pylist([dict(zip(LAION_SCHEMA.names, row)) for row in rows],
                                 schema=LAION_SCHEMA)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    pq.write_table(table, path, compression="snappy")


def documents(items, count, base, rng):
    """MMC4-style documents of 2 or 3 images each, every image matched to its own sentence."""
    for d in range(count):
        chosen = rng.sample(items, rng.randint(2, 3))
        n_sent = len(chosen) + 2
        matched = rng.sample(range(1, n_sent), len(chosen))
        text_list = ["Pictures of everyday things, page %d." % d] + [
            "The page says something else here."] * (n_sent - 1)
        image_info, sim = [], []
        for k, (name, subject) in enumerate(chosen):
            text_list[matched[k]] = "Here we see %s." % caption(subject, rng)
            row = [round(rng.uniform(0.05, 0.2), 4) for _ in range(n_sent)]
            row[matched[k]] = round(rng.uniform(0.28, 0.4), 4)
            sim.append(row)
            url = "%s/f/img/%s" % (base, name)
            if d == 0 and k == 0:
                url = "%s/x/status=404/f/img/gone.jpg" % base
            image_info.append({"image_name": "%03d_%d.jpg" % (d, k), "raw_url": url,
                               "matched_text_index": matched[k], "matched_sim": row[matched[k]]})
        yield {"url": "http://example.invalid/page%d" % d, "text_list": text_list,
               "image_info": image_info, "similarity_matrix": sim}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--port-file", required=True)
    args = ap.parse_args()
    base = "http://127.0.0.1:%d" % wait_for_port(args.port_file)
    rng = random.Random(SEED)
    www = os.path.join(args.out, "www")
    items = make_images(PHOTOS, os.path.join(www, "img"), LAION_ROWS + MMC4_DOCS, rng)

    write_laion(os.path.join(args.out, "laion", "part-00000.parquet"), items[:LAION_ROWS], www,
                base, rng)
    docs = list(documents(items[LAION_ROWS:], MMC4_DOCS, base, rng))
    os.makedirs(os.path.join(args.out, "mmc4"), exist_ok=True)
    with zipfile.ZipFile(os.path.join(args.out, "mmc4", "docs_shard_0_v2.jsonl.zip"), "w",
                         zipfile.ZIP_DEFLATED) as z:
        z.writestr("docs_shard_0_v2.jsonl", "".join(json.dumps(d) + "\n" for d in docs))

    with open(os.path.join(args.out, "text.txt"), "w") as f:
        for _, subject in items:
            for _ in range(4):
                f.write(caption(subject, rng) + "\n")
        for d in docs:
            f.write("\n".join(d["text_list"]) + "\n")
    print("toy data: %d LAION rows (+1 404) in %s, %d MMC4 documents in %s, images from %s" % (
        LAION_ROWS, os.path.join(args.out, "laion"), MMC4_DOCS,
        os.path.join(args.out, "mmc4"), base))


if __name__ == "__main__":
    main()
