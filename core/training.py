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

import numpy as np

from core.data import Dataset
from core.emotions import emotion_set
from core.faces import INPUT_SIZE
from core.runs import HISTORY_FILE, METADATA_FILE, MODEL_FILE, save_model, write_json, write_text

CHECKPOINT_FILE = "checkpoint.keras"  # last epoch with optimizer state, for --resume
STATE_FILE = "state.json"


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
    tta: str = "flip"  # test-time augmentation used at inference: "flip" (2 views) or "none"
    validation_fraction: float = 0.1  # carved out of train/, stratified; test/ is never used for training
    patience: int = 15  # early stopping, epochs without a better validation accuracy
    seed: int = 1


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


def split_validation(images: np.ndarray, labels: np.ndarray, fraction: float, seed: int):
    """Stratified train/validation split (same seed, same split)."""
    rng = np.random.default_rng(seed)
    val_index = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        rng.shuffle(members)
        val_index.extend(members[: max(1, round(len(members) * fraction))])
    is_val = np.zeros(len(labels), dtype=bool)
    is_val[val_index] = True
    return (images[~is_val], labels[~is_val]), (images[is_val], labels[is_val])


def augment_batch(images, seed_stream):
    """Random mirror, shift (up to 4 px), rotation (10 deg), zoom (10%), lighting and erasing.

    Geometry is one affine warp per image with reflected borders, so it costs one
    resampling; this runs in the tf.data pipeline beside the training step.
    """
    import tensorflow as tf

    n = tf.shape(images)[0]
    size = float(INPUT_SIZE)
    centre = (size - 1) / 2

    def uniform(low, high, shape=None):
        return tf.random.stateless_uniform(shape if shape is not None else [n], seed_stream(), low, high)

    angle = uniform(-10.0, 10.0) * math.pi / 180
    scale = uniform(0.9, 1.1)
    flip = tf.where(uniform(0.0, 1.0) < 0.5, -1.0, 1.0)
    shift_x, shift_y = uniform(-4.0, 4.0), uniform(-4.0, 4.0)
    cos, sin = tf.cos(angle) / scale, tf.sin(angle) / scale
    a0, a1, b0, b1 = cos * flip, -sin, sin * flip, cos
    a2 = centre - (a0 * centre + a1 * centre) + shift_x
    b2 = centre - (b0 * centre + b1 * centre) + shift_y
    zeros = tf.zeros_like(a0)
    transforms = tf.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], axis=1)
    images = tf.raw_ops.ImageProjectiveTransformV3(
        images=images, transforms=transforms, output_shape=[INPUT_SIZE, INPUT_SIZE],
        fill_value=0.0, interpolation="BILINEAR", fill_mode="REFLECT",
    )
    # Lighting: contrast around each face's mean, then brightness.
    mean = tf.reduce_mean(images, axis=[1, 2, 3], keepdims=True)
    contrast = tf.reshape(uniform(0.7, 1.3), [-1, 1, 1, 1])
    brightness = tf.reshape(uniform(-30.0, 30.0), [-1, 1, 1, 1])
    images = (images - mean) * contrast + mean + brightness
    # Random erasing: half the faces lose a rectangle (2-20% of the area) to noise.
    area = uniform(0.02, 0.2) * size * size
    aspect = tf.exp(uniform(math.log(0.3), math.log(3.3)))
    height, width = tf.sqrt(area * aspect), tf.sqrt(area / aspect)
    top, left = uniform(0.0, 1.0) * (size - height), uniform(0.0, 1.0) * (size - width)
    grid = tf.range(size)
    rows = (grid[None, :] >= top[:, None]) & (grid[None, :] < (top + height)[:, None])
    cols = (grid[None, :] >= left[:, None]) & (grid[None, :] < (left + width)[:, None])
    erase = rows[:, :, None] & cols[:, None, :] & (uniform(0.0, 1.0) < 0.5)[:, None, None]
    noise = uniform(0.0, 255.0, tf.shape(images))
    images = tf.where(erase[..., None], noise, images)
    return tf.clip_by_value(images, 0.0, 255.0)


def _pipeline(images, labels, num_classes, batch_size, shuffle, augment, seed):
    import tensorflow as tf

    x = images.astype(np.float32)[..., None]
    y = np.eye(num_classes, dtype=np.float32)[labels]
    dataset = tf.data.Dataset.from_tensor_slices((x, y))
    if shuffle:
        dataset = dataset.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size)
    if augment:
        generator = tf.random.Generator.from_seed(seed)
        dataset = dataset.map(
            lambda xb, yb: (augment_batch(xb, lambda: generator.uniform_full_int([2], dtype=tf.int32)), yb),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
    return dataset.prefetch(tf.data.AUTOTUNE)


# -- callbacks ----------------------------------------------------------------------------------


def _callbacks(config, run_dir, on_progress, should_stop, start_epoch, history, steps_per_epoch):
    import keras

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
            self.epoch = epoch

        def on_epoch_end(self, epoch, logs=None):
            row = {"epoch": epoch + 1, **_floats(logs), "lr": float(self.model.optimizer.learning_rate)}
            history.append(row)
            if row.get("val_accuracy", -1) > self.best:
                self.best, self.best_epoch = row["val_accuracy"], epoch + 1
                save_model(self.model, run_dir / MODEL_FILE)
            save_model(self.model, run_dir / CHECKPOINT_FILE)
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
            warmup = 2  # a short linear warm-up steadies the first epochs at a high learning rate
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


def _optimizer(config: TrainConfig):
    import keras

    if config.optimizer == "sgd":
        return keras.optimizers.SGD(config.learning_rate, momentum=0.9, nesterov=True, weight_decay=config.weight_decay or None)
    if config.optimizer == "adam":
        return keras.optimizers.Adam(config.learning_rate, weight_decay=config.weight_decay or None)
    raise ValueError(f"unknown optimizer {config.optimizer!r}: use sgd or adam")


def train(
    config: TrainConfig,
    dataset: Dataset,
    run_dir: Path,
    on_progress: Callable[[Progress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    resume: bool = False,
    init_model: Path | None = None,
) -> dict:
    """Train, write the run folder and return its metadata.

    resume: continue the run in `run_dir` from its checkpoint (weights, optimizer, epoch).
    init_model: start from another model's weights (a warm start; same architecture and classes).
    Raises Cancelled when `should_stop` asked to stop; the best epoch so far stays saved.
    """
    import keras
    import tensorflow as tf

    from core.models import build_model
    from core.runs import load_model

    emotions = emotion_set(config.emotions)
    keras.utils.set_random_seed(config.seed)
    if "train" in dataset.images:
        train_images, train_labels = dataset.select("train", emotions)
    else:
        train_images, train_labels = dataset.select(None, emotions)
    if "val" in dataset.images:
        val_images, val_labels = dataset.select("val", emotions)
    else:
        (train_images, train_labels), (val_images, val_labels) = split_validation(
            train_images, train_labels, config.validation_fraction, config.seed)
    if len(train_images) < len(emotions) or len(val_images) == 0:
        raise ValueError(f"too few training images for {len(emotions)} emotions ({len(train_images)} found)")

    history: list[dict] = []
    start_epoch = 0
    earlier: dict = {}  # what the run's earlier segments recorded, when resuming
    if resume:
        import json

        state = json.loads((run_dir / STATE_FILE).read_text())
        history, start_epoch = state["history"], state["epoch"]
        earlier = json.loads((run_dir / METADATA_FILE).read_text())
        model = keras.saving.load_model(run_dir / CHECKPOINT_FILE, safe_mode=True)
    else:
        model = build_model(config.architecture, len(emotions))
        if init_model is not None:
            model.set_weights(load_model(init_model).model.get_weights())
        model.compile(
            optimizer=_optimizer(config),
            loss=keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing),
            metrics=["accuracy"],
        )

    train_data = _pipeline(train_images, train_labels, len(emotions), config.batch_size, True, config.augment, config.seed)
    val_data = _pipeline(val_images, val_labels, len(emotions), 512, False, False, config.seed)
    steps = math.ceil(len(train_images) / config.batch_size)
    metadata = {
        "name": run_dir.name,
        "architecture": config.architecture,
        "classes": list(emotions),
        "input_size": INPUT_SIZE,
        "tta": config.tta,
        "recipe": asdict(config),
        "dataset": {"source": dataset.source, "fingerprint": dataset.fingerprint,
                    "train_images": int(len(train_images)), "validation_images": int(len(val_images))},
        "initialised_from": earlier.get("initialised_from") or (str(init_model) if init_model else None),
        "created": earlier.get("created") or time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "status": "training",
    }
    write_json(run_dir / METADATA_FILE, metadata)
    started = time.monotonic()
    try:
        model.fit(train_data, validation_data=val_data, epochs=config.epochs, initial_epoch=start_epoch, verbose=0, shuffle=False,
                  callbacks=_callbacks(config, run_dir, on_progress, should_stop, start_epoch, history, steps))
        metadata["status"] = "finished"
    except Cancelled:
        metadata["status"] = "cancelled"
    metadata["training_seconds"] = round(earlier.get("training_seconds", 0) + time.monotonic() - started, 1)
    metadata["epochs_trained"] = len(history)
    metadata["history_tail"] = history[-1] if history else None
    if not (run_dir / MODEL_FILE).exists():
        write_json(run_dir / METADATA_FILE, metadata)
        return metadata
    metadata["metrics"] = _final_metrics(run_dir, metadata, dataset, emotions, val_images, val_labels)
    write_json(run_dir / METADATA_FILE, metadata)
    return metadata


def _final_metrics(run_dir, metadata, dataset, emotions, val_images, val_labels) -> dict:
    """Scores of the best epoch (with the run's test-time augmentation) on validation and test."""
    from core.evaluation import summary
    from core.recognise import Classifier
    from core.runs import LoadedModel

    import keras

    best = keras.saving.load_model(run_dir / MODEL_FILE, compile=False, safe_mode=True)
    save_model(best, run_dir / MODEL_FILE)  # without the optimizer's state: half the size, all the model
    classifier = Classifier(LoadedModel(best, metadata, run_dir))
    metrics = {"validation": _brief(summary(classifier.probabilities(val_images), val_labels, emotions))}
    if dataset.evaluation_split() == "test" and "train" in dataset.images:  # only a held-out test/ counts
        test_images, test_labels = dataset.select("test", emotions)
        metrics["test"] = _brief(summary(classifier.probabilities(test_images), test_labels, emotions))
    return metrics


def _brief(report: dict) -> dict:
    return {k: report[k] for k in ("n", "accuracy", "per_class", "accuracy_5class", "n_5class")}
