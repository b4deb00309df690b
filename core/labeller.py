"""The per-batch work of labelling, and where it runs: threads in this process, or Ray actors.

`Labeller` is a function from a batch of inputs to a batch of rows that calls core.recognise.recognise
(the Try-It path) on each photo or frame. The same class runs in this process or as a Ray Data actor,
so both give the same rows; core.labelling drives it and follows faces across a video's frames.
"""

from __future__ import annotations

import math
import os
import threading
import zipfile
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.archives import MAX_MEMBER_BYTES, Archive, ArchiveError
from core.emotions import INPUT_SIZE
from core.faces import Box
from core.images import ImageError
from core.paths import PROJECT_ROOT
from core.recognise import Classifier, load_classifier, recognise
from core.runs import active_model_dir
from core.video import VideoFrames

BATCH_SIZE = 16  # photos or frames per batch: enough to amortise a Ray call, small enough to stream
WORKERS = 2  # batches labelled side by side in this process: OpenCV and TensorFlow Lite let go of Python's lock,
# so a second thread fills the gaps each batch leaves on the cores (a video is also decoded meanwhile)
LOCAL_RAY = "local"  # `ray=LOCAL_RAY` starts a Ray instance on this machine instead of joining a cluster
ACTOR_CPUS = 0.5  # Ray actors ask for half a CPU: a one-CPU actor per core leaves none for the video reader
# task, and Ray Data then waits forever for a CPU (measured: it deadlocks with 2 actors on 2 cores)
PROBLEM = "problem"  # a column of the batches, never of the CSV: why an input could not be labelled
CROP = "crop"  # likewise: the 48x48 face the model read, which tells people apart in a video


@dataclass(frozen=True)
class Photo:
    path: str  # the photo's file, or the zip or folder that holds it
    member: str  # its path inside that zip or folder; "" for a file on its own
    name: str  # what the CSV calls it


class Labeller:
    """A batch of inputs -> a batch of rows, as Ray Data's numpy batches: dicts of equal-length arrays.

    Photos come as {"path", "member", "name"} and are read here, so that on Ray each actor reads its own
    files; video frames come as {"source", "time_s", "image", "video_width", "video_height"}. Every input
    gives at least one row: one per face, else one with face 0 (no face), or one whose PROBLEM says why it
    could not be read. Boxes are in the photo's or the video's own pixels.
    """

    def __init__(self, classifier: Classifier):
        self.classifier = classifier
        self._archives: dict[str, Archive] = {}  # opened once per labeller: a big zip's index is costly

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        rows: list[dict] = []
        if "image" in batch:
            for source, time_s, image, width, height in zip(batch["source"], batch["time_s"], batch["image"],
                                                            batch["video_width"], batch["video_height"]):
                rows += self._rows(str(source), float(time_s), image, (int(width), int(height)))
        else:
            for path, member, name in zip(batch["path"], batch["member"], batch["name"]):
                try:
                    data = self._archive(str(path)).read(str(member)) if member else _read_photo(Path(path))
                except (OSError, KeyError, ArchiveError, zipfile.BadZipFile, RuntimeError) as error:
                    rows.append(_problem_row(str(name), f"unreadable file ({error})"))  # RuntimeError: encrypted
                    continue
                rows += self._rows(str(name), math.nan, data)
        return _columns(rows, self.classifier.classes)

    def _rows(self, source: str, time_s: float, photo: bytes | np.ndarray,
              frame_of: tuple[int, int] | None = None) -> list[dict]:
        """Try-It's answer for one photo (its bytes, read exactly as Try it reads them) or one video frame
        (shrunk from a video of `frame_of` pixels, which its boxes are put back into)."""
        try:
            recognition = recognise(self.classifier, photo)
        except ImageError as error:
            return [_problem_row(source, str(error))]
        if not recognition.faces:
            return [{"source": source, "time_s": time_s, "face": 0}]
        rows = []
        for number, face in enumerate(recognition.faces, 1):
            box = face.box
            if frame_of is not None:
                height, width = photo.shape[:2]
                box = box.scaled(frame_of[0] / width, frame_of[1] / height, *frame_of)
            rows.append({"source": source, "time_s": time_s, "face": number, **_box(box), "emotion": face.emotion,
                         CROP: face.face, **face.probabilities})
        return rows

    def _archive(self, path: str) -> Archive:
        if path not in self._archives:
            self._archives[path] = Archive(path)
        return self._archives[path]


def _read_photo(path: Path) -> bytes:
    """A photo file's bytes, reading no more than a photo may have (a 3 GB file is not read whole to say so)."""
    with path.open("rb") as handle:
        data = handle.read(MAX_MEMBER_BYTES + 1)
    if len(data) > MAX_MEMBER_BYTES:
        raise OSError(f"the file is over the {MAX_MEMBER_BYTES // 2**20} MB a photo may have")
    return data


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
    no_face = np.zeros((INPUT_SIZE, INPUT_SIZE), np.uint8)
    crops = [row.get(CROP, no_face) for row in rows]
    columns[CROP] = np.stack(crops) if crops else no_face[None][:0]
    return columns


# -- input batches, and where they are labelled -------------------------------------------------------------


def photo_batches(photos: list[Photo]) -> Iterator[dict[str, np.ndarray]]:
    for start in range(0, len(photos), BATCH_SIZE):
        chunk = photos[start : start + BATCH_SIZE]
        yield {"path": np.array([photo.path for photo in chunk], dtype=object),
               "member": np.array([photo.member for photo in chunk], dtype=object),
               "name": np.array([photo.name for photo in chunk], dtype=object)}


def frame_batches(video: VideoFrames, name: str) -> Iterator[dict[str, np.ndarray]]:
    """The sampled frames in batches; only one batch of frames is ever in memory."""
    times, images = [], []
    for time_s, image in video:
        times.append(time_s)
        images.append(image)
        if len(images) == BATCH_SIZE:
            yield _frame_batch(name, video, times, images)
            times, images = [], []
    if images:
        yield _frame_batch(name, video, times, images)


def _frame_batch(name: str, video: VideoFrames, times: list[float], images: list[np.ndarray]) -> dict[str, np.ndarray]:
    count = len(times)
    return {"source": np.array([name] * count, dtype=object), "time_s": np.array(times, dtype=np.float64),
            "image": np.stack(images), "video_width": np.full(count, video.info.width),
            "video_height": np.full(count, video.info.height)}


def in_process(batches: Iterable[dict[str, np.ndarray]], classifier: Classifier,
               workers: int = WORKERS) -> Iterator[dict[str, np.ndarray]]:
    """The labelled batches, in order, from `workers` threads that each keep a Labeller (its open zips)."""
    own = threading.local()

    def label_batch(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if not hasattr(own, "labeller"):
            own.labeller = Labeller(classifier)
        return own.labeller(batch)

    with ThreadPoolExecutor(workers, thread_name_prefix="label") as pool:
        pending: deque = deque()
        for batch in batches:
            pending.append(pool.submit(label_batch, batch))
            if len(pending) > workers:  # a few batches in flight at most: memory stays flat on a long video
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def on_ray(photos: list[Photo], video: VideoFrames | None, name: str, model_dir: Path,
           actors: int | None) -> Iterator[dict[str, np.ndarray]]:
    """The batches of `photos`, or of `video`'s frames (named `name`), labelled through Ray Data: `map_batches`
    over a pool of actors that each load the model once."""
    import ray

    data_context = ray.data.DataContext.get_current()
    data_context.execution_options.preserve_order = True  # a video's faces are followed in time order
    data_context.enable_progress_bars = False  # the caller draws its own
    size = actors or max(1, int(ray.cluster_resources().get("CPU", 1)))
    if video:
        dataset = _video_dataset(video, name)
        if video.expected_samples:  # its declared length: no more actors than batches (0 when not declared)
            size = min(size, math.ceil(video.expected_samples / BATCH_SIZE))
    else:
        blocks = max(1, math.ceil(len(photos) / BATCH_SIZE))
        dataset = ray.data.from_items([{"path": photo.path, "member": photo.member, "name": photo.name}
                                       for photo in photos], override_num_blocks=blocks)
        size = min(size, blocks)  # an actor per batch at most: each one loads the model
    labelled = dataset.map_batches(_RayLabeller, batch_size=BATCH_SIZE, batch_format="numpy",
                                   compute=ray.data.ActorPoolStrategy(size=size), num_cpus=ACTOR_CPUS,
                                   fn_constructor_kwargs={"model_dir": _model_for_workers(model_dir)})
    return labelled.iter_batches(batch_size=None, batch_format="numpy")


def _model_for_workers(model_dir: Path) -> str:
    # Inside the repository: relative, so that a cluster's workers find it in the uploaded working dir.
    resolved = model_dir.resolve()
    return str(resolved.relative_to(PROJECT_ROOT)) if PROJECT_ROOT in resolved.parents else str(resolved)


def _video_dataset(video: VideoFrames, name: str):
    """A Ray dataset of the video's sampled frames: one read task decodes it in order, a block per batch."""
    import ray
    from ray.data.block import BlockAccessor, BlockMetadata
    from ray.data.datasource import Datasource, ReadTask

    class VideoDatasource(Datasource):
        def estimate_inmemory_data_size(self) -> int | None:
            return None  # unknown until decoded; the frames stream, so it does not matter

        def get_read_tasks(self, parallelism: int, per_task_row_limit=None, data_context=None) -> list[ReadTask]:
            def read() -> Iterator:
                return map(BlockAccessor.batch_to_block, frame_batches(video, name))

            metadata = BlockMetadata(num_rows=None, size_bytes=None, exec_stats=None, input_files=(str(video.path),))
            return [ReadTask(read, metadata)]

    # The read task's blocks would reach the actors merged into one input (Ray Data merges a task's small
    # outputs up to its target block size), so one actor labelled the whole video: re-cut, as they stream, into
    # blocks of one batch, each an input of its own for any free actor.
    return ray.data.read_datasource(VideoDatasource(), override_num_blocks=1).repartition(
        target_num_rows_per_block=BATCH_SIZE)


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
