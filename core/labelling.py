"""Labelling many faces: photos (a file, a folder, a zip) or a video, to one CSV row per face.

Everything goes through `Labeller`, a function from a batch of inputs to a batch of rows that calls
core.recognise.recognise (the Try-It path) on each photo or frame. The same class runs in this
process or as a Ray Data actor (`label(..., ray=...)`), so both give the same rows; only the driver
(this process) follows faces across a video's frames, since that needs the frames in order.
"""

from __future__ import annotations

import csv
import io
import math
import os
import struct
import threading
import time
import zipfile
from collections import Counter, deque
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np

from core.data import IMAGE_EXTENSIONS, MAX_MEMBER_BYTES, read_member
from core.faces import Box
from core.images import ImageError, decode_image
from core.paths import PROJECT_ROOT
from core.recognise import Classifier, load_classifier, recognise
from core.runs import active_model_dir, read_metadata, write_atomic
from core.video import DEFAULT_FPS, VIDEO_EXTENSIONS, FaceTracker, VideoError, VideoFrames

BATCH_SIZE = 16  # photos or frames per batch: enough to amortise a Ray call, small enough to stream
WORKERS = 2  # batches labelled side by side in this process: OpenCV and TensorFlow Lite let go of Python's lock,
# so a second thread fills the gaps each batch leaves on the cores (a video is also decoded meanwhile)
TRUNCATED_SHARE = 0.9  # a video that stops before this share of its declared length was cut short
MAX_ZIP_ENTRIES = 50_000  # FER2013's zip holds 35,887; a zip of more is refused before it is parsed
LOCAL_RAY = "local"  # `ray=LOCAL_RAY` starts a Ray instance on this machine instead of joining a cluster
ACTOR_CPUS = 0.5  # Ray actors ask for half a CPU: a one-CPU actor per core leaves none for the video reader
# task, and Ray Data then waits forever for a CPU (measured: it deadlocks with 2 actors on 2 cores)
ROW_FIELDS = ("source", "time_s", "face", "x", "y", "width", "height", "emotion")
PROBLEM = "problem"  # a column of the batches, never of the CSV: why an input could not be labelled

Progress = Callable[[int, int], None]  # (inputs done, inputs expected; 0 when unknown)


class LabelError(ValueError):
    """An input that cannot be labelled at all, with a message fit to show the user."""


@dataclass
class Plan:
    """What an input holds: photos as (file, member in the zip or ""), or one video."""

    source: Path
    photos: list[tuple[str, str]] = field(default_factory=list)
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


def plan_input(source: str | os.PathLike, fps: float = DEFAULT_FPS) -> Plan:
    """Find the photos or the video in `source`; unusable files are counted in `skipped`, never read."""
    path = Path(source).expanduser()
    if not path.exists():
        raise LabelError(f"{path} does not exist: give a photo, a folder or zip of photos, or a video")
    plan = Plan(path)
    suffix = path.suffix.lower()
    if path.is_dir():
        for file in sorted(path.rglob("*")):
            relative = file.relative_to(path).as_posix()
            if file.is_file() and not _is_hidden(relative) and _keep(relative, file.stat().st_size, plan.skipped):
                plan.photos.append((str(file), ""))
    elif suffix == ".zip":
        plan.photos = [(str(path), name) for name in _zip_photos(path, plan.skipped)]
    elif suffix in VIDEO_EXTENSIONS:
        try:
            plan.video = VideoFrames(path, fps)
        except VideoError as error:
            raise LabelError(str(error)) from None
        return plan
    elif suffix in IMAGE_EXTENSIONS:
        plan.photos = [(str(path), "")]
    else:
        raise LabelError(f"{path.name}: not a photo ({', '.join(sorted(IMAGE_EXTENSIONS))}), a folder, "
                         f"a .zip or a video ({', '.join(sorted(VIDEO_EXTENSIONS))})")
    if not plan.photos:
        details = "; ".join(f"skipped {n} file(s): {reason}" for reason, n in sorted(plan.skipped.items()))
        raise LabelError(f"no photos in {path}" + (f" ({details})" if details else " (it is empty)"))
    return plan


def _keep(name: str, size: int, skipped: Counter) -> bool:
    """Whether a file in a folder or zip is a photo worth reading; if not, count why."""
    suffix = PurePosixPath(name).suffix.lower()
    if suffix in IMAGE_EXTENSIONS and size <= MAX_MEMBER_BYTES:
        return True
    if suffix in IMAGE_EXTENSIONS:
        skipped[f"photo over {MAX_MEMBER_BYTES // 2**20} MB"] += 1
    elif suffix in VIDEO_EXTENSIONS:
        skipped["video inside a folder or zip (label each video on its own)"] += 1
    elif suffix == ".zip":
        skipped["nested zip (unzip it and give the folder)"] += 1
    else:
        skipped["not a photo"] += 1
    return False


def _zip_photos(path: Path, skipped: Counter) -> list[str]:
    """The photos in a zip, by the rules core.data reads datasets with: nothing is extracted to disk,
    absolute and ../ names and nested zips are skipped, a member is read only if it declares at most
    MAX_MEMBER_BYTES (and zipfile stops at the declared size, so a zip bomb cannot lie its way past)."""
    entries = _zip_entry_count(path)
    if entries > MAX_ZIP_ENTRIES:
        raise LabelError(f"{path.name} holds {entries:,} entries; the limit for a zip is {MAX_ZIP_ENTRIES:,}: "
                         "unzip it and give the folder")
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
    except (zipfile.BadZipFile, OSError) as error:
        raise LabelError(f"{path.name} is not a readable zip file ({error})") from None
    names = []
    for info in infos:
        if info.is_dir() or _is_hidden(info.filename):
            continue
        if info.filename.startswith("/") or ".." in PurePosixPath(info.filename).parts:
            skipped["unsafe path in the zip (absolute or ../)"] += 1
        elif _keep(info.filename, info.file_size, skipped):
            names.append(info.filename)
    return names


def _zip_entry_count(path: Path) -> int:
    """Entries a zip declares, from its end record, before zipfile parses (and holds) every entry.

    0 when the record is not found or the zip is ZIP64: then zipfile itself decides.
    """
    with path.open("rb") as handle:
        handle.seek(0, os.SEEK_END)
        size = handle.tell()
        handle.seek(max(0, size - (22 + 65535)))  # the record is 22 bytes plus a comment of up to 64 KB
        tail = handle.read()
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) < at + 22:
        return 0
    entries = struct.unpack("<H", tail[at + 10 : at + 12])[0]
    return 0 if entries == 0xFFFF else entries


def _is_hidden(name: str) -> bool:
    return any((part.startswith(".") and part != "..") or part == "__MACOSX" for part in PurePosixPath(name).parts)


# -- the per-batch function (in this process and on Ray) ---------------------------------------------------


class Labeller:
    """A batch of inputs -> a batch of rows, as Ray Data's numpy batches: dicts of equal-length arrays.

    Photos come as {"path", "member"} and are read here, so that on Ray each actor reads its own files;
    video frames come as {"source", "time_s", "image"}. Every input gives at least one row: one per face,
    else one with face 0 (no face), or one whose PROBLEM says why it could not be read.
    """

    def __init__(self, classifier: Classifier):
        self.classifier = classifier
        self._zips: dict[str, zipfile.ZipFile] = {}  # opened once per labeller: a big zip's index is costly

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        rows: list[dict] = []
        if "image" in batch:
            for source, time_s, image in zip(batch["source"], batch["time_s"], batch["image"]):
                rows += self._rows(str(source), float(time_s), image)
        else:
            for path, member in zip(batch["path"], batch["member"]):
                path, member = str(path), str(member)
                source = f"{path}/{member}" if member else path
                try:
                    data = read_member(self._zip(path), member) if member else Path(path).read_bytes()
                except (OSError, zipfile.BadZipFile, RuntimeError) as error:  # RuntimeError: an encrypted member
                    rows.append(_problem_row(source, f"unreadable file ({error})"))
                    continue
                rows += self._rows(source, math.nan, data)
        return _columns(rows, self.classifier.classes)

    def _rows(self, source: str, time_s: float, photo: bytes | np.ndarray) -> list[dict]:
        try:  # decoded gray: labelling never shows the photo, and colour only costs time
            recognition = recognise(self.classifier, decode_image(photo, gray=True) if isinstance(photo, bytes) else photo)
        except ImageError as error:
            return [_problem_row(source, str(error))]
        if not recognition.faces:
            return [{"source": source, "time_s": time_s, "face": 0}]
        return [{"source": source, "time_s": time_s, "face": number, **_box(face.box), "emotion": face.emotion,
                 **face.probabilities} for number, face in enumerate(recognition.faces, 1)]

    def _zip(self, path: str) -> zipfile.ZipFile:
        if path not in self._zips:
            self._zips[path] = zipfile.ZipFile(path)
        return self._zips[path]


class _RayLabeller(Labeller):
    """The Ray actor: loads the classifier once, then labels every batch it is given."""

    def __init__(self, model_dir: str):
        super().__init__(load_classifier(Path(PROJECT_ROOT, model_dir)))


def _box(box: Box) -> dict[str, int]:
    return {"x": box.x, "y": box.y, "width": box.width, "height": box.height}


def _problem_row(source: str, problem: str) -> dict:
    return {"source": source, "time_s": math.nan, "face": 0, PROBLEM: problem}


def _columns(rows: list[dict], classes: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Rows -> fixed columns and types, whatever the batch held (Ray needs one schema for every batch).
    Missing values: "" for text, -1 for integers, NaN for numbers."""
    def column(name: str, missing, dtype) -> np.ndarray:
        return np.array([row.get(name, missing) for row in rows], dtype=dtype)

    columns = {"source": column("source", "", object), "time_s": column("time_s", math.nan, np.float64),
               "face": column("face", 0, np.int64)}
    columns |= {name: column(name, -1, np.int64) for name in ("x", "y", "width", "height")}
    columns["emotion"] = column("emotion", "", object)
    columns |= {emotion: column(emotion, math.nan, np.float64) for emotion in classes}
    columns[PROBLEM] = column(PROBLEM, "", object)
    return columns


# -- input batches, and where they are labelled -------------------------------------------------------------


def _photo_batches(plan: Plan) -> Iterator[dict[str, np.ndarray]]:
    for start in range(0, len(plan.photos), BATCH_SIZE):
        chunk = plan.photos[start : start + BATCH_SIZE]
        yield {"path": np.array([path for path, _ in chunk], dtype=object),
               "member": np.array([member for _, member in chunk], dtype=object)}


def _frame_batches(video: VideoFrames) -> Iterator[dict[str, np.ndarray]]:
    """The sampled frames in batches; only one batch of frames is ever in memory."""
    times, images = [], []
    for time_s, image in video:
        times.append(time_s)
        images.append(image)
        if len(images) == BATCH_SIZE:
            yield _frame_batch(str(video.path), times, images)
            times, images = [], []
    if images:
        yield _frame_batch(str(video.path), times, images)


def _frame_batch(source: str, times: list[float], images: list[np.ndarray]) -> dict[str, np.ndarray]:
    return {"source": np.array([source] * len(times), dtype=object), "time_s": np.array(times, dtype=np.float64),
            "image": np.stack(images)}


def _in_process(plan: Plan, classifier: Classifier, workers: int = WORKERS) -> Iterator[dict[str, np.ndarray]]:
    """The labelled batches, in order, from `workers` threads that each keep a Labeller (its open zips)."""
    own = threading.local()

    def label_batch(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if not hasattr(own, "labeller"):
            own.labeller = Labeller(classifier)
        return own.labeller(batch)

    batches = _frame_batches(plan.video) if plan.video else _photo_batches(plan)
    with ThreadPoolExecutor(workers, thread_name_prefix="label") as pool:
        pending: deque = deque()
        for batch in batches:
            pending.append(pool.submit(label_batch, batch))
            if len(pending) > workers:  # a few batches in flight at most: memory stays flat on a long video
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def _on_ray(plan: Plan, model_dir: Path, actors: int | None) -> Iterator[dict[str, np.ndarray]]:
    """The same batches through Ray Data: `map_batches` over a pool of actors that each load the model once."""
    import ray

    data_context = ray.data.DataContext.get_current()
    data_context.execution_options.preserve_order = True  # a video's faces are followed in time order
    data_context.enable_progress_bars = False  # the caller draws its own
    if plan.video:
        dataset = _video_dataset(plan.video)
    else:
        dataset = ray.data.from_items([{"path": path, "member": member} for path, member in plan.photos],
                                      override_num_blocks=max(1, math.ceil(len(plan.photos) / BATCH_SIZE)))
    size = actors or max(1, int(ray.cluster_resources().get("CPU", 1)))
    labelled = dataset.map_batches(_RayLabeller, batch_size=BATCH_SIZE, batch_format="numpy",
                                   compute=ray.data.ActorPoolStrategy(size=size), num_cpus=ACTOR_CPUS,
                                   fn_constructor_kwargs={"model_dir": _model_for_workers(model_dir)})
    return labelled.iter_batches(batch_size=None, batch_format="numpy")


def _model_for_workers(model_dir: Path) -> str:
    # Inside the repository: relative, so that a cluster's workers find it in the uploaded working dir.
    resolved = model_dir.resolve()
    return str(resolved.relative_to(PROJECT_ROOT)) if PROJECT_ROOT in resolved.parents else str(resolved)


def _video_dataset(video: VideoFrames):
    """A Ray dataset of the video's sampled frames: one read task decodes it in order, a block per batch."""
    import ray
    from ray.data.block import BlockAccessor, BlockMetadata
    from ray.data.datasource import Datasource, ReadTask

    class VideoDatasource(Datasource):
        def estimate_inmemory_data_size(self) -> int | None:
            return None  # unknown until decoded; the frames stream, so it does not matter

        def get_read_tasks(self, parallelism: int, per_task_row_limit=None, data_context=None) -> list[ReadTask]:
            def read() -> Iterator:
                return map(BlockAccessor.batch_to_block, _frame_batches(video))

            metadata = BlockMetadata(num_rows=None, size_bytes=None, exec_stats=None, input_files=(str(video.path),))
            return [ReadTask(read, metadata)]

    return ray.data.read_datasource(VideoDatasource(), override_num_blocks=1)


def start_ray(address: str = LOCAL_RAY, model_dir: Path | None = None) -> None:
    """Start Ray on this machine (LOCAL_RAY) or join the cluster at `address`, ready for `label` with the
    model in `model_dir` (default: the active model)."""
    import ray

    if address == LOCAL_RAY:
        os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # an instance for this process alone: no tokens to share
        # Workers import core from the repository, where this process does.
        ray.init(include_dashboard=False, log_to_driver=False, configure_logging=False,
                 runtime_env={"env_vars": {"PYTHONPATH": str(PROJECT_ROOT)}})
    else:
        # A cluster's workers get the code and the models with the job (runs/ only for the active run); input
        # files must be at the same path on every node (shared storage).
        excludes = [".git", "data", "voices", "docs", "samples", "test-results", "runs/*"]
        model = _model_for_workers(model_dir or active_model_dir())
        if not Path(model).is_absolute():
            excludes.append(f"!{model}")
        ray.init(address=address, log_to_driver=False, configure_logging=False,
                 runtime_env={"working_dir": str(PROJECT_ROOT), "excludes": excludes})


# -- the whole job ----------------------------------------------------------------------------------------------


def label(source: str | os.PathLike, out: str | os.PathLike, model_dir: Path | None = None, fps: float = DEFAULT_FPS,
          ray: str | None = None, actors: int | None = None, classifier: Classifier | None = None,
          progress: Progress | None = None) -> Summary:
    """Label every face in `source` into the CSV `out`, which appears only once it is complete.

    `ray`: None labels in this process (with `classifier` if given, else the model in `model_dir`,
    else the active model); LOCAL_RAY starts Ray on this machine; any other value is a cluster's address,
    with `actors` actors (default: one per CPU). Raises LabelError, and writes nothing, for an input
    that holds nothing to label.
    """
    plan = plan_input(source, fps)
    model_dir = Path(model_dir or (classifier.loaded.path if classifier else active_model_dir()))
    classes = classifier.classes if classifier else tuple(read_metadata(model_dir)["classes"])
    summary = Summary(str(plan.source), "in-process" if ray is None else f"ray ({ray})", classes, skipped=plan.skipped)

    def write(batches: Iterable[dict[str, np.ndarray]]) -> None:
        # Timed from here: loading the model, or starting Ray, is not labelling (Ray's actors do load it inside).
        started = time.perf_counter()
        write_atomic(Path(out), lambda partial: _write_csv(partial, _rows(plan, batches, summary, progress), classes))
        summary.seconds = time.perf_counter() - started

    if ray is None:
        write(_in_process(plan, classifier or load_classifier(model_dir)))
    else:
        import ray as ray_module

        started_here = not ray_module.is_initialized()  # else the caller's connection is used, and kept
        if started_here:
            start_ray(ray, model_dir)
        try:
            write(_on_ray(plan, model_dir, actors))
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
          progress: Progress | None) -> Iterator[dict]:
    """Labelled batches -> the CSV's rows: faces followed across frames, problems counted and left out."""
    tracker = FaceTracker()
    expected = plan.video.expected_samples if plan.video else len(plan.photos)
    done = 0
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
                ids = tracker.assign(time_s, [Box(row["x"], row["y"], row["width"], row["height"]) for row in faces])
                for row, face in zip(faces, ids):
                    row["face"] = face
                    summary.people = max(summary.people, face)
        for row in rows:
            if row[PROBLEM] or (plan.video and row["face"] == 0):
                continue  # a problem is counted, not written; a frame without a face is not a face
            if row["emotion"]:
                summary.faces += 1
                summary.emotions[row["emotion"]] += 1
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
