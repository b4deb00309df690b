"""A photo with its answer drawn on it: a numbered box and label per face, and optionally each face's heatmap.

The Try-it page, the Live page and `scripts/predict.py --explain` draw the same picture. Labels stay
inside the picture and never cover one another, however close the faces or the photo's edge.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import cv2
import numpy as np

from core.explain import blend
from core.faces import Box
from core.recognise import FaceResult

FONT = cv2.FONT_HERSHEY_SIMPLEX


@dataclass(frozen=True)
class Rect:
    """A rectangle of canvas pixels, [x0, x1) x [y0, y1)."""

    x0: int
    y0: int
    x1: int
    y1: int

    def overlaps(self, other: Rect) -> bool:
        return self.x0 < other.x1 and other.x0 < self.x1 and self.y0 < other.y1 and other.y0 < self.y1

    def inside(self, width: int, height: int) -> bool:
        return 0 <= self.x0 and 0 <= self.y0 and self.x1 <= width and self.y1 <= height


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


def label_places(boxes: list[Rect], sizes: list[tuple[int, int]], width: int, height: int) -> list[Rect]:
    """Where each box's label goes on a `width` x `height` canvas: a (label width, height) rectangle per box,
    inside the canvas, apart from the labels placed before it (the first box's, the main face's, first).

    Tried in order: above the box, inside its top edge, below it, inside its bottom edge, each at the box's
    left then right edge; then the free place nearest the box's corner. Only when the canvas has
    no free place left (a crowd of tiny faces) does a label cover another."""
    placed: list[Rect] = []
    for box, (label_w, label_h) in zip(boxes, sizes):
        label_w, label_h = min(label_w, width), min(label_h, height)
        left, right = (min(max(0, x), width - label_w) for x in (box.x0, box.x1 - label_w))
        near = [(x, y) for y in (box.y0 - label_h, box.y0, box.y1, box.y1 - label_h) for x in (left, right)]
        candidates = (Rect(x, y, x + label_w, y + label_h) for x, y in itertools.chain(
            near, _grid_nearest(box.x0, box.y0, width - label_w, height - label_h, label_w // 2, label_h // 2)))
        free = next((r for r in candidates if r.inside(width, height) and not any(r.overlaps(p) for p in placed)), None)
        top = min(max(0, box.y0 - label_h), height - label_h)
        placed.append(free or Rect(left, top, left + label_w, top + label_h))
    return placed


def _grid_nearest(x: int, y: int, max_x: int, max_y: int, step_x: int, step_y: int):
    """Points of a grid over [0, max_x] x [0, max_y], nearest to (x, y) first (computed only when asked for)."""
    points = [(gx, gy) for gy in range(0, max_y + 1, max(1, step_y)) for gx in range(0, max_x + 1, max(1, step_x))]
    yield from sorted(points, key=lambda p: abs(p[0] - x) + abs(p[1] - y))


def _heatmaps_drawn(canvas: np.ndarray, faces: list[FaceResult], heatmaps: np.ndarray, photo_shape: tuple[int, int],
                    scale: float) -> None:
    """Lay each face's 48x48 heatmap over the part of the (scaled) photo its crop came from, in place."""
    for face, heat in zip(faces, heatmaps):
        x, y, side = (round(v * scale) for v in crop_square(face.box, photo_shape))
        x0, y0 = max(0, x), max(0, y)
        x1, y1 = min(canvas.shape[1], x + side), min(canvas.shape[0], y + side)
        if x1 <= x0 or y1 <= y0 or side < 1:
            continue
        heat = cv2.resize(np.asarray(heat, dtype=np.float32), (side, side), interpolation=cv2.INTER_LINEAR)
        canvas[y0:y1, x0:x1] = blend(canvas[y0:y1, x0:x1], heat[y0 - y : y1 - y, x0 - x : x1 - x])


@dataclass(frozen=True)
class Label:
    """One face's box and label as drawn on the canvas."""

    text: str  # "1 happy 91%"
    box: Rect  # the face's box
    place: Rect  # the label's filled rectangle: inside the canvas, apart from the other labels


def laid_out_labels(faces: list[FaceResult], width: int, height: int, scale: float,
                    thickness: int) -> tuple[list[Label], float]:
    """Each face's box (its photo box times `scale`) and label on a `width` x `height` canvas, with the font
    scale that keeps every label narrower than the canvas."""
    boxes, texts = [], []
    for number, face in enumerate(faces, 1):
        x, y, w, h = (round(v * scale) for v in face.box.as_list())
        boxes.append(Rect(max(0, x), max(0, y), min(width - 1, x + w), min(height - 1, y + h)))
        texts.append(f"{number} {face.emotion} {face.probabilities[face.emotion]:.0%}")
    font_scale = max(0.5, min(height, width) / 600)
    text_thickness = max(1, thickness // 2)
    widest = max((cv2.getTextSize(text, FONT, font_scale, text_thickness)[0][0] for text in texts), default=0)
    if widest + 2 * thickness > width:  # a narrow photo: the text shrinks until every label fits across it
        font_scale *= (width - 2 * thickness) / (widest + 2 * thickness)
    sizes = []
    for text in texts:
        (text_w, text_h), baseline = cv2.getTextSize(text, FONT, font_scale, text_thickness)
        sizes.append((text_w + 2 * thickness, text_h + baseline + thickness))
    places = label_places(boxes, sizes, width, height)
    return [Label(text, box, place) for text, box, place in zip(texts, boxes, places)], font_scale


def faces_drawn(image: np.ndarray, faces: list[FaceResult], heatmaps: np.ndarray | None = None,
                min_side: int = 360, photo_size: tuple[int, int] | None = None) -> np.ndarray:
    """A copy of the photo with a numbered box and label on each face, sized to stay legible, and
    each face's heatmap (core.explain, one per face) laid over it when given.

    `photo_size` (width, height) is the size the boxes are in, when `image` is the photo shrunk
    (core.recognise.Recognition.photo_size); by default the image's own. Tiny photos (a 48x48 FER crop)
    are enlarged first so that the label fits; lines and text scale with the photo, so a 4000-pixel
    portrait gets as readable a box as a thumbnail.
    """
    photo_w, photo_h = photo_size or (image.shape[1], image.shape[0])
    enlarge = max(1.0, min_side / min(image.shape[:2]))
    if enlarge > 1:
        canvas = cv2.resize(image, None, fx=enlarge, fy=enlarge, interpolation=cv2.INTER_NEAREST)
    else:
        canvas = np.ascontiguousarray(image.copy())
    scale = canvas.shape[1] / photo_w  # canvas pixels per photo pixel
    if heatmaps is not None:
        _heatmaps_drawn(canvas, faces, heatmaps, (photo_h, photo_w), scale)
    height, width = canvas.shape[:2]
    thickness = max(2, round(min(height, width) / 250))
    labels, font_scale = laid_out_labels(faces, width, height, scale, thickness)
    text_thickness = max(1, thickness // 2)
    for number, label in enumerate(labels, 1):
        colour = (255, 80, 80) if number == 1 else (80, 180, 255)  # the face that picks the voice stands out
        box, place = label.box, label.place
        cv2.rectangle(canvas, (box.x0, box.y0), (box.x1, box.y1), colour, thickness)
        cv2.rectangle(canvas, (place.x0, place.y0), (place.x1 - 1, place.y1 - 1), colour, cv2.FILLED)
        baseline = cv2.getTextSize(label.text, FONT, font_scale, text_thickness)[1]
        cv2.putText(canvas, label.text, (place.x0 + thickness, place.y1 - baseline - thickness // 2), FONT,
                    font_scale, (255, 255, 255), text_thickness, cv2.LINE_AA)
    return canvas
