"""Labelling a file uploaded to the dashboard: the Label page's one call.

The upload is written to a scratch folder of its own under the cache (never under its own name, which
may be too long for the file system or hold a NUL), labelled by core.labelling, and the folder removed
on every path. Folders left by a process that was killed are removed by the next upload.
"""

from __future__ import annotations

import io
import os
import shlex
import shutil
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np

from core.labelling import LabelError, Summary, VideoTooLong, label, read_rows
from core.paths import CACHE_DIR
from core.progress import ProgressCallback
from core.recognise import Classifier
from core.video import VIDEO_EXTENSIONS

UPLOAD_SUFFIXES = (*sorted(VIDEO_EXTENSIONS), ".zip")
MAX_VIDEO_S = 300  # longer videos belong to scripts/label.py: the page would be busy for minutes
MAX_THUMBNAILS = 100  # faces shown with their picture; the CSV has them all
THUMBNAIL_SIDE = 64
STALE_AFTER_S = 24 * 3600  # a scratch folder this old is left over, whoever made it
MAX_NAME_CHARS = 120  # an upload's name, as shown


@dataclass
class LabelledUpload:
    name: str  # the upload's name, as shown
    video: bool
    csv: str  # the CSV to download: rows named after the upload (photos by their path in the zip)
    rows: list[dict[str, str]]
    summary: Summary
    thumbnails: dict[int, bytes] = field(default_factory=dict)  # row -> JPEG of the face the model read


def label_upload(name: str, data: bytes, classifier: Classifier, progress: ProgressCallback | None = None,
                 max_video_s: float = MAX_VIDEO_S, scratch_root: Path | None = None) -> LabelledUpload:
    """Label an uploaded video or zip of photos. Raises LabelError, in one line naming the upload, for
    anything that cannot be labelled (a video past `max_video_s` included)."""
    shown = shown_name(name)
    suffix = PurePosixPath(shown).suffix.lower()
    if suffix not in UPLOAD_SUFFIXES:
        raise LabelError(f"{shown}: upload a video ({', '.join(sorted(VIDEO_EXTENSIONS))}) or a .zip of photos")
    crops: dict[int, np.ndarray] = {}

    def keep(row: int, face: np.ndarray) -> None:
        if len(crops) < MAX_THUMBNAILS:
            crops[row] = face

    try:
        with scratch_folder(scratch_root) as scratch:
            source, out = scratch / f"upload{suffix}", scratch / "labels.csv"
            source.write_bytes(data)
            summary = label(source, out, classifier=classifier, progress=progress, name=shown,
                            max_video_s=max_video_s, on_face=keep)
            csv_text = out.read_text()
    except VideoTooLong as error:
        command = f"python scripts/label.py {shlex.quote(shown)} --out labels.csv"
        raise VideoTooLong(f"{error}. Longer videos: {command}") from None
    except OSError as error:  # the scratch folder could not be written: a full disk (unreadable inputs are rows)
        raise LabelError(f"{shown} could not be kept on the server while it was labelled ({error.strerror})") from None
    return LabelledUpload(shown, suffix in VIDEO_EXTENSIONS, csv_text, read_rows(csv_text), summary,
                          {row: thumbnail(face) for row, face in crops.items()})


def shown_name(name: str) -> str:
    """An upload's name fit to show and to name rows with: its last part, without control characters."""
    printable = "".join(char for char in name if char.isprintable())
    last = PurePosixPath(printable.replace("\\", "/")).name or "upload"
    if len(last) > MAX_NAME_CHARS:
        suffix = PurePosixPath(last).suffix[:16]
        last = last[: MAX_NAME_CHARS - len(suffix) - 1] + "…" + suffix
    return last


def thumbnail(face: np.ndarray) -> bytes:
    """A 48x48 face as a small JPEG."""
    from PIL import Image

    jpeg = io.BytesIO()
    Image.fromarray(face).resize((THUMBNAIL_SIDE, THUMBNAIL_SIDE), Image.Resampling.BICUBIC).save(jpeg, format="JPEG")
    return jpeg.getvalue()


@contextmanager
def scratch_folder(root: Path | None = None) -> Iterator[Path]:
    """A new folder under `root` (default: the cache's label-scratch/), removed when done, however it ends.

    Named after this process, so that one killed before it could clean up is known by its dead process id:
    such folders, and any older than STALE_AFTER_S, are removed first."""
    root = root or CACHE_DIR / "label-scratch"
    root.mkdir(parents=True, exist_ok=True)
    remove_stale(root)
    folder = root / f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
    folder.mkdir()
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def remove_stale(root: Path) -> None:
    for folder in root.iterdir():
        pid, _, _ = folder.name.partition("-")
        try:
            stale = not _alive(int(pid)) or time.time() - folder.stat().st_mtime > STALE_AFTER_S
        except (ValueError, OSError):
            stale = False  # not one of ours, or gone already
        if stale:
            shutil.rmtree(folder, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True
