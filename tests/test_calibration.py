"""Temperature scaling, calibration error, and the temperature stored with a model and applied in inference."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from core.calibration import (BINS, apply_temperature, expected_calibration_error, fit_temperature,
                              negative_log_likelihood, reliability, reliability_figure, undo_temperature)
from core.paths import SEED_MODEL_DIR, SHIPPED_MODEL_DIR
from core.recognise import load_classifier
from scripts.calibrate import calibrate


def softmax(logits: np.ndarray) -> np.ndarray:
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


@pytest.fixture(scope="module")
def logits_and_labels() -> tuple[np.ndarray, np.ndarray]:
    """5000 7-class logits, and labels drawn from softmax(logits): calibrated at T = 1 by construction."""
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 2, (5000, 7))
    probabilities = softmax(logits)
    labels = np.array([rng.choice(7, p=p) for p in probabilities])
    return logits, labels


def test_temperature_on_probabilities_equals_temperature_on_logits(logits_and_labels):
    logits, _ = logits_and_labels
    probabilities = softmax(logits)
    for temperature in (0.5, 1.0, 2.5):
        assert np.allclose(apply_temperature(probabilities, temperature), softmax(logits / temperature), atol=1e-6)
    assert (apply_temperature(probabilities, 3.0).argmax(axis=1) == probabilities.argmax(axis=1)).all()


@pytest.mark.parametrize("true_temperature", [0.5, 2.0])
def test_the_fit_recovers_the_temperature_that_was_applied(logits_and_labels, true_temperature):
    logits, labels = logits_and_labels
    distorted = softmax(logits / true_temperature)  # over- (T<1) or under-confident (T>1) by a known factor
    fitted = fit_temperature(distorted, labels)
    assert fitted == pytest.approx(1 / true_temperature, rel=0.1)
    repaired = apply_temperature(distorted, fitted)
    assert expected_calibration_error(repaired, labels) < expected_calibration_error(distorted, labels) / 2
    assert negative_log_likelihood(repaired, labels) < negative_log_likelihood(distorted, labels)


def test_calibration_error_of_a_hand_made_example():
    sure = np.tile([0.9, 0.1], (10, 1))  # ten faces, each 90% "class 0"
    assert expected_calibration_error(sure, np.array([0] * 9 + [1])) == pytest.approx(0.0)  # 9 of 10 right
    assert expected_calibration_error(sure, np.array([0] * 5 + [1] * 5)) == pytest.approx(0.4)  # 5 of 10 right
    table = reliability(sure, np.array([0] * 5 + [1] * 5))
    assert len(table["count"]) == BINS and sum(table["count"]) == 10
    [bin_index] = [i for i, n in enumerate(table["count"]) if n]
    assert table["edges"][bin_index] < 0.9 <= table["edges"][bin_index + 1]
    assert (table["confidence"][bin_index], table["accuracy"][bin_index]) == (0.9, 0.5)
    with pytest.raises(ValueError, match="no faces"):
        fit_temperature(sure[:0], np.array([], dtype=int))


def test_calibrate_stores_the_temperature_and_inference_applies_it(sample, tmp_path):
    model_dir = tmp_path / "seed"
    shutil.copytree(SEED_MODEL_DIR, model_dir)
    metadata = json.loads((model_dir / "metadata.json").read_text())
    metadata.pop("temperature", None)
    (model_dir / "metadata.json").write_text(json.dumps(metadata))
    images, labels = sample.select("test", tuple(metadata["classes"]))
    raw = load_classifier(model_dir).probabilities(images)  # no temperature yet: the raw probabilities
    assert np.allclose(load_classifier(model_dir).raw_probabilities(images), raw)

    report = calibrate(model_dir, images, labels)

    stored = json.loads((model_dir / "metadata.json").read_text())
    assert stored["temperature"] == report.temperature == pytest.approx(fit_temperature(raw, labels), rel=1e-3)
    assert stored["calibration"]["n"] == len(labels) == 100
    assert report.nll_after <= report.nll_before
    assert stored["classes"] == metadata["classes"] and stored["recipe"] == metadata["recipe"]  # nothing else lost
    calibrated = load_classifier(model_dir).probabilities(images)
    assert np.allclose(calibrated, apply_temperature(raw, report.temperature), atol=1e-5)
    assert (calibrated.argmax(axis=1) == raw.argmax(axis=1)).all()  # no answer changes
    assert np.allclose(load_classifier(model_dir).raw_probabilities(images), raw, atol=1e-6)  # undone in one place
    assert np.allclose(undo_temperature(calibrated, report.temperature), raw, atol=1e-4)


@pytest.mark.parametrize("model_dir", [SHIPPED_MODEL_DIR, SEED_MODEL_DIR], ids=["vgg", "seed"])
def test_shipped_models_carry_a_fitted_temperature(model_dir):
    metadata = json.loads((model_dir / "metadata.json").read_text())
    calibration = metadata["calibration"]
    assert metadata["temperature"] == calibration["temperature"] != 1.0
    assert calibration["ece_after"] < calibration["ece_before"] and calibration["n"] > 2000


def test_reliability_figure_shows_before_after_and_the_diagonal(logits_and_labels):
    logits, labels = logits_and_labels
    figure = reliability_figure(softmax(logits * 2), labels, 2.0)
    assert len(figure.axes[0].lines) == 3
    assert "ECE" in " ".join(text.get_text() for text in figure.axes[0].get_legend().get_texts())


def test_calibration_imports_nothing_of_core_but_its_record():
    """Plain numpy: the inference path imports it, never the other way round (no import cycle). Its one import
    of core is the Calibration record, and the records import nothing of core."""
    import ast
    import inspect

    import core.calibration
    import core.records

    def core_imports(module) -> set[str]:
        tree = ast.parse(inspect.getsource(module))
        imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
        imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
        return {name for name in imported if name and name.split(".")[0] == "core"}

    assert core_imports(core.calibration) == {"core.records"} and core_imports(core.records) == set()
