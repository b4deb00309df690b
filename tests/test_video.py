"""Videos as sampled frames (core.video), and faces followed across them, on videos and faces made here."""

from __future__ import annotations

import math
import struct
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from support.photos import HAPPY_FACE, SAMPLE_ZIP, SURPRISED_FACE, fer_face_array, portrait, write_video
from core.faces import Box
from core.video import MAX_FPS, TRACK_SAME_FACE, FaceTracker, VideoError, VideoFrames, appearance, same_face_score


def lying_avi(path: Path, face: np.ndarray, frames: int = 40, declared: int = 5) -> Path:
    """An AVI of `frames` frames at 10 fps whose headers declare only `declared`: it says it lasts 0.5 s."""
    moving = [portrait(face, [(100 + 4 * i, 120)]) for i in range(frames)]
    data = bytearray(write_video(path, moving, fps=10, fourcc="MJPG").read_bytes())
    avih, strh = data.find(b"avih"), data.find(b"strh")
    struct.pack_into("<I", data, avih + 8 + 16, declared)  # the main header's dwTotalFrames
    struct.pack_into("<I", data, strh + 8 + 32, declared)  # the video stream header's dwLength
    path.write_bytes(bytes(data))
    return path


@pytest.fixture(scope="module")
def faces() -> tuple[np.ndarray, np.ndarray]:
    with zipfile.ZipFile(SAMPLE_ZIP) as archive:
        return fer_face_array(archive.read(HAPPY_FACE)), fer_face_array(archive.read(SURPRISED_FACE))


def test_face_tracker_matches_by_overlap_and_forgets_after_a_second():
    tracker = FaceTracker()
    assert tracker.assign(0.0, [Box(0, 0, 100, 100), Box(300, 0, 100, 100)]) == [1, 2]
    assert tracker.assign(0.2, [Box(310, 5, 100, 100), Box(10, 0, 100, 100)]) == [2, 1]  # order does not matter
    assert tracker.assign(0.4, [Box(600, 300, 80, 80), Box(20, 0, 100, 100)]) == [3, 1]  # a newcomer
    assert tracker.assign(2.0, [Box(20, 0, 100, 100)]) == [4]  # unseen for 1.6 s: a new face


def test_face_tracker_follows_a_face_sampled_once_a_second_or_less_often():
    """`label.py --fps 1` on a 29.97 fps video samples every 1.001 s: each sample is one gap, not a lost face."""
    for every_s in (1001 / 1000, 2.0):
        tracker = FaceTracker(every_s)
        assert [tracker.assign(k * every_s, [Box(10 * k, 0, 100, 100)])[0] for k in range(4)] == [1, 1, 1, 1]
        assert tracker.assign(6 * every_s, [Box(40, 0, 100, 100)]) == [2]  # two samples missed: gone


def test_face_tracker_tells_people_in_the_same_place_apart_by_their_faces(faces):
    """Issue 24.7: the same box with another person's face in it is a new face; the same face a little
    changed (shifted a pixel, brighter) keeps its id."""
    happy, surprised = faces
    brighter = np.clip(happy.astype(int) + 25, 0, 255).astype(np.uint8)
    assert same_face_score(appearance(happy), appearance(np.roll(brighter, 1, axis=1))) > TRACK_SAME_FACE
    assert same_face_score(appearance(happy), appearance(surprised)) < TRACK_SAME_FACE
    tracker, box = FaceTracker(), Box(100, 100, 200, 200)
    assert tracker.assign(0.0, [box], [happy]) == [1]
    assert tracker.assign(0.2, [box], [np.roll(brighter, 1, axis=1)]) == [1]
    assert tracker.assign(0.4, [box], [surprised]) == [2]
    assert tracker.assign(0.6, [box], [surprised]) == [2]


@pytest.mark.parametrize("fps", [math.inf, math.nan, 1e9, MAX_FPS * 2, 0, -1])
def test_a_sampling_rate_no_video_has_is_refused_at_once(tmp_path, faces, fps):
    """Issue 24.P10: `--fps inf` (or 1e9) never ended; now it is refused before a frame is read."""
    video = write_video(tmp_path / "clip.mp4", [portrait(faces[0])] * 3)
    started = time.monotonic()
    with pytest.raises(VideoError, match="sampling rate must be above 0 and at most"):
        list(VideoFrames(video, fps=fps))
    assert time.monotonic() - started < 5


def test_a_length_limit_holds_on_the_decoded_frames_not_the_declared_length(tmp_path, faces):
    """Issue 24.P3: a video whose container understates its length is stopped once its frames pass the limit."""
    video = VideoFrames(lying_avi(tmp_path / "liar.avi", faces[0], frames=40, declared=5), fps=5, max_seconds=2)
    assert video.info.duration_s == pytest.approx(0.5)
    seen = []
    with pytest.raises(VideoError, match=r"liar.avi runs past 2 s, the limit here \(it declares 0.5 s\)"):
        for time_s, _ in video:
            seen.append(time_s)
    assert seen == [round(0.2 * k, 3) for k in range(11)]  # up to 2.0 s, and not a frame past it
    assert len(list(VideoFrames(video.path, fps=5, max_seconds=10))) == 20  # under the limit: every sample
