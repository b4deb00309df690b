"""Dataset builder: facial-expression data in the forms people download, as arrays.

Reads a folder or .zip with train/ and test/ splits of class folders (the Kaggle
FER2013 copies), a plain folder of class folders, or the original fer2013.csv.
Images of any size and colour become 48x48 gray faces: small images are taken
whole, larger ones (portraits) are cut around their largest face (core.faces). Decoded arrays
are cached as .npz (no pickle), keyed by a fingerprint of the source.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
import os
import zipfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np

from core.archives import Archive, ArchiveError
from core.emotions import EMOTIONS, INPUT_SIZE, canonical_emotion
from core.fer_csv import read_fer_csv
from core.paths import CACHE_DIR, data_roots
from core.progress import ProgressCallback

BUILDER_VERSION = 4  # 4: one CSV of faces per zip (Kaggle's challenge zip held FER2013 twice); 3: each face keeps its path in the source (votes join on it); 2: faces found by CenterFace and aligned by the eyes. Bump when the way images become arrays changes: old caches are then rebuilt
IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff", ".pgm", ".ppm"}
SPLIT_ALIASES = {
    "train": "train", "training": "train",
    "test": "test", "testing": "test", "publictest": "test",
    "val": "val", "valid": "val", "validation": "val",
    "privatetest": "private",
}
MAX_UPLOAD_BYTES = 200 * 1024 * 1024  # a dataset zip uploaded in the browser (FER2013's is 62 MB)
MAX_PATH_CHARS = 1024  # a dataset path typed on a page: longer is no path on any disk


class DatasetError(ValueError):
    """A dataset that cannot be read at all, with a message that says what to do."""


@dataclass
class BuildReport:
    counts: dict[str, dict[str, int]] = field(default_factory=dict)  # split -> emotion -> images
    skipped: Counter = field(default_factory=Counter)  # reason -> files
    unknown_classes: set[str] = field(default_factory=set)
    whole_image_fallbacks: int = 0  # portraits in which no face was found

    def warnings(self) -> list[str]:
        notes = [f"skipped {n} file(s): {reason}" for reason, n in sorted(self.skipped.items())]
        if self.unknown_classes:
            notes.append(f"skipped unknown class folder(s): {', '.join(sorted(self.unknown_classes))}")
        if self.whole_image_fallbacks:
            notes.append(f"{self.whole_image_fallbacks} large image(s) had no detectable face; used whole")
        return notes

    def to_json(self) -> str:
        return json.dumps({"counts": self.counts, "skipped": dict(self.skipped),
                           "unknown_classes": sorted(self.unknown_classes),
                           "whole_image_fallbacks": self.whole_image_fallbacks})

    @classmethod
    def from_json(cls, text: str) -> BuildReport:
        raw = json.loads(text)
        return cls(raw["counts"], Counter(raw["skipped"]), set(raw["unknown_classes"]), raw["whole_image_fallbacks"])


@dataclass
class Dataset:
    """Faces (N, 48, 48) uint8, labels (N,) indexing EMOTIONS and each face's path in the source, per split;
    FER+ vote counts (N, 10) per split once `attach_votes` has joined them (all zeros: no votes)."""

    source: str
    fingerprint: str
    images: dict[str, np.ndarray]
    labels: dict[str, np.ndarray]
    report: BuildReport
    names: dict[str, np.ndarray] = field(default_factory=dict)
    votes: dict[str, np.ndarray] | None = None
    votes_source: str | None = None

    @property
    def splits(self) -> list[str]:
        return list(self.images)

    def training_split(self) -> str | None:
        """The split a run trains on: train/, else the class folders at the top; None when there is neither
        (a test/ alone, as the bundled sample: then every split trains)."""
        return next((split for split in ("train", "all") if split in self.images), None)

    def evaluation_split(self) -> str | None:
        """The split to score a model on: test/ when there is one, else None (every image)."""
        return "test" if "test" in self.images else None

    def select(self, split: str | None, emotions: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
        """Images of `split` (None: all splits) whose label is in `emotions`, labels re-indexed to `emotions`."""
        images, labels, _ = self.select_with_votes(split, emotions)
        return images, labels

    def select_with_votes(self, split: str | None, emotions: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """As `select`, with the faces' FER+ vote counts (N, 10): zeros where a face has none."""
        from core.votes import COLUMNS

        splits = self.splits if split is None else [split]
        if split is not None and split not in self.images:
            raise DatasetError(f"the dataset has no {split!r} split (it has: {', '.join(self.splits)})")
        images = np.concatenate([self.images[name] for name in splits])
        labels = np.concatenate([self.labels[name] for name in splits])
        votes = np.concatenate([self.votes[name] if self.votes else np.zeros((len(self.labels[name]), len(COLUMNS)), np.float32)
                                for name in splits])
        remap = np.full(len(EMOTIONS), -1, dtype=np.int64)
        for index, emotion in enumerate(emotions):
            remap[EMOTIONS.index(emotion)] = index
        new_labels = remap[labels]
        keep = new_labels >= 0
        return images[keep], new_labels[keep], votes[keep]

    def attach_votes(self, table) -> int:
        """Join a core.votes.VoteTable to the faces by their paths; returns how many faces got votes."""
        if not self.names:
            raise DatasetError(f"{self.source} was read before emovoice kept face paths; delete its cache to rebuild it")
        self.votes = {split: table.lookup(self.names[split]) for split in self.splits}
        self.votes_source = table.source
        return int(sum((counts.sum(axis=1) > 0).sum() for counts in self.votes.values()))


def load_dataset(source: str | os.PathLike, cache_dir: Path | None = None,
                 progress: ProgressCallback | None = None) -> Dataset:
    """Read a dataset (folder, .zip or fer2013.csv), from the cache when the source is unchanged."""
    path = _checked_path(str(source))
    try:
        exists = path.exists()
    except OSError as error:  # a name too long for the file system, a loop of links
        raise DatasetError(f"that path cannot be read ({error.strerror})") from None
    if not exists:
        raise DatasetError(f"{path} does not exist: give a FER2013 folder, a .zip of one, or fer2013.csv")
    if not os.access(path, os.R_OK):
        raise DatasetError(f"{path} is not readable (permission denied)")
    fingerprint = source_fingerprint(path)
    if path.suffix == ".npz":  # a dataset emovoice already built (a cache file, or packed for a GPU machine)
        try:
            return _read_cache(path, str(path), fingerprint)
        except _DAMAGED_CACHE as error:
            raise DatasetError(f"{path} is not a dataset written by emovoice ({error})") from None
    cache_file = (cache_dir or CACHE_DIR / "datasets") / f"{fingerprint}.npz"
    if cache_file.exists():
        try:
            return _read_cache(cache_file, str(path), fingerprint)
        except _DAMAGED_CACHE:
            cache_file.unlink(missing_ok=True)  # a damaged cache is rebuilt, never trusted
    try:
        dataset = _build(path, fingerprint, progress)
    except ArchiveError as error:
        raise DatasetError(str(error)) from None
    _write_cache(cache_file, dataset)
    return dataset


def resolve_data_path(text: str, roots: list[Path] | None = None) -> Path:
    """A dataset path typed by a dashboard visitor, accepted only inside the configured data roots.

    Relative paths are taken inside the first root. The server's owner adds roots with
    EMOVOICE_DATA_ROOTS; a visitor cannot reach /etc or ~/.ssh by typing them.
    """
    roots = roots if roots is not None else data_roots()
    candidate = _checked_path(text.strip())
    if not candidate.is_absolute():
        candidate = roots[0] / candidate
    try:
        resolved = candidate.resolve()
        exists = resolved.exists()
    except OSError as error:  # a name too long for the file system, a loop of links
        raise DatasetError(f"that path cannot be read ({error.strerror})") from None
    if not any(resolved == root or root in resolved.parents for root in roots):
        allowed = ", ".join(str(root) for root in roots)
        raise DatasetError(f"{text!r} is outside the dataset folders this dashboard may read ({allowed}); "
                           "put the data there, upload a zip, or ask the server's owner to add a folder "
                           "to EMOVOICE_DATA_ROOTS")
    if not exists:
        raise DatasetError(f"{resolved} does not exist: give a FER2013 folder, a .zip of one, or fer2013.csv")
    return resolved


def _checked_path(text: str) -> Path:
    """A path as typed, refused in one line where no file system could hold it (a NUL, thousands of characters)."""
    if "\0" in text:
        raise DatasetError("a path cannot contain a NUL character")
    if len(text) > MAX_PATH_CHARS:
        raise DatasetError(f"that path is {len(text):,} characters long; a path has at most {MAX_PATH_CHARS:,}")
    try:
        return Path(text).expanduser()
    except RuntimeError:  # ~user of a user that does not exist
        return Path(text)


def source_fingerprint(path: Path, builder_version: int = BUILDER_VERSION) -> str:
    """A hash that changes when the source's content does (files: bytes; folders: names, sizes, times), or
    the way it is read (`builder_version`: a run records the fingerprint of the version that read it)."""
    digest = hashlib.sha256(f"v{builder_version}:{INPUT_SIZE}:".encode())
    if path.is_file():
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    else:
        for file in sorted(p for p in path.rglob("*") if p.is_file() and not p.is_symlink()):
            stat = file.stat()
            digest.update(f"{file.relative_to(path)}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:20]


# -- reading the source -------------------------------------------------------------------------


def _build(path: Path, fingerprint: str, progress: ProgressCallback | None) -> Dataset:
    report = BuildReport()
    collected: dict[str, tuple[list[np.ndarray], list[int], list[str]]] = {}

    def add(split: str, emotion: str, face: np.ndarray, name: str) -> None:
        faces, labels, names = collected.setdefault(split, ([], [], []))
        faces.append(face)
        labels.append(EMOTIONS.index(emotion))
        names.append(name)
        split_counts = report.counts.setdefault(split, {})
        split_counts[emotion] = split_counts.get(emotion, 0) + 1

    if path.is_file() and path.suffix.lower() == ".csv":
        with path.open("rb") as handle:  # streamed: fer2013.csv is 300 MB
            read_fer_csv(handle, add, report.skipped)
    else:
        with Archive(path) as archive:
            report.skipped.update(archive.skipped)
            csv_members = [member for member in archive.members if member.suffix == ".csv"]
            for done, member in enumerate(archive.members, 1):
                if member.suffix != ".csv":
                    read = functools.partial(archive.read, member.name)  # read only if it is used
                    _read_image_member(member.name, read, add, report)
                if progress and (done % 500 == 0 or done == len(archive.members)):
                    progress(done, len(archive.members))
            _read_csv_members(archive, csv_members, add, report)
    if not collected:
        details = "; ".join(report.warnings()) or "it holds no files"
        raise DatasetError(
            f"no usable images in {path} ({details}). Expected class folders such as happy/ and sad/ "
            "(optionally inside train/ and test/), or fer2013.csv"
        )
    images = {split: np.stack(faces).astype(np.uint8) for split, (faces, _, _) in collected.items()}
    labels = {split: np.asarray(lbls, dtype=np.int8) for split, (_, lbls, _) in collected.items()}
    names = {split: np.asarray(member_names, dtype=str) for split, (_, _, member_names) in collected.items()}
    return Dataset(str(path), fingerprint, images, labels, report, names)


_UNREADABLE_MEMBER = (zipfile.BadZipFile, RuntimeError, OSError, KeyError)  # RuntimeError: an encrypted member
_DAMAGED_MEMBER = "damaged zip member (its size or checksum is wrong, or it is encrypted)"


def _read_image_member(name: str, read: Callable[[], bytes], add, report: BuildReport) -> None:
    parts = PurePosixPath(name).parts
    if PurePosixPath(name).suffix.lower() not in IMAGE_EXTENSIONS:
        report.skipped["not an image file"] += 1
        return
    if len(parts) < 2:
        report.skipped["image not inside a class folder"] += 1
        return
    emotion = canonical_emotion(parts[-2])
    if emotion is None:
        report.unknown_classes.add(parts[-2])
        return
    split = next((SPLIT_ALIASES[p.lower()] for p in parts[:-2] if p.lower() in SPLIT_ALIASES), "all")
    # Decoding photos needs OpenCV and Pillow; reading a cached dataset does not, so a machine that
    # only trains (a GPU box without them) can still load one.
    from core.faces import MIN_FACE_SIDE
    from core.images import ImageError, decode_image, to_gray

    try:
        data = read()
    except _UNREADABLE_MEMBER:
        report.skipped[_DAMAGED_MEMBER] += 1
        return
    try:
        gray = to_gray(decode_image(data))
    except (ImageError, OSError):
        report.skipped["unreadable or corrupt image"] += 1
        return
    if min(gray.shape) < MIN_FACE_SIDE:
        report.skipped[f"image smaller than {MIN_FACE_SIDE} pixels"] += 1
        return
    add(split, emotion, _face_of(gray, report), name)


def _face_of(gray: np.ndarray, report: BuildReport) -> np.ndarray:
    """The largest face (portraits), the image itself (crops), or the whole image when no face is found."""
    from core.faces import JITTER, cropped_faces, whole_image_face

    found = cropped_faces(gray, jitter=JITTER[:1], limit=1).faces  # the unmoved view alone: the face as framed
    if not found:
        report.whole_image_fallbacks += 1
        return whole_image_face(gray)
    return found[0].face


ANOTHER_CSV = "another CSV of faces (one is read: the one with a Usage column, else the largest)"


def _header_line(handle) -> bytes:
    """A CSV's header: its first line that is not blank (read_fer_csv skips blank lines too), among its first 100."""
    lines = itertools.islice(iter(lambda: handle.readline(65536), b""), 100)
    return next((line for line in lines if line.strip()), b"")


def _read_csv_members(archive: Archive, members: list, add, report: BuildReport) -> None:
    """The archive's CSV of faces. Kaggle's challenge zip holds FER2013 twice, train.csv and icml_face_data.csv
    (with its Usage column): read both, every face would train twice and its twin sit among the validation
    faces. So one CSV of faces is read, the one with a Usage column (it has the test splits), else the largest.
    Each is streamed, never held whole: Kaggle's are 240 and 300 MB."""
    candidates = []
    for member in members:
        try:
            with archive.open(member.name) as handle:
                header = _header_line(handle)
        except _UNREADABLE_MEMBER:
            report.skipped[_DAMAGED_MEMBER] += 1
            continue
        columns = header.decode("utf-8", errors="replace").lower()
        if "emotion" not in columns or "pixels" not in columns:
            read_fer_csv([header], add, report.skipped)  # counted as a CSV without those columns
            continue
        candidates.append((("usage" in columns, member.size), member))
    if not candidates:
        return
    if len(candidates) > 1:
        report.skipped[ANOTHER_CSV] += len(candidates) - 1
    chosen = max(candidates, key=lambda candidate: candidate[0])[1]
    try:
        with archive.open(chosen.name) as handle:
            read_fer_csv(handle, add, report.skipped)
    except _UNREADABLE_MEMBER:  # damaged part-way: the rows before the damage are kept
        report.skipped[_DAMAGED_MEMBER] += 1


# -- the cache ----------------------------------------------------------------------------------


def _write_cache(cache_file: Path, dataset: Dataset) -> None:
    arrays = {}
    for split in dataset.splits:
        arrays[f"images__{split}"] = dataset.images[split]
        arrays[f"labels__{split}"] = dataset.labels[split]
        arrays[f"names__{split}"] = dataset.names[split]
    arrays["report"] = np.array(dataset.report.to_json())
    partial = cache_file.with_suffix(f".{os.getpid()}.partial")
    try:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        with partial.open("wb") as handle:
            np.savez(handle, **arrays)
        os.replace(partial, cache_file)
    except OSError:  # a full disk or a cache folder it may not write costs the cache, not the dataset
        try:
            partial.unlink(missing_ok=True)
        except OSError:
            pass  # the folder cannot be read either: nothing was written there


# What a damaged or foreign .npz raises on the way in: a cut file is a BadZipFile or EOFError, a garbled one
# a ValueError or OSError, a missing array a KeyError, a wrong report a JSON or type error.
_DAMAGED_CACHE = (OSError, ValueError, KeyError, EOFError, TypeError, zipfile.BadZipFile)


def _read_cache(cache_file: Path, source: str, fingerprint: str) -> Dataset:
    """A dataset written by _write_cache; raises one of _DAMAGED_CACHE where the file is not whole and right."""
    with np.load(cache_file, allow_pickle=False) as archive:
        images = {k.split("__", 1)[1]: archive[k] for k in archive.files if k.startswith("images__")}
        labels = {k.split("__", 1)[1]: archive[k] for k in archive.files if k.startswith("labels__")}
        names = {k.split("__", 1)[1]: archive[k] for k in archive.files if k.startswith("names__")}
        report = BuildReport.from_json(str(archive["report"]))
    if not images:
        raise ValueError("it holds no faces")
    for split, faces in images.items():
        if faces.dtype != np.uint8 or faces.shape[1:] != (INPUT_SIZE, INPUT_SIZE):
            raise ValueError(f"its {split} faces are {faces.dtype} {faces.shape}, not {INPUT_SIZE}x{INPUT_SIZE} uint8")
        if len(labels[split]) != len(faces) or (split in names and len(names[split]) != len(faces)):
            raise ValueError(f"its {split} faces, labels and names differ in number")
        if len(faces) and not 0 <= int(labels[split].min()) <= int(labels[split].max()) < len(EMOTIONS):
            raise ValueError(f"its {split} labels are not emotions")
    return Dataset(source, fingerprint, images, labels, report, names)
