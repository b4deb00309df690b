"""Bad photos get a clear one-line message, fast, and never break the next good photo."""

from __future__ import annotations

import io
import struct
import time
import zlib

import numpy as np
import pytest
from PIL import Image

from support.photos import encode, portrait
from core.images import MAX_SIDE, ImageError, decode_image, decode_photo, to_gray


def png_header_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims a huge size: a decompression bomb's calling card."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def test_good_jpeg_decodes_to_rgb(fer_faces):
    image = decode_image(fer_faces["happy"][0])
    assert image.shape == (48, 48, 3) and image.dtype == np.uint8


@pytest.mark.parametrize(
    "data, message",
    [
        (b"", "empty"),
        (b"this is a text file, renamed to .jpg\n" * 20, "unsupported format"),
        (png_header_claiming(100_000, 100_000), "limit"),
        (b"\x00\x00\x00\x18ftypheic" + b"\x00" * 200, "HEIC"),
    ],
    ids=["empty", "text-renamed", "bomb-header", "heic"],
)
def test_unusable_files_get_a_clear_message(data, message):
    started = time.monotonic()
    with pytest.raises(ImageError, match=message):
        decode_image(data)
    assert time.monotonic() - started < 3


def test_a_truncated_jpeg_is_refused_with_a_message(fer_faces):
    photo = encode(portrait(fer_faces["sad"][0]))
    assert decode_image(photo).shape == (480, 640, 3)  # whole, it reads
    for cut in (len(photo) // 2, 200):
        with pytest.raises(ImageError, match="damaged or truncated"):
            decode_image(photo[:cut])
    with pytest.raises(ImageError, match="unsupported format"):  # too little left to tell it is a JPEG
        decode_image(photo[:20])


@pytest.mark.parametrize(
    "mode, fmt",
    [("I;16", "PNG"), ("RGBA", "PNG"), ("CMYK", "JPEG"), ("RGB", "WEBP"), ("P", "GIF"), ("1", "PNG"), ("L", "BMP")],
)
def test_odd_formats_and_modes_decode(fer_faces, mode, fmt):
    base = Image.fromarray(portrait(fer_faces["happy"][0]))
    if mode == "I;16":
        converted = Image.fromarray((np.asarray(base.convert("L"), dtype=np.uint16) * 257))
    else:
        converted = base.convert(mode)
    buffer = io.BytesIO()
    converted.save(buffer, format=fmt)
    image = decode_image(buffer.getvalue())
    assert image.shape == (480, 640, 3)
    if mode == "I;16":  # 16-bit values are scaled, not clipped to white
        assert 60 < image.mean() < 200
    gray = decode_image(buffer.getvalue(), gray=True)  # as labelling reads photos: the same picture, in gray
    assert gray.shape == (480, 640)
    assert np.abs(gray.astype(int) - to_gray(image)).mean() < 1.5


def test_animated_gif_uses_first_frame():
    frames = [Image.new("L", (64, 64), value) for value in (10, 250)]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:])
    assert decode_image(buffer.getvalue()).mean() < 50


def test_exif_orientation_is_applied():
    upright = np.zeros((40, 80, 3), np.uint8)
    upright[:, :40] = 255  # left half white
    image = Image.fromarray(upright)
    exif = image.getexif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", exif=exif)
    for decoded in (decode_image(buffer.getvalue()), decode_image(buffer.getvalue(), gray=True)):
        assert decoded.shape[:2] == (80, 40)  # shown portrait, as a phone shows it
        assert decoded[:20].mean() > 200 and decoded[-20:].mean() < 50  # turned clockwise: white on top


def test_huge_photo_is_downscaled_quickly(fer_faces):
    import cv2

    photo = encode(cv2.resize(portrait(fer_faces["happy"][0]), (8000, 6000)), quality=90)
    started = time.monotonic()
    image = decode_image(photo)
    assert max(image.shape) <= MAX_SIDE
    assert time.monotonic() - started < 3


def test_one_pixel_image_decodes_but_is_no_face():
    from core.recognise import recognise

    photo = encode(np.zeros((1, 1, 3), np.uint8), "PNG")
    assert decode_image(photo).shape == (1, 1, 3)
    with pytest.raises(ImageError, match="too small"):
        recognise(None, photo)  # refused before any model is needed


def test_a_long_thin_image_is_reported_at_its_own_size():
    """Issue 24 P12: a 1x5000 image was reported as "1x2048 pixels", the size it was shrunk to."""
    from core.recognise import recognise

    photo = encode(np.zeros((5000, 1, 3), np.uint8), "PNG")
    decoded = decode_photo(photo)
    assert (decoded.width, decoded.height) == (1, 5000) and max(decoded.pixels.shape) == MAX_SIDE
    with pytest.raises(ImageError, match="1x5000 pixels"):
        recognise(None, photo)


def test_the_photos_own_size_is_upright_and_its_scale_known():
    image = Image.fromarray(np.zeros((3000, 4000, 3), np.uint8))
    exif = image.getexif()
    exif[0x0112] = 6  # "rotate 90 CW to display": shown 3000 wide, 4000 high
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", exif=exif)
    decoded = decode_photo(buffer.getvalue())
    assert (decoded.width, decoded.height) == (3000, 4000)
    assert decoded.pixels.shape[:2] == (MAX_SIDE, 1536)
    assert decoded.scale == pytest.approx((3000 / 1536, 4000 / MAX_SIDE))


def test_a_small_file_of_many_16_bit_pixels_decodes_in_little_memory():
    """Issue 24 P5: a 95 KB 16-bit PNG of 7000x7000 pixels took predict.py to 2 GB (float copies of every
    pixel). numpy's allocations are traced; before the fix the peak was over 1 GB."""
    import tracemalloc

    photo = encode(np.full((7000, 7000), 30000, np.uint16), "PNG")
    assert len(photo) < 200_000
    tracemalloc.start()
    try:
        image = decode_image(photo)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert image.shape == (MAX_SIDE, MAX_SIDE, 3) and abs(int(image.mean()) - 30000 // 257) <= 1
    assert peak < 250 * 2**20, f"{peak / 2**20:.0f} MB"
