"""Decoding photos: bytes -> RGB array, upright, bounded in size, with clear errors.

Pillow reads the header before any pixel, so a decompression bomb is refused
before it costs memory; it also applies EXIF orientation and reads the odd
formats phones and the web produce (CMYK JPEG, 16-bit PNG, alpha, GIF, WebP).
"""

from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

MAX_FILE_BYTES = 20 * 1024 * 1024  # an upload above this is refused outright
MAX_PIXELS = 50_000_000  # 8000x6000 passes; a 100000x100000 bomb does not
MAX_SIDE = 2048  # decoded photos are downscaled to this; detection needs far less

Image.MAX_IMAGE_PIXELS = MAX_PIXELS


class ImageError(ValueError):
    """A photo that cannot be used, with a message fit to show the user."""


def decode_image(data: bytes, max_side: int = MAX_SIDE, gray: bool = False) -> np.ndarray:
    """Decode image bytes into an upright RGB uint8 array of at most `max_side` pixels a side.

    `gray` gives a 2-D gray array instead, for work that never shows the photo: a JPEG is then decoded
    from its brightness channel alone, which skips the colour conversion."""
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
            if image.format == "JPEG":
                # decode big JPEGs at a reduced scale: fast, little memory
                image.draft("L" if gray else "RGB", (max_side, max_side))
            image.seek(0)  # first frame of an animation
            image = ImageOps.exif_transpose(image)
            pixels = np.asarray(image) if gray and image.mode == "L" else _to_rgb(image)
            if gray:
                pixels = to_gray(pixels)
    except ImageError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise ImageError(_unreadable_message(data, error)) from None
    except (OSError, ValueError, SyntaxError, EOFError) as error:
        raise ImageError(f"the image is damaged or truncated ({error})") from None
    if min(pixels.shape[:2]) < 1:
        raise ImageError("the image has no pixels")
    return downscale(pixels, max_side)


def _to_rgb(image: Image.Image) -> np.ndarray:
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        # Pillow's own conversion clips 16-bit values to 255; scale them instead.
        values = np.asarray(image, dtype=np.float64)
        peak = max(float(values.max()), 1.0)
        gray = (values * (255.0 / (65535.0 if peak > 255 else 255.0))).clip(0, 255).astype(np.uint8)
        return np.stack([gray] * 3, axis=-1)
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
