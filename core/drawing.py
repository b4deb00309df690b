"""A photo with its answer drawn on it: a numbered box and label per face, and optionally each face's heatmap.

The Try-it page and `scripts/predict.py --explain` draw the same picture.
"""

from __future__ import annotations

import cv2
import numpy as np

from core.explain import blend
from core.faces import Box
from core.recognise import FaceResult


def crop_square(box: Box, image_shape: tuple[int, ...]) -> tuple[int, int, int]:
    """(x, y, side) of the square of the photo a face's 48x48 crop stands for: the centre square for the
    whole-image face; for a detected face, its box squared about its centre. (core.faces turns and frames a
    detected face by its landmarks, which FaceResult does not keep: for an upright face the box squared
    covers the same forehead-to-chin square, for a tilted one the map is placed unturned.)"""
    height, width = image_shape[:2]
    if box.as_list() == [0, 0, width, height]:
        side = min(width, height)
        return (width - side) // 2, (height - side) // 2, side
    side = max(box.width, box.height)
    return round(box.x + box.width / 2 - side / 2), round(box.y + box.height / 2 - side / 2), side


def _heatmaps_drawn(canvas: np.ndarray, faces: list[FaceResult], heatmaps: np.ndarray, image_shape: tuple[int, ...],
                    scale: float) -> None:
    """Lay each face's 48x48 heatmap over the part of the (scaled) photo its crop came from, in place."""
    for face, heat in zip(faces, heatmaps):
        x, y, side = (round(v * scale) for v in crop_square(face.box, image_shape))
        x0, y0 = max(0, x), max(0, y)
        x1, y1 = min(canvas.shape[1], x + side), min(canvas.shape[0], y + side)
        if x1 <= x0 or y1 <= y0:
            continue
        heat = cv2.resize(np.asarray(heat, dtype=np.float32), (side, side), interpolation=cv2.INTER_LINEAR)
        canvas[y0:y1, x0:x1] = blend(canvas[y0:y1, x0:x1], heat[y0 - y : y1 - y, x0 - x : x1 - x])


def faces_drawn(image: np.ndarray, faces: list[FaceResult], heatmaps: np.ndarray | None = None,
                min_side: int = 360) -> np.ndarray:
    """A copy of the photo with a numbered box and label on each face, sized to stay legible, and
    each face's heatmap (core.explain, one per face) laid over it when given.

    Tiny photos (a 48x48 FER crop) are enlarged first so that the label fits; lines and
    text scale with the photo, so a 4000-pixel portrait gets as readable a box as a thumbnail.
    """
    scale = max(1.0, min_side / min(image.shape[:2]))
    canvas = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST) if scale > 1 else image.copy()
    canvas = np.ascontiguousarray(canvas)
    if heatmaps is not None:
        _heatmaps_drawn(canvas, faces, heatmaps, image.shape, scale)
    side = min(canvas.shape[:2])
    thickness = max(2, round(side / 250))
    font_scale = max(0.5, side / 600)
    for number, face in enumerate(faces, 1):
        x, y, w, h = (round(v * scale) for v in face.box.as_list())
        colour = (255, 80, 80) if number == 1 else (80, 180, 255)  # the face that picks the voice stands out
        x0, y0 = max(0, x), max(0, y)
        x1, y1 = min(canvas.shape[1] - 1, x + w), min(canvas.shape[0] - 1, y + h)
        cv2.rectangle(canvas, (x0, y0), (x1, y1), colour, thickness)
        label = f"{number} {face.emotion} {face.probabilities[face.emotion]:.0%}"
        (text_w, text_h), baseline = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, font_scale, thickness)
        # Above the box when there is room, else inside its top edge.
        top = y0 - text_h - baseline - thickness if y0 - text_h - baseline - thickness >= 0 else y0
        cv2.rectangle(canvas, (x0, top), (min(canvas.shape[1] - 1, x0 + text_w + 2 * thickness),
                                          top + text_h + baseline + thickness), colour, cv2.FILLED)
        cv2.putText(canvas, label, (x0 + thickness, top + text_h + thickness // 2), cv2.FONT_HERSHEY_SIMPLEX,
                    font_scale, (255, 255, 255), max(1, thickness // 2), cv2.LINE_AA)
    return canvas
