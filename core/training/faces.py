"""The faces a run trains and validates on, and their targets (one-hot labels or FER+ vote distributions)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from core.training.config import VALIDATION_SEED, TrainConfig

if TYPE_CHECKING:
    from core.data import Dataset  # core.data needs OpenCV, which a training-only machine may lack


def _validation_mask(labels: np.ndarray, fraction: float) -> np.ndarray:
    rng = np.random.default_rng(VALIDATION_SEED)
    val_index = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        rng.shuffle(members)
        val_index.extend(members[: max(1, round(len(members) * fraction))])
    is_val = np.zeros(len(labels), dtype=bool)
    is_val[val_index] = True
    return is_val


@dataclass
class Faces:
    """Faces (N, 48, 48), their labels (N,) in a run's emotions and their FER+ vote counts (N, 10; zeros: none)."""

    images: np.ndarray
    labels: np.ndarray
    votes: np.ndarray

    def __getitem__(self, index) -> Faces:
        return Faces(self.images[index], self.labels[index], self.votes[index])

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def has_votes(self) -> bool:
        return bool((self.votes.sum(axis=1) > 0).any())


def split_faces(dataset: Dataset, emotions: tuple[str, ...], fraction: float = TrainConfig.validation_fraction) -> tuple[Faces, Faces]:
    """The faces a run trains on and the faces it picks its best epoch on, with their votes.

    The dataset's own val/ split when it has one, otherwise a stratified share of train/, the same for
    every run. Without train/, the class folders at the top stand in for it; only a dataset of nothing else
    (the bundled test/ sample) trains on every split. Calibration and the benchmarks call this too, so they
    score the very faces training held out; a test/ beside a train/ or class folders is never among them.
    """
    faces = Faces(*dataset.select_with_votes(dataset.training_split(), emotions))
    if "val" in dataset.images:
        return faces, Faces(*dataset.select_with_votes("val", emotions))
    is_val = _validation_mask(faces.labels, fraction)
    return faces[~is_val], faces[is_val]


def training_and_validation(dataset: Dataset, emotions: tuple[str, ...], fraction: float = TrainConfig.validation_fraction):
    """`split_faces` as two (images, labels) pairs."""
    training, validation = split_faces(dataset, emotions, fraction)
    return (training.images, training.labels), (validation.images, validation.labels)


def training_targets(faces: Faces, emotions: tuple[str, ...], label_share: float) -> tuple[Faces, np.ndarray]:
    """The faces to train on and their targets: FER+ vote distributions where a face has votes (with
    `label_share` of its own label mixed in), one-hot labels where it has none. Faces the taggers called
    unknown or not a face are left out."""
    from core.votes import targets, trainable

    voted = faces.votes.sum(axis=1) > 0
    keep = ~voted | trainable(faces.votes, emotions)
    faces = faces[keep]
    return faces, targets(faces.votes, faces.labels, emotions, label_share)


def validation_targets(faces: Faces, emotions: tuple[str, ...]) -> tuple[Faces, np.ndarray]:
    """Validation faces and one-hot targets: the taggers' majority when the faces have votes (ties and
    unknown, not-a-face or contempt majorities left out, FER+'s protocol), else the dataset's labels."""
    from core.votes import majority

    if faces.has_votes:
        agreed = majority(faces.votes, emotions)
        faces = Faces(faces.images[agreed >= 0], agreed[agreed >= 0], faces.votes[agreed >= 0])
    return faces, np.eye(len(emotions), dtype=np.float32)[faces.labels]


def validation_faces(dataset: Dataset, emotions: tuple[str, ...], fraction: float = TrainConfig.validation_fraction) -> Faces:
    """The faces a run is scored and calibrated on: its held-out share of train/, labelled as
    `validation_targets` labels them (the taggers' majority where the faces have votes)."""
    return validation_targets(split_faces(dataset, emotions, fraction)[1], emotions)[0]
