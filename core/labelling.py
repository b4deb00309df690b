"""Labelling many faces: photos (a file, a folder, a zip) or a video, to one CSV row per face.

Every photo and frame is answered by core.labeller's `Labeller` (the Try-It path), in this process or on
Ray (`label(..., ray=...)`), so both give the same rows; only the driver (this process) follows faces
across a video's frames, since that needs the frames in order.
"""

from __future__ import annotations

import csv
import errno
import io
import math
import os
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.archives import Archive, ArchiveError
from core.data import IMAGE_EXTENSIONS
from core.faces import Box
from core.labeller import CROP, PROBLEM, Photo, frame_batches, in_process, on_ray, photo_batches, start_ray
from core.progress import ProgressCallback
from core.recognise import Classifier, load_classifier
from core.runs import active_model_dir, read_run, write_atomic
from core.video import DEFAULT_FPS, VIDEO_EXTENSIONS, FaceTracker, VideoError, VideoFrames, duration_words

TRUNCATED_SHARE = 0.9  # a video that stops before this share of its declared length was cut short
ROW_FIELDS = ("source", "time_s", "face", "x", "y", "width", "height", "emotion")


class LabelError(ValueError):
    """An input that cannot be labelled at all, with a message fit to show the user."""


class VideoTooLong(LabelError):
    """A video longer than the caller's limit, by what it declares or by its decoded frames."""


@dataclass
class Plan:
    """What an input holds: photos, or one video; `name` is what rows and messages call it."""

    source: Path
    name: str
    photos: list[Photo] = field(default_factory=list)
    video: VideoFrames | None = None
    skipped: Counter = field(default_factory=Counter)  # reason -> files left out


@dataclass
class Summary:
    input: str
    mode: str
    classes: tuple[str, ...]
    photos: int = 0
    photos_without_face: int = 0
    frames: int = 0
    frames_with_faces: int = 0
    video_seconds: float = 0.0
    faces: int = 0  # CSV rows with a face
    people: int = 0  # distinct face ids across a video's frames
    emotions: Counter = field(default_factory=Counter)
    skipped: Counter = field(default_factory=Counter)  # reason -> inputs left out
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def as_dict(self) -> dict:
        inputs = self.photos + self.frames
        return {"input": self.input, "mode": self.mode, "photos": self.photos,
                "photos_without_face": self.photos_without_face, "frames": self.frames,
                "frames_with_faces": self.frames_with_faces, "video_seconds": round(self.video_seconds, 3),
                "faces": self.faces, "people": self.people,
                "emotions": {emotion: self.emotions[emotion] for emotion in self.classes},
                "skipped": dict(self.skipped), "notes": self.notes, "seconds": round(self.seconds, 3),
                "inputs_per_second": round(inputs / self.seconds, 2) if self.seconds else None,
                "times_real_time": (round(self.video_seconds / self.seconds, 2)
                                    if self.seconds and self.frames else None)}

    def lines(self) -> list[str]:
        """The summary in a few human lines."""
        found = ", ".join(f"{emotion} {count}" for emotion, count in self.emotions.most_common()) or "none"
        seconds = max(self.seconds, 1e-9)
        if self.frames:
            done = (f"{self.frames} frames from {self.video_seconds:.1f} s of video, {self.frames_with_faces} with faces, "
                    f"{self.people} face id(s), in {self.seconds:.1f} s ({self.video_seconds / seconds:.1f}x real time)")
        else:
            done = (f"{self.photos} photo(s), {self.photos_without_face} without a face, in {self.seconds:.1f} s "
                    f"({self.photos / seconds:.1f} photos/s)")
        lines = [done, f"{self.faces} face(s): {found}"]
        lines += [f"skipped {count} file(s): {reason}" for reason, count in sorted(self.skipped.items())]
        return lines + self.notes


# -- what an input holds ------------------------------------------------------------------------------------


def plan_input(source: str | os.PathLike, fps: float = DEFAULT_FPS, name: str | None = None,
               max_video_s: float | None = None) -> Plan:
    """Find the photos or the video in `source`; unusable files are counted in `skipped`, never read.

    `name`: what rows and messages call the input instead of its path (an upload's own name); the photos
    of a named zip are then called by their path inside it alone. `max_video_s`: a longer video is refused,
    by its declared length now and by its decoded frames as they are read.
    """
    path = Path(source).expanduser()
    shown = name or str(path)
    try:
        exists = path.exists()
    except (OSError, ValueError) as error:  # a name too long for the file system, or holding a NUL
        raise LabelError(f"{shown!r} cannot be a file's path ({getattr(error, 'strerror', None) or error})") from None
    if not exists:
        raise LabelError(f"{shown} does not exist: give a photo, a folder or zip of photos, or a video")
    plan = Plan(path, shown)
    suffix = path.suffix.lower()
    if path.is_dir() or suffix == ".zip":
        try:
            with Archive(path) as archive:
                plan.skipped.update(archive.skipped)
                for member in archive.members:
                    if _is_photo(member.suffix, plan.skipped):
                        plan.photos.append(Photo(str(path), member.name,
                                                 member.name if name else f"{shown}/{member.name}"))
        except ArchiveError as error:
            raise LabelError(str(error).replace(path.name, name or path.name)) from None
    elif suffix in VIDEO_EXTENSIONS:
        plan.video = _open_video(path, shown, fps, max_video_s)
        return plan
    elif suffix in IMAGE_EXTENSIONS and path.is_file():
        plan.photos = [Photo(str(path), "", shown)]
    else:
        raise LabelError(f"{name or path.name}: not a photo ({', '.join(sorted(IMAGE_EXTENSIONS))}), a folder, "
                         f"a .zip or a video ({', '.join(sorted(VIDEO_EXTENSIONS))})")
    if not plan.photos:
        details = "; ".join(f"skipped {n} file(s): {reason}" for reason, n in sorted(plan.skipped.items()))
        raise LabelError(f"no photos in {shown}" + (f" ({details})" if details else " (it is empty)"))
    return plan


def _open_video(path: Path, shown: str, fps: float, max_video_s: float | None) -> VideoFrames:
    try:
        video = VideoFrames(path, fps, max_seconds=max_video_s)
    except VideoError as error:
        raise LabelError(str(error).replace(path.name, Path(shown).name)) from None
    if max_video_s is not None and video.info.duration_s > max_video_s:
        raise VideoTooLong(f"{Path(shown).name} lasts {duration_words(video.info.duration_s)}; "
                         f"the limit here is {duration_words(max_video_s)}")
    return video


def _is_photo(suffix: str, skipped: Counter) -> bool:
    """Whether a file in a folder or zip is a photo; if not, count why."""
    if suffix in IMAGE_EXTENSIONS:
        return True
    if suffix in VIDEO_EXTENSIONS:
        skipped["video inside a folder or zip (label each video on its own)"] += 1
    else:
        skipped["not a photo"] += 1
    return False


# -- the whole job ----------------------------------------------------------------------------------------------


FaceCallback = Callable[[int, np.ndarray], None]  # (the face's row in the CSV, 0 first; the 48x48 face the model read)


def label(source: str | os.PathLike, out: str | os.PathLike, model_dir: Path | None = None, fps: float = DEFAULT_FPS,
          ray: str | None = None, actors: int | None = None, classifier: Classifier | None = None,
          progress: ProgressCallback | None = None, name: str | None = None, max_video_s: float | None = None,
          on_face: FaceCallback | None = None) -> Summary:
    """Label every face in `source` into the CSV `out`, which appears only once it is complete.

    `ray`: None labels in this process (with `classifier` if given, else the model in `model_dir`,
    else the active model); LOCAL_RAY starts Ray on this machine; any other value is a cluster's address,
    with `actors` actors (default: one per CPU). `name` and `max_video_s`: see `plan_input`. `on_face` is
    told of each face written. Raises LabelError, and writes nothing, for an input that holds nothing to
    label, or a video that proves longer than `max_video_s`.
    """
    plan = plan_input(source, fps, name, max_video_s)
    model_dir = Path(model_dir or (classifier.path if classifier else active_model_dir()))
    classes = classifier.classes if classifier else tuple(read_run(model_dir).classes)
    summary = Summary(plan.name, "in-process" if ray is None else f"ray ({ray})", classes, skipped=plan.skipped)

    def write(batches: Iterable[dict[str, np.ndarray]]) -> None:
        # Timed from here: loading the model, or starting Ray, is not labelling (Ray's actors do load it inside).
        started = time.perf_counter()
        rows = _rows(plan, batches, summary, progress, on_face)
        partials: list[str] = []
        try:
            write_atomic(Path(out), lambda partial: partials.append(str(partial)) or _write_csv(partial, rows, classes))
        except VideoError as error:  # the video proved longer than it may be
            raise VideoTooLong(str(error).replace(plan.source.name, Path(plan.name).name)) from None
        except OSError as error:
            # Reading the input names its file; writing the CSV names the hidden partial file, or, for a full
            # disk or a file grown past its limit, nothing: name the CSV asked for instead.
            writing = str(error.filename) in partials or (
                error.filename is None and error.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG))
            if not writing:
                raise
            raise OSError(error.errno, error.strerror, str(out)) from None
        summary.seconds = time.perf_counter() - started

    if ray is None:
        batches = frame_batches(plan.video, plan.name) if plan.video else photo_batches(plan.photos)
        write(in_process(batches, classifier or load_classifier(model_dir)))
    else:  # `ray`: core.labeller.LOCAL_RAY, or a cluster's address
        import ray as ray_module

        started_here = not ray_module.is_initialized()  # else the caller's connection is used, and kept
        if started_here:
            start_ray(ray, model_dir)
        try:
            write(on_ray(plan.photos, plan.video, plan.name, model_dir, actors))
        finally:
            if started_here:
                ray_module.shutdown()  # leaves a cluster running; stops a local instance started here
    if plan.video:
        _note_video(plan.video, summary)
    return summary


def _note_video(video: VideoFrames, summary: Summary) -> None:
    declared = video.info.duration_s
    if declared and summary.video_seconds < TRUNCATED_SHARE * declared:
        summary.notes.append(f"the video stops at {summary.video_seconds:.1f} s of the {declared:.1f} s it declares: "
                             "it is probably truncated (labelled up to where it stops)")
    if not summary.faces:
        summary.notes.append(f"no face found in the {summary.frames} frame(s) sampled from the video")


def _rows(plan: Plan, batches: Iterable[dict[str, np.ndarray]], summary: Summary,
          progress: ProgressCallback | None, on_face: FaceCallback | None) -> Iterator[dict]:
    """Labelled batches -> the CSV's rows: faces followed across frames, problems counted and left out."""
    tracker = FaceTracker(1 / plan.video.fps if plan.video else 0.0)
    expected = plan.video.expected_samples if plan.video else len(plan.photos)
    done = written = 0
    for batch in batches:
        rows = [dict(zip(batch, values)) for values in zip(*batch.values())]
        firsts = [row for row in rows if row["face"] <= 1]  # each input's first row
        done += len(firsts)
        for row in firsts:
            if row[PROBLEM]:
                summary.skipped["unreadable photo"] += 1
            elif plan.video:
                summary.frames += 1
                summary.frames_with_faces += int(row["face"] == 1)
                # Sampled frames stand for 1/fps each; the declared length caps the last one.
                end = float(row["time_s"]) + 1 / plan.video.fps
                summary.video_seconds = min(end, plan.video.info.duration_s or end)
            else:
                summary.photos += 1
                summary.photos_without_face += int(row["face"] == 0)
        if plan.video:
            for time_s in dict.fromkeys(row["time_s"] for row in rows):  # each frame, in order
                faces = [row for row in rows if row["time_s"] == time_s and row["face"] > 0]
                ids = tracker.assign(time_s, [Box(row["x"], row["y"], row["width"], row["height"]) for row in faces],
                                     [row[CROP] for row in faces])
                for row, face in zip(faces, ids):
                    row["face"] = face
                    summary.people = max(summary.people, face)
        for row in rows:
            if row[PROBLEM] or (plan.video and row["face"] == 0):
                continue  # a problem is counted, not written; a frame without a face is not a face
            if row["emotion"]:
                summary.faces += 1
                summary.emotions[row["emotion"]] += 1
                if on_face:
                    on_face(written, row[CROP])
            written += 1
            yield row
        if progress:
            progress(done, max(expected, done))


def _write_csv(path: Path, rows: Iterable[dict], classes: tuple[str, ...]) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(ROW_FIELDS + classes)
        for row in rows:
            writer.writerow(_csv_values(row, classes))


def _csv_values(row: dict, classes: tuple[str, ...]) -> list:
    # Missing values are empty cells: a photo has no time, a photo without a face has no box or emotion.
    time_s = "" if math.isnan(row["time_s"]) else f"{row['time_s']:.3f}"
    has_face = bool(row["emotion"])
    box = [int(row[name]) if has_face else "" for name in ("x", "y", "width", "height")]
    probabilities = [f"{row[emotion]:.4f}" if has_face else "" for emotion in classes]
    return [row["source"], time_s, int(row["face"]) if has_face else "", *box, row["emotion"], *probabilities]


def read_rows(csv_text: str) -> list[dict[str, str]]:
    """A labelling CSV back as rows of strings (for the dashboard and the tests)."""
    return list(csv.DictReader(io.StringIO(csv_text)))
