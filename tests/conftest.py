"""Shared fixtures: a handful of real FER2013 faces and real voice clips, copied into tmp folders."""

from __future__ import annotations

import io
import os
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

SAMPLE_ZIP = ROOT / "samples" / "fer2013-sample.zip"


@pytest.fixture(scope="session")
def sample_zip() -> Path:
    return SAMPLE_ZIP


@pytest.fixture(scope="session")
def fer_faces() -> dict[str, list[bytes]]:
    """Real FER2013 test faces (48x48 JPEG bytes) by emotion."""
    faces: dict[str, list[bytes]] = {}
    with zipfile.ZipFile(SAMPLE_ZIP) as archive:
        for name in sorted(archive.namelist()):
            if name.endswith(".jpg"):
                faces.setdefault(name.split("/")[1], []).append(archive.read(name))
    return faces


@pytest.fixture
def cache_dir(tmp_path) -> Path:
    return tmp_path / "cache"


def portrait(face_jpeg: bytes, size=(640, 480), face_side=240, offset=(0, 0)) -> np.ndarray:
    """An RGB 'photo': a FER face enlarged and set in a larger grey frame (as a webcam shot frames a face)."""
    import cv2

    face = cv2.imdecode(np.frombuffer(face_jpeg, np.uint8), cv2.IMREAD_GRAYSCALE)
    face = cv2.resize(face, (face_side, face_side), interpolation=cv2.INTER_CUBIC)
    width, height = size
    canvas = np.full((height, width), 120, np.uint8)
    top = (height - face_side) // 2 + offset[1]
    left = (width - face_side) // 2 + offset[0]
    canvas[top : top + face_side, left : left + face_side] = face
    return np.stack([canvas] * 3, axis=-1)


def encode(image: np.ndarray, fmt: str = "JPEG", **params) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format=fmt, **params)
    return buffer.getvalue()
