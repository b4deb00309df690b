"""Calibrated probabilities: one temperature that makes "80% sure" right about 80% of the time.

Networks trained on FER2013 come out over- or under-confident. Temperature scaling (Guo et al.
2017) divides the logits by one number T fitted on validation faces (minimum negative
log-likelihood); it changes no prediction, only how sure each one claims to be. Our models
output softmax probabilities, so T is applied as softmax(log(p) / T), which equals
softmax(logits / T). The fitted T lives in the model's metadata.json: training fits it when a run
finishes (core.training.finalize), the one inference path (core.recognise.Classifier) applies it,
and `Classifier.raw_probabilities` gives what comes before it. Plain numpy: nothing here loads a model.
"""

from __future__ import annotations

import math

import numpy as np

from core.records import Calibration

BINS = 15  # the usual number of confidence bins for the expected calibration error
TEMPERATURE_RANGE = (0.05, 20.0)  # wide enough for any trained model; the fit is bounded to it
_EPSILON = 1e-12  # keeps log(0) finite for probabilities the float32 softmax rounded to zero


def apply_temperature(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    """softmax(log(p) / T), row by row: T > 1 softens the probabilities, T < 1 sharpens them."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if temperature == 1.0 or probabilities.size == 0:
        return probabilities.astype(np.float32)
    scaled = np.log(np.maximum(probabilities, _EPSILON)) / temperature
    scaled -= scaled.max(axis=1, keepdims=True)
    exp = np.exp(scaled)
    return (exp / exp.sum(axis=1, keepdims=True)).astype(np.float32)


def undo_temperature(calibrated: np.ndarray, temperature: float) -> np.ndarray:
    """The probabilities before `temperature` was applied: the inverse of `apply_temperature`, for
    probabilities kept only in their calibrated form (a "before" figure)."""
    return apply_temperature(calibrated, 1 / temperature)


def negative_log_likelihood(probabilities: np.ndarray, labels: np.ndarray) -> float:
    picked = np.asarray(probabilities, dtype=np.float64)[np.arange(len(labels)), np.asarray(labels, dtype=np.int64)]
    return float(-np.log(np.maximum(picked, _EPSILON)).mean())


def fit_temperature(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """The temperature that minimises the negative log-likelihood of `labels`.

    The NLL is convex in 1/T, so a golden-section search over log T finds the one minimum.
    """
    if len(labels) == 0:
        raise ValueError("no faces to fit a temperature on")

    def loss(log_t: float) -> float:
        return negative_log_likelihood(apply_temperature(probabilities, math.exp(log_t)), labels)

    low, high = (math.log(t) for t in TEMPERATURE_RANGE)
    ratio = (math.sqrt(5) - 1) / 2
    a, b = high - ratio * (high - low), low + ratio * (high - low)
    loss_a, loss_b = loss(a), loss(b)
    while high - low > 1e-4:
        if loss_a < loss_b:
            high, b, loss_b = b, a, loss_a
            a = high - ratio * (high - low)
            loss_a = loss(a)
        else:
            low, a, loss_a = a, b, loss_b
            b = low + ratio * (high - low)
            loss_b = loss(b)
    return round(math.exp((low + high) / 2), 4)


def reliability(probabilities: np.ndarray, labels: np.ndarray, bins: int = BINS) -> dict[str, list]:
    """Per confidence bin: mean confidence, accuracy and face count (a reliability diagram's data)."""
    probabilities = np.asarray(probabilities)
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == np.asarray(labels)
    edges = np.linspace(0, 1, bins + 1)
    # Bins are (low, high]; a confidence of exactly 0 cannot happen with a softmax over >= 2 classes.
    which = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, bins - 1)
    count = np.bincount(which, minlength=bins)
    with np.errstate(invalid="ignore"):
        mean_confidence = np.bincount(which, weights=confidence, minlength=bins) / count
        accuracy = np.bincount(which, weights=correct, minlength=bins) / count
    return {"edges": edges.round(4).tolist(),
            "confidence": [None if n == 0 else round(float(v), 4) for v, n in zip(mean_confidence, count)],
            "accuracy": [None if n == 0 else round(float(v), 4) for v, n in zip(accuracy, count)],
            "count": count.tolist()}


def expected_calibration_error(probabilities: np.ndarray, labels: np.ndarray, bins: int = BINS) -> float:
    """The gap between confidence and accuracy, averaged over confidence bins weighted by their size."""
    table = reliability(probabilities, labels, bins)
    total = max(sum(table["count"]), 1)
    return float(sum(n / total * abs(c - a) for c, a, n in zip(table["confidence"], table["accuracy"], table["count"])
                     if n))


def calibration_report(raw: np.ndarray, labels: np.ndarray, temperature: float) -> Calibration:
    """ECE and NLL before and after applying `temperature` to the raw probabilities."""
    calibrated = apply_temperature(raw, temperature)
    return Calibration(temperature=temperature, n=int(len(labels)), bins=BINS,
                       ece_before=round(expected_calibration_error(raw, labels), 4),
                       ece_after=round(expected_calibration_error(calibrated, labels), 4),
                       nll_before=round(negative_log_likelihood(raw, labels), 4),
                       nll_after=round(negative_log_likelihood(calibrated, labels), 4))


# -- figure -------------------------------------------------------------------------------------


def reliability_figure(raw: np.ndarray, labels: np.ndarray, temperature: float, title: str | None = None):
    """Reliability diagram, before and after the temperature: accuracy against confidence per bin."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(5, 4.2))
    axes = figure.add_subplot()
    axes.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="perfectly calibrated")
    for name, probabilities, style in (("before", raw, "o-"), (f"after (T={temperature:g})",
                                                               apply_temperature(raw, temperature), "s-")):
        table = reliability(probabilities, labels)
        points = [(c, a) for c, a in zip(table["confidence"], table["accuracy"]) if c is not None]
        ece = expected_calibration_error(probabilities, labels)
        axes.plot(*zip(*points), style, markersize=4, label=f"{name}: ECE {ece:.3f}")
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1)
    axes.set_xlabel("confidence (probability of the predicted emotion)")
    axes.set_ylabel("accuracy")
    axes.legend(loc="upper left", fontsize=8)
    axes.set_title(title or f"Reliability diagram ({len(labels)} faces, {BINS} bins)")
    figure.tight_layout()
    return figure
