#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets into tests/fuzz/corpus/<target>/ (committed; rerun
only to change them). Needs PIL (the project's venv) and the zstd CLI. Not written here: the
rank-file seed corpus/fuzz_rank_file/rank_00000.bin (made by train::write_rank_file with two
sections) and the regression seeds of crashes found, named regress-*."""
import base64
import gzip
import io
import json
import os
import subprocess
import sys
import tarfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
from PIL import Image


def put(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def tar_bytes(members, fmt=tarfile.USTAR_FORMAT):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as t:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def zstd(data):
    return subprocess.run(["zstd", "-q", "-c", "-3"], input=data, stdout=subprocess.PIPE,
                          check=True).stdout


photo = Image.open(os.path.join(ROOT, "tests/data/photos/rocket.jpg")).convert("RGB")
small = photo.resize((24, 16))
images = {}
for fmt, ext in (("JPEG", "jpg"), ("PNG", "png"), ("WEBP", "webp")):
    b = io.BytesIO()
    small.save(b, fmt)
    images[ext] = b.getvalue()
b = io.BytesIO()
small.convert("L").save(b, "PNG")
images["gray.png"] = b.getvalue()

samples = [("000000000.jpg", images["jpg"]), ("000000000.txt", b"a rocket"),
           ("000000000.json", b'{"key": "000000000"}'), ("000000001.png", images["png"]),
           ("000000001.txt", b"second")]
put("fuzz_tar", "ustar.tar", tar_bytes(samples))
put("fuzz_tar", "pax.tar", tar_bytes([("d/" + "p" * 120 + ".txt", b"long name")] + samples[:2],
                                     tarfile.PAX_FORMAT))
put("fuzz_tar", "gnu.tar", tar_bytes([("g" * 150 + ".jpg", images["jpg"])], tarfile.GNU_FORMAT))

plain = tar_bytes(samples)
put("fuzz_decompress", "tar.zst", b"\x00" + zstd(plain))
put("fuzz_decompress", "tar.gz", b"\x01" + gzip.compress(plain))
put("fuzz_decompress", "two-members.gz", b"\x03" + gzip.compress(b"one ") + gzip.compress(b"two"))

put("fuzz_config", "tiny.yaml", open(os.path.join(ROOT, "configs/tiny.yaml")).read())
put("fuzz_config", "sets.yaml", "train:\n  steps: 10\ndata:\n  image: {size: 32}\n--set\n"
    "data.laion.shards=[/d/{000..009}.tar, /e/{a,b}.tar]\ntrain.optimizer.lr=3e-4\n")

put("fuzz_url_table", "t.tsv", "\x00url\tcaption\twidth\nhttp://a/1.jpg\tcat\t3\n"
    "http://a/2.jpg\t\"open\t4\nhttp://a/3.jpg\tdog\t5\n")
put("fuzz_url_table", "t.csv", "\x01\xef\xbb\xbfurl,caption,width\r\nhttp://a/1.jpg,\"a, b\",1\r\n"
    "http://a/2.jpg,\"two\nlines\",2\r\n")
put("fuzz_url_table", "t.jsonl", "\x02" + json.dumps({"url": "http://a/1.jpg", "caption": "x",
                                                      "width": 3}) + "\nnot json\n")

doc = {"text_list": ["A rocket on the pad.", "It is tall.", "The sky is blue."],
       "image_info": [{"image_name": "a.jpg", "matched_text_index": 0, "matched_sim": 0.3,
                       "image_base64": base64.b64encode(images["jpg"]).decode()},
                      {"image_name": "b.png", "matched_text_index": 2, "matched_sim": 0.28,
                       "image_base64": base64.b64encode(images["png"]).decode()}],
       "similarity_matrix": [[0.3, 0.1, 0.2], [0.1, 0.2, 0.28]]}
put("fuzz_url_table", "t.mmc4", "\x03" + json.dumps(doc) + "\n")
put("fuzz_mmc4", "doc.json", json.dumps(doc))
put("fuzz_mmc4", "member.json", json.dumps({"text_list": ["one", "two"], "image_info": [
    {"image_name": "x.jpg", "matched_text_index": 1, "matched_sim": 0.5, "image_member": "0.jpg"}],
    "similarity_matrix": [[0.1, 0.5]]}))

manifest = {
    "format": "flamboyance-checkpoint", "format_version": 1, "step": 120, "world_size": 2,
    "config_hash": "ab" * 32, "created": "2026-12-01T22:00:00Z",
    "scalars": {"optimizer_step": 120, "skipped_steps": 0},
    "files": [{"name": "rank_00000.bin", "bytes": 4096, "header_crc32c": "1a2b3c4d"},
              {"name": "rank_00001.bin", "bytes": 4096, "header_crc32c": "0000ffff"}],
    "layout": {"world_size": 2, "blocks": [
        {"name": "perceiver", "numel": 10, "padded_numel": 10, "params": [
            {"name": "perceiver.latents", "shape": [2, 5], "offset": 0, "numel": 10}]},
        {"name": "rest", "numel": 3, "padded_numel": 4, "params": [
            {"name": "gate", "shape": [3], "offset": 0, "numel": 3}]}]}}
put("fuzz_manifest", "manifest.json", json.dumps(manifest, indent=1) + "\n")

for name, data in images.items():
    put("fuzz_image", name.replace(".", "_"), data)
