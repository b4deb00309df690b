"""Training: the recipe, augmentation, the fit loop and its callbacks.

`train()` fits a model from the factory on a dataset and writes a run folder
(see core.runs). It reports progress to any callable (the terminal prints it, the
dashboard's background worker writes it to a file), can be cancelled between
batches, keeps a resumable checkpoint outside the run's model file, and saves
only the best epoch, atomically.
"""

from __future__ import annotations

import csv
import io
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import keras
import numpy as np
from keras import layers

from core.emotions import INPUT_SIZE, emotion_set
from core.runs import HISTORY_FILE, METADATA_FILE, MODEL_FILE, save_model, write_json, write_text

if TYPE_CHECKING:
    from core.data import Dataset  # core.data needs OpenCV, which a training-only machine may lack

CHECKPOINT_FILE = "checkpoint.keras"  # last epoch with optimizer state, for --resume
STATE_FILE = "state.json"
# The validation faces are the same for every run, whatever its --seed: a warm start from another run's
# model must never be scored on faces that model trained on (a seed-2 split once did, and read 3 points high).
VALIDATION_SEED = 1


@dataclass
class TrainConfig:
    """Everything that decides a training run. The defaults are the shipped model's recipe."""

    architecture: str = "vgg"
    emotions: str = "all"  # "all" (7), "seed" (5), or a comma-separated list
    epochs: int = 60
    batch_size: int = 128
    optimizer: str = "sgd"  # SGD with Nesterov momentum beat Adam by 1-2 points on FER2013
    learning_rate: float = 0.02
    weight_decay: float = 5e-4
    schedule: str = "cosine"  # "cosine" anneals within the epoch budget; "plateau" halves on a stall; "none"
    label_smoothing: float = 0.1
    augment: bool = True
    class_balance: float = 0.0  # weight each emotion by (1 / its share of faces) ** this: 0 = off, 1 = fully balanced
    photo_repeat: int = 4  # each face from `photos` (see train) is trained on this many times an epoch
    # A warm start's share in the finished model: its weights and the best epoch's are averaged so (0 = off).
    # Fine-tuning on photos forgets some FER2013; the average keeps most of both (Wortsman et al., WiSE-FT).
    keep_start: float = 0.0
    # With FER+ votes: the share of the dataset's own label mixed into each face's vote distribution (0 = votes only).
    label_share: float = 0.0
    tta: str = "flip"  # test-time augmentation used at inference: "flip" (2 views) or "none"
    validation_fraction: float = 0.1  # carved out of train/, stratified (VALIDATION_SEED); test/ never trains
    patience: int = 15  # early stopping, epochs without a better validation accuracy
    seed: int = 1  # initialisation, shuffling and augmentation


# Teaching a trained model new faces (real photos) without losing FER2013: a few epochs at a low rate, the
# photos often, about two thirds of the starting weights kept. benchmarks/photo_folds.py measured it (README,
# "Real photos").
FINE_TUNE = {"epochs": 3, "learning_rate": 1e-3, "photo_repeat": 16, "keep_start": 0.65}

# The seed project's recipe: Adam, no augmentation, batch 128, 35 epochs.
RECIPES = {
    "vgg": TrainConfig(),
    "seed": TrainConfig(architecture="seed", emotions="seed", epochs=35, batch_size=128, optimizer="adam",
                        learning_rate=1e-3, weight_decay=0.0, schedule="none", label_smoothing=0.0,
                        augment=False, tta="none", patience=35),
}


@dataclass
class Progress:
    """One progress report, per batch (batch is set) or at the end of an epoch (batch is None)."""

    epoch: int  # 1-based
    epochs: int
    batch: int | None
    batches: int
    logs: dict[str, float]
    elapsed_s: float
    eta_s: float
    history: list[dict] = field(default_factory=list)  # finished epochs so far


class Cancelled(Exception):
    pass


def recipe(architecture: str, **overrides) -> TrainConfig:
    """The default recipe for an architecture, with some values changed."""
    base = RECIPES.get(architecture, TrainConfig(architecture=architecture))
    return replace(base, **{k: v for k, v in overrides.items() if v is not None})


# -- data ---------------------------------------------------------------------------------------


def split_validation(images: np.ndarray, labels: np.ndarray, fraction: float = TrainConfig.validation_fraction):
    """Stratified train/validation split of raw arrays: always the same faces (VALIDATION_SEED)."""
    is_val = _validation_mask(labels, fraction)
    return (images[~is_val], labels[~is_val]), (images[is_val], labels[is_val])


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

    The dataset's own val/ split when it has one, otherwise a stratified share of train/ (of every
    split when there is no train/), the same for every run. Calibration and the benchmarks call this
    too, so they score the very faces training held out; test/ is never among them.
    """
    faces = Faces(*dataset.select_with_votes("train" if "train" in dataset.images else None, emotions))
    if "val" in dataset.images:
        return faces, Faces(*dataset.select_with_votes("val", emotions))
    is_val = _validation_mask(faces.labels, fraction)
    return faces[~is_val], faces[is_val]


def training_and_validation(dataset: Dataset, emotions: tuple[str, ...], fraction: float = TrainConfig.validation_fraction):
    """`split_faces` as two (images, labels) pairs."""
    training, validation = split_faces(dataset, emotions, fraction)
    return (training.images, training.labels), (validation.images, validation.labels)


@keras.saving.register_keras_serializable(package="emovoice")
class RandomWarp(layers.Layer):
    """Random mirror, shift, rotation and zoom of each face as one affine warp.

    One resampling: Keras' RandomTranslation, RandomRotation and RandomZoom in a row resample a face
    three times and blur it to under half its sharpness, so a net trained on them reads the sharp faces
    it is shown afterwards worse (benchmarks/augment_blur.py).
    """

    def __init__(self, shift: float = 4.0, degrees: float = 10.0, zoom: float = 0.1, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.shift, self.degrees, self.zoom, self.seed = shift, degrees, zoom, seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, faces, training=True):
        if not training:
            return faces
        n = keras.ops.shape(faces)[0]

        def uniform(low: float, high: float):
            return keras.random.uniform((n,), low, high, seed=self.seed_generator)

        angle = uniform(-self.degrees, self.degrees) * (math.pi / 180)
        scale = uniform(1 - self.zoom, 1 + self.zoom)
        mirror = keras.ops.where(uniform(0.0, 1.0) < 0.5, -1.0, 1.0)
        cos, sin = keras.ops.cos(angle) / scale, keras.ops.sin(angle) / scale
        # Where each output pixel reads from, about the face's centre: (a0 a1 a2; b0 b1 b2)
        a0, a1, b0, b1 = cos * mirror, -sin, sin * mirror, cos
        centre = (INPUT_SIZE - 1) / 2
        a2 = centre - (a0 + a1) * centre + uniform(-self.shift, self.shift)
        b2 = centre - (b0 + b1) * centre + uniform(-self.shift, self.shift)
        zeros = keras.ops.zeros_like(a0)
        transform = keras.ops.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], axis=1)
        return keras.ops.image.affine_transform(faces, transform, interpolation="bilinear", fill_mode="reflect")

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        return {**super().get_config(), "shift": self.shift, "degrees": self.degrees, "zoom": self.zoom, "seed": self.seed}


def augmenter(seed: int) -> keras.Sequential:
    """Random mirror, shift (up to 4 px), rotation (10 deg), zoom (10%), lighting and erasing.

    Keras' own operations, so the same recipe trains on every backend. They run on the training
    batches only (see `_Batches`): the saved model never carries them.
    """
    return keras.Sequential([
        RandomWarp(shift=4.0, degrees=10.0, zoom=0.1, seed=seed),  # the nets look at the central 40x40: a 4 px shift is a random crop
        layers.RandomContrast(0.3, seed=seed + 4),  # contrast 0.7-1.3
        layers.RandomBrightness(30 / 255, value_range=(0, 255), seed=seed + 5),  # +-30 grey levels
        layers.RandomErasing(factor=(0.5, 0.5), scale=(0.02, 0.2), value_range=(0, 255), seed=seed + 6),
    ], name="augment")


def class_weights(labels: np.ndarray, num_classes: int, balance: float) -> np.ndarray:
    """Each emotion's loss weight, lifting rare ones (FER2013 has 16 times fewer disgust faces than happy ones).

    An emotion weighs (1 / its count) ** balance, scaled so that the average face still weighs 1
    and the learning rate means what it meant unweighted. Balance 0 weighs every emotion 1.
    """
    counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
    weights = np.where(counts > 0, 1 / np.maximum(counts, 1), 0.0) ** balance
    return (weights * counts.sum() / (counts * weights).sum()).astype(np.float32)


def _as_one_call(augment: keras.Sequential) -> Callable[[np.ndarray], object]:
    """The layers in training mode; under TensorFlow traced into one graph, three times faster than op by op."""
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return tf.function(lambda faces: augment(faces, training=True), reduce_retracing=True)
    return lambda faces: augment(faces, training=True)


class _Batches(keras.utils.PyDataset):
    """Shuffled training batches (faces, one-hot labels, loss weights), augmented in a worker thread.

    The thread augments the next batches while the net trains on this one, as tf.data's threads
    did, on every backend; augmentation layers inside the trained graph ran in series with each
    step and made an epoch about a quarter slower (benchmarks/train_speed.py).
    """

    def __init__(self, faces: np.ndarray, targets: np.ndarray, weights: np.ndarray, batch_size: int,
                 augment: keras.Sequential | None, seed: int):
        super().__init__(workers=1, use_multiprocessing=False, max_queue_size=4)  # one thread: the layers' seeds advance in order
        self.faces, self.targets, self.weights = faces, targets, weights
        self.batch_size, self.augment = batch_size, None if augment is None else _as_one_call(augment)
        self.rng = np.random.default_rng(seed)
        self.order = self.rng.permutation(len(faces))

    def __len__(self) -> int:
        return math.ceil(len(self.faces) / self.batch_size)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        take = self.order[index * self.batch_size : (index + 1) * self.batch_size]
        faces = self.faces[take]
        if self.augment is not None:
            faces = keras.ops.convert_to_numpy(self.augment(faces))
        return faces, self.targets[take], self.weights[take]

    def on_epoch_end(self) -> None:  # Keras stops the worker before calling this
        self.order = self.rng.permutation(len(self.faces))


def _arrays(images: np.ndarray, targets: np.ndarray, devices: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Faces as float32 (N, 48, 48, 1) and their target distributions (N, classes).

    Over several devices every batch, the last one too, is split evenly between them, so N is cut
    to a multiple of their number (at most devices - 1 faces left out).
    """
    keep = len(targets) - len(targets) % devices
    return images[:keep].astype(np.float32)[..., None], targets[:keep].astype(np.float32)


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


def _spread_over_devices() -> int:
    """Data-parallel training over every device Keras sees, when it sees several; how many it uses.

    Keras' distribution API shards each batch across the devices and keeps a copy of the weights on
    each: several GPUs, or several machines set up with keras.distribution.initialize(). It runs on
    the JAX backend; on the others training uses one device.
    """
    if keras.backend.backend() != "jax":
        return 1
    devices = keras.distribution.list_devices()
    if len(devices) > 1:
        keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
    return len(devices)


# -- callbacks ----------------------------------------------------------------------------------


def _callbacks(config, run_dir, on_progress, should_stop, start_epoch, history, steps_per_epoch):
    class Reporter(keras.callbacks.Callback):
        """Progress, ETA, cancellation, the best-epoch model and the resumable checkpoint."""

        def __init__(self):
            super().__init__()
            self.started = time.monotonic()
            self.best = max((h.get("val_accuracy", -1) for h in history), default=-1.0)
            self.best_epoch = max((h["epoch"] for h in history if h.get("val_accuracy") == self.best), default=0)
            self.batches_done = 0

        def _eta(self, epoch: int, batch: int) -> float:
            elapsed = time.monotonic() - self.started
            done = self.batches_done
            remaining = (config.epochs - epoch) * steps_per_epoch + (steps_per_epoch - batch)
            return elapsed / done * remaining if done else float("nan")

        def on_train_batch_end(self, batch, logs=None):
            self.batches_done += 1
            if should_stop and should_stop():
                self.model.stop_training = True
                raise Cancelled()
            if on_progress and (batch % 10 == 0 or batch + 1 == steps_per_epoch):
                epoch = self.epoch + 1
                on_progress(Progress(epoch, config.epochs, batch + 1, steps_per_epoch, _floats(logs),
                                     time.monotonic() - self.started, self._eta(epoch, batch + 1), list(history)))

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch, self.epoch_started = epoch, time.monotonic()

        def on_epoch_end(self, epoch, logs=None):
            learning_rate = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
            row = {"epoch": epoch + 1, **_floats(logs), "lr": learning_rate,
                   "seconds": round(time.monotonic() - self.epoch_started, 1)}  # validation included
            history.append(row)
            if row.get("val_accuracy", -1) > self.best:
                self.best, self.best_epoch = row["val_accuracy"], epoch + 1
                save_model(self.model, run_dir / MODEL_FILE)
            save_model(self.model, run_dir / CHECKPOINT_FILE)  # with the optimizer's state, for --resume
            write_json(run_dir / STATE_FILE, {"config": asdict(config), "epoch": epoch + 1, "history": history})
            write_text(run_dir / HISTORY_FILE, _history_csv(history))
            if on_progress:
                on_progress(Progress(epoch + 1, config.epochs, None, steps_per_epoch, row,
                                     time.monotonic() - self.started, self._eta(epoch + 1, steps_per_epoch), list(history)))
            if epoch + 1 - self.best_epoch >= config.patience:
                self.model.stop_training = True

    callbacks = [Reporter()]
    if config.schedule == "cosine":
        def cosine(epoch, lr):
            warmup = min(2, config.epochs // 5)  # a short linear warm-up steadies the first epochs at a high rate
            if epoch < warmup:
                return config.learning_rate * (epoch + 1) / warmup
            progress = (epoch - warmup) / max(1, config.epochs - warmup)
            return config.learning_rate * 0.5 * (1 + math.cos(math.pi * progress))
        callbacks.append(keras.callbacks.LearningRateScheduler(cosine))
    elif config.schedule == "plateau":
        callbacks.append(keras.callbacks.ReduceLROnPlateau("val_accuracy", factor=0.5, patience=5, mode="max"))
    return callbacks


def _floats(logs) -> dict[str, float]:
    return {k: float(v) for k, v in (logs or {}).items()}


def _history_csv(history: list[dict]) -> str:
    buffer = io.StringIO()
    columns = list(dict.fromkeys(k for row in history for k in row))
    writer = csv.DictWriter(buffer, columns)
    writer.writeheader()
    writer.writerows(history)
    return buffer.getvalue()


# -- the run ------------------------------------------------------------------------------------


def _optimizer(config: TrainConfig) -> keras.optimizers.Optimizer:
    if config.optimizer == "sgd":
        return keras.optimizers.SGD(config.learning_rate, momentum=0.9, nesterov=True, weight_decay=config.weight_decay or None)
    if config.optimizer == "adam":
        return keras.optimizers.Adam(config.learning_rate, weight_decay=config.weight_decay or None)
    raise ValueError(f"unknown optimizer {config.optimizer!r}: use sgd or adam")


def _compiled(trainer: keras.Model, optimizer: keras.optimizers.Optimizer, config: TrainConfig) -> keras.Model:
    loss = keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing)
    trainer.compile(optimizer=optimizer, loss=loss, metrics=["accuracy"])
    return trainer


def train(
    config: TrainConfig,
    dataset: Dataset,
    run_dir: Path,
    on_progress: Callable[[Progress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    resume: bool = False,
    init_model: Path | None = None,
    photos: Dataset | None = None,
) -> dict:
    """Train, write the run folder and return its metadata. Runs on any Keras backend.

    resume: continue the run in `run_dir` from its checkpoint (weights, optimizer, epoch).
    init_model: start from another model's weights (a warm start; same architecture and classes);
        config.keep_start > 0 averages them back into the best epoch at the end.
    photos: labelled real photos, their faces cut as the product cuts them (core.data reads any folder or
        zip of class folders so); every split of it trains, config.photo_repeat times an epoch, beside
        the dataset's own training faces. Validation stays the dataset's.
    Raises Cancelled when `should_stop` asked to stop; the best epoch so far stays saved.
    """
    from core.models import build_model
    from core.runs import read_metadata

    emotions = emotion_set(config.emotions)
    if not 0 <= config.keep_start < 1:
        raise ValueError(f"the starting model's share must be at least 0 and below 1, not {config.keep_start}")
    if config.keep_start and init_model is None and not resume:
        raise ValueError("keeping a share of the starting model needs a model to start from")
    keras.utils.set_random_seed(config.seed)
    devices = _spread_over_devices()
    if config.batch_size % devices:
        raise ValueError(f"a batch of {config.batch_size} does not split evenly over {devices} devices")
    training, validation = split_faces(dataset, emotions, config.validation_fraction)
    training, train_targets = training_targets(training, emotions, config.label_share)
    validation, val_targets = validation_targets(validation, emotions)
    if len(training) < len(emotions) or len(validation) == 0:
        raise ValueError(f"too few training images for {len(emotions)} emotions ({len(training)} found)")
    train_images, train_labels = training.images, train_targets.argmax(axis=1)
    if photos is not None:
        photo_faces, photo_labels = photos.select(None, emotions)
        photo_targets = np.eye(len(emotions), dtype=np.float32)[photo_labels]
        train_images = np.concatenate([train_images] + [photo_faces] * config.photo_repeat)
        train_labels = np.concatenate([train_labels] + [photo_labels] * config.photo_repeat)
        train_targets = np.concatenate([train_targets] + [photo_targets] * config.photo_repeat)

    history: list[dict] = []
    start_epoch = 0
    earlier: dict = {}  # what the run's earlier segments recorded, when resuming
    lineage = {"epochs": 0, "cpu_hours": 0.0}  # the training behind a warm start's weights
    if resume:
        import json

        state = json.loads((run_dir / STATE_FILE).read_text())
        history, start_epoch = state["history"], state["epoch"]
        earlier = json.loads((run_dir / METADATA_FILE).read_text())
        lineage = earlier.get("lineage", lineage)
        trainer = keras.saving.load_model(run_dir / CHECKPOINT_FILE, safe_mode=True)
        wrapped = [layer for layer in trainer.layers if isinstance(layer, keras.Model) and layer.name != "augment"]
        if wrapped:  # a checkpoint from when augmentation was a layer in front of the net
            trainer = _compiled(wrapped[0], trainer.optimizer, config)
    else:
        model = build_model(config.architecture, len(emotions))
        if init_model is not None:
            from core.runs import load_model

            start = load_model(init_model)
            if start.classes != emotions:
                raise ValueError(f"{init_model} knows {', '.join(start.classes)}; this run trains {', '.join(emotions)}")
            model.set_weights(start.model.get_weights())
            lineage = _totals(read_metadata(init_model))
        trainer = _compiled(model, _optimizer(config), config)

    train_x, train_y = _arrays(train_images, train_targets, devices)
    weights = class_weights(train_labels, len(emotions), config.class_balance)[train_labels[: len(train_y)]]
    batches = _Batches(train_x, train_y, weights,
                       config.batch_size, augmenter(config.seed) if config.augment else None, config.seed + start_epoch)
    val_x, val_y = _arrays(validation.images, val_targets, devices)
    steps = len(batches)
    metadata = {
        "name": run_dir.name,
        "architecture": config.architecture,
        "classes": list(emotions),
        "input_size": INPUT_SIZE,
        "tta": config.tta,
        "recipe": asdict(config),
        "dataset": {"source": dataset.source, "fingerprint": dataset.fingerprint,
                    "train_images": int(len(training)), "validation_images": int(len(validation)),
                    "votes": dataset.votes_source if training.has_votes else None},
        "initialised_from": earlier.get("initialised_from") or (str(init_model) if init_model else None),
        "photos": {"source": photos.source, "fingerprint": photos.fingerprint, "faces": int(len(photo_faces)),
                   "repeat": config.photo_repeat} if photos is not None else None,
        "lineage": lineage,
        "created": earlier.get("created") or time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "status": "training",
        "backend": keras.backend.backend(),
        "devices": devices,
    }
    write_json(run_dir / METADATA_FILE, metadata)
    started, cpu_started = time.monotonic(), time.process_time()
    try:
        trainer.fit(batches, validation_data=(val_x, val_y), validation_batch_size=512,
                    epochs=config.epochs, initial_epoch=start_epoch, shuffle=False, verbose=0,
                    callbacks=_callbacks(config, run_dir, on_progress, should_stop, start_epoch, history, steps))
        metadata["status"] = "finished"
    except Cancelled:
        metadata["status"] = "cancelled"
    metadata["training_seconds"] = round(earlier.get("training_seconds", 0) + time.monotonic() - started, 1)
    metadata["training_cpu_seconds"] = round(earlier.get("training_cpu_seconds", 0) + time.process_time() - cpu_started, 1)
    metadata["epochs_trained"] = len(history)
    metadata["total_epochs"] = lineage["epochs"] + len(history)
    metadata["total_cpu_hours"] = round(lineage["cpu_hours"] + metadata["training_cpu_seconds"] / 3600, 4)
    metadata["history_tail"] = history[-1] if history else None
    if not (run_dir / MODEL_FILE).exists():
        write_json(run_dir / METADATA_FILE, metadata)
        return metadata
    if config.keep_start and metadata["initialised_from"]:
        best_epoch = int(np.argmax([h.get("val_accuracy", -1) for h in history])) + 1
        # A resume of a run stopped while scoring finds its best epoch averaged already: never twice.
        if (earlier.get("start_kept") or {}).get("epoch") != best_epoch:
            _average_with_start(run_dir, Path(metadata["initialised_from"]), config.keep_start)
        metadata["start_kept"] = {"share": config.keep_start, "epoch": best_epoch}
        write_json(run_dir / METADATA_FILE, metadata)
    metadata["metrics"], metadata["calibration"] = _final_metrics(run_dir, metadata, dataset, emotions, validation)
    metadata["temperature"] = metadata["calibration"]["temperature"]
    write_json(run_dir / METADATA_FILE, metadata)
    return metadata


def save_ensemble(model_dirs: list[Path], dataset: Dataset, out: Path) -> dict:
    """Average trained models (seeds or snapshots of a recipe) into one model folder at `out`, scored on the
    validation faces and test/ and calibrated as a finished run is. One graph (core.tta.ensemble): the product
    converts and runs it like any model, one call per batch of faces."""
    from core.runs import load_model
    from core.tta import ensemble

    members = [load_model(folder) for folder in model_dirs]
    emotions = members[0].classes
    if any(member.classes != emotions for member in members):
        raise ValueError("the models must know the same emotions in the same order to be averaged")
    tta = {member.metadata.get("tta", "none") for member in members}
    if len(tta) > 1:
        raise ValueError(f"the models use different test-time augmentation ({', '.join(sorted(tta))})")
    out.mkdir(parents=True, exist_ok=True)
    save_model(ensemble([member.model for member in members]), out / MODEL_FILE)
    totals = [_totals(member.metadata) for member in members]
    architectures = sorted({member.metadata.get("architecture", "?") for member in members})
    metadata = {
        "name": out.name,
        "architecture": f"ensemble of {len(members)} ({', '.join(architectures)})",
        "classes": list(emotions),
        "input_size": INPUT_SIZE,
        "tta": tta.pop(),
        "members": [{"name": member.metadata.get("name", member.path.name), "recipe": member.metadata.get("recipe"),
                     "metrics": member.metadata.get("metrics")} for member in members],
        "dataset": {"source": dataset.source, "fingerprint": dataset.fingerprint},
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "status": "finished",
        "total_epochs": sum(total["epochs"] for total in totals),
        "total_cpu_hours": round(sum(total["cpu_hours"] for total in totals), 4),
    }
    validation, _ = validation_targets(split_faces(dataset, emotions)[1], emotions)
    metadata["metrics"], metadata["calibration"] = _final_metrics(out, metadata, dataset, emotions, validation)
    metadata["temperature"] = metadata["calibration"]["temperature"]
    write_json(out / METADATA_FILE, metadata)
    return metadata


def _average_with_start(run_dir: Path, start: Path, share: float) -> None:
    """Replace the run's best epoch by its weighted average with the model it started from, weight by weight."""
    from core.runs import load_model

    best = keras.saving.load_model(run_dir / MODEL_FILE, compile=False, safe_mode=True)
    start_weights = load_model(start).model.get_weights()
    best.set_weights([share * s + (1 - share) * b for s, b in zip(start_weights, best.get_weights())])
    save_model(best, run_dir / MODEL_FILE)


def _totals(metadata: dict) -> dict:
    """Epochs and CPU-hours behind a trained model, its warm-start ancestors included."""
    epochs = metadata.get("total_epochs", metadata.get("epochs_trained", 0))
    return {"epochs": int(epochs), "cpu_hours": float(metadata.get("total_cpu_hours", 0.0))}


def _final_metrics(run_dir, metadata, dataset, emotions, validation: Faces) -> tuple[dict, dict]:
    """Scores of the best epoch, with the run's test-time augmentation, on validation and test (against
    the dataset's labels, and against the FER+ majority where the faces have votes), and the temperature
    that calibrates its probabilities on the validation faces (their majority, when voted).

    Keras on the training backend rather than the product's TensorFlow Lite path, so that a
    machine without TensorFlow can finish a run; a test checks that the two agree.
    """
    from core.calibration import calibration_report, fit_temperature
    from core.evaluation import summary
    from core.tta import inference_model
    from core.votes import majority

    best = keras.saving.load_model(run_dir / MODEL_FILE, compile=False, safe_mode=True)
    save_model(best, run_dir / MODEL_FILE)  # without the optimizer's state: half the size, all the model
    answer = inference_model(best, metadata["tta"])

    def probabilities(images):
        return answer.predict(images.astype(np.float32)[..., None], batch_size=256, verbose=0)

    val_probabilities = probabilities(validation.images)
    metrics = {"validation": _brief(summary(val_probabilities, validation.labels, emotions))}
    if dataset.evaluation_split() == "test" and "train" in dataset.images:  # only a held-out test/ counts
        test = Faces(*dataset.select_with_votes("test", emotions))
        test_probabilities = probabilities(test.images)
        metrics["test"] = _brief(summary(test_probabilities, test.labels, emotions))
        if test.has_votes:
            agreed = majority(test.votes, emotions)
            metrics["test_ferplus"] = _brief(summary(test_probabilities[agreed >= 0], agreed[agreed >= 0], emotions))
    calibration = calibration_report(val_probabilities, validation.labels, fit_temperature(val_probabilities, validation.labels))
    return metrics, calibration


def _brief(report: dict) -> dict:
    return {k: report[k] for k in ("n", "accuracy", "per_class", "accuracy_5class", "n_5class")}
