"""The bad photos users send, made on demand from the bundled sample: one of each kind the app must answer
with a message (or an answer) instead of a crash.

    from samples.bad_photos import bad_photos

benchmarks/bad_inputs.py times each through core (docs/robustness.md's table of what a user sees), and the browser
test uploads each to the Try-It page; both read them here, since benchmarks and tests never import each other.
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

SAMPLE_ZIP = Path(__file__).resolve().parent / "fer2013-sample.zip"


@dataclass(frozen=True)
class BadPhoto:
    kind: str  # what it is, in docs/robustness.md's words: "truncated JPEG (first 40%)"
    file_name: str  # the name a user would upload it under
    data: bytes


def encoded(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims `width` x `height` pixels: a decompression bomb's calling card."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))


def bad_photos() -> list[BadPhoto]:
    with zipfile.ZipFile(SAMPLE_ZIP) as archive:
        face = Image.open(io.BytesIO(archive.read(sorted(n for n in archive.namelist() if "/happy/" in n)[4])))
    portrait = Image.new("L", (640, 480), 120)
    portrait.paste(face.resize((240, 240), Image.BICUBIC), (200, 120))
    jpeg = encoded(portrait, "JPEG")
    crowd = Image.new("L", (1600, 900), 120)
    for index in range(12):
        row, col = divmod(index, 4)
        crowd.paste(face.resize((200, 200), Image.BICUBIC), (20 + col * 390, 20 + row * 290))
    rotated = portrait.transpose(Image.Transpose.ROTATE_90)  # stored sideways, as phones store photos...
    exif = rotated.getexif()
    exif[0x0112] = 6  # ...with the EXIF tag that says "turn me upright"
    noise = Image.fromarray(np.random.default_rng(0).integers(0, 255, (480, 640), dtype=np.uint8))
    return [
        BadPhoto("empty file", "empty.jpg", b""),
        BadPhoto("text renamed .jpg", "notes.jpg", b"hello, I am not a photo\n" * 10),
        BadPhoto("truncated JPEG (first 40%)", "truncated.jpg", jpeg[: len(jpeg) * 2 // 5]),
        BadPhoto("PNG header claiming 100000x100000", "bomb.png", png_claiming(100_000, 100_000)),
        BadPhoto("HEIC", "iphone.heic", b"\x00\x00\x00\x18ftypheic" + b"\x00" * 500),
        BadPhoto("1x1 pixel", "pixel.png", encoded(Image.new("RGB", (1, 1)), "PNG")),
        BadPhoto("16-bit PNG", "deep.png", encoded(Image.fromarray(np.asarray(portrait, dtype=np.uint16) * 257), "PNG")),
        BadPhoto("PNG with alpha", "alpha.png", encoded(portrait.convert("RGBA"), "PNG")),
        BadPhoto("CMYK JPEG", "cmyk.jpg", encoded(portrait.convert("CMYK"), "JPEG")),
        BadPhoto("animated GIF", "animated.gif", encoded(portrait.convert("P"), "GIF", save_all=True,
                                                        append_images=[noise.convert("P")])),
        BadPhoto("WebP", "photo.webp", encoded(portrait, "WEBP")),
        BadPhoto("EXIF-rotated JPEG", "sideways.jpg", encoded(rotated, "JPEG", exif=exif)),
        BadPhoto("no face (noise)", "noise.jpg", encoded(noise, "JPEG")),
        BadPhoto("12 faces", "crowd.jpg", encoded(crowd, "JPEG")),
        BadPhoto("8000x6000 photo", "huge.jpg", encoded(portrait.resize((8000, 6000)), "JPEG", quality=90)),
        BadPhoto("48x48 FER crop", "fer.jpg", encoded(face, "JPEG")),
    ]
