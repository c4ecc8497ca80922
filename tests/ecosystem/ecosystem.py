#!/usr/bin/env python3
"""Inputs as LAION and MMC4 ship them, and the peers (webdataset) as oracles, for `flam shard`.

    ecosystem.py laion-parquet PORT DIR    DIR/part-0000{0,1}.parquet: LAION's columns and types,
                                           snappy, several row groups; DIR/expect.json per row
    ecosystem.py check-parquet OUT DIR     read OUT's shards with webdataset, compare with DIR
    ecosystem.py mmc4-zip PORT ZIP         MMC4 documents, zipped as MMC4 ships them (deflate)
    ecosystem.py not-mmc4-zip ZIP          a zip of a LAION table (not MMC4)
    ecosystem.py check-mmc4 OUT            read OUT's MMC4 shards with webdataset
    ecosystem.py peer-parquet PORT FILE WWW  a LAION parquet part that img2dataset reads too,
                                           and WWW/exif.jpg, a photo with EXIF tags
    ecosystem.py img2dataset FILE OUT      img2dataset itself over FILE (same options as flam's)
    ecosystem.py compare-peer OURS PEER    per-shard parquet and stats, field by field
"""
import base64
import glob
import io
import json
import math
import os
import sys
import zipfile

import pyarrow as pa
import pyarrow.parquet as pq
import webdataset as wds
from PIL import Image

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "shard"))
import fixture  # noqa: E402

# LAION-5B's metadata schema (laion2B-en parts), in its order and types.
LAION_SCHEMA = pa.schema([
    ("SAMPLE_ID", pa.int64()),
    ("URL", pa.string()),
    ("TEXT", pa.string()),
    ("HEIGHT", pa.int32()),
    ("WIDTH", pa.int32()),
    ("LICENSE", pa.string()),
    ("NSFW", pa.string()),
    ("similarity", pa.float64()),
    ("punsafe", pa.float32()),
    ("pwatermark", pa.float32()),
])


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def laion_parquet(port, out_dir):
    base = "http://127.0.0.1:%d" % port
    paths = ["/f/a.jpg", "/f/b.webp", "/f/c.png", "/x/status=404/f/a.jpg", "/f/astronaut.jpg",
             None, "/f/gray.jpg", "/f/crop0.jpg", "/f/crop1.jpg", "/f/crop2.jpg", "/f/crop3.jpg",
             "/f/tiny.jpg", "/f/rocket.jpg"]
    rows = []
    for i, p in enumerate(paths):
        rows.append({
            "SAMPLE_ID": 1000 + i,
            "URL": None if p is None else base + p,
            "TEXT": None if i == 2 else "caption %d, with \"quotes\"\tand a tab" % i,
            "HEIGHT": 200 + i, "WIDTH": 300 + i,
            "LICENSE": "?" if i % 2 else None,
            "NSFW": "UNLIKELY",
            "similarity": 0.3 + i / 100,
            "punsafe": float("nan") if i == 4 else i / 64,
            "pwatermark": 0.5,
        })
    os.makedirs(out_dir, exist_ok=True)
    # Two parts (8 rows and 5 rows), row groups of 3: a part boundary inside shard 1 and row
    # groups that straddle shards.
    for part, chunk in enumerate((rows[:8], rows[8:])):
        table = pa.Table.from_pylist(chunk, schema=LAION_SCHEMA)
        pq.write_table(table, os.path.join(out_dir, "part-%05d.parquet" % part),
                       compression="snappy", row_group_size=3)
    meta = pq.ParquetFile(os.path.join(out_dir, "part-00000.parquet")).metadata
    if meta.num_row_groups != 3 or meta.row_group(0).column(1).compression != "SNAPPY":
        fail("fixture: expected 3 snappy row groups, got %s" % meta)
    with open(os.path.join(out_dir, "expect.json"), "w") as f:
        json.dump(rows, f)


def same_float(a, b):
    return a is None and b is None or (a is not None and b is not None and
                                       abs(a - b) < 1e-6)


def check_parquet(out, src):
    rows = json.load(open(os.path.join(src, "expect.json")))
    by_id = {r["SAMPLE_ID"]: r for r in rows}
    shards = sorted(glob.glob(os.path.join(out, "*.tar")))
    if [os.path.basename(s) for s in shards] != ["00000.tar", "00001.tar", "00002.tar"]:
        fail("shards: %s" % shards)
    seen = []
    for sample in wds.WebDataset(shards, shardshuffle=False).decode("pil"):
        meta = sample["json"]
        want = by_id[meta["SAMPLE_ID"]]
        seen.append(meta["SAMPLE_ID"])
        if meta["url"] != want["URL"]:
            fail("%s: url %s" % (sample["__key__"], meta["url"]))
        text = sample["txt"]
        if text != (want["TEXT"] or ""):
            fail("%s: caption %r vs %r" % (sample["__key__"], text, want["TEXT"]))
        if not isinstance(meta["WIDTH"], int) or meta["WIDTH"] != want["WIDTH"]:
            fail("%s: WIDTH kept as %r" % (sample["__key__"], meta["WIDTH"]))
        if not same_float(meta["similarity"], want["similarity"]):
            fail("%s: similarity %r" % (sample["__key__"], meta["similarity"]))
        want_punsafe = None if math.isnan(want["punsafe"]) else want["punsafe"]
        if not same_float(meta["punsafe"], want_punsafe):
            fail("%s: punsafe %r vs %r" % (sample["__key__"], meta["punsafe"], want_punsafe))
        if meta["LICENSE"] != want["LICENSE"]:
            fail("%s: LICENSE %r" % (sample["__key__"], meta["LICENSE"]))
        image = sample["jpg"]
        if image.size != (meta["width"], meta["height"]):
            fail("%s: image %s vs json %s" % (sample["__key__"], image.size, meta))
    want_ids = [r["SAMPLE_ID"] for r in rows if r["URL"] and "status=404" not in r["URL"]]
    if seen != want_ids:
        fail("samples %s, want %s" % (seen, want_ids))
    statuses = []
    for path in sorted(glob.glob(os.path.join(out, "*_rows.jsonl"))):
        statuses += [json.loads(line)["status"] for line in open(path)]
    if statuses.count("success") != len(want_ids) or statuses.count("bad_row") != 1 or \
            statuses.count("failed_to_download") != 1:
        fail("row statuses %s" % statuses)
    print("ok: %d samples from parquet, read back by webdataset" % len(seen))


def mmc4_docs(port):
    path = os.path.join(os.environ.get("TMPDIR", "/tmp"), "mmc4-%d.jsonl" % os.getpid())
    fixture.mmc4(port, path)
    lines = open(path).read().splitlines()
    os.remove(path)
    return [line for line in lines if line.startswith("{\"")]  # the fixture's bad line dropped


def mmc4_zip(port, zip_path):
    docs = mmc4_docs(port)
    with zipfile.ZipFile(zip_path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        name = os.path.basename(zip_path)[:-len(".zip")]
        z.writestr(name, "\n".join(docs) + "\n")
    with open(zip_path[:-len(".zip")], "w") as f:
        f.write("\n".join(docs) + "\n")


def not_mmc4_zip(zip_path):
    with zipfile.ZipFile(zip_path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("part-00000.tsv", "url\tcaption\nhttp://127.0.0.1:1/a.jpg\ta photo\n")
        z.writestr("part-00001.jsonl", "{\"url\": \"http://127.0.0.1:1/b.jpg\"}\n")


def check_mmc4(out):
    samples = list(wds.WebDataset(os.path.join(out, "00000.tar"), shardshuffle=False).decode())
    if [s["__key__"] for s in samples] != ["0000000000", "0000000002"]:
        fail("documents: %s" % [s["__key__"] for s in samples])
    for s in samples:
        doc = s["json"]
        if len(doc["similarity_matrix"]) != len(doc["image_info"]) or not doc["text_list"]:
            fail("%s: document %s" % (s["__key__"], doc))
        for info in doc["image_info"]:
            img = Image.open(io.BytesIO(base64.b64decode(info["image_base64"])))
            img.load()
            if img.size != (info["width"], info["height"]):
                fail("%s: image %s vs %s" % (s["__key__"], img.size, info))
    print("ok: %d MMC4 documents read back by webdataset" % len(samples))


def exif_photo(path):
    img = fixture.photo("rocket.jpg").resize((320, 240))
    exif = Image.Exif()
    exif[0x010F] = "Canon"  # Make
    exif[0x0110] = "EOS 5D"  # Model
    exif[0x0132] = "2024:01:02 03:04:05"  # DateTime
    exif.get_ifd(0x8769)[0x9003] = "2023:12:31 23:59:58"  # DateTimeOriginal
    img.save(path, "JPEG", quality=90, exif=exif.tobytes())


def peer_parquet(port, path, www):
    exif_photo(os.path.join(www, "exif.jpg"))
    base = "http://127.0.0.1:%d" % port
    paths = ["/f/exif.jpg", "/f/a.jpg", "/f/b.webp", "/f/c.png", "/x/status=404/f/a.jpg", "/f/astronaut.jpg",
             "/f/page.html", "/f/gray.jpg", "/f/crop0.jpg", "/f/crop1.jpg", "/f/tiny.jpg"]
    rows = [{"SAMPLE_ID": 2000 + i, "URL": base + p, "TEXT": "photo %d" % i, "HEIGHT": 100 + i,
             "WIDTH": 200 + i, "LICENSE": None, "NSFW": "UNLIKELY", "similarity": 0.3,
             "punsafe": 0.01, "pwatermark": 0.1} for i, p in enumerate(paths)]
    pq.write_table(pa.Table.from_pylist(rows, schema=LAION_SCHEMA), path, compression="snappy",
                   row_group_size=4)


def run_img2dataset(path, out):
    from img2dataset import download
    download(url_list=path, input_format="parquet", url_col="URL", caption_col="TEXT",
             save_additional_columns=["SAMPLE_ID", "WIDTH"], output_format="webdataset",
             output_folder=out, processes_count=1, thread_count=4, image_size=256,
             resize_mode="keep_ratio", encode_format="jpg", encode_quality=95,
             number_sample_per_shard=5, timeout=3, retries=0, extract_exif=True,
             disallowed_header_directives=[], distributor="multiprocessing")


def compare_peer(ours, peer):
    names = sorted(os.path.basename(p) for p in glob.glob(os.path.join(peer, "*.parquet")))
    ours_names = sorted(os.path.basename(p) for p in glob.glob(os.path.join(ours, "*.parquet")))
    if not names or names != ours_names:
        fail("parquet files: ours %s, img2dataset's %s" % (ours_names, names))
    shared = ["url", "caption", "SAMPLE_ID", "WIDTH", "key", "status", "error_message", "width",
              "height", "original_width", "original_height", "exif", "sha256"]
    for name in names:
        mine = pq.read_table(os.path.join(ours, name))
        theirs = pq.read_table(os.path.join(peer, name))
        for col in shared:
            if col not in mine.column_names or col not in theirs.column_names:
                fail("%s: column %s missing (ours %s, theirs %s)" % (
                    name, col, mine.column_names, theirs.column_names))
        if [c for c in theirs.column_names if c in shared] != \
                [c for c in mine.column_names if c in shared]:
            fail("%s: column order %s vs %s" % (name, mine.column_names, theirs.column_names))
        a = {r["url"]: r for r in mine.to_pylist()}
        b = {r["url"]: r for r in theirs.to_pylist()}
        if sorted(a) != sorted(b):
            fail("%s: rows %s vs %s" % (name, sorted(a), sorted(b)))
        for url in a:
            for col in ["caption", "SAMPLE_ID", "WIDTH", "status", "width", "height",
                        "original_width", "original_height", "sha256"]:
                if a[url][col] != b[url][col]:
                    fail("%s %s: %s is %r, img2dataset %r" % (name, url, col, a[url][col],
                                                                b[url][col]))
            exif_a = json.loads(a[url]["exif"]) if a[url]["exif"] else None
            exif_b = json.loads(b[url]["exif"]) if b[url]["exif"] else None
            if (exif_a is None) != (exif_b is None) or (exif_a and not set(exif_a) <= set(exif_b)):
                fail("%s %s: exif %s vs img2dataset %s" % (name, url, exif_a, exif_b))
            for tag in ["Image Make", "Image Model", "Image DateTime", "EXIF DateTimeOriginal"]:
                if exif_a and exif_a.get(tag) != exif_b.get(tag):
                    fail("%s %s: %s %r vs img2dataset %r" % (name, url, tag, exif_a.get(tag),
                                                             exif_b.get(tag)))
            if url.endswith("/f/exif.jpg") and (exif_a or {}).get("Image Make") != "Canon":
                fail("%s: no EXIF read from exif.jpg: %s" % (name, exif_a))
            if (a[url]["error_message"] is None) != (b[url]["error_message"] is None):
                fail("%s %s: error_message %r vs %r" % (name, url, a[url]["error_message"],
                                                        b[url]["error_message"]))
        stem = name[:-len(".parquet")]
        sa = json.load(open(os.path.join(ours, stem + "_stats.json")))
        sb = json.load(open(os.path.join(peer, stem + "_stats.json")))
        for field in ["count", "successes", "failed_to_download", "failed_to_resize"]:
            if sa.get(field) != sb[field]:
                fail("%s: %s %r vs img2dataset %r" % (stem, field, sa.get(field), sb[field]))
        for field in ["duration", "start_time", "end_time", "status_dict"]:
            if type(sa.get(field)) is not type(sb[field]):
                fail("%s: %s %r vs img2dataset %r" % (stem, field, sa.get(field), sb[field]))
        if not sa["start_time"] <= sa["end_time"] or sa["duration"] < 0:
            fail("%s: times %s" % (stem, sa))
        if sa["status_dict"].get("success", 0) != sb["status_dict"].get("success", 0) or \
                sum(sa["status_dict"].values()) != sum(sb["status_dict"].values()):
            fail("%s: status_dict %s vs %s" % (stem, sa["status_dict"], sb["status_dict"]))
    print("ok: %d shards' parquet and stats agree with img2dataset's" % len(names))


def main():
    cmd = sys.argv[1]
    if cmd == "laion-parquet":
        laion_parquet(int(sys.argv[2]), sys.argv[3])
    elif cmd == "check-parquet":
        check_parquet(sys.argv[2], sys.argv[3])
    elif cmd == "mmc4-zip":
        mmc4_zip(int(sys.argv[2]), sys.argv[3])
    elif cmd == "not-mmc4-zip":
        not_mmc4_zip(sys.argv[2])
    elif cmd == "check-mmc4":
        check_mmc4(sys.argv[2])
    elif cmd == "peer-parquet":
        peer_parquet(int(sys.argv[2]), sys.argv[3], sys.argv[4])
    elif cmd == "img2dataset":
        run_img2dataset(sys.argv[2], sys.argv[3])
    elif cmd == "compare-peer":
        compare_peer(sys.argv[2], sys.argv[3])
    else:
        fail("unknown command " + cmd)


if __name__ == "__main__":
    main()
