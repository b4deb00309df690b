"""The fit loop: `train()` fits a model from the factory on a dataset and writes a run folder (core.runs).

It reports progress to any callable (the terminal prints it, the dashboard's worker writes it to a file),
can be cancelled between batches, keeps a resumable checkpoint beside the run's model file, and saves only
the best epoch, atomically. Early stopping and the warm-up cosine are Keras' own.
"""

from __future__ import annotations

import csv
import io
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from core.emotions import INPUT_SIZE, emotion_set
from core.records import CANCELLED, FINISHED, DatasetInfo, Lineage, PhotosInfo, ResumeState, RunMetadata
from core.runs import (
    CHECKPOINT_FILE, HISTORY_FILE, MODEL_FILE, STATE_FILE, checkpoint_state, read_run, remove_orphaned_partials,
    save_checkpoint, save_model, write_json, write_run, write_text,
)
from core.tf_quiet import keras
from core.training.augment import Batches, augmenter, class_weights
from core.training.config import TrainConfig
from core.training.faces import Faces, split_faces, training_targets, validation_targets
from core.training.finalize import finish_run, totals

if TYPE_CHECKING:
    from core.data import Dataset


@dataclass
class EpochProgress:
    """One report from the fit loop, per batch (batch is set) or at the end of an epoch (batch is None)."""

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


class NothingToResume(ValueError):
    """The run folder holds no checkpoint to continue from."""


def _arrays(images: np.ndarray, targets: np.ndarray, devices: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Faces as float32 (N, 48, 48, 1) and their target distributions (N, classes).

    Over several devices every batch, the last one too, is split evenly between them, so N is cut
    to a multiple of their number (at most devices - 1 faces left out).
    """
    keep = len(targets) - len(targets) % devices
    return images[:keep].astype(np.float32)[..., None], targets[:keep].astype(np.float32)


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


def _with_teacher(targets: np.ndarray, images: np.ndarray, config: TrainConfig, emotions: tuple[str, ...]) -> np.ndarray:
    """The targets with `config.teacher_share` of the teacher's calibrated answer on each (unaugmented) face."""
    from core.recognise import load_classifier

    teacher = load_classifier(config.teacher, quantized=False)  # the float model: the teacher's own answers
    if teacher.classes != emotions:
        raise ValueError(f"the teacher {config.teacher} knows {', '.join(teacher.classes)}; this run trains {', '.join(emotions)}")
    return (1 - config.teacher_share) * targets + config.teacher_share * teacher.probabilities(images)


# -- callbacks ----------------------------------------------------------------------------------


class _Reporter(keras.callbacks.Callback):
    """Progress, ETA, cancellation, the history, the best epoch (saved atomically) and the resumable checkpoint."""

    def __init__(self, config: TrainConfig, run_dir: Path, history: list[dict], steps: int,
                 on_progress: Callable[[EpochProgress], None] | None, should_stop: Callable[[], bool] | None):
        super().__init__()
        self.config, self.run_dir, self.history, self.steps = config, run_dir, history, steps
        self.on_progress, self.should_stop = on_progress, should_stop
        self.started = time.monotonic()
        self.best = max((h.get("val_accuracy", -1) for h in history), default=-1.0)
        self.batches_done = 0

    def _eta(self, epoch: int, batch: int) -> float:
        remaining = (self.config.epochs - epoch) * self.steps + (self.steps - batch)
        return (time.monotonic() - self.started) / self.batches_done * remaining if self.batches_done else float("nan")

    def _report(self, epoch: int, batch: int | None, logs: dict) -> None:
        if self.on_progress:
            self.on_progress(EpochProgress(epoch, self.config.epochs, batch, self.steps, logs,
                                           time.monotonic() - self.started, self._eta(epoch, batch or self.steps),
                                           list(self.history)))

    def on_train_batch_end(self, batch, logs=None):
        self.batches_done += 1
        if self.should_stop and self.should_stop():
            self.model.stop_training = True
            raise Cancelled()
        if batch % 10 == 0 or batch + 1 == self.steps:
            self._report(self.epoch + 1, batch + 1, _floats(logs))

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch, self.epoch_started, self.epoch_cpu_started = epoch, time.monotonic(), time.process_time()

    def on_epoch_end(self, epoch, logs=None):
        learning_rate = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        # Time and CPU time, validation included: saved with the checkpoint, so a resume after a kill counts them.
        row = {"epoch": epoch + 1, **_floats(logs), "lr": learning_rate,
               "seconds": round(time.monotonic() - self.epoch_started, 1),
               "cpu_seconds": round(time.process_time() - self.epoch_cpu_started, 1)}
        self.history.append(row)
        if row.get("val_accuracy", -1) > self.best:  # the best epoch, as ModelCheckpoint would keep it, but atomically
            self.best = row["val_accuracy"]
            save_model(self.model, self.run_dir / MODEL_FILE)
        state = ResumeState(self.config.to_json(), epoch + 1, self.history).to_json()
        save_checkpoint(self.model, self.run_dir / CHECKPOINT_FILE, state)  # with the optimizer's state, for --resume
        write_json(self.run_dir / STATE_FILE, state)  # for readers (and checkpoints from before they held it)
        write_text(self.run_dir / HISTORY_FILE, _history_csv(self.history))
        self._report(epoch + 1, None, row)


class _EarlyStopping(keras.callbacks.EarlyStopping):
    """Keras' early stopping, counting on from the epochs a resumed run trained before."""

    def __init__(self, patience: int, history: list[dict]):
        super().__init__(monitor="val_accuracy", mode="max", patience=patience)
        self.earlier = history[:]

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        if self.earlier:
            scores = [h.get("val_accuracy", -1) for h in self.earlier]
            self.best = max(scores)
            self.wait = len(scores) - 1 - int(np.argmax(scores))


def _floats(logs) -> dict[str, float]:
    return {k: float(v) for k, v in (logs or {}).items()}


def _history_csv(history: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, list(dict.fromkeys(k for row in history for k in row)))
    writer.writeheader()
    writer.writerows(history)
    return buffer.getvalue()


# -- optimizer ----------------------------------------------------------------------------------


def learning_rate(config: TrainConfig, steps_per_epoch: int):
    """The rate, or for "cosine" Keras' warm-up cosine: a short linear warm-up (2 epochs, a fifth of a short
    run) steadies the first steps at a high rate, then the rate anneals to 0 by the last epoch."""
    if config.schedule != "cosine":
        return config.learning_rate
    warmup = min(2, config.epochs // 5) * steps_per_epoch
    decay = max(1, config.epochs * steps_per_epoch - warmup)
    if not warmup:
        return keras.optimizers.schedules.CosineDecay(config.learning_rate, decay)
    return keras.optimizers.schedules.CosineDecay(0.0, decay, warmup_target=config.learning_rate, warmup_steps=warmup)


def _optimizer(config: TrainConfig, steps_per_epoch: int) -> keras.optimizers.Optimizer:
    rate = learning_rate(config, steps_per_epoch)
    if config.optimizer == "sgd":
        return keras.optimizers.SGD(rate, momentum=0.9, nesterov=True, weight_decay=config.weight_decay or None)
    if config.optimizer == "adam":
        return keras.optimizers.Adam(rate, weight_decay=config.weight_decay or None)
    raise ValueError(f"unknown optimizer {config.optimizer!r}: use sgd or adam")


def _compiled(model: keras.Model, optimizer: keras.optimizers.Optimizer, config: TrainConfig) -> keras.Model:
    loss = keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing)
    model.compile(optimizer=optimizer, loss=loss, metrics=["accuracy"])
    return model


def _from_checkpoint(run_dir: Path, config: TrainConfig, steps: int) -> keras.Model:
    """The checkpoint's net, with a fresh optimizer for this config (its schedule fits the epochs asked for
    now) that carries on from the saved one's state: step count, momentum, a plateau-lowered rate."""
    saved = keras.saving.load_model(run_dir / CHECKPOINT_FILE, safe_mode=True)
    wrapped = [layer for layer in saved.layers if isinstance(layer, keras.Model) and layer.name != "augment"]
    model = wrapped[0] if wrapped else saved  # a checkpoint from when augmentation was a layer in front of the net
    optimizer = _optimizer(config, steps)
    optimizer.build(model.trainable_variables)
    old = {variable.name: variable for variable in saved.optimizer.variables}
    for variable in optimizer.variables:
        if variable.name in old and tuple(old[variable.name].shape) == tuple(variable.shape):
            variable.assign(old[variable.name])
    return _compiled(model, optimizer, config)


# -- the run ------------------------------------------------------------------------------------


@dataclass
class _TrainingSet:
    """What an epoch trains on: the dataset's training faces, then the photos' faces `photo_repeat` times over."""

    images: np.ndarray
    targets: np.ndarray  # each face's target distribution: votes, a label, a teacher's share mixed in
    labels: np.ndarray  # each face's strongest target: what class balance weighs
    photos: PhotosInfo | None


def _training_set(training: Faces, targets: np.ndarray, photos: Dataset | None, config: TrainConfig,
                  emotions: tuple[str, ...]) -> _TrainingSet:
    """The training faces and their targets, with the labelled photos' faces appended (one-hot targets)."""
    if config.teacher_share:
        targets = _with_teacher(targets, training.images, config, emotions)
    chosen = _TrainingSet(training.images, targets, targets.argmax(axis=1), None)
    if photos is None:
        return chosen
    faces, labels = photos.select(None, emotions)
    repeat = config.photo_repeat
    return _TrainingSet(np.concatenate([chosen.images] + [faces] * repeat),
                        np.concatenate([chosen.targets] + [np.eye(len(emotions), dtype=np.float32)[labels]] * repeat),
                        np.concatenate([chosen.labels] + [labels] * repeat),
                        PhotosInfo(photos.source, photos.fingerprint, int(len(faces)), repeat))


@dataclass
class _Start:
    """Where the fit begins: a new net (from scratch or another model's weights), or a run's checkpoint."""

    trainer: keras.Model
    epoch: int = 0  # epochs already trained in this run
    history: list[dict] = field(default_factory=list)
    earlier: RunMetadata | None = None  # what the run's earlier segments recorded, when resuming
    lineage: Lineage = field(default_factory=Lineage)  # the training behind a warm start's weights
    initialised_from: str | None = None


def _start(config: TrainConfig, run_dir: Path, emotions: tuple[str, ...], steps: int, resume: bool,
           init_model: Path | None) -> _Start:
    if resume:
        # The checkpoint's own state: state.json is written after it, so a kill between the two leaves it behind.
        state = ResumeState.from_json(checkpoint_state(run_dir / CHECKPOINT_FILE) or _read_json(run_dir / STATE_FILE))
        earlier = read_run(run_dir)
        return _Start(_from_checkpoint(run_dir, config, steps), state.epoch, state.history, earlier,
                      earlier.lineage or Lineage(), earlier.initialised_from)
    from core.models import build_model

    model = build_model(config.architecture, len(emotions))
    trainer = _compiled(model, _optimizer(config, steps), config)
    if init_model is None:
        return _Start(trainer)
    from core.runs import load_model

    start = load_model(init_model)
    if start.classes != emotions:
        raise ValueError(f"{init_model} knows {', '.join(start.classes)}; this run trains {', '.join(emotions)}")
    model.set_weights(start.model.get_weights())
    # The absolute path: a resume from another folder still finds it.
    return _Start(trainer, lineage=totals(read_run(init_model)), initialised_from=str(Path(init_model).resolve()))


def _checked(config: TrainConfig, run_dir: Path, resume: bool, init_model: Path | None) -> TrainConfig:
    """The config as the run stores it, once the options agree with each other and with the run folder."""
    problem = config.out_of_range()
    if problem:
        raise ValueError(problem)
    if not 0 <= config.teacher_share <= 1 or bool(config.teacher_share) != bool(config.teacher):
        raise ValueError("distilling needs both a teacher model and its share of the targets, from 0 to 1")
    if config.keep_start and init_model is None and not resume:
        raise ValueError("keeping a share of the starting model needs a model to start from")
    if resume and not (run_dir / STATE_FILE).is_file():
        raise NothingToResume(f"{run_dir} has no checkpoint to resume: it stopped before its first epoch ended")
    if config.teacher:  # stored in the recipe as an absolute path: a resume from another folder still finds it
        config = replace(config, teacher=str(Path(config.teacher).resolve()))
    return config


def _record_time(metadata: RunMetadata, start: _Start, history: list[dict], seconds: float, cpu_seconds: float) -> None:
    """The run's time and epochs in all: this segment's, and the earlier segments' when it resumed."""
    # A clean stop recorded the earlier segments' time in the metadata (a half epoch included); a kill leaves
    # only the epochs it saved, with their times (runs from before cpu_seconds was kept: none).
    earlier_rows, earlier = history[:start.epoch], start.earlier
    seconds_before = max(sum(row.get("seconds", 0) for row in earlier_rows), (earlier and earlier.training_seconds) or 0)
    cpu_seconds_before = max(sum(row.get("cpu_seconds", 0) for row in earlier_rows),
                             (earlier and earlier.training_cpu_seconds) or 0)
    metadata.training_seconds = round(seconds_before + seconds, 1)
    metadata.training_cpu_seconds = round(cpu_seconds_before + cpu_seconds, 1)
    metadata.epochs_trained = len(history)
    metadata.total_epochs = start.lineage.epochs + len(history)
    metadata.total_cpu_hours = round(start.lineage.cpu_hours + metadata.training_cpu_seconds / 3600, 4)
    metadata.history_tail = history[-1] if history else None


def _build_before_tracing(trainer: keras.Model, batch: tuple[np.ndarray, ...]) -> None:
    """Make every variable (optimizer slots, metric totals) before fit traces the training step: made inside
    the first trace, TensorFlow traces the step a second time, about 2 s of every start on 2 cores. Keras
    builds so itself under JAX and under a distribution strategy; its TensorFlow trainer defers it."""
    if keras.backend.backend() == "tensorflow":
        trainer._symbolic_build(data_batch=batch)  # Keras's own build step; a no-op once all is built


def train(
    config: TrainConfig,
    dataset: Dataset,
    run_dir: Path,
    on_progress: Callable[[EpochProgress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    resume: bool = False,
    init_model: Path | None = None,
    photos: Dataset | None = None,
) -> RunMetadata:
    """Train, write the run folder and return its metadata. Runs on any Keras backend.

    resume: continue the run in `run_dir` from its checkpoint (weights, optimizer, epoch); NothingToResume
        when it has none (killed before its first epoch ended).
    init_model: start from another model's weights (a warm start; same architecture and classes);
        config.keep_start > 0 averages them back into the best epoch at the end.
    photos: labelled real photos, their faces cut as the product cuts them (core.data reads any folder or
        zip of class folders so); every split of it trains, config.photo_repeat times an epoch, beside
        the dataset's own training faces. Validation stays the dataset's.
    When `should_stop` says so, it stops after the current batch and returns with status "cancelled";
    the best epoch so far stays saved.
    """
    run_dir = Path(run_dir)
    emotions = emotion_set(config.emotions)
    config = _checked(config, run_dir, resume, init_model)
    for saved in (MODEL_FILE, CHECKPOINT_FILE):  # what writers killed mid-save left beside them
        remove_orphaned_partials(run_dir / saved)
    keras.utils.set_random_seed(config.seed)
    devices = _spread_over_devices()
    if config.batch_size % devices:
        raise ValueError(f"a batch of {config.batch_size} does not split evenly over {devices} devices")

    training, validation = split_faces(dataset, emotions, config.validation_fraction)
    training, targets = training_targets(training, emotions, config.label_share)
    validation, val_targets = validation_targets(validation, emotions)
    if len(training) < len(emotions) or len(validation) == 0:
        raise ValueError(f"too few training images for {len(emotions)} emotions ({len(training)} found)")
    chosen = _training_set(training, targets, photos, config, emotions)
    train_x, train_y = _arrays(chosen.images, chosen.targets, devices)
    val_x, val_y = _arrays(validation.images, val_targets, devices)
    weights = class_weights(chosen.labels, len(emotions), config.class_balance)[chosen.labels[: len(train_y)]]
    steps = math.ceil(len(train_x) / config.batch_size)
    start = _start(config, run_dir, emotions, steps, resume, init_model)
    history = start.history
    batches = Batches(train_x, train_y, weights, config.batch_size,
                      augmenter(config.seed) if config.augment else None, config.seed + start.epoch)

    earlier = start.earlier
    metadata = RunMetadata(
        name=run_dir.name, architecture=config.architecture, classes=list(emotions), input_size=INPUT_SIZE,
        tta=config.tta, recipe=config.to_json(),
        # Faces trained on an epoch: the photos' repeats included (FER+ faces the taggers rejected left out).
        dataset=DatasetInfo(dataset.source, dataset.fingerprint, int(len(chosen.images)), int(len(validation)),
                            dataset.votes_source if training.has_votes else None),
        initialised_from=start.initialised_from, photos=chosen.photos, lineage=start.lineage,
        created=earlier.created if earlier else time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        status="training", worker_pid=os.getpid(), backend=keras.backend.backend(), devices=devices,
        start_kept=earlier.start_kept if earlier else None, path=run_dir)
    write_run(metadata)
    started, cpu_started = time.monotonic(), time.process_time()
    callbacks = [_Reporter(config, run_dir, history, steps, on_progress, should_stop),
                 _EarlyStopping(config.patience, history)]
    if config.schedule == "plateau":
        callbacks.append(keras.callbacks.ReduceLROnPlateau("val_accuracy", factor=0.5, patience=5, mode="max"))
    _build_before_tracing(start.trainer, (train_x[:1], train_y[:1], weights[:1]))
    try:
        start.trainer.fit(batches, validation_data=(val_x, val_y), validation_batch_size=512, epochs=config.epochs,
                          initial_epoch=start.epoch, shuffle=False, verbose=0, callbacks=callbacks)
        metadata.status = FINISHED
    except Cancelled:
        metadata.status = CANCELLED
    metadata.worker_pid = None
    _record_time(metadata, start, history, time.monotonic() - started, time.process_time() - cpu_started)
    if (run_dir / MODEL_FILE).exists():
        finish_run(metadata, history, config, dataset, emotions, validation)
    write_run(metadata)
    return metadata


def _read_json(path: Path) -> dict:
    import json

    return json.loads(path.read_text())
