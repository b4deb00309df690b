"""Dataset builder: facial-expression data in the forms people download, as arrays.

Reads a folder or .zip with train/ and test/ splits of class folders (the Kaggle
FER2013 copies), a plain folder of class folders, or the original fer2013.csv.
Images of any size and colour become 48x48 gray faces: small images are taken
whole, larger ones (portraits) are cut around their largest face (core.faces). Decoded arrays
are cached as .npz (no pickle), keyed by a fingerprint of the source.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np

from core.emotions import EMOTIONS, INPUT_SIZE, canonical_emotion
from core.paths import CACHE_DIR, data_roots
from core.votes import fer_name

BUILDER_VERSION = 3  # 3: each face keeps its path in the source (votes join on it); 2: faces found by CenterFace and aligned by the eyes. Bump when the way images become arrays changes: old caches are then rebuilt
IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff", ".pgm", ".ppm"}
SPLIT_ALIASES = {
    "train": "train", "training": "train",
    "test": "test", "testing": "test", "publictest": "test",
    "val": "val", "valid": "val", "validation": "val",
    "privatetest": "private",
}
CSV_USAGE = {"Training": "train", "PublicTest": "test", "PrivateTest": "private"}
MAX_MEMBER_BYTES = 20 * 1024 * 1024
MAX_UPLOAD_BYTES = 200 * 1024 * 1024  # a dataset zip uploaded in the browser (FER2013's is 62 MB)

Progress = Callable[[int, int], None]  # (files done, files in all)


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


def load_dataset(source: str | os.PathLike, cache_dir: Path | None = None, progress: Progress | None = None) -> Dataset:
    """Read a dataset (folder, .zip or fer2013.csv), from the cache when the source is unchanged."""
    path = Path(source).expanduser()
    if not path.exists():
        raise DatasetError(f"{path} does not exist: give a FER2013 folder, a .zip of one, or fer2013.csv")
    if not os.access(path, os.R_OK):
        raise DatasetError(f"{path} is not readable (permission denied)")
    fingerprint = source_fingerprint(path)
    if path.suffix == ".npz":  # a dataset emovoice already built (a cache file, or packed for a GPU machine)
        try:
            return _read_cache(path, str(path), fingerprint)
        except (OSError, ValueError, KeyError) as error:
            raise DatasetError(f"{path} is not a dataset written by emovoice ({error})") from None
    cache_file = (cache_dir or CACHE_DIR / "datasets") / f"{fingerprint}.npz"
    if cache_file.exists():
        try:
            return _read_cache(cache_file, str(path), fingerprint)
        except (OSError, ValueError, KeyError):
            cache_file.unlink(missing_ok=True)  # a damaged cache is rebuilt, never trusted
    dataset = _build(path, fingerprint, progress)
    _write_cache(cache_file, dataset)
    return dataset


def resolve_data_path(text: str, roots: list[Path] | None = None) -> Path:
    """A dataset path typed by a dashboard visitor, accepted only inside the configured data roots.

    Relative paths are taken inside the first root. The server's owner adds roots with
    EMOVOICE_DATA_ROOTS; a visitor cannot reach /etc or ~/.ssh by typing them.
    """
    roots = roots if roots is not None else data_roots()
    candidate = Path(text.strip()).expanduser()
    if not candidate.is_absolute():
        candidate = roots[0] / candidate
    resolved = candidate.resolve()
    if not any(resolved == root or root in resolved.parents for root in roots):
        allowed = ", ".join(str(root) for root in roots)
        raise DatasetError(f"{text!r} is outside the dataset folders this dashboard may read ({allowed}); "
                           "put the data there, upload a zip, or ask the server's owner to add a folder "
                           "to EMOVOICE_DATA_ROOTS")
    if not resolved.exists():
        raise DatasetError(f"{resolved} does not exist: give a FER2013 folder, a .zip of one, or fer2013.csv")
    return resolved


def save_upload(name: str, data: bytes, cache_dir: Path | None = None) -> Path:
    """Keep an uploaded dataset (zip or csv) under the cache, named by its content; returns its path."""
    suffix = Path(name).suffix.lower()
    if suffix not in (".zip", ".csv"):
        raise DatasetError(f"upload a .zip of class folders or fer2013.csv, not {suffix or 'a file without extension'}")
    if len(data) > MAX_UPLOAD_BYTES:
        raise DatasetError(f"the upload is {len(data) / 2**20:.0f} MB; the limit is {MAX_UPLOAD_BYTES // 2**20} MB")
    folder = (cache_dir or CACHE_DIR) / "uploads"
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{hashlib.sha256(data).hexdigest()[:20]}{suffix}"
    if not target.exists():
        partial = target.with_suffix(".partial")
        partial.write_bytes(data)
        os.replace(partial, target)
    return target


def source_fingerprint(path: Path) -> str:
    """A hash that changes when the source's content does (files: bytes; folders: names, sizes, times)."""
    digest = hashlib.sha256(f"v{BUILDER_VERSION}:{INPUT_SIZE}:".encode())
    if path.is_file():
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    else:
        for file in sorted(p for p in path.rglob("*") if p.is_file()):
            stat = file.stat()
            digest.update(f"{file.relative_to(path)}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:20]


# -- reading the source -------------------------------------------------------------------------


def _build(path: Path, fingerprint: str, progress: Progress | None) -> Dataset:
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
        _read_csv(path.read_bytes(), add, report)
    else:
        members = list(_zip_members(path, report) if path.is_file() else _folder_members(path, report))
        for done, (name, read) in enumerate(members, 1):
            if PurePosixPath(name).name.lower().endswith(".csv"):
                _read_csv(read(), add, report)
            else:
                _read_image_member(name, read, add, report)
            if progress and (done % 500 == 0 or done == len(members)):
                progress(done, len(members))
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


Member = tuple[str, Callable[[], bytes]]  # (path inside the source, how to read its bytes)


def _zip_members(path: Path, report: BuildReport) -> Iterator[Member]:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as error:
        raise DatasetError(f"{path.name} is not a readable zip file ({error})") from None
    for info in archive.infolist():
        if info.is_dir() or _is_hidden(info.filename):
            continue
        if info.filename.startswith("/") or ".." in PurePosixPath(info.filename).parts:
            report.skipped["unsafe path in the zip (absolute or ../)"] += 1
        elif info.filename.lower().endswith(".zip"):
            report.skipped["nested zip (unzip it and point at the folder)"] += 1
        elif info.file_size > MAX_MEMBER_BYTES:
            report.skipped[f"file over {MAX_MEMBER_BYTES // 2**20} MB"] += 1
        else:
            # Members are read into memory, never extracted: a "../" name cannot write anywhere.
            yield info.filename, (lambda info=info: read_member(archive, info))


def read_member(archive: zipfile.ZipFile, member: str | zipfile.ZipInfo, limit: int = MAX_MEMBER_BYTES) -> bytes:
    """A zip member's bytes, never inflating more than it declares, nor more than `limit`.

    ZipFile.read() inflates a whole compressed chunk before cutting it to the declared size, so a member that
    lies about its size (a zip bomb: 200 KB that inflate to 200 MB while claiming 1 KB) would fill memory
    first. Asking for exactly the declared size bounds every step by it, and zipfile checks the CRC there,
    so the liar is refused after the bytes it declared. Raises zipfile.BadZipFile for a damaged or lying
    member, or one that declares more than `limit`; RuntimeError for an encrypted one.
    """
    info = member if isinstance(member, zipfile.ZipInfo) else archive.getinfo(member)
    if info.file_size > limit:
        raise zipfile.BadZipFile(f"{info.filename} inflates to {info.file_size / 2**20:.0f} MB, "
                                 f"over the {limit // 2**20} MB a file may have")
    with archive.open(info) as handle:
        return handle.read(info.file_size)


def _folder_members(path: Path, report: BuildReport) -> Iterator[Member]:
    for file in sorted(path.rglob("*")):
        relative = file.relative_to(path).as_posix()
        if _is_hidden(relative) or not file.is_file():
            continue
        if file.suffix.lower() == ".zip":
            report.skipped["nested zip (unzip it and point at the folder)"] += 1
        elif file.stat().st_size > MAX_MEMBER_BYTES:
            report.skipped[f"file over {MAX_MEMBER_BYTES // 2**20} MB"] += 1
        else:
            yield relative, file.read_bytes


def _is_hidden(name: str) -> bool:
    return any((part.startswith(".") and part != "..") or part == "__MACOSX" for part in PurePosixPath(name).parts)


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
    except (zipfile.BadZipFile, RuntimeError, OSError):  # RuntimeError: an encrypted member
        report.skipped["damaged zip member (its size or checksum is wrong, or it is encrypted)"] += 1
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
    from core.faces import find_faces, whole_image_face

    faces = find_faces(gray)
    if not faces:
        report.whole_image_fallbacks += 1
        return whole_image_face(gray)
    return faces[0][1]


def _read_csv(data: bytes, add, report: BuildReport) -> None:
    import pandas as pd

    try:
        table = pd.read_csv(io.BytesIO(data), dtype=str, on_bad_lines="skip")
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as error:
        report.skipped[f"unreadable CSV ({error})"] += 1
        return
    table.columns = [str(c).strip().lower() for c in table.columns]
    if not {"emotion", "pixels"} <= set(table.columns):
        report.skipped["CSV without 'emotion' and 'pixels' columns"] += 1
        return
    usage = table["usage"] if "usage" in table.columns else pd.Series(["Training"] * len(table))
    pixel_count = INPUT_SIZE * INPUT_SIZE
    for row, (label, pixels, use) in enumerate(zip(table["emotion"], table["pixels"], usage)):
        try:
            index = int(str(label).strip())
            values = np.array(str(pixels).split(), dtype=np.float64)
            if not 0 <= index < len(EMOTIONS) or values.size != pixel_count or not np.all((values >= 0) & (values <= 255)):
                raise ValueError
        except ValueError:
            report.skipped["malformed CSV row"] += 1
            continue
        split = CSV_USAGE.get(str(use).strip(), "all")
        # Named as FER+ names fer2013.csv's rows, so that fer2013new.csv's votes join row for row.
        add(split, EMOTIONS[index], values.reshape(INPUT_SIZE, INPUT_SIZE).astype(np.uint8), fer_name(row))


# -- the cache ----------------------------------------------------------------------------------


def _write_cache(cache_file: Path, dataset: Dataset) -> None:
    arrays = {}
    for split in dataset.splits:
        arrays[f"images__{split}"] = dataset.images[split]
        arrays[f"labels__{split}"] = dataset.labels[split]
        arrays[f"names__{split}"] = dataset.names[split]
    arrays["report"] = np.array(dataset.report.to_json())
    cache_file.parent.mkdir(parents=True, exist_ok=True)
    partial = cache_file.with_suffix(f".{os.getpid()}.partial")
    try:
        with partial.open("wb") as handle:
            np.savez(handle, **arrays)
        os.replace(partial, cache_file)
    except OSError:
        partial.unlink(missing_ok=True)  # a full disk costs the cache, not the dataset


def _read_cache(cache_file: Path, source: str, fingerprint: str) -> Dataset:
    with np.load(cache_file, allow_pickle=False) as archive:
        images = {k.split("__", 1)[1]: archive[k] for k in archive.files if k.startswith("images__")}
        labels = {k.split("__", 1)[1]: archive[k] for k in archive.files if k.startswith("labels__")}
        names = {k.split("__", 1)[1]: archive[k] for k in archive.files if k.startswith("names__")}
        report = BuildReport.from_json(str(archive["report"]))
    return Dataset(source, fingerprint, images, labels, report, names)
