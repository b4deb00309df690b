"""Finding faces in a photo, and cutting each one out upright and framed the way FER2013 frames its faces.

The detector is CenterFace (models/detector/, MIT licence), a small network that gives a box and five
landmarks per face; it ships in the repository and ONNX Runtime runs it, so detection works offline. The
landmarks turn each face upright by its eyes and place the eyes where FER2013's crops have them
(benchmarks/fer_framing.py measures where that is).
"""

from __future__ import annotations

import functools
import math
import os
from dataclasses import dataclass

# ONNX Runtime 1.30 starts a telemetry client on import that leaves an empty /tmp/mat-debug-PID.log behind in
# every process; this turns it off (before the import: it reads the variable then).
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402

from core.emotions import INPUT_SIZE  # noqa: E402
from core.paths import FACE_DETECTOR  # noqa: E402

MIN_FACE_SIDE = 16  # below this there is no face to read
SMALL_IMAGE_SIDE = 64  # an image this small (longest side, pixels) is already a face crop, as in FER2013

# Where FER2013 puts a face in its 48x48 crop, measured by `python benchmarks/fer_framing.py` (the detector
# run on 2,000 FER2013 training faces, enlarged; the mean of its landmarks and boxes in crop pixels).
FER_EYE_CENTRE = (23.6, 19.2)  # midpoint of the eyes
FER_EYE_DISTANCE = 16.9  # from eye to eye
FER_BOX_CENTRE = (23.9, 24.5)  # the centre of the detector's box
FER_BOX_SIDE = 44.5  # the detector's box, its larger side

# The views of a face the model's answer is averaged over (core.recognise): the crop as framed, moved by
# (x, y) crop pixels and zoomed. The model learned from FER2013's own framing, not the detector's, which
# misses it by a few pixels; averaging over such misses gains about a point on wild-dev (benchmarks/wild.py).
JITTER: tuple[tuple[float, float, float], ...] = ((0, 0, 1.0), (-2, 0, 1.0), (2, 0, 1.0), (0, 0, 0.92), (0, 0, 1.08))

DETECTION_SIDE = 320  # photos are searched at this size (longest side)
DETECTION_THRESHOLD = 0.5  # CenterFace's score for a face; lower finds more faces and more false ones
NMS_OVERLAP = 0.3  # boxes overlapping more than this are one face
CLOSE_UP_MARGIN = 0.25  # a photo with no face found is searched again inside a frame this wide (of its longest side)
CLOSE_UP_SIDE = 192  # ...at this size: a face that fills the photo needs no more
CLOSE_UP_THRESHOLD = 0.6  # ...with the score threshold times this: a face cut by the photo's edges scores lower,
# and a photo that has nothing else in it leaves few places for a false face (benchmarks/wild.py counts them)
STRIDE = 32  # the network's input must be a multiple of this, a side
DETECTOR_OUTPUTS = ["537", "538", "539", "540"]  # the face heatmap, box sizes, centre offsets, landmarks
DETECTOR_THREADS = 1  # per call: photos are searched side by side (labelling's workers, the dashboard's visitors)


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

    def scaled(self, scale_x: float, scale_y: float, width: int, height: int) -> Box:
        """This box in pixels `scale_x` x `scale_y` times larger (a shrunk photo's box in the photo's own
        pixels), kept within `width` x `height`."""
        if scale_x == scale_y == 1:
            return self
        x0, y0 = min(width, round(self.x * scale_x)), min(height, round(self.y * scale_y))
        x1 = min(width, round((self.x + self.width) * scale_x))
        y1 = min(height, round((self.y + self.height) * scale_y))
        return Box(x0, y0, x1 - x0, y1 - y0)


@dataclass(frozen=True)
class Face:
    """A face found in a photo, in the photo's own pixel coordinates."""

    box: Box
    landmarks: np.ndarray  # (5, 2) x, y: the eyes (left and right in the image), the nose, the mouth's corners
    score: float


@functools.cache
def _detector() -> ort.InferenceSession:
    """The detector, loaded once per process: one ONNX Runtime session serves every thread at once."""
    if not FACE_DETECTOR.is_file():
        raise RuntimeError(f"the face detector model is missing: {FACE_DETECTOR}")
    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only
    options.intra_op_num_threads = DETECTOR_THREADS
    return ort.InferenceSession(str(FACE_DETECTOR), options, providers=["CPUExecutionProvider"])


@dataclass(frozen=True)
class FaceCrop:
    """A face cut out of a photo for the model: its box and its jittered 48x48 views."""

    box: Box  # in the pixels of the image it was cut from
    views: np.ndarray  # (len(jitter), 48, 48) uint8, each framed with one (shift x, shift y, zoom); the first unmoved

    @property
    def face(self) -> np.ndarray:
        """The 48x48 face as framed (the unmoved view)."""
        return self.views[0]


@dataclass(frozen=True)
class CroppedFaces:
    faces: list[FaceCrop]  # the largest faces, largest first
    found: int  # how many faces the photo holds (more than `faces` when a limit left some out)


def cropped_faces(gray: np.ndarray, whole_image: bool = False,
                  jitter: tuple[tuple[float, float, float], ...] = JITTER, limit: int | None = None) -> CroppedFaces:
    """The `limit` largest faces (all when None) cut out for the model, and how many faces were found.

    Each face's views are framed with one (shift x, shift y, zoom) of `jitter`, the first unmoved; only the
    faces kept are cropped, so a crowd costs one detection. Small images and `whole_image` are one face,
    taken whole (one view: a crop made by hand needs no jitter)."""
    height, width = gray.shape[:2]
    if whole_image or max(height, width) <= SMALL_IMAGE_SIDE:
        return CroppedFaces([FaceCrop(Box(0, 0, width, height), whole_image_face(gray)[None])], 1)
    found = detected_faces(gray)
    return CroppedFaces([FaceCrop(face.box, face_views(gray, face, jitter)) for face in found[:limit]], len(found))


def face_boxes(gray: np.ndarray) -> list[Box]:
    """Boxes of the faces in a gray image, largest first, in the image's own pixel coordinates."""
    return [face.box for face in detected_faces(gray)]


def detected_faces(gray: np.ndarray, side: int = DETECTION_SIDE, threshold: float = DETECTION_THRESHOLD) -> list[Face]:
    """Every face in a gray image with its box, landmarks and score, largest first."""
    height, width = gray.shape[:2]
    found = [_scaled(face, scale, 0, width, height) for face, scale in _search(gray, side, threshold)]
    if not found:  # a close-up? The detector wants to see a face's outline: give it a frame around the photo
        margin = round(CLOSE_UP_MARGIN * max(height, width))
        framed = cv2.copyMakeBorder(gray, margin, margin, margin, margin, cv2.BORDER_REPLICATE)
        found = [_scaled(face, scale, margin, width, height)
                 for face, scale in _search(framed, CLOSE_UP_SIDE, threshold * CLOSE_UP_THRESHOLD)]
    return sorted(found, key=lambda f: f.box.area, reverse=True)


def _search(gray: np.ndarray, side: int, threshold: float) -> list[tuple[tuple[np.ndarray, np.ndarray, float], float]]:
    """The faces found in `gray` searched at `side` pixels (longest side), each with that size's scale."""
    height, width = gray.shape[:2]
    scale = side / max(height, width)
    resized = cv2.resize(gray, (max(1, round(width * scale)), max(1, round(height * scale))),
                         interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    return [(face, scale) for face in _detect(resized, threshold)]


def _detect(gray: np.ndarray, threshold: float) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """(box x0 y0 x1 y1, landmarks (5, 2), score) per face, in `gray`'s pixels."""
    height, width = gray.shape
    padded_h, padded_w = -(-height // STRIDE) * STRIDE, -(-width // STRIDE) * STRIDE
    canvas = np.full((padded_h, padded_w), 128, np.uint8)  # the network wants a multiple of 32 a side
    canvas[:height, :width] = gray
    blob = np.repeat(canvas[None, None].astype(np.float32), 3, axis=1)  # gray as RGB: the model reads 0-255 pixels
    detector = _detector()
    heatmap, sizes, offsets, marks = detector.run(DETECTOR_OUTPUTS, {detector.get_inputs()[0].name: blob})
    rows, cols = np.nonzero(heatmap[0, 0] > threshold)
    if len(rows) == 0:
        return []
    scores = heatmap[0, 0, rows, cols]
    box_h, box_w = np.exp(sizes[0, 0, rows, cols]) * 4, np.exp(sizes[0, 1, rows, cols]) * 4
    x0 = (cols + offsets[0, 1, rows, cols] + 0.5) * 4 - box_w / 2
    y0 = (rows + offsets[0, 0, rows, cols] + 0.5) * 4 - box_h / 2
    landmarks = np.stack([marks[0, 1::2][:, rows, cols] * box_w + x0, marks[0, 0::2][:, rows, cols] * box_h + y0],
                         axis=-1).transpose(1, 0, 2)  # (faces, 5, 2)
    keep = cv2.dnn.NMSBoxes(np.stack([x0, y0, box_w, box_h], 1).tolist(), scores.tolist(), threshold, NMS_OVERLAP)
    return [(np.array([x0[i], y0[i], x0[i] + box_w[i], y0[i] + box_h[i]]), landmarks[i], float(scores[i]))
            for i in np.asarray(keep).reshape(-1)]


def _scaled(found: tuple[np.ndarray, np.ndarray, float], scale: float, offset: int, width: int, height: int) -> Face:
    """A face found in a resized (by `scale`) and framed (by `offset` pixels) photo, in the photo's own pixels."""
    corners, landmarks, score = found
    x0, y0, x1, y1 = corners / scale - offset
    x0, y0, x1, y1 = max(0.0, x0), max(0.0, y0), min(float(width), x1), min(float(height), y1)  # boxed within the photo
    return Face(Box(round(x0), round(y0), round(x1 - x0), round(y1 - y0)), landmarks / scale - offset, score)


def face_views(gray: np.ndarray, face: Face, jitter: tuple[tuple[float, float, float], ...] = JITTER) -> np.ndarray:
    """(len(jitter), 48, 48): the face turned upright by its eyes and framed as FER2013 frames its faces, as the
    model's input, once for each (shift x and y in crop pixels, zoom above 1 closer) of `jitter`: the views of
    core.recognise. A large face is shrunk with pixel averaging once for all its views (warpAffine alone would
    alias it)."""
    centre, angle, scale, target = _framing(face)
    region, centre, shrunk_by = _shrunk_around(gray, centre, scale * min(zoom for _, _, zoom in jitter))
    return np.stack([_warp(region, centre, angle, scale * zoom / shrunk_by, (target[0] + dx, target[1] + dy))
                     for dx, dy, zoom in jitter])


def _framing(face: Face) -> tuple[np.ndarray, float, float, tuple[float, float]]:
    """Where FER2013 would put this face: the photo point to centre on, the angle (degrees) that turns the face
    upright, the scale from photo to crop pixels, and the crop point the centre lands on."""
    eyes = face.landmarks[:2]
    dx, dy = eyes[1] - eyes[0]
    distance = math.hypot(dx, dy)
    if distance < 0.2 * max(face.box.width, face.box.height):  # a profile: the eyes do not say how large the face is
        centre = np.array([face.box.x + face.box.width / 2, face.box.y + face.box.height / 2])
        return centre, 0.0, FER_BOX_SIDE / max(face.box.width, face.box.height), FER_BOX_CENTRE
    return eyes.mean(axis=0), math.degrees(math.atan2(dy, dx)), FER_EYE_DISTANCE / distance, FER_EYE_CENTRE


def _shrunk_around(gray: np.ndarray, centre: np.ndarray, scale: float) -> tuple[np.ndarray, np.ndarray, float]:
    """The neighbourhood of `centre` that a crop at `scale` (crop pixels per photo pixel) reaches, shrunk to about
    twice the crop's size when the face is large; with the centre in its pixels and the factor it was shrunk by."""
    if scale >= 0.5:
        return gray, centre, 1.0
    reach = INPUT_SIZE * 1.1 / scale  # every crop pixel lies within this many photo pixels of the centre
    x0, y0 = max(0, int(centre[0] - reach)), max(0, int(centre[1] - reach))
    x1, y1 = min(gray.shape[1], int(centre[0] + reach) + 1), min(gray.shape[0], int(centre[1] + reach) + 1)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return gray, centre, 1.0
    region = gray[y0:y1, x0:x1]
    shrink = 2 * scale
    shrunk = cv2.resize(region, (max(1, round(region.shape[1] * shrink)), max(1, round(region.shape[0] * shrink))),
                        interpolation=cv2.INTER_AREA)
    factors = np.array([shrunk.shape[1] / region.shape[1], shrunk.shape[0] / region.shape[0]])
    return shrunk, (np.asarray(centre) - (x0, y0)) * factors, float(factors.mean())


def _warp(gray: np.ndarray, centre: np.ndarray, angle: float, scale: float, target: tuple[float, float]) -> np.ndarray:
    """Rotate `gray` by `angle` degrees and scale it by `scale` about `centre`, which lands on `target` of a
    48x48 crop."""
    matrix = cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), angle, scale)
    matrix[:, 2] += np.asarray(target) - np.asarray(centre, dtype=np.float64)
    return cv2.warpAffine(gray, matrix, (INPUT_SIZE, INPUT_SIZE), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


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
