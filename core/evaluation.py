"""How good a model is: accuracy, per-class precision/recall/F1, confusion matrices, figures.

Scores are reported for the model's own classes and for the seed project's five
(the true label is one of the five; the prediction is the argmax over those five), and, where the
faces carry FER+ votes, against the taggers' majority (core.votes.majority: ties and unknown,
not-a-face or contempt majorities left out). Two models are compared the same way, on the
emotions both know.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.emotions import EMOTIONS, SEED_EMOTIONS


@dataclass
class Scores:
    classes: tuple[str, ...]
    confusion: np.ndarray  # rows: true class, columns: predicted class (counts)

    @property
    def n(self) -> int:
        return int(self.confusion.sum())

    @property
    def accuracy(self) -> float:
        return float(np.trace(self.confusion) / max(self.n, 1))

    @property
    def recall(self) -> np.ndarray:
        return np.diag(self.confusion) / np.maximum(self.confusion.sum(axis=1), 1)

    @property
    def precision(self) -> np.ndarray:
        return np.diag(self.confusion) / np.maximum(self.confusion.sum(axis=0), 1)

    @property
    def f1(self) -> np.ndarray:
        p, r = self.precision, self.recall
        return np.where(p + r > 0, 2 * p * r / np.maximum(p + r, 1e-12), 0.0)

    def normalised(self) -> np.ndarray:
        """Confusion matrix with each row divided by its class's count."""
        return self.confusion / np.maximum(self.confusion.sum(axis=1, keepdims=True), 1)

    def table(self):
        """Per-class precision, recall, F1 and support as a pandas DataFrame."""
        import pandas as pd

        return pd.DataFrame(
            {"precision": self.precision, "recall": self.recall, "f1": self.f1,
             "support": self.confusion.sum(axis=1).astype(int)},
            index=pd.Index(self.classes, name="emotion"),
        )


def score(probabilities: np.ndarray, labels: np.ndarray, classes: tuple[str, ...]) -> Scores:
    """Scores of predictions (N, C) against integer labels indexing `classes`."""
    predicted = np.argmax(probabilities, axis=1)
    confusion = np.zeros((len(classes), len(classes)), dtype=np.int64)
    np.add.at(confusion, (np.asarray(labels, dtype=np.int64), predicted), 1)
    return Scores(tuple(classes), confusion)


def restrict(probabilities: np.ndarray, labels: np.ndarray, classes: tuple[str, ...],
             subset: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The faces whose true emotion is in `subset`: (which faces, their probabilities over `subset`, their labels)."""
    columns = [classes.index(e) for e in subset]
    remap = np.full(len(classes), -1)
    remap[columns] = np.arange(len(columns))
    subset_labels = remap[np.asarray(labels, dtype=np.int64)]
    keep = subset_labels >= 0
    return keep, probabilities[keep][:, columns], subset_labels[keep]


def seed_subset_scores(probabilities: np.ndarray, labels: np.ndarray, classes: tuple[str, ...]) -> Scores | None:
    """Scores on the seed's five emotions, or None when the model lacks one of them."""
    if not set(SEED_EMOTIONS) <= set(classes):
        return None
    _, subset_probabilities, subset_labels = restrict(probabilities, labels, classes, SEED_EMOTIONS)
    return score(subset_probabilities, subset_labels, SEED_EMOTIONS)


@dataclass(frozen=True)
class Inference:
    """How a classifier reaches its answers, for a report to say what produced its scores."""

    tta: str
    views: int
    models: int  # an ensemble's members; 1 for a single net
    temperature: float
    runtime: str

    def __str__(self) -> str:
        """'flip test-time augmentation (2 views), 1 model, temperature 0.805, TensorFlow Lite'."""
        views = "no test-time augmentation" if self.views == 1 else f"{self.tta} test-time augmentation ({self.views} views)"
        models = "1 model" if self.models == 1 else f"an ensemble of {self.models} models"
        return f"{views}, {models}, temperature {self.temperature:g}, {self.runtime}"


def inference_of(classifier) -> Inference:
    from core.records import view_count

    # An ensemble's metadata names its members (core.training.save_ensemble); read there, not from the Keras
    # model, whose loading would cost a terminal evaluation seconds of TensorFlow start-up.
    members = len(classifier.metadata.extra.get("members") or ())
    return Inference(classifier.tta, view_count(classifier.tta), max(1, members), classifier.temperature,
                     "TensorFlow Lite, 8-bit weights" if classifier.quantized else "TensorFlow Lite")


def summary(probabilities: np.ndarray, labels: np.ndarray, classes: tuple[str, ...], votes: np.ndarray | None = None) -> dict:
    """The JSON-ready report that scripts/evaluate.py prints and run metadata stores; with `votes` (N, 10),
    also the agreement with the FER+ majority (accuracy_ferplus, n_ferplus, per_class_ferplus)."""
    scores = score(probabilities, labels, classes)
    five = seed_subset_scores(probabilities, labels, classes)
    report = {
        "n": scores.n,
        "accuracy": round(scores.accuracy, 4),
        "per_class": {c: round(float(r), 4) for c, r in zip(classes, scores.recall)},
        "confusion_matrix": scores.confusion.tolist(),
        "classes": list(classes),
        "accuracy_5class": None if five is None else round(five.accuracy, 4),
        "n_5class": None if five is None else five.n,
    }
    ferplus = majority_scores(probabilities, votes, classes)
    if ferplus is not None:
        report.update({
            "accuracy_ferplus": round(ferplus.accuracy, 4),
            "n_ferplus": ferplus.n,
            "per_class_ferplus": {c: {"recall": round(float(r), 4), "precision": round(float(p), 4),
                                      "support": int(n)}
                                  for c, r, p, n in zip(classes, ferplus.recall, ferplus.precision,
                                                        ferplus.confusion.sum(axis=1))},
            "confusion_matrix_ferplus": ferplus.confusion.tolist(),
        })
    return report


def majority_faces(probabilities: np.ndarray, votes: np.ndarray | None,
                   classes: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray] | None:
    """(probabilities, majority labels) of the faces whose taggers agree on one of `classes`; None without votes,
    or where no face's majority is one of them (nothing to score against)."""
    from core.votes import majority

    if votes is None or not (votes.sum(axis=1) > 0).any():
        return None
    agreed = majority(votes, classes)
    if not (agreed >= 0).any():
        return None
    return probabilities[agreed >= 0], agreed[agreed >= 0]


def majority_scores(probabilities: np.ndarray, votes: np.ndarray | None, classes: tuple[str, ...]) -> Scores | None:
    """Scores against the FER+ taggers' majority on the faces that have one, or None without votes."""
    agreed = majority_faces(probabilities, votes, classes)
    return None if agreed is None else score(*agreed, classes)


@dataclass
class Evaluation:
    """A model's predictions on a set of labelled faces, and everything derived from them."""

    classes: tuple[str, ...]
    images: np.ndarray  # (N, 48, 48) uint8
    labels: np.ndarray  # (N,) indexes classes
    probabilities: np.ndarray  # (N, C)
    votes: np.ndarray | None = None  # (N, 10) FER+ vote counts, when the faces have them

    @property
    def scores(self) -> Scores:
        return score(self.probabilities, self.labels, self.classes)

    @property
    def ferplus_scores(self) -> Scores | None:
        """Against the FER+ majority, or None when the faces have no votes."""
        return majority_scores(self.probabilities, self.votes, self.classes)

    @property
    def seed_scores(self) -> Scores | None:
        return seed_subset_scores(self.probabilities, self.labels, self.classes)

    def summary(self) -> dict:
        return summary(self.probabilities, self.labels, self.classes, self.votes)

    def calibration_faces(self) -> tuple[np.ndarray, np.ndarray]:
        """(probabilities, labels) to judge calibration by: the taggers' majority where the faces have votes
        (what a model trained on votes is calibrated to), else the dataset's labels."""
        return majority_faces(self.probabilities, self.votes, self.classes) or (self.probabilities, self.labels)

    def misclassified(self, limit: int = 24, seed: int = 0) -> list[tuple[np.ndarray, str, str, float]]:
        """Up to `limit` wrong answers (face, true, predicted, confidence), a random sample."""
        predicted = self.probabilities.argmax(axis=1)
        wrong = np.flatnonzero(predicted != self.labels)
        pick = np.random.default_rng(seed).permutation(wrong)[:limit]
        return [(self.images[i], self.classes[self.labels[i]], self.classes[predicted[i]],
                 float(self.probabilities[i, predicted[i]])) for i in pick]


def evaluate(classifier, dataset, split: str | None = "auto") -> Evaluation:
    """Classify a dataset split (default: test/ when there is one, else every image)."""
    if split == "auto":
        split = dataset.evaluation_split()
    images, labels, votes = dataset.select_with_votes(split, classifier.classes)
    if len(images) == 0:
        raise ValueError(f"the data holds no images of the model's emotions ({', '.join(classifier.classes)})")
    voted = votes if (votes.sum(axis=1) > 0).any() else None
    return Evaluation(classifier.classes, images, labels, classifier.probabilities(images), voted)


# -- two models on the same faces ---------------------------------------------------------------


@dataclass
class Comparison:
    """Models A and B on the same faces, scored on the emotions both know (argmax over those)."""

    classes: tuple[str, ...]
    images: np.ndarray  # (N, 48, 48) the faces both were scored on
    labels: np.ndarray  # (N,) indexes classes
    a: Scores
    b: Scores
    predicted_a: np.ndarray  # (N,) indexes classes
    predicted_b: np.ndarray
    note: str  # what was compared, in a sentence for the user

    @property
    def disagreements(self) -> np.ndarray:
        return np.flatnonzero(self.predicted_a != self.predicted_b)

    def disagreeing_faces(self, limit: int = 24) -> list[tuple[np.ndarray, str, str, str]]:
        """Up to `limit` faces the models answer differently: (face, true, A's answer, B's answer)."""
        return [(self.images[i], self.classes[self.labels[i]], self.classes[self.predicted_a[i]],
                 self.classes[self.predicted_b[i]]) for i in self.disagreements[:limit]]

    def table(self):
        """Per emotion: precision and recall of A and B and the difference B - A, as a pandas DataFrame."""
        import pandas as pd

        return pd.DataFrame({
            "precision A": self.a.precision, "precision B": self.b.precision,
            "precision B-A": self.b.precision - self.a.precision,
            "recall A": self.a.recall, "recall B": self.b.recall, "recall B-A": self.b.recall - self.a.recall,
            "support": self.a.confusion.sum(axis=1).astype(int)}, index=pd.Index(self.classes, name="emotion"))

    def summary(self) -> dict:
        right_a, right_b = self.predicted_a == self.labels, self.predicted_b == self.labels
        return {
            "classes": list(self.classes), "n": self.a.n, "note": self.note,
            "accuracy": {"a": round(self.a.accuracy, 4), "b": round(self.b.accuracy, 4),
                         "difference": round(self.b.accuracy - self.a.accuracy, 4)},
            "per_class": {c: {"precision_a": round(float(pa), 4), "precision_b": round(float(pb), 4),
                              "precision_difference": round(float(pb - pa), 4),
                              "recall_a": round(float(ra), 4), "recall_b": round(float(rb), 4),
                              "recall_difference": round(float(rb - ra), 4)}
                          for c, pa, pb, ra, rb in zip(self.classes, self.a.precision, self.b.precision,
                                                       self.a.recall, self.b.recall)},
            "confusion_matrix": {"a": self.a.confusion.tolist(), "b": self.b.confusion.tolist()},
            "disagreements": int(len(self.disagreements)),
            "outcomes": {"both_right": int((right_a & right_b).sum()), "only_a_right": int((right_a & ~right_b).sum()),
                         "only_b_right": int((~right_a & right_b).sum()), "both_wrong": int((~right_a & ~right_b).sum())},
        }


def compare(a: Evaluation, b: Evaluation) -> Comparison:
    """Compare two evaluations of the same dataset split on the emotions both models know.

    Faces whose true emotion one model does not know are left out, and each model's answer
    is the likeliest of the shared emotions (as for the seed's five), so both are scored on
    the same faces with the same choices.
    """
    shared = tuple(e for e in EMOTIONS if e in a.classes and e in b.classes)
    if len(shared) < 2:
        raise ValueError(f"the models share fewer than two emotions ({', '.join(shared) or 'none'}): nothing to compare")
    keep_a, probabilities_a, labels = restrict(a.probabilities, a.labels, a.classes, shared)
    keep_b, probabilities_b, labels_b = restrict(b.probabilities, b.labels, b.classes, shared)
    images = a.images[keep_a]
    if not (np.array_equal(labels, labels_b) and np.array_equal(images, b.images[keep_b])):
        raise ValueError("the two evaluations are not on the same faces: score both models on the same data")
    left_out = sorted(set(a.classes) ^ set(b.classes), key=EMOTIONS.index)
    note = (f"Compared on the {len(labels):,} faces whose true emotion both models know ({', '.join(shared)})"
            + (f"; {', '.join(left_out)} left out, and each answer is the likeliest of the shared emotions."
               if left_out else "."))
    predicted_a, predicted_b = probabilities_a.argmax(axis=1), probabilities_b.argmax(axis=1)
    return Comparison(shared, images, labels, score(probabilities_a, labels, shared), score(probabilities_b, labels, shared),
                      predicted_a, predicted_b, note)


# -- figures ------------------------------------------------------------------------------------


def confusion_figure(scores: Scores, normalised: bool = True, title: str | None = None):
    """The confusion matrix as a matplotlib Figure (rows: true emotion)."""
    from matplotlib.figure import Figure

    values = scores.normalised() if normalised else scores.confusion
    size = 1.0 + 0.75 * len(scores.classes)
    figure = Figure(figsize=(size + 1, size))
    axes = figure.add_subplot()
    image = axes.imshow(values, cmap="Blues", vmin=0, vmax=1 if normalised else None)
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04)
    ticks = range(len(scores.classes))
    axes.set_xticks(ticks, scores.classes, rotation=45, ha="right")
    axes.set_yticks(ticks, scores.classes)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    threshold = values.max() / 2
    for (row, col), value in np.ndenumerate(values):
        label = f"{value:.2f}" if normalised else str(int(value))
        axes.text(col, row, label, ha="center", va="center", fontsize=8,
                  color="white" if value > threshold else "black")
    axes.set_title(title or f"{'Row-normalised c' if normalised else 'C'}onfusion matrix, accuracy {scores.accuracy:.1%} (n={scores.n})")
    figure.tight_layout()
    return figure


def recall_figure(scores: Scores, title: str | None = None):
    """Per-class recall as a horizontal bar chart."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6, 0.45 * len(scores.classes) + 1))
    axes = figure.add_subplot()
    axes.barh(scores.classes, scores.recall, color="#4c78a8")
    axes.invert_yaxis()
    axes.set_xlim(0, 1)
    axes.axvline(scores.accuracy, color="grey", linestyle="--", linewidth=1, label=f"accuracy {scores.accuracy:.1%}")
    for row, value in enumerate(scores.recall):
        axes.text(min(value + 0.01, 0.9), row, f"{value:.0%}", va="center", fontsize=9)
    axes.set_xlabel("recall")
    axes.legend(loc="upper right", fontsize=8)
    axes.set_title(title or "Recall per emotion")
    figure.tight_layout()
    return figure
