"""Decoding photos: bytes -> RGB array, upright, bounded in size, with clear errors.

Pillow reads the header before any pixel, so a decompression bomb is refused
before it costs memory; it also applies EXIF orientation and reads the odd
formats phones and the web produce (CMYK JPEG, 16-bit PNG, alpha, GIF, WebP).
Large photos are decoded reduced wherever the format allows (a JPEG at a fraction of its
size, others halved in Pillow before any copy), so a small file of many pixels costs little memory.
"""

from __future__ import annotations

import io
import os
import stat
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

MAX_FILE_BYTES = 20 * 1024 * 1024  # an upload above this is refused outright
MAX_PIXELS = 50_000_000  # 8000x6000 passes; a 100000x100000 bomb does not
MAX_SIDE = 2048  # decoded photos are downscaled to this; detection needs far less
_ORIENTATION = 0x0112  # the EXIF tag; values 5-8 turn the photo a quarter, swapping its width and height
_REDUCIBLE_MODES = ("L", "LA", "RGB", "RGBA", "I", "F", "CMYK")  # the modes Image.reduce takes

Image.MAX_IMAGE_PIXELS = MAX_PIXELS


class ImageError(ValueError):
    """A photo that cannot be used, with a message fit to show the user."""


@dataclass(frozen=True)
class DecodedPhoto:
    """A decoded photo: its pixels (upright, at most MAX_SIDE a side) and the photo's own upright size."""

    pixels: np.ndarray  # (height, width, 3) RGB uint8, or (height, width) gray
    width: int  # the photo's own size, in its own pixels: what boxes are reported in
    height: int

    @property
    def scale(self) -> tuple[float, float]:
        """(x, y): photo pixels per decoded pixel, 1.0 when the photo was not shrunk."""
        return self.width / self.pixels.shape[1], self.height / self.pixels.shape[0]


def read_photo(path: str | os.PathLike) -> bytes:
    """A photo file's bytes, refused before a byte is read when it is no regular file (a folder, a device
    like /dev/zero, a pipe, which opening alone would wait on) or larger than MAX_FILE_BYTES.
    Raises ImageError, or OSError (no such file, no permission)."""
    status = os.stat(path)
    if stat.S_ISDIR(status.st_mode):
        raise ImageError("this is a folder, not a photo")
    if not stat.S_ISREG(status.st_mode):
        raise ImageError("not a regular file (a device or a pipe): name a photo")
    if status.st_size > MAX_FILE_BYTES:
        raise ImageError(f"the file is {status.st_size / 2**20:.0f} MB; the limit is {MAX_FILE_BYTES // 2**20} MB")
    with open(path, "rb") as handle:
        data = handle.read(MAX_FILE_BYTES + 1)  # a file that grew since: still no more than the limit is read
    if len(data) > MAX_FILE_BYTES:
        raise ImageError(f"the file is over {MAX_FILE_BYTES // 2**20} MB; the limit is {MAX_FILE_BYTES // 2**20} MB")
    return data


def decode_image(data: bytes, max_side: int = MAX_SIDE, gray: bool = False) -> np.ndarray:
    """Decode image bytes into an upright RGB uint8 array of at most `max_side` pixels a side.

    `gray` gives a 2-D gray array instead, for work that never shows the photo: a JPEG is then decoded
    from its brightness channel alone, which skips the colour conversion."""
    return decode_photo(data, max_side, gray).pixels


def decode_photo(data: bytes, max_side: int = MAX_SIDE, gray: bool = False) -> DecodedPhoto:
    """`decode_image` that also says the photo's own size, so that what is found in the (possibly
    shrunk) pixels can be reported in the photo's own pixels."""
    if not data:
        raise ImageError("the file is empty")
    if len(data) > MAX_FILE_BYTES:
        raise ImageError(f"the file is {len(data) / 2**20:.0f} MB; the limit is {MAX_FILE_BYTES // 2**20} MB")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            width, height = image.size
            if width * height > MAX_PIXELS:
                raise ImageError(f"the image is {width}x{height} pixels; the limit is {MAX_PIXELS // 1_000_000} megapixels")
            if image.getexif().get(_ORIENTATION) in (5, 6, 7, 8):
                width, height = height, width
            if image.format == "JPEG":
                # decode big JPEGs at a reduced scale: fast, little memory
                image.draft("L" if gray else "RGB", (max_side, max_side))
            image.seek(0)  # first frame of an animation
            image = ImageOps.exif_transpose(_reduced(image, max_side))
            pixels = _to_array(image)
    except ImageError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise ImageError(_unreadable_message(data, error)) from None
    except (OSError, ValueError, SyntaxError, EOFError) as error:
        raise ImageError(f"the image is damaged or truncated ({error})") from None
    if min(pixels.shape[:2]) < 1:
        raise ImageError("the image has no pixels")
    pixels = downscale(pixels, max_side)
    if gray:
        pixels = to_gray(pixels)
    elif pixels.ndim == 2:
        pixels = np.stack([pixels] * 3, axis=-1)
    return DecodedPhoto(pixels, width, height)


def _reduced(image: Image.Image, max_side: int) -> Image.Image:
    """The image shrunk by a whole factor that keeps it at least `max_side` a side (a box average inside
    Pillow, before numpy copies it), so the exact resize to `max_side` works on a small array."""
    factor = max(image.size) // max_side
    if factor < 2 or image.mode not in _REDUCIBLE_MODES:
        return image
    return image.reduce(factor)


def _to_array(image: Image.Image) -> np.ndarray:
    """RGB uint8, or 2-D gray uint8 for a gray photo (turned RGB only once it is small)."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        # Pillow's own conversion clips 16-bit values to 255; scale them instead, in integers (no float copy).
        values = np.asarray(image)
        if values.max() > 255:
            values = values // 257  # 16-bit to 8-bit in integers: no float copy of every pixel
        return np.clip(values, 0, 255).astype(np.uint8)
    if image.mode == "L":
        return np.asarray(image)
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        # Transparent areas become white, as a browser shows them on a white page.
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, image.convert("RGBA"))
    return np.asarray(image.convert("RGB"))


def _unreadable_message(data: bytes, error: Exception) -> str:
    if isinstance(error, (Image.DecompressionBombError, Image.DecompressionBombWarning)):
        return f"the image is too large to decode safely (limit {MAX_PIXELS // 1_000_000} megapixels)"
    if data[4:12] in (b"ftypheic", b"ftypheix", b"ftypmif1", b"ftypmsf1", b"ftypavif"):
        return "unsupported format (HEIC/AVIF): please send a JPEG or PNG"
    return "unsupported format: this is not an image that can be read (use JPEG, PNG, WebP, GIF or BMP)"


def downscale(image: np.ndarray, max_side: int) -> np.ndarray:
    """Shrink an image so that its longest side is at most `max_side` (never enlarges)."""
    import cv2

    height, width = image.shape[:2]
    scale = max_side / max(height, width)
    if scale >= 1:
        return image
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def to_gray(image: np.ndarray) -> np.ndarray:
    """RGB (or already gray) uint8 image -> 2-D gray uint8."""
    import cv2

    if image.ndim == 2:
        return image
    return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
