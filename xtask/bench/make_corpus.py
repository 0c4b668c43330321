#!/usr/bin/env python3
"""Deterministic benchmark corpus for `cargo xtask bench image` (seed 20260101).

Needs numpy, pillow, scikit-image (pinned in requirements.txt) and exiftool.
usage: make_corpus.py OUTDIR

Pixels come from the photos shipped inside scikit-image, mosaicked and upscaled, with real fine
texture (gravel/grass/brick), luma grain and chroma noise blended in, so that encoders and
resizers see photographic detail rather than flat synthetic fields.

  a_24mp_o6.jpg   6000x4000 stored sideways, baseline q90 4:2:0, EXIF Orientation=6 (displays
                  4000x6000), with camera EXIF, GPS, a thumbnail, XMP and IPTC
  c_8mp_rgb16.png 3464x2309 RGB 16 bit/channel (12 significant bits), with eXIf (GPS) and XMP
"""
import os
import struct
import subprocess
import sys
import zlib

import numpy as np
import skimage.data as skd
from PIL import Image

OUT = sys.argv[1]
os.makedirs(OUT, exist_ok=True)
rng = np.random.default_rng(20260101)

PHOTOS = {
    "astronaut": skd.astronaut, "coffee": skd.coffee, "chelsea": skd.chelsea, "rocket": skd.rocket,
    "hubble": skd.hubble_deep_field, "ihc": skd.immunohistochemistry, "retina": skd.retina,
}
TEXTURES = [skd.gravel(), skd.grass(), skd.brick()]


def cover(arr, w, h):
    im = Image.fromarray(arr)
    s = max(w / im.width, h / im.height)
    nw, nh = max(w, round(im.width * s)), max(h, round(im.height * s))
    im = im.resize((nw, nh), Image.LANCZOS)
    l, t = (nw - w) // 2, (nh - h) // 2
    return np.asarray(im.crop((l, t, l + w, t + h)), dtype=np.float32)


def texture_field(w, h):
    tex = np.empty((h, w), np.float32)
    for y in range(0, h, 512):
        for x in range(0, w, 512):
            t = TEXTURES[rng.integers(len(TEXTURES))].astype(np.float32)
            if rng.integers(2):
                t = t[:, ::-1]
            if rng.integers(2):
                t = t[::-1, :]
            tex[y:y + 512, x:x + 512] = t[: min(512, h - y), : min(512, w - x)]
    return (tex - tex.mean()) / (tex.std() + 1e-6)


def scene(w, h, names, cols, rows, grain=3.5, chroma=1.5, tex=0.07):
    tw, th = -(-w // cols), -(-h // rows)
    img = np.zeros((rows * th, cols * tw, 3), np.float32)
    for i, n in enumerate(names[: cols * rows]):
        r, c = divmod(i, cols)
        img[r * th:(r + 1) * th, c * tw:(c + 1) * tw] = cover(PHOTOS[n](), tw, th)
    img = img[:h, :w]
    img *= (1.0 + tex * texture_field(w, h))[..., None]
    img += rng.normal(0, grain, (h, w, 1)).astype(np.float32)
    img += rng.normal(0, chroma, (h, w, 3)).astype(np.float32)
    return np.clip(img, 0, 255)


def exiftool(path, *tags):
    subprocess.run(["exiftool", "-q", "-overwrite_original", *tags, path], check=True)


META = [
    "-Make=Canon", "-Model=Canon EOS 5D Mark IV", "-LensModel=EF24-70mm f/2.8L II USM",
    "-Artist=Test Artist", "-Copyright=(c) 2026 Test Artist", "-DateTimeOriginal=2026:05:17 14:03:22",
    "-ExposureTime=1/250", "-FNumber=8", "-ISO=200",
    "-GPSLatitude=48.858370", "-GPSLatitudeRef=N", "-GPSLongitude=2.294481", "-GPSLongitudeRef=E",
    "-XMP-dc:Creator=Test Artist", "-XMP-dc:Subject=gallery", "-XMP-photoshop:City=Paris",
    "-XMP-exif:GPSLatitude=48.858370 N", "-XMP-exif:GPSLongitude=2.294481 E",
]
IPTC = ["-IPTC:By-line=Test Artist", "-IPTC:City=Paris", "-IPTC:Keywords=gallery"]

# a) 24 MP portrait scene stored rotated 90° counter-clockwise; Orientation=6 turns it back.
a = scene(4000, 6000, ["astronaut", "coffee", "chelsea", "rocket", "hubble", "ihc"], 2, 3, grain=4.5)
a8 = np.ascontiguousarray(np.rot90(a.astype(np.uint8), k=1))
pa = os.path.join(OUT, "a_24mp_o6.jpg")
Image.fromarray(a8).save(pa, quality=90, subsampling="4:2:0", optimize=False, progressive=False)
thumb = os.path.join(OUT, ".thumb.jpg")
Image.fromarray(a8).resize((160, 120), Image.LANCZOS).save(thumb, quality=75)
exiftool(pa, *META, *IPTC, "-Orientation#=6", f"-ThumbnailImage<={thumb}")
os.remove(thumb)
del a, a8

# c) 8 MP 16-bit RGB PNG (12 significant bits, like a raw converter's output), written directly
# because Pillow cannot write 16-bit RGB PNG.
c = scene(3464, 2309, ["retina", "astronaut", "coffee", "chelsea"], 2, 2, grain=0.8, chroma=0.4, tex=0.04)
c16 = np.round(c * (4095.0 / 255.0)).astype(np.uint16) << 4
h, w, _ = c16.shape
rows = c16.astype(">u2").view(np.uint8).reshape(h, w * 6)
raw = np.empty((h, w * 6 + 1), np.uint8)
raw[:, 0] = 2  # filter 'Up'
raw[0, 0] = 0
raw[0, 1:] = rows[0]
raw[1:, 1:] = (rows[1:].astype(np.int16) - rows[:-1].astype(np.int16)).astype(np.uint8)


def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


pc = os.path.join(OUT, "c_8mp_rgb16.png")
with open(pc, "wb") as f:
    f.write(b"\x89PNG\r\n\x1a\n")
    f.write(chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)))
    f.write(chunk(b"IDAT", zlib.compress(raw.tobytes(), 6)))
    f.write(chunk(b"IEND", b""))
exiftool(pc, *META)

for name in sorted(os.listdir(OUT)):
    print(f"{os.path.getsize(os.path.join(OUT, name)):>10}  {name}")
