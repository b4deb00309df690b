"""What a fresh clone ships: a working model (and the seed's), described by its metadata, and the server's settings."""

from __future__ import annotations

import tomllib

import pytest

from core.data import MAX_UPLOAD_BYTES, load_dataset
from core.emotions import EMOTIONS, SEED_EMOTIONS
from core.evaluation import evaluate
from core.paths import SEED_MODEL_DIR, SHIPPED_MODEL_DIR
from core.recognise import load_classifier
from core.votes import attach_found_votes
from support.photos import PROJECT_ROOT, SAMPLE_ZIP


@pytest.fixture(scope="module")
def voted_sample():
    """The bundled sample's 140 FER2013 test faces with their FER+ votes (its own copy: votes get attached)."""
    sample = load_dataset(SAMPLE_ZIP, cache_dir=None)
    assert attach_found_votes(sample) == SAMPLE_ZIP.parent / "ferplus.csv"
    return sample


@pytest.mark.parametrize("model_dir, classes, floor", [(SHIPPED_MODEL_DIR, EMOTIONS, 0.6), (SEED_MODEL_DIR, SEED_EMOTIONS, 0.45)])
def test_shipped_models_load_and_recognise_real_faces(voted_sample, model_dir, classes, floor):
    """The sample's 140 FER2013 test faces, 20 per emotion, so the rare, hard disgust weighs as much as happy,
    with their FER+ votes beside them: a trained model stays far above chance (14% or 20%); a broken or
    untrained one does not. The shipped model learned the taggers' votes, so it is held to their majority;
    the seed learned FER2013's single labels, so it is held to those."""
    assert (model_dir / "model.keras").stat().st_size < 20 * 2**20
    classifier = load_classifier(model_dir)
    assert tuple(classifier.metadata.classes) == classes
    assert classifier.metadata.accuracy("test") > 0.5  # recorded at training time on FER2013 test/
    evaluation = evaluate(classifier, voted_sample)
    scores = evaluation.ferplus_scores if model_dir == SHIPPED_MODEL_DIR else evaluation.scores
    assert scores.accuracy > floor


def test_the_shipped_model_agrees_with_people_better_than_with_fer2013s_single_label(voted_sample):
    """It learned FER+'s ten votes a face, so where FER2013's one tagger and the ten disagree it sides with the
    ten: on the sample's faces it agrees with their majority far more often (79% against 53% when written)."""
    evaluation = evaluate(load_classifier(SHIPPED_MODEL_DIR), voted_sample)
    assert evaluation.ferplus_scores.n == evaluation.scores.n == 140
    assert evaluation.ferplus_scores.accuracy > evaluation.scores.accuracy + 0.15


def test_the_server_accepts_uploads_as_large_as_core_does_and_no_larger():
    """Streamlit reads its upload cap from config.toml only, so core's constant cannot be passed to it:
    the two must say the same number."""
    config = tomllib.loads((PROJECT_ROOT / ".streamlit" / "config.toml").read_text())
    assert config["server"]["maxUploadSize"] * 2**20 == MAX_UPLOAD_BYTES
