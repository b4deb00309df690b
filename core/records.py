"""The records a run leaves behind, typed: its metadata, its training status and its resume state.

Each is read and written here only (`from_json` / `to_json`), so a renamed key is one edit in one file.
Run folders written before these records existed still load: unknown keys are kept (`extra`) and written
back unchanged, and missing ones take their defaults.
"""

from __future__ import annotations

import functools
import types
import typing
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

# Statuses a run passes through. INTERRUPTED is never written by a worker: it is what a reader reports when
# the file says a run is under way but no process is doing it any more (killed, crashed, machine restarted).
IN_FLIGHT = ("starting", "loading data", "training")
FINISHED, CANCELLED, FAILED, INTERRUPTED = "finished", "cancelled", "failed", "interrupted"
# The test-time views a model's graph may average (core.tta builds them).
TTA_MODES = ("none", "flip", "ten-crop")


def view_count(mode: str) -> int:
    """How many views of each face a test-time mode averages."""
    return {"none": 1, "flip": 2, "ten-crop": 10}[mode]


def _known(cls, data: dict) -> tuple[dict, dict]:
    """`data` split into the keys `cls` declares and the rest."""
    if not isinstance(data, dict):
        raise TypeError(f"expected an object of fields, found {type(data).__name__}")
    names = {f.name for f in fields(cls)} - {"extra"}
    return {k: v for k, v in data.items() if k in names}, {k: v for k, v in data.items() if k not in names}


def _typed(record, within: str = ""):
    """`record` once each field holds the kind its annotation names (nested records too); TypeError naming the
    field otherwise. A hand-edited file ("training_seconds": "90") is refused where it is read, not in a page
    that later does arithmetic with it."""
    for name, hint in _hints(type(record)).items():
        _check(hint, getattr(record, name), f"{within}{name}")
    return record


def _check(hint, value, where: str) -> None:
    if not _accepts(hint, value):
        raise TypeError(f"{where} is {value!r}, not {_describe(hint)}")
    if is_dataclass(value):
        _typed(value, f"{where}.")
    elif isinstance(value, dict):  # dict[str, SplitScore], dict[str, float]: each value too
        typed = [kind for kind in (hint, *typing.get_args(hint)) if typing.get_origin(kind) is dict]
        item_kind = typing.get_args(typed[0])[1] if typed else Any
        if is_dataclass(item_kind) or item_kind in (int, float, str):  # deeper structures stay as they are
            for key, item in value.items():
                _check(item_kind, item, f"{where}.{key}")


@functools.cache
def _hints(cls) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _accepts(hint, value) -> bool:
    if hint is Any:
        return True
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return any(_accepts(arg, value) for arg in typing.get_args(hint))
    if hint is type(None):
        return value is None
    kind = typing.get_origin(hint) or hint  # list[str] -> list
    if kind in (int, float) and isinstance(value, bool):
        return False
    return isinstance(value, (int, float) if kind is float else kind)


def _describe(hint) -> str:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return " or ".join(_describe(arg) for arg in typing.get_args(hint))
    return "null" if hint is type(None) else getattr(typing.get_origin(hint) or hint, "__name__", str(hint))


@dataclass
class DatasetInfo:
    source: str = ""
    fingerprint: str = ""
    train_images: int | None = None
    validation_images: int | None = None
    votes: str | None = None  # the FER+ votes file the run trained on, None: the dataset's own labels

    @classmethod
    def from_json(cls, data: dict | None) -> DatasetInfo:
        known, _ = _known(cls, data or {})
        return cls(**known)  # checked with the run it belongs to


@dataclass
class PhotosInfo:
    source: str
    fingerprint: str
    faces: int
    repeat: int


@dataclass
class Lineage:
    """The training behind a warm start's weights."""

    epochs: int = 0
    cpu_hours: float = 0.0


@dataclass
class SplitScore:
    """A model's scores on one split ("validation", "test", or "test_ferplus" against the votes' majority):
    core.evaluation.summary's headline figures."""

    n: int
    accuracy: float
    per_class: dict[str, float]  # emotion -> recall
    accuracy_5class: float | None = None  # on the seed's five emotions; None when the model lacks one of them
    n_5class: int | None = None

    @classmethod
    def brief(cls, summary: dict) -> SplitScore:
        """The headline of a full summary (core.evaluation.summary), which also holds the confusion matrix."""
        return cls(**{f.name: summary.get(f.name) for f in fields(cls)})


def _scores(data: dict | None) -> dict[str, SplitScore]:
    return {split: SplitScore(**_known(SplitScore, score)[0]) for split, score in (data or {}).items()}


def _accuracy(metrics: dict[str, SplitScore] | None, split: str, five_emotions: bool) -> float | None:
    score = (metrics or {}).get(split)
    return None if score is None else score.accuracy_5class if five_emotions else score.accuracy


@dataclass
class Calibration:
    """A temperature fitted to faces and what it did to the probabilities: the expected calibration error over
    `bins` confidence bins and the negative log-likelihood, before and after (core.calibration)."""

    temperature: float
    n: int
    bins: int
    ece_before: float
    ece_after: float
    nll_before: float
    nll_after: float


@dataclass
class StartKept:
    share: float
    epoch: int


@dataclass
class RunMetadata:
    """A model folder's metadata.json: what the model is, how it was trained and how it scores."""

    name: str
    architecture: str
    classes: list[str]
    input_size: int = 48
    tta: str = "none"
    recipe: dict | None = None  # TrainConfig's fields (core.training.config)
    dataset: DatasetInfo = field(default_factory=DatasetInfo)
    initialised_from: str | None = None
    photos: PhotosInfo | None = None
    lineage: Lineage | None = None  # None: a run from before runs recorded it
    created: str = ""
    status: str = FINISHED
    worker_pid: int | None = None  # the process training it, while status is "training"
    backend: str | None = None
    devices: int | None = None
    training_seconds: float | None = None
    training_cpu_seconds: float | None = None
    epochs_trained: int | None = None
    total_epochs: int | None = None
    total_cpu_hours: float | None = None
    history_tail: dict | None = None
    start_kept: StartKept | None = None
    metrics: dict[str, SplitScore] = field(default_factory=dict)  # split -> its scores
    calibration: Calibration | None = None  # fitted on the run's validation faces
    temperature: float = 1.0
    path: Path | None = None  # the folder it was read from; never written
    extra: dict[str, Any] = field(default_factory=dict)  # keys this version does not know, kept as they were

    @classmethod
    def from_json(cls, data: dict, path: Path | None = None) -> RunMetadata:
        known, extra = _known(cls, data)
        known.pop("path", None)
        known["dataset"] = DatasetInfo.from_json(known.get("dataset"))
        known["photos"] = PhotosInfo(**known["photos"]) if known.get("photos") else None
        known["lineage"] = Lineage(**known["lineage"]) if known.get("lineage") else None
        known["start_kept"] = StartKept(**known["start_kept"]) if known.get("start_kept") else None
        known["calibration"] = Calibration(**known["calibration"]) if known.get("calibration") else None
        known["metrics"] = _scores(known.get("metrics"))
        known["temperature"] = float(known.get("temperature") or 1.0)
        return _typed(cls(**known, path=Path(path) if path else None, extra=extra))

    def to_json(self) -> dict:
        data = asdict(self)
        data.pop("path")
        data.update(data.pop("extra"))
        return data

    # -- what readers ask ------------------------------------------------------------------------

    def accuracy(self, split: str, five_emotions: bool = False) -> float | None:
        """Accuracy on "validation", "test" or "test_ferplus" (of the five seed emotions), None when not scored."""
        return _accuracy(self.metrics, split, five_emotions)

    @property
    def photo_faces(self) -> int:
        return self.photos.faces if self.photos else 0


@dataclass
class TrainingStatus:
    """A background run's progress.json: what the worker is doing now, redrawn by any page."""

    status: str = "starting"
    epochs: int = 1
    epoch: int | None = None  # 1-based, while training
    batch: int | None = None  # None at an epoch's end
    batches: int | None = None
    logs: dict[str, float] = field(default_factory=dict)
    elapsed_s: float | None = None
    eta_s: float | None = None
    history: list[dict] = field(default_factory=list)  # finished epochs
    loaded: int | None = None  # files read so far, while reading the data
    total: int | None = None
    reading: str = "dataset"
    metrics: dict[str, SplitScore] | None = None  # once finished
    error: str | None = None

    @classmethod
    def from_json(cls, data: dict) -> TrainingStatus:
        known, _ = _known(cls, data)
        known["logs"] = known.get("logs") or {}
        known["history"] = known.get("history") or []
        known["epochs"] = known.get("epochs") or 1
        known["reading"] = known.get("reading") or "dataset"
        known["metrics"] = _scores(known["metrics"]) if known.get("metrics") else None
        return _typed(cls(**known))

    def to_json(self) -> dict:
        return asdict(self)

    @property
    def in_flight(self) -> bool:
        return self.status in IN_FLIGHT

    @property
    def fraction_done(self) -> float:
        """How far the run is, 0..1: epochs done plus the share of the current one."""
        if self.status != "training" or not self.epoch:
            return 0.0
        batches = self.batches or 1
        done = (self.epoch - 1 + (self.batch or batches) / batches) / self.epochs
        return min(max(done, 0.0), 1.0)

    def accuracy(self, split: str, five_emotions: bool = False) -> float | None:
        return _accuracy(self.metrics, split, five_emotions)


@dataclass
class ResumeState:
    """state.json: where a run's resumable checkpoint stands."""

    config: dict  # TrainConfig's fields
    epoch: int
    history: list[dict]

    @classmethod
    def from_json(cls, data: dict) -> ResumeState:
        return cls(config=data["config"], epoch=int(data["epoch"]), history=list(data.get("history") or []))

    def to_json(self) -> dict:
        return asdict(self)
