#!/usr/bin/env python3
"""Fixtures and PIL references for tests/codec/test_image.cpp.

Usage: make_fixtures.py PHOTO_DIR OUT_DIR

Encodes the real photos as JPEG (q90; also a grayscale and a CMYK JPEG), PNG (RGB, gray,
palette, RGBA), WebP, GIF (palette, gray, transparent, animated, interlaced or not) and BMP (24-bit,
8-bit palette and gray, 1-bit, 32-bit), and writes what python3-pil makes of them as raw RGB bytes:
  decode  Image.open(f).convert("RGB")
  clip    OpenFlamingo's eval transform without normalisation: torchvision Resize(size) on a PIL
          image (shorter side -> size, longer -> int(size * long / short)), PIL BICUBIC, then
          CenterCrop(size) (offsets int(round(diff / 2.0)))
  resize  Image.resize((w, h), BICUBIC) of the decoded image
OUT_DIR/manifest.txt has one line per reference: `kind input size_or_0 width height raw_file`.
Also writes malformed inputs: huge.png (IHDR 100000x100000), wide.png (IHDR 3000000x2),
huge.jpg (SOF 60000x60000), zero.png (IHDR width 0), and region.*.jpg (listed in region.txt) for
the region decode's bit-exactness test.
"""
import os
import struct
import sys
import zlib

import numpy as np
from PIL import Image

photo_dir, out = sys.argv[1], sys.argv[2]
os.makedirs(out, exist_ok=True)
manifest = []


def path(name):
    return os.path.join(out, name)


def rgb_of(name):
    return Image.open(path(name)).convert("RGB")


def reference(kind, name, size, image):
    raw = f"{name}.{kind}{size}.{image.width}x{image.height}.rgb"
    with open(path(raw), "wb") as f:
        f.write(image.tobytes())
    manifest.append(f"{kind} {name} {size} {image.width} {image.height} {raw}")


def clip(image, size):
    w, h = image.size
    short, long = (w, h) if w <= h else (h, w)
    new_long = int(size * long / short)
    nw, nh = (size, new_long) if w <= h else (new_long, size)
    if (nw, nh) != (w, h):
        image = image.resize((nw, nh), Image.BICUBIC)
    left = int(round((nw - size) / 2.0))
    top = int(round((nh - size) / 2.0))
    return image.crop((left, top, left + size, top + size))


def chunk(kind, data):
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))


def png16(image, color_type=2):
    """A 16-bit PNG (PIL cannot write one), RGB (color_type 2) or gray (0), whose high bytes are
    `image` and low bytes noise."""
    high = np.asarray(image, dtype=np.uint16)
    low = np.random.default_rng(3).integers(0, 256, high.shape, dtype=np.uint16)
    rows = (high * 256 + low).astype(">u2").reshape(image.height, -1)
    raw = b"".join(b"\x00" + row.tobytes() for row in rows)
    ihdr = struct.pack(">IIBBBBB", image.width, image.height, 16, color_type, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) +
            chunk(b"IEND", b""))


photos = {n: Image.open(os.path.join(photo_dir, n)) for n in sorted(os.listdir(photo_dir))
          if n.endswith((".png", ".jpg"))}
files = []
for n, im in photos.items():
    stem = os.path.splitext(n)[0]
    rgb = im.convert("RGB")
    rgb.save(path(stem + ".q90.jpg"), quality=90)
    rgb.save(path(stem + ".rgb.png"))
    rgb.save(path(stem + ".q90.webp"), quality=90)
    files += [stem + ".q90.jpg", stem + ".rgb.png", stem + ".q90.webp"]
    if im.mode == "L":
        im.save(path(stem + ".gray.jpg"), quality=90)
        im.save(path(stem + ".gray.png"))
        files += [stem + ".gray.jpg", stem + ".gray.png"]
coffee = photos["coffee.png"].convert("RGB")
coffee.convert("CMYK").save(path("coffee.cmyk.jpg"), quality=90)
photos["chelsea.png"].convert("RGB").convert("P", palette=Image.ADAPTIVE, colors=200).save(
    path("chelsea.palette.png"))
rgba = photos["astronaut.png"].convert("RGBA")
rgba.putalpha(Image.linear_gradient("L").resize(rgba.size))
rgba.save(path("astronaut.rgba.png"))
camera = photos["camera.png"]
Image.merge("LA", (camera, Image.linear_gradient("L").resize(camera.size))).save(
    path("camera.la.png"))
photos["grass.png"].convert("1").save(path("grass.bw.png"))
photos["chelsea.png"].convert("RGB").convert("P", palette=Image.ADAPTIVE, colors=64).save(
    path("chelsea.trns.png"), transparency=0)
rocket = photos["rocket.jpg"].convert("RGB")
rocket.save(path("rocket.progressive.jpg"), quality=90, progressive=True)
rocket.save(path("rocket.444.jpg"), quality=90, subsampling=0)
files += ["camera.la.png", "grass.bw.png", "chelsea.trns.png", "rocket.progressive.jpg",
          "rocket.444.jpg", "coffee.rgb16.png"]
# A small crop, so that CLIP preprocessing upscales.
photos["rocket.jpg"].convert("RGB").crop((300, 100, 340, 130)).save(path("rocket.small.png"))
files += ["coffee.cmyk.jpg", "chelsea.palette.png", "astronaut.rgba.png", "rocket.small.png"]

# GIF (first frame; PIL writes interlaced GIFs unless told not to) and BMP, which PIL decodes and
# OpenFlamingo therefore trains on; ours must be bit-exact.
chelsea = photos["chelsea.png"].convert("RGB")
chelsea.save(path("chelsea.gif"))
chelsea.save(path("chelsea.flat.gif"), interlace=False)
photos["camera.png"].save(path("camera.gray.gif"))
chelsea.convert("P", palette=Image.ADAPTIVE, colors=64).save(path("chelsea.trns.gif"),
                                                              transparency=0)
second = photos["rocket.jpg"].convert("RGB").resize(coffee.size)
coffee.convert("P", palette=Image.ADAPTIVE, colors=100).save(
    path("coffee.anim.gif"), save_all=True, duration=100, loop=0,
    append_images=[second.convert("P", palette=Image.ADAPTIVE)])
coffee.save(path("coffee.bmp"))
chelsea.convert("P", palette=Image.ADAPTIVE, colors=200).save(path("chelsea.palette.bmp"))
photos["camera.png"].save(path("camera.gray.bmp"))
photos["grass.png"].convert("1").save(path("grass.bw.bmp"))
rgba.save(path("astronaut.rgba.bmp"))
files += ["chelsea.gif", "chelsea.flat.gif", "camera.gray.gif", "chelsea.trns.gif",
          "coffee.anim.gif", "coffee.bmp", "chelsea.palette.bmp", "camera.gray.bmp",
          "grass.bw.bmp", "astronaut.rgba.bmp"]

with open(path("coffee.rgb16.png"), "wb") as f:
    f.write(png16(coffee))
with open(path("camera.gray16.png"), "wb") as f:  # not a PIL reference: PIL clips it to 255
    f.write(png16(photos["camera.png"], color_type=0))

for name in files:
    image = rgb_of(name)
    reference("decode", name, 0, image)
    for size in (224, 32, 256):
        reference("clip", name, size, clip(image, size))
for name, (w, h) in {"chelsea.rgb.png": (97, 301), "coffee.q90.jpg": (600, 133),
                     "rocket.small.png": (333, 17), "astronaut.rgb.png": (512, 200),
                     "camera.gray.png": (1000, 1000)}.items():
    reference("resize", name, 0, rgb_of(name).resize((w, h), Image.BICUBIC))


def png_with_ihdr(width, height):
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" + b"\x00" * 30)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) +
            chunk(b"IEND", b""))


with open(path("huge.png"), "wb") as f:
    f.write(png_with_ihdr(100000, 100000))
with open(path("wide.png"), "wb") as f:
    f.write(png_with_ihdr(3000000, 2))
with open(path("zero.png"), "wb") as f:
    f.write(png_with_ihdr(0, 10))
# A real JPEG whose SOF claims 60000x60000: the header alone must reject it.
jpeg = bytearray(open(path("chelsea.q90.jpg"), "rb").read())
sof = next(i for i in range(len(jpeg) - 1) if jpeg[i] == 0xFF and jpeg[i + 1] in (0xC0, 0xC2))
jpeg[sof + 5:sof + 9] = struct.pack(">HH", 60000, 60000)
with open(path("huge.jpg"), "wb") as f:
    f.write(bytes(jpeg))

# Region decodes (decode_clip_preprocess): JPEG crops of the photos at landscape, portrait, square
# and odd sizes, small (upscaled) to large (DCT-scalable), in every chroma subsampling, progressive,
# optimised Huffman tables, grayscale and CMYK. region.txt lists them.
region = []
sizes = [(341, 256), (384, 256), (455, 256), (256, 341), (256, 384), (256, 256), (257, 333),
         (301, 203), (97, 301), (511, 300), (1000, 600), (225, 1000), (600, 225), (640, 427),
         (33, 17), (1023, 1025)]
variants = [("420", dict(subsampling=2)), ("422", dict(subsampling=1)),
            ("444", dict(subsampling=0)), ("prog", dict(subsampling=2, progressive=True)),
            ("opt422", dict(subsampling=1, optimize=True)), ("gray", {}), ("cmyk", {})]
names = sorted(photos)
for i, (w, h) in enumerate(sizes):
    for j, (variant, args) in enumerate(variants):
        photo = photos[names[(i + j) % len(names)]].convert("RGB")
        pw, ph = photo.size
        cw, ch = min(pw, max(w // 2, 16)), min(ph, max(h // 2, 16))
        left, top = (i * 37 + j * 11) % (pw - cw + 1), (i * 53 + j * 7) % (ph - ch + 1)
        image = photo.crop((left, top, left + cw, top + ch)).resize((w, h), Image.BICUBIC)
        if variant == "gray":
            image = image.convert("L")
        elif variant == "cmyk":
            image = image.convert("CMYK")
        name = f"region.{w}x{h}.{variant}.jpg"
        image.save(path(name), quality=95, **args)
        region.append(name)
with open(path("region.txt"), "w") as f:
    f.write("\n".join(region) + "\n")

with open(path("manifest.txt"), "w") as f:
    f.write("\n".join(manifest) + "\n")
