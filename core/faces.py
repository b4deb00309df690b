"""Finding faces in a photo and cutting them out the way FER2013 frames them.

OpenCV's Haar cascade ships inside opencv-python-headless, so detection works
offline on any machine that installed the requirements.
"""

from __future__ import annotations

import queue
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import cv2
import numpy as np

from core.images import downscale

INPUT_SIZE = 48  # FER2013's face crops are 48x48 grayscale: the input of every model
DETECTION_SIDE = 400  # photos are searched at this size: a face of MIN_FACE_FRACTION is still ~20 px, the
# cascade's smallest window, and a 640x480 photo is searched 1.8x faster than at full size
FACE_MARGIN = 0.03  # FER2013's crops are ~5% wider than the Haar box around the same face
MIN_FACE_FRACTION = 0.06  # ignore "faces" smaller than this share of the photo's shorter side
MIN_FACE_SIDE = 16  # below this there is no face to read
SMALL_IMAGE_SIDE = 64  # an image this small (longest side, pixels) is already a face crop, as in FER2013


@dataclass(frozen=True)
class Box:
    x: int
    y: int
    width: int
    height: int

    @property
    def area(self) -> int:
        return self.width * self.height

    def as_list(self) -> list[int]:
        return [self.x, self.y, self.width, self.height]


def _load_cascade() -> cv2.CascadeClassifier:
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    if cascade.empty():
        raise RuntimeError("OpenCV's face detector model is missing from the opencv-python-headless install")
    return cascade


# A CascadeClassifier keeps scratch buffers inside: two threads detecting with the same one get wrong
# boxes (the dashboard runs one script thread per visitor). Each detection borrows a cascade of its own
# from this pool, so there are only ever as many as detections running at once.
_idle_cascades: queue.SimpleQueue[cv2.CascadeClassifier] = queue.SimpleQueue()


@contextmanager
def _borrowed_cascade() -> Iterator[cv2.CascadeClassifier]:
    try:
        cascade = _idle_cascades.get_nowait()
    except queue.Empty:
        cascade = _load_cascade()
    try:
        yield cascade
    finally:
        _idle_cascades.put(cascade)


def find_faces(gray: np.ndarray, whole_image: bool = False) -> list[tuple[Box, np.ndarray]]:
    """(box, 48x48 face) for each face, largest first. Small images and `whole_image` are one face."""
    height, width = gray.shape[:2]
    if whole_image or max(height, width) <= SMALL_IMAGE_SIDE:
        return [(Box(0, 0, width, height), whole_image_face(gray))]
    return [(box, crop_face(gray, box)) for box in detect_faces(gray)]


def detect_faces(gray: np.ndarray) -> list[Box]:
    """Boxes of the faces in a gray image, largest first, in the image's own pixel coordinates."""
    small = downscale(gray, DETECTION_SIDE)
    scale = gray.shape[1] / small.shape[1]
    min_side = max(20, int(min(small.shape[:2]) * MIN_FACE_FRACTION))
    with _borrowed_cascade() as cascade:
        found = cascade.detectMultiScale(cv2.equalizeHist(small), scaleFactor=1.1, minNeighbors=5,
                                         minSize=(min_side, min_side))
    boxes = [Box(*(round(v * scale) for v in box)) for box in np.asarray(found).reshape(-1, 4)]
    return sorted(boxes, key=lambda box: box.area, reverse=True)


def crop_face(gray: np.ndarray, box: Box, margin: float = FACE_MARGIN) -> np.ndarray:
    """The face in `box`, widened by `margin`, squared and resized to the model's input."""
    side = max(box.width, box.height) * (1 + 2 * margin)
    cx, cy = box.x + box.width / 2, box.y + box.height / 2
    x0, y0 = round(cx - side / 2), round(cy - side / 2)
    x1, y1 = x0 + round(side), y0 + round(side)
    pad = max(0, -x0, -y0, x1 - gray.shape[1], y1 - gray.shape[0])
    if pad:  # a face at the edge of the photo: extend the border rather than shift the face
        gray = cv2.copyMakeBorder(gray, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        x0, y0, x1, y1 = x0 + pad, y0 + pad, x1 + pad, y1 + pad
    return resize_face(gray[y0:y1, x0:x1])


def whole_image_face(gray: np.ndarray) -> np.ndarray:
    """Treat the whole (pre-cropped) image as the face: centre square, resized to the model's input."""
    height, width = gray.shape[:2]
    side = min(height, width)
    y0, x0 = (height - side) // 2, (width - side) // 2
    return resize_face(gray[y0 : y0 + side, x0 : x0 + side])


def resize_face(gray: np.ndarray) -> np.ndarray:
    if gray.shape[:2] == (INPUT_SIZE, INPUT_SIZE):
        return np.ascontiguousarray(gray)
    shrinking = gray.shape[0] > INPUT_SIZE
    return cv2.resize(gray, (INPUT_SIZE, INPUT_SIZE), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
