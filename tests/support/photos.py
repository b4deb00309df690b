"""Test photos built from the bundled FER2013 faces: encoded bytes, enlarged into portraits, walking across
frames, written as a video or a folder of class folders; and a zip that lies."""

from __future__ import annotations

import io
import struct
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SAMPLE_ZIP = PROJECT_ROOT / "samples" / "fer2013-sample.zip"
# A happy FER2013 test face that the detector still finds once enlarged into a portrait.
HAPPY_FACE = "test/happy/fer0029960.png"
SURPRISED_FACE = "test/surprise/fer0029002.png"  # likewise, and named surprise (99%) by the shipped model
CENTRE = (200, 120)  # where a 240-pixel face sits in the middle of a 640x480 photo


def fer_face_array(jpeg: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(jpeg)).convert("L"))


def write_video(path: Path, frames, fps: float = 10, fourcc: str = "mp4v") -> Path:
    """RGB 640x480 frames as a video file, written by OpenCV's own FFmpeg."""
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (640, 480))
    assert writer.isOpened()
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def encode(image: np.ndarray, format: str = "JPEG", **options) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format=format, **options)
    return buffer.getvalue()


def portrait(face: np.ndarray | bytes, positions=(CENTRE,), side: int = 240) -> np.ndarray:
    """A 640x480 RGB "photo": the face enlarged to `side` pixels and pasted at each (x, y)."""
    if isinstance(face, bytes):
        face = fer_face_array(face)
    canvas = np.full((480, 640), 128, dtype=np.uint8)
    enlarged = np.asarray(Image.fromarray(face).resize((side, side), Image.Resampling.BICUBIC))
    for x, y in positions:
        canvas[y : y + side, x : x + side] = enlarged
    return np.stack([canvas] * 3, axis=-1)


def walking_face(face: np.ndarray, frames: int = 30) -> list[np.ndarray]:
    """The face drifting right, 4 pixels a frame: the same person throughout."""
    return [portrait(face, [(100 + 4 * i, 120)]) for i in range(frames)]


def photo_folder(root: Path, face: np.ndarray, fer_faces: dict[str, list[bytes]]) -> Path:
    """Class folders of portraits and a FER crop, a photo without a face, and junk."""
    (root / "happy").mkdir(parents=True)
    (root / "sad").mkdir()
    for number in range(3):
        (root / "happy" / f"{number}.jpg").write_bytes(encode(portrait(face, [(100 + 60 * number, 120)])))
    (root / "sad" / "crop.jpg").write_bytes(fer_faces["sad"][0])
    (root / "two.png").write_bytes(encode(portrait(face, [(60, 140), (380, 140)], side=200), "PNG"))
    (root / "wall.png").write_bytes(encode(np.full((480, 640, 3), 128, dtype=np.uint8), "PNG"))
    (root / "notes.txt").write_text("not a photo")
    (root / "broken.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    (root / ".DS_Store").write_bytes(b"\0\0")
    return root


def lie_about_size(archive: Path, member: str, size: int) -> None:
    """Rewrite the uncompressed size a zip declares for `member` (local header and central directory),
    as a zip bomb does to slip past a size check."""
    data = bytearray(archive.read_bytes())
    with zipfile.ZipFile(archive) as zipped:
        info = zipped.getinfo(member)
    struct.pack_into("<I", data, info.header_offset + 22, size)
    name, central = member.encode(), -1
    while True:  # its entry in the central directory
        central = data.find(b"PK\x01\x02", central + 1)
        assert central >= 0, f"{member} is not in the central directory"
        if struct.unpack_from("<H", data, central + 28)[0] == len(name) and data[central + 46 :].startswith(name):
            break
    struct.pack_into("<I", data, central + 24, size)
    archive.write_bytes(bytes(data))
