"""Finishing a run: the starting model's share averaged back in, the final scores and the temperature;
and averaging finished models into an ensemble."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from core.emotions import INPUT_SIZE
from core.records import FINISHED, Calibration, DatasetInfo, Lineage, ResumeState, RunMetadata, SplitScore, StartKept
from core.runs import MODEL_FILE, STATE_FILE, read_run, save_model, start_model_path, write_atomic, write_run
from core.tf_quiet import keras
from core.training.config import TrainConfig
from core.training.faces import Faces, validation_faces

if TYPE_CHECKING:
    from core.data import Dataset


def finish_run(metadata: RunMetadata, history: list[dict], config: TrainConfig, dataset: Dataset,
               emotions: tuple[str, ...], validation: Faces) -> None:
    """Average the starting model in (config.keep_start), then score and calibrate the best epoch."""
    run_dir = Path(metadata.path)
    if config.keep_start and metadata.initialised_from:
        best_epoch = int(np.argmax([h.get("val_accuracy", -1) for h in history])) + 1
        # A resume of a run stopped after this finds its best epoch averaged already: never twice.
        if metadata.start_kept is None or metadata.start_kept.epoch != best_epoch:
            _average_with_start(run_dir, start_model_path(metadata.initialised_from), config.keep_start, best_epoch)
        metadata.start_kept = StartKept(config.keep_start, best_epoch)
        write_run(metadata)
    metadata.metrics, metadata.calibration = final_metrics(run_dir, metadata.tta, dataset, emotions, validation)
    metadata.temperature = metadata.calibration.temperature


def _average_with_start(run_dir: Path, start: Path, share: float, best_epoch: int) -> None:
    """Replace the run's best epoch by its weighted average with the model it started from, weight by weight.

    The average is always taken from a copy of the best epoch as trained (best-epoch-N.keras, made before
    model.keras is first overwritten), so a run killed after the averaged model is saved but before its
    metadata says so averages the same weights again on --resume, not the average a second time.
    """
    from core.runs import load_model

    trained = run_dir / f"best-epoch-{best_epoch}.keras"
    if not trained.exists():
        write_atomic(trained, lambda tmp: shutil.copyfile(run_dir / MODEL_FILE, tmp))
    for stale in run_dir.glob("best-epoch-*.keras"):
        if stale != trained:
            stale.unlink(missing_ok=True)
    best = keras.saving.load_model(trained, compile=False, safe_mode=True)
    start_weights = load_model(start).model.get_weights()
    best.set_weights([share * s + (1 - share) * b for s, b in zip(start_weights, best.get_weights())])
    save_model(best, run_dir / MODEL_FILE)


def totals(metadata: RunMetadata) -> Lineage:
    """Epochs and CPU-hours behind a trained model, its warm-start ancestors included. A run killed before
    it ended has no totals in its metadata yet: the epochs it saved (state.json) say them."""
    if metadata.total_epochs is not None:
        return Lineage(int(metadata.total_epochs), float(metadata.total_cpu_hours or 0.0))
    state = Path(metadata.path or "") / STATE_FILE
    if metadata.path is None or not state.is_file():  # a model from before runs recorded their time
        return Lineage(int(metadata.epochs_trained or 0), 0.0)
    history = ResumeState.from_json(json.loads(state.read_text())).history
    start = metadata.lineage or Lineage()
    return Lineage(start.epochs + len(history),
                   round(start.cpu_hours + sum(row.get("cpu_seconds", 0) for row in history) / 3600, 4))


def save_ensemble(model_dirs: list[Path], dataset: Dataset, out: Path, tta: str | None = None) -> RunMetadata:
    """Average trained models (seeds or snapshots of a recipe) into one model folder at `out`, scored on the
    validation faces and test/ and calibrated as a finished run is. One graph (core.tta.ensemble): the product
    converts and runs it like any model, one call per batch of faces.

    tta: the ensemble's test-time views (default: its members' own). Each face costs members x views net
    calls, so two members without views cost what one costs with the mirror view."""
    from core.runs import load_model
    from core.tta import TTA_MODES, ensemble

    members = [load_model(folder) for folder in model_dirs]
    records = [read_run(folder) for folder in model_dirs]
    emotions = members[0].classes
    if any(member.classes != emotions for member in members):
        raise ValueError("the models must know the same emotions in the same order to be averaged")
    if tta is None:
        modes = {record.tta for record in records}
        if len(modes) > 1:
            raise ValueError(f"the models use different test-time augmentation ({', '.join(sorted(modes))}): "
                             "choose the ensemble's")
        tta = modes.pop()
    if tta not in TTA_MODES:
        raise ValueError(f"unknown test-time augmentation {tta!r} (one of {', '.join(TTA_MODES)})")
    out.mkdir(parents=True, exist_ok=True)
    save_model(ensemble([member.model for member in members]), out / MODEL_FILE)
    lineages = [totals(record) for record in records]
    architectures = sorted({record.architecture for record in records})
    metadata = RunMetadata(
        name=out.name, architecture=f"ensemble of {len(members)} ({', '.join(architectures)})",
        classes=list(emotions), input_size=INPUT_SIZE, tta=tta,
        dataset=DatasetInfo(dataset.source, dataset.fingerprint, votes=dataset.votes_source),
        created=time.strftime("%Y-%m-%dT%H:%M:%S%z"), status=FINISHED,
        total_epochs=sum(lineage.epochs for lineage in lineages),
        total_cpu_hours=round(sum(lineage.cpu_hours for lineage in lineages), 4), path=out,
        extra={"members": [{"name": record.name or Path(folder).name, "recipe": record.recipe, "metrics": record.metrics}
                           for record, folder in zip(records, model_dirs)]})
    validation = validation_faces(dataset, emotions)
    metadata.metrics, metadata.calibration = final_metrics(out, metadata.tta, dataset, emotions, validation)
    metadata.temperature = metadata.calibration.temperature
    write_run(metadata)
    return metadata


def final_metrics(run_dir: Path, tta: str, dataset: Dataset, emotions: tuple[str, ...],
                  validation: Faces) -> tuple[dict[str, SplitScore], Calibration]:
    """Scores of the best epoch, with the run's test-time augmentation, on validation and test (against
    the dataset's labels, and against the FER+ majority where the faces have votes), and the temperature
    that calibrates its probabilities on the validation faces (their majority, when voted).

    Keras on the training backend rather than the product's TensorFlow Lite path, so that a
    machine without TensorFlow can finish a run; a test checks that the two agree.
    """
    from core.calibration import calibration_report, fit_temperature
    from core.evaluation import majority_faces, summary
    from core.tta import inference_model

    best = keras.saving.load_model(run_dir / MODEL_FILE, compile=False, safe_mode=True)
    save_model(best, run_dir / MODEL_FILE)  # without the optimizer's state: half the size, all the model
    answer = inference_model(best, tta)

    def probabilities(images):
        return answer.predict(images.astype(np.float32)[..., None], batch_size=256, verbose=0)

    val_probabilities = probabilities(validation.images)
    metrics = {"validation": SplitScore.brief(summary(val_probabilities, validation.labels, emotions))}
    if dataset.evaluation_split() == "test" and dataset.training_split():  # only a held-out test/ counts
        test = Faces(*dataset.select_with_votes("test", emotions))
        test_probabilities = probabilities(test.images)
        metrics["test"] = SplitScore.brief(summary(test_probabilities, test.labels, emotions))
        agreed = majority_faces(test_probabilities, test.votes, emotions)
        if agreed is not None:
            metrics["test_ferplus"] = SplitScore.brief(summary(*agreed, emotions))
    calibration = calibration_report(val_probabilities, validation.labels, fit_temperature(val_probabilities, validation.labels))
    return metrics, calibration

