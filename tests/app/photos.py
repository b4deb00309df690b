"""Test photos built from the bundled FER2013 faces: encoded bytes, enlarged portraits."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SAMPLE_ZIP = PROJECT_ROOT / "samples" / "fer2013-sample.zip"
# A happy FER2013 test face that OpenCV's detector still finds once enlarged into a portrait.
HAPPY_FACE = "test/happy/PublicTest_12707362.jpg"


def fer_face_array(jpeg: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(jpeg)).convert("L"))


def encode(image: np.ndarray, format: str = "JPEG") -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format=format)
    return buffer.getvalue()


def portrait(face: np.ndarray, positions: list[tuple[int, int]], side: int = 240) -> np.ndarray:
    """A 640x480 gray "photo": the face enlarged to `side` pixels and pasted at each (x, y)."""
    canvas = np.full((480, 640), 128, dtype=np.uint8)
    enlarged = np.asarray(Image.fromarray(face).resize((side, side), Image.Resampling.BICUBIC))
    for x, y in positions:
        canvas[y : y + side, x : x + side] = enlarged
    return np.stack([canvas] * 3, axis=-1)
