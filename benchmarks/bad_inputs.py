"""What a user sees for each kind of bad photo: the message, the time it took, the memory it cost.

    python benchmarks/bad_inputs.py

Each photo is made here and goes through core.recognise.recognise, the path that
scripts/predict.py and the Try-It page share; the table is what the README shows.
"""

from __future__ import annotations

import io
import resource
import struct
import sys
import time
import zipfile
import zlib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from core.images import ImageError  # noqa: E402
from core.paths import SAMPLES_DIR  # noqa: E402
from core.recognise import load_classifier, recognise  # noqa: E402


def save(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def png_claiming(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))


def cases() -> list[tuple[str, str, bytes]]:
    with zipfile.ZipFile(SAMPLES_DIR / "fer2013-sample.zip") as archive:
        face = Image.open(io.BytesIO(archive.read(sorted(n for n in archive.namelist() if "/happy/" in n)[4])))
    portrait = Image.new("L", (640, 480), 120)
    portrait.paste(face.resize((240, 240), Image.BICUBIC), (200, 120))
    jpeg = save(portrait, "JPEG")
    crowd = Image.new("L", (1600, 900), 120)
    for index in range(12):
        row, col = divmod(index, 4)
        crowd.paste(face.resize((200, 200), Image.BICUBIC), (20 + col * 390, 20 + row * 290))
    rotated = portrait.transpose(Image.Transpose.ROTATE_90)  # stored sideways, as phones store photos...
    exif = rotated.getexif()
    exif[0x0112] = 6  # ...with the EXIF tag that says "turn me upright"
    noise = Image.fromarray(np.random.default_rng(0).integers(0, 255, (480, 640), dtype=np.uint8))
    return [  # (what it is, the file name a user would upload, its bytes)
        ("empty file", "empty.jpg", b""),
        ("text renamed .jpg", "notes.jpg", b"hello, I am not a photo\n" * 10),
        ("truncated JPEG (first 40%)", "truncated.jpg", jpeg[: len(jpeg) * 2 // 5]),
        ("PNG header claiming 100000x100000", "bomb.png", png_claiming(100_000, 100_000)),
        ("HEIC", "iphone.heic", b"\x00\x00\x00\x18ftypheic" + b"\x00" * 500),
        ("1x1 pixel", "pixel.png", save(Image.new("RGB", (1, 1)), "PNG")),
        ("16-bit PNG", "deep.png", save(Image.fromarray(np.asarray(portrait, dtype=np.uint16) * 257), "PNG")),
        ("PNG with alpha", "alpha.png", save(portrait.convert("RGBA"), "PNG")),
        ("CMYK JPEG", "cmyk.jpg", save(portrait.convert("CMYK"), "JPEG")),
        ("animated GIF", "animated.gif", save(portrait.convert("P"), "GIF", save_all=True,
                                              append_images=[noise.convert("P")])),
        ("WebP", "photo.webp", save(portrait, "WEBP")),
        ("EXIF-rotated JPEG", "sideways.jpg", save(rotated, "JPEG", exif=exif)),
        ("no face (noise)", "noise.jpg", save(noise, "JPEG")),
        ("12 faces", "crowd.jpg", save(crowd, "JPEG")),
        ("8000x6000 photo", "huge.jpg", save(portrait.resize((8000, 6000)), "JPEG", quality=90)),
        ("48x48 FER crop", "fer.jpg", save(face, "JPEG")),
    ]


def main() -> int:
    classifier = load_classifier()
    recognise(classifier, cases()[-1][2])  # warm-up: the first call sizes the model's buffers
    print("| photo | what the user sees | time |")
    print("|---|---|---|")
    for name, _, data in cases():
        started = time.perf_counter()
        try:
            result = recognise(classifier, data)
            faces = ", ".join(f.emotion for f in result.faces[:3]) + (" ..." if len(result.faces) > 3 else "")
            seen = f"{len(result.faces)} face(s): {faces}" if result.faces else ""
            seen = "; ".join(s for s in (seen, result.message()) if s)
        except ImageError as error:
            seen = f"error: {error}"
        elapsed = time.perf_counter() - started
        print(f"| {name} | {seen} | {elapsed * 1000:.0f} ms |")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak memory of the whole process (TensorFlow and the model included): {peak:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
