"""A video as a stream of sampled frames, and faces followed across those frames.

Frames are decoded one at a time through the FFmpeg that opencv-python-headless bundles (mp4, webm,
mov, avi, mkv...), so a two-hour video costs the memory of one frame. Every frame must be demuxed
and decoded to move on (grab()), but only the sampled ones are converted to pixels (retrieve()),
which is most of what skipping saves.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # OpenCV is imported where frames are read: a script can parse its arguments without it
    import cv2

    from core.faces import Box

VIDEO_EXTENSIONS = {".mp4", ".m4v", ".mov", ".webm", ".mkv", ".avi", ".mpg", ".mpeg", ".wmv", ".flv", ".3gp"}
DEFAULT_FPS = 5.0  # frames sampled per second of video: faces change expression slower than this
MAX_FPS = 240.0  # no video has more frames a second than this to sample; a higher rate is a typing error
MAX_DECODE_RATE = 240  # frames decoded per second of a length limit: bounds the work whatever the container says
TRACK_IOU = 0.3  # a box overlapping a face's last box this much (intersection over union) is that face
TRACK_TIMEOUT_S = 1.0  # a face unseen for longer than this is gone; if it comes back it gets a new id
# Two crops (the model's 48x48 input, framed by the eyes) of one person a fifth of a second apart correlate
# above 0.78 once blurred to 24 pixels; crops of different people average 0.15, and 99% of pairs stay under
# 0.58 (measured on the bundled sample's faces). Below this, the face in a place is someone else.
TRACK_SAME_FACE = 0.5
APPEARANCE_SIDE = 24  # crops are compared at this size: the person, not the expression's fine lines


class VideoError(ValueError):
    """A video that cannot be read, with a message fit to show the user."""


@dataclass(frozen=True)
class VideoInfo:
    fps: float  # the video's own frame rate (0 when the container does not say)
    frame_count: int  # as declared by the container (0 when unknown); the true count may differ
    width: int
    height: int

    @property
    def duration_s(self) -> float:
        return self.frame_count / self.fps if self.fps > 0 and self.frame_count > 0 else 0.0


class VideoFrames:
    """The frames of a video sampled at `fps`, as (time in seconds, RGB array), streamed.

    A video cut short (a truncated download) simply ends where its frames do. A video whose first
    frame cannot be decoded is refused when opened. With `max_seconds`, reading stops with a VideoError
    once the decoded frames pass that length, by their own clock or their count, whatever the container
    declares (a 20-minute file may say it lasts 10 s). Frames come downscaled to core.images.MAX_SIDE, as
    photos are; `info` has the video's own size, which boxes are reported in.
    """

    def __init__(self, path: str | Path, fps: float = DEFAULT_FPS, max_seconds: float | None = None):
        check_fps(fps)
        self.path, self.fps, self.max_seconds = Path(path), fps, max_seconds
        if not self.path.is_file():
            raise VideoError(f"{self.path} does not exist")
        import cv2

        capture = _open(self.path)
        readable = capture.grab()
        self.info = VideoInfo(fps=_finite(capture.get(cv2.CAP_PROP_FPS)),
                              frame_count=int(_finite(capture.get(cv2.CAP_PROP_FRAME_COUNT))),
                              width=int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)),
                              height=int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)))
        capture.release()
        if not readable:
            raise VideoError(f"{self.path.name}: no frame could be decoded: the file is damaged, or its codec is not "
                             "one OpenCV's FFmpeg reads (use H.264/MPEG-4 mp4, VP8/VP9 webm, MJPEG avi)")

    @property
    def expected_samples(self) -> int:
        """How many frames sampling should yield, from the declared length (0 when unknown): for progress."""
        return math.ceil(self.info.duration_s * min(self.fps, self.info.fps or self.fps))

    def __iter__(self) -> Iterator[tuple[float, np.ndarray]]:
        import cv2

        from core.images import MAX_SIDE, downscale

        capture = _open(self.path)
        try:
            # Time comes from the frame's index when the frame rate is known (exact, and the same on every
            # run); from the decoder's clock otherwise.
            frame_s = 1.0 / self.info.fps if self.info.fps > 0 else None
            next_time, index = 0.0, 0
            while capture.grab():
                clock_s = capture.get(cv2.CAP_PROP_POS_MSEC) / 1000
                time_s = index * frame_s if frame_s else clock_s
                index += 1
                if self.max_seconds is not None:
                    self._check_length(index, max(time_s, clock_s if math.isfinite(clock_s) else 0.0))
                # Half a frame of slack: sample k is the first frame at or after k / fps.
                if time_s + (frame_s or 0) / 2 < next_time:
                    continue
                ok, frame = capture.retrieve()
                if not ok:
                    continue
                step = 1.0 / self.fps
                next_time += step
                if next_time <= time_s:  # a gap in the timestamps: never fall behind (in one step: a gap may be huge)
                    next_time += (math.floor((time_s - next_time) / step) + 1) * step
                yield round(time_s, 3), downscale(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB), MAX_SIDE)
        finally:
            capture.release()

    def _check_length(self, decoded: int, time_s: float) -> None:
        if time_s > self.max_seconds or decoded > self.max_seconds * MAX_DECODE_RATE:
            declared = f" (it declares {duration_words(self.info.duration_s)})" if self.info.duration_s else ""
            raise VideoError(f"{self.path.name} runs past {duration_words(self.max_seconds)}, the limit here{declared}")


def check_fps(fps: float) -> None:
    """Refuse a sampling rate that is not a number of frames a second a video could have."""
    if not (math.isfinite(fps) and 0 < fps <= MAX_FPS):
        raise VideoError(f"the sampling rate must be above 0 and at most {MAX_FPS:g} frames per second, not {fps:g}")


def duration_words(seconds: float) -> str:
    """A length as people say it: "5 minutes", "10.2 minutes", "0.5 s"."""
    return f"{seconds / 60:.3g} minutes" if seconds >= 60 else f"{seconds:.3g} s"


def _open(path: Path) -> cv2.VideoCapture:
    import cv2

    capture = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    if not capture.isOpened():
        raise VideoError(f"{path.name}: not a video OpenCV's FFmpeg can open (damaged, empty, or an unknown "
                         "format; use mp4, webm, mov or avi)")
    return capture


def _finite(value: float) -> float:
    return value if math.isfinite(value) and value > 0 else 0.0


# -- following faces across frames ----------------------------------------------------------------------------


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two boxes: 1 for the same box, 0 for boxes that do not touch."""
    width = min(a.x + a.width, b.x + b.width) - max(a.x, b.x)
    height = min(a.y + a.height, b.y + b.height) - max(a.y, b.y)
    if width <= 0 or height <= 0:
        return 0.0
    overlap = width * height
    return overlap / (a.area + b.area - overlap)


def appearance(face: np.ndarray) -> np.ndarray:
    """A face crop reduced to what says who it is: blurred small, its brightness and contrast taken out."""
    import cv2

    small = cv2.resize(np.asarray(face, np.float32), (APPEARANCE_SIDE, APPEARANCE_SIDE), interpolation=cv2.INTER_AREA)
    small -= small.mean()
    return small / (float(small.std()) or 1.0)


def same_face_score(a: np.ndarray, b: np.ndarray) -> float:
    """Correlation of two `appearance`s: 1 for the same picture, about 0 for unrelated ones."""
    return float((a * b).mean())


class FaceTracker:
    """Gives each face a number that follows the same person from frame to frame.

    A box takes the id of the face whose last box it overlaps most (at least TRACK_IOU), best
    overlaps first, one box per face, as long as the face looks like that one did (TRACK_SAME_FACE,
    when the crops are given); any other box is a new face: someone who steps into the place another
    just left is someone else. Fed frames in time order.
    """

    def __init__(self, sample_every_s: float = 0.0) -> None:
        """`sample_every_s`: the time between the frames it is fed. A face is kept for TRACK_TIMEOUT_S, or for
        one and a half of those gaps where frames are sampled further apart (1 a second, or fewer)."""
        self._last_seen: dict[int, tuple[Box, float, np.ndarray | None]] = {}  # id -> (last box, when, looks)
        self._next_id = 1
        self._timeout_s = max(TRACK_TIMEOUT_S, 1.5 * sample_every_s)

    def assign(self, time_s: float, boxes: list[Box], faces: list[np.ndarray] | None = None) -> list[int]:
        """Ids for the boxes of one frame; `faces`, the crops in those boxes, tell people apart."""
        looks = [appearance(face) for face in faces] if faces is not None else [None] * len(boxes)
        self._last_seen = {face: seen for face, seen in self._last_seen.items()
                           if time_s - seen[1] <= self._timeout_s}
        pairs = sorted(((iou(box, last), index, face) for index, box in enumerate(boxes)
                        for face, (last, _, _) in self._last_seen.items()), reverse=True)
        ids: dict[int, int] = {}
        for overlap, index, face in pairs:
            if overlap < TRACK_IOU:
                break
            if index not in ids and face not in ids.values() and self._looks_alike(face, looks[index]):
                ids[index] = face
        for index in range(len(boxes)):
            if index not in ids:
                ids[index] = self._next_id
                self._next_id += 1
            self._last_seen[ids[index]] = (boxes[index], time_s, looks[index])
        return [ids[index] for index in range(len(boxes))]

    def _looks_alike(self, face: int, looks: np.ndarray | None) -> bool:
        before = self._last_seen[face][2]
        return looks is None or before is None or same_face_score(before, looks) >= TRACK_SAME_FACE
