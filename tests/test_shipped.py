"""What a fresh clone ships: a working model (and the seed's), described by its metadata."""

from __future__ import annotations

import pytest

from core.data import load_dataset
from core.emotions import EMOTIONS, SEED_EMOTIONS
from core.evaluation import evaluate
from core.paths import SEED_MODEL_DIR, SHIPPED_MODEL_DIR
from core.recognise import load_classifier


@pytest.mark.parametrize("model_dir, classes, floor", [(SHIPPED_MODEL_DIR, EMOTIONS, 0.45), (SEED_MODEL_DIR, SEED_EMOTIONS, 0.45)])
def test_shipped_models_load_and_recognise_real_faces(model_dir, classes, floor, sample_zip, cache_dir):
    assert (model_dir / "model.keras").stat().st_size < 20 * 2**20
    classifier = load_classifier(model_dir)
    metadata = classifier.loaded.metadata
    assert tuple(metadata["classes"]) == classes
    assert metadata["metrics"]["test"]["accuracy"] > 0.5  # recorded at training time on FER2013 test/
    # 140 FER2013 test faces, 20 per emotion, so the rare, hard disgust weighs as much as happy:
    # a trained model stays far above chance (14% or 20%); a broken or untrained one does not.
    evaluation = evaluate(classifier, load_dataset(sample_zip, cache_dir=cache_dir))
    assert evaluation.scores.accuracy > floor
