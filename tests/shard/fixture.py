#!/usr/bin/env python3
"""Fixtures and oracles for the `flam shard` tests (Python's PIL, tarfile and json as oracles).

    fixture.py files WWW                   images and pages served by tests/common/http_server.py
    fixture.py faults PORT OUT.tsv         a URL table: good images and every fault, with the
                                           reason each row must end with in column `expect`
    fixture.py many PORT OUT.tsv N         N rows (mostly good, some slow, some failing)
    fixture.py mmc4 PORT OUT.jsonl         MMC4 documents
    fixture.py check OUT TABLE             check shards against the `expect` column
    fixture.py check-mmc4 OUT LAYOUT       check MMC4 shards (base64 | members)
"""
import base64
import csv
import glob
import io
import json
import os
import struct
import sys
import tarfile
import zlib

from PIL import Image

PHOTOS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "photos")


def photo(name):
    return Image.open(os.path.join(PHOTOS, name)).convert("RGB")


def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(
        ">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def files(www):
    os.makedirs(www, exist_ok=True)
    rocket = photo("rocket.jpg")
    rocket.crop((100, 50, 420, 290)).save(os.path.join(www, "a.jpg"), quality=90)
    photo("chelsea.png").save(os.path.join(www, "b.webp"), quality=80)
    photo("coffee.png").resize((300, 200)).save(os.path.join(www, "c.png"))
    photo("astronaut.png").save(os.path.join(www, "astronaut.jpg"), quality=92)
    Image.open(os.path.join(PHOTOS, "camera.png")).save(os.path.join(www, "gray.jpg"))
    rocket.resize((20, 20)).save(os.path.join(www, "small.jpg"))
    rocket.resize((600, 60)).save(os.path.join(www, "wide.jpg"))
    rocket.resize((96, 64)).save(os.path.join(www, "tiny.jpg"), quality=85)
    for i, name in enumerate(["astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg"]):
        img = photo(name)
        w, h = img.size
        img.crop((i * 7, i * 5, w - i * 11, h - i * 3)).save(
            os.path.join(www, "crop%d.jpg" % i), quality=88)
    rocket.save(os.path.join(www, "rocket.jpg"))
    # A PNG whose header declares 100000 x 100000 pixels (a decompression bomb).
    ihdr = struct.pack(">IIBBBBB", 100000, 100000, 8, 2, 0, 0, 0)
    with open(os.path.join(www, "huge.png"), "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) +
                png_chunk(b"IDAT", zlib.compress(b"\x00" * 1000)) + png_chunk(b"IEND", b""))
    with open(os.path.join(www, "page.html"), "w") as f:
        f.write("<!doctype html><html><body><p>not an image</p></body></html>\n")
    good = open(os.path.join(www, "a.jpg"), "rb").read()
    with open(os.path.join(www, "corrupt.jpg"), "wb") as f:
        f.write(good[:20] + bytes((i * 37) % 256 for i in range(4000)))


def fault_rows(port):
    base = "http://127.0.0.1:%d" % port
    rows = [
        ("/f/a.jpg", "a crop", ""),
        ("/f/b.webp", "a cat, as webp", ""),
        ("/f/c.png", "coffee", ""),
        ("/f/astronaut.jpg", "astronaut", ""),
        ("/f/gray.jpg", "grey", ""),
        ("/x/redirect=3/f/crop0.jpg", "three redirects", ""),
        ("/x/fail=1:t1/f/crop1.jpg", "500 once, then ok", ""),
        ("/x/throttle=1:t2/f/crop2.jpg", "429 with Retry-After, then ok", ""),
        ("/x/status=404/f/a.jpg", "missing", "http_404"),
        ("/x/status=403/f/a.jpg", "forbidden", "http_4xx"),
        ("/x/status=503/f/a.jpg", "always 503", "http_5xx"),
        ("/x/hang=60/f/a.jpg", "never answers", "timeout"),
        ("/x/slow=2000/f/rocket.jpg", "drips", "timeout"),
        ("/x/cut=500/f/astronaut.jpg", "cut short", "truncated"),
        ("/f/page.html", "html", "not_an_image"),
        ("/f/huge.png", "100000x100000 header", "image_too_large"),
        ("/f/corrupt.jpg", "corrupt jpeg", "decode_error"),
        ("/x/loop/f/a.jpg", "redirect loop", "redirect_loop"),
        ("/x/location=file%3A%2F%2F%2Fetc%2Fpasswd/f/a.jpg", "redirect to a file", "bad_scheme"),
        ("/x/header=X-Robots-Tag:noai/f/a.jpg", "opted out", "opted_out"),
        ("/x/header=X-Robots-Tag:noindex,%20nofollow/f/crop3.jpg", "opted out", "opted_out"),
        ("/x/header=X-Robots-Tag:otherbot:%20noai/f/crop3.jpg", "other bot only", ""),
        ("/gen/3000000", "declared too big", "too_large"),
        ("/x/nolength/gen/3000000", "streamed too big", "too_large"),
        ("/f/small.jpg", "20x20", "too_small"),
        ("/f/wide.jpg", "10:1", "bad_aspect_ratio"),
    ]
    out = [(base + path, caption, expect) for path, caption, expect in rows]
    out.append(("ftp://127.0.0.1/a.jpg", "ftp", "bad_scheme"))
    out.append(("http://127.0.0.1:1/a.jpg", "closed port", "connect"))
    return out


def write_table(path, rows):
    with open(path, "w", newline="") as f:
        w = csv.writer(f, delimiter="\t", lineterminator="\n")
        w.writerow(["url", "caption", "expect", "n"])
        for i, (url, caption, expect) in enumerate(rows):
            w.writerow([url, caption, expect, i])


def many(port, n):
    base = "http://127.0.0.1:%d" % port
    rows = []
    for i in range(n):
        if i % 4 == 3:
            rows.append((base + "/x/slow=4000/f/tiny.jpg", "slow %d" % i, ""))
        elif i % 7 == 5:
            rows.append((base + "/x/status=404/f/a.jpg", "gone %d" % i, "http_404"))
        else:
            rows.append((base + "/f/crop%d.jpg" % (i % 4), "photo %d" % i, ""))
    return rows


def mmc4(port, path):
    base = "http://127.0.0.1:%d" % port
    docs = [
        {"url": "https://example.com/doc0", "text_list": ["A cat.", "A cup.", "A rocket."],
         "image_info": [
             {"raw_url": base + "/f/b.webp", "image_name": "cat.webp", "matched_text_index": 0,
              "matched_sim": 0.31},
             {"raw_url": base + "/x/status=404/f/c.png", "image_name": "gone.png",
              "matched_text_index": 1, "matched_sim": 0.25},
             {"raw_url": base + "/f/c.png", "image_name": "cup.png", "matched_text_index": 1,
              "matched_sim": 0.29}],
         "similarity_matrix": [[0.31, 0.1, 0.1], [0.1, 0.25, 0.1], [0.1, 0.29, 0.1]]},
        {"url": "https://example.com/doc1", "text_list": ["Nothing here."],
         "image_info": [{"raw_url": base + "/f/page.html", "image_name": "p.jpg",
                         "matched_text_index": 0, "matched_sim": 0.2}],
         "similarity_matrix": [[0.2]]},
        {"url": "https://example.com/doc2", "text_list": ["An astronaut.", "A launch."],
         "image_info": [
             {"raw_url": base + "/f/astronaut.jpg", "image_name": "a.jpg",
              "matched_text_index": 0, "matched_sim": 0.33},
             {"raw_url": base + "/f/rocket.jpg", "image_name": "r.jpg", "matched_text_index": 1,
              "matched_sim": 0.30}],
         "similarity_matrix": [[0.33, 0.1], [0.1, 0.30]]},
    ]
    with open(path, "w") as f:
        for d in docs:
            f.write(json.dumps(d) + "\n")
        f.write("{not json\n")


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def tar_samples(path):
    samples = {}
    with tarfile.open(path) as t:
        for m in t.getmembers():
            key, _, ext = m.name.partition(".")
            samples.setdefault(key, {})[ext] = t.extractfile(m).read()
    return samples


def check(out, table):
    with open(table) as f:
        expect = [r["expect"] for r in csv.DictReader(f, delimiter="\t")]
    rows = []
    for p in sorted(glob.glob(os.path.join(out, "*_rows.jsonl"))):
        rows += [json.loads(l) for l in open(p)]
    if len(rows) != len(expect):
        fail("%d rows in the rows files, %d in the table" % (len(rows), len(expect)))
    want = {}
    for i, (row, exp) in enumerate(zip(rows, expect)):
        got = row.get("reason", "")
        if got != exp:
            fail("row %d (%s): reason %r, expected %r" % (i, row.get("url"), got, exp))
        if exp:
            want[exp] = want.get(exp, 0) + 1
    reasons, ok, sizes_total = {}, 0, 0
    for p in sorted(glob.glob(os.path.join(out, "*_stats.json"))):
        s = json.load(open(p))
        for k, v in s["reasons"].items():
            reasons[k] = reasons.get(k, 0) + v
        ok += s["successes"]
    if reasons != want:
        fail("stats reasons %s, expected %s" % (reasons, want))
    if ok != expect.count(""):
        fail("%d successes, expected %d" % (ok, expect.count("")))
    sizes = json.load(open(os.path.join(out, "sizes.json")))
    for tar in sorted(glob.glob(os.path.join(out, "*.tar"))):
        samples = tar_samples(tar)
        if sizes[os.path.basename(tar)] != len(samples):
            fail("sizes.json disagrees with %s" % tar)
        sizes_total += len(samples)
        for key, files in samples.items():
            meta = json.loads(files["json"])
            img = Image.open(io.BytesIO(files["jpg"]))
            img.load()
            if img.size != (meta["width"], meta["height"]) or meta["key"] != key:
                fail("%s: json %s does not match the image %s" % (key, meta, img.size))
            if files["txt"].decode() != meta["caption"] or meta["status"] != "success":
                fail("%s: caption or status" % key)
            if len(meta["sha256"]) != 64 or "expect" not in meta or "n" not in meta:
                fail("%s: sha256 or carried columns missing: %s" % (key, meta))
            if max(img.size) > 256 and min(img.size) != 256:
                fail("%s: not resized: %s" % (key, img.size))
    if sizes_total != ok:
        fail("%d samples in tars, %d successes" % (sizes_total, ok))
    summary = json.load(open(os.path.join(out, "summary.json")))
    if summary["successes"] != ok or summary["reasons"] != want:
        fail("summary.json does not sum the stats")
    print("ok: %d rows, %d samples, reasons %s" % (len(rows), ok, want))


def check_mmc4(out, layout):
    samples = tar_samples(os.path.join(out, "00000.tar"))
    if sorted(samples) != ["0000000000", "0000000002"]:
        fail("documents written: %s" % sorted(samples))
    rows = [json.loads(l) for l in open(os.path.join(out, "00000_rows.jsonl"))]
    if [r["status"] for r in rows] != ["success", "no_images", "success", "bad_row"]:
        fail("row statuses %s" % [r["status"] for r in rows])
    for key, want_names in (("0000000000", ["cat.webp", "cup.png"]),
                            ("0000000002", ["a.jpg", "r.jpg"])):
        files = samples[key]
        doc = json.loads(files["json"])
        names = [i["image_name"] for i in doc["image_info"]]
        if names != want_names:
            fail("%s: images %s" % (key, names))
        if len(doc["similarity_matrix"]) != len(names):
            fail("%s: similarity matrix not filtered" % key)
        for info in doc["image_info"]:
            if layout == "base64":
                data = base64.b64decode(info["image_base64"])
            else:
                data = files[info["image_member"]]
            img = Image.open(io.BytesIO(data))
            img.load()
            if img.size != (info["width"], info["height"]):
                fail("%s: image size %s vs %s" % (key, img.size, info))
    if samples["0000000000"]["json"] and json.loads(samples["0000000000"]["json"])[
            "similarity_matrix"] != [[0.31, 0.1, 0.1], [0.1, 0.29, 0.1]]:
        fail("wrong similarity rows kept")
    print("ok: mmc4 %s" % layout)


def main():
    cmd = sys.argv[1]
    if cmd == "files":
        files(sys.argv[2])
    elif cmd == "faults":
        write_table(sys.argv[3], fault_rows(int(sys.argv[2])))
    elif cmd == "many":
        write_table(sys.argv[3], many(int(sys.argv[2]), int(sys.argv[4])))
    elif cmd == "mmc4":
        mmc4(int(sys.argv[2]), sys.argv[3])
    elif cmd == "check":
        check(sys.argv[2], sys.argv[3])
    elif cmd == "check-mmc4":
        check_mmc4(sys.argv[2], sys.argv[3])
    else:
        fail("unknown command " + cmd)


if __name__ == "__main__":
    main()
