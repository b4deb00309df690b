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

import cv2
import numpy as np

from core.faces import Box
from core.images import MAX_SIDE, downscale

VIDEO_EXTENSIONS = {".mp4", ".m4v", ".mov", ".webm", ".mkv", ".avi", ".mpg", ".mpeg", ".wmv", ".flv", ".3gp"}
DEFAULT_FPS = 5.0  # frames sampled per second of video: faces change expression slower than this
TRACK_IOU = 0.3  # a box overlapping a face's last box this much (intersection over union) is that face
TRACK_TIMEOUT_S = 1.0  # a face unseen for longer than this is gone; if it comes back it gets a new id


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
    frame cannot be decoded is refused when opened.
    """

    def __init__(self, path: str | Path, fps: float = DEFAULT_FPS):
        if not fps > 0:
            raise VideoError(f"the sampling rate must be above 0 frames per second, not {fps}")
        self.path, self.fps = Path(path), fps
        if not self.path.is_file():
            raise VideoError(f"{self.path} does not exist")
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
        capture = _open(self.path)
        try:
            # Time comes from the frame's index when the frame rate is known (exact, and the same on every
            # run); from the decoder's clock otherwise.
            frame_s = 1.0 / self.info.fps if self.info.fps > 0 else None
            next_time, index = 0.0, 0
            while capture.grab():
                time_s = index * frame_s if frame_s else capture.get(cv2.CAP_PROP_POS_MSEC) / 1000
                index += 1
                # Half a frame of slack: sample k is the first frame at or after k / fps.
                if time_s + (frame_s or 0) / 2 < next_time:
                    continue
                ok, frame = capture.retrieve()
                if not ok:
                    continue
                next_time += 1.0 / self.fps
                while next_time <= time_s:  # a gap in the timestamps: never fall behind
                    next_time += 1.0 / self.fps
                yield round(time_s, 3), downscale(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB), MAX_SIDE)
        finally:
            capture.release()


def _open(path: Path) -> cv2.VideoCapture:
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


class FaceTracker:
    """Gives each face a number that follows the same person from frame to frame.

    A box takes the id of the face whose last box it overlaps most (at least TRACK_IOU), best
    overlaps first, one box per face; any other box is a new face. Fed frames in time order.
    """

    def __init__(self) -> None:
        self._last_seen: dict[int, tuple[Box, float]] = {}  # id -> (last box, when)
        self._next_id = 1

    def assign(self, time_s: float, boxes: list[Box]) -> list[int]:
        self._last_seen = {face: seen for face, seen in self._last_seen.items()
                           if time_s - seen[1] <= TRACK_TIMEOUT_S}
        pairs = sorted(((iou(box, last), index, face) for index, box in enumerate(boxes)
                        for face, (last, _) in self._last_seen.items()), reverse=True)
        ids: dict[int, int] = {}
        for overlap, index, face in pairs:
            if overlap < TRACK_IOU:
                break
            if index not in ids and face not in ids.values():
                ids[index] = face
        for index in range(len(boxes)):
            if index not in ids:
                ids[index] = self._next_id
                self._next_id += 1
            self._last_seen[ids[index]] = (boxes[index], time_s)
        return [ids[index] for index in range(len(boxes))]
