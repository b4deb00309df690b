"""The Evaluate page's parts: the test faces, the scores, calibration, mistakes, and two models side by side.

Every figure comes from core.evaluation and core.calibration; these functions only lay them out.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import streamlit as st

import dashboard
from core.calibration import BINS, calibration_report, reliability_figure, undo_temperature
from core.data import Dataset
from core.evaluation import Evaluation, Scores, compare, confusion_figure, inference_of
from core.explain import overlay
from core.recognise import Classifier
from core.runs import ModelError

GRID = 8  # faces per row in the grids of faces
SHOWN = 24  # faces in each grid


def chosen_test_faces(column) -> Path | None:
    """The dataset to score: the bundled sample, or a path typed inside data/; None (with the reason) until one."""
    kind = column.segmented_control("Test faces", ["Bundled sample", "Path on the server"],
                                    default="Bundled sample", required=True, key="data_kind")
    if kind == "Bundled sample":
        column.caption("20 FER2013 test faces per emotion, with their FER+ votes: a quick check, with wide error bars.")
        return dashboard.SAMPLE_ZIP
    typed = column.text_input("Dataset path (inside data/)", key="data_path",
                              placeholder="fer2013.zip, fer2013/ or fer2013.csv",
                              help="The test/ split is scored when there is one, otherwise every image. "
                                   "FER+ votes beside it (ferplus.csv, or fer2013new.csv beside fer2013.csv) "
                                   "are scored too.")
    if not typed.strip():
        st.info("Type the path of a labelled dataset in `data/` (e.g. the Kaggle FER2013 zip). "
                "Datasets reach `data/` through the server's owner.")
    return dashboard.typed_data_path(typed)


def show_headline(evaluation: Evaluation, dataset: Dataset, classifier: Classifier) -> None:
    """Agreement with people, accuracy on the model's emotions and on the seed's five, and how many faces."""
    scores, seed_scores, ferplus_scores = evaluation.scores, evaluation.seed_scores, evaluation.ferplus_scores
    ferplus_column, accuracy_column, seed_column, count_column = st.columns(4)
    ferplus_column.metric(
        "Agrees with people (FER+)", dashboard.percent(ferplus_scores.accuracy if ferplus_scores else None),
        help="The majority of ten taggers' votes per face (FER+); ties and unknown, not-a-face or contempt "
             "majorities left out" + (f": {ferplus_scores.n:,} faces." if ferplus_scores else ". These faces have no votes."))
    accuracy_column.metric(f"Accuracy, {len(scores.classes)} emotions", dashboard.percent(scores.accuracy),
                           help="Against the dataset's own label: one tagger per face for FER2013.")
    seed_column.metric("Accuracy on the seed's 5 emotions",
                       dashboard.percent(seed_scores.accuracy if seed_scores else None))
    count_column.metric("Faces scored", f"{scores.n:,}", help=f"split: {dataset.evaluation_split() or 'all images'}")
    st.caption(f"Inference: {inference_of(classifier)}.")


def show_scores(scores: Scores, title: str, normalised: bool) -> None:
    table_column, matrix_column = st.columns([2, 3])
    table_column.dataframe(scores.table(), column_config={
        name: st.column_config.NumberColumn(format="%.2f") for name in ("precision", "recall", "f1")})
    matrix_column.pyplot(confusion_figure(scores, normalised=normalised, title=title), width="stretch")


def show_score_tabs(evaluation: Evaluation, model_name: str, normalised: bool) -> None:
    """Per-emotion scores and the confusion matrix: the model's emotions, the FER+ majority, the seed's five."""
    scores, ferplus_scores, seed_scores = evaluation.scores, evaluation.ferplus_scores, evaluation.seed_scores
    all_tab, ferplus_tab, seed_tab = st.tabs([f"The model's {len(scores.classes)} emotions",
                                              "Against the FER+ majority", "The seed's 5 emotions"])
    with all_tab:
        show_scores(scores, f"{model_name}: accuracy {scores.accuracy:.1%} (n={scores.n})", normalised)
    with ferplus_tab:
        if ferplus_scores is None:
            st.info("These faces have no FER+ votes. Put FER+'s fer2013new.csv beside fer2013.csv, or a ferplus.csv "
                    "(image path, then FER+'s ten vote columns) beside the dataset.")
        else:
            st.caption("Rows: the emotion most of the ten taggers chose.")
            show_scores(ferplus_scores, f"FER+ majority: agreement {ferplus_scores.accuracy:.1%} "
                                        f"(n={ferplus_scores.n})", normalised)
    with seed_tab:
        if seed_scores is None:
            st.info("This model does not know all five of the seed's emotions.")
        else:
            st.caption("Only faces whose true emotion is one of the five; the prediction is the likeliest of the five.")
            show_scores(seed_scores, f"5 emotions: accuracy {seed_scores.accuracy:.1%} (n={seed_scores.n})", normalised)


def show_calibration(evaluation: Evaluation, classifier: Classifier) -> None:
    """The reliability diagram and the calibration error on these faces, before and after the model's temperature."""
    # The classifier's probabilities are calibrated; the "before" figures need them as the net gave them.
    temperature = classifier.temperature
    calibrated, labels = evaluation.calibration_faces()
    raw = undo_temperature(calibrated, temperature)
    here = calibration_report(raw, labels, temperature)
    figure_column, text_column = st.columns([3, 2])
    figure_column.pyplot(reliability_figure(raw, labels, temperature), width="stretch")
    before_column, after_column = text_column.columns(2)
    before_column.metric("ECE before", f"{here.ece_before:.3f}")
    after_column.metric("ECE after", f"{here.ece_after:.3f}", delta=f"{here.ece_after - here.ece_before:+.3f}",
                        delta_color="inverse")
    fitted = classifier.metadata.calibration
    if fitted is None:
        how = "This model has no fitted temperature yet: `scripts/calibrate.py` fits one."
    else:
        how = (f"The model's temperature, T = {temperature:g}, was fitted on its validation faces; it changes no "
               "answer, only the probabilities, which choose a strong or a normal voice on Try it. On its "
               f"{fitted.n:,} validation faces the fit took it from {fitted.ece_before:.3f} to {fitted.ece_after:.3f}.")
    text_column.caption("Expected calibration error: the gap between how sure the model says it is and how often it "
                        f"is right, averaged over {BINS} confidence bins"
                        + (", right meaning the taggers' majority (FER+)" if evaluation.votes is not None else "")
                        + f". {how}"
                        + (f" With {here.n:,} faces the bins are noisy: the error can rise after calibration here "
                           "by chance alone; the validation figure is the one to trust." if here.n < 1000 else ""))


def show_grid(faces, captions: list[str]) -> None:
    grid = st.columns(GRID)
    for index, (face, caption) in enumerate(zip(faces, captions)):
        grid[index % GRID].image(face, caption=caption, width="stretch")


def show_mistakes(evaluation: Evaluation, model_dir: Path) -> None:
    """A random sample of wrong answers, optionally with what the model looked at (Grad-CAM)."""
    mistakes = evaluation.misclassified(limit=SHOWN)
    if not mistakes:
        st.success("No mistakes on these faces.")
        return
    explain = st.toggle("Show what the model looked at", key="explain_mistakes",
                        help="A Grad-CAM heatmap over each face: red where the face pushed the model "
                             "towards its wrong answer.")
    st.caption(f"A random {len(mistakes)} of the model's wrong answers: true emotion → predicted (confidence)."
               + (" Red: what made the model say the predicted emotion." if explain else ""))
    faces = np.stack([face for face, *_ in mistakes])
    if explain:
        heat = dashboard.heatmaps_of(faces, [predicted for _, _, predicted, _ in mistakes], model_dir)
        faces = [overlay(face, face_heat, side=96) for face, face_heat in zip(faces, heat)]
    show_grid(faces, [f"{true} → {predicted} ({confidence:.0%})" for _, true, predicted, confidence in mistakes])


def show_side_by_side(evaluation: Evaluation, model_dir: Path, other_dir: Path, dataset: Dataset,
                      normalised: bool) -> None:
    """Two models on the same faces: accuracy, per-emotion differences, both matrices, the faces they split on."""
    st.header(f"Side by side: A = {model_dir.name}, B = {other_dir.name}", divider="gray")
    try:
        comparison = compare(evaluation, dashboard.evaluation_of(other_dir, dataset))
    except (ModelError, ValueError) as error:
        st.error(str(error))
        return
    st.caption(comparison.note)
    a_column, b_column, disagree_column = st.columns(3)
    a_column.metric(f"Accuracy A, {model_dir.name}", dashboard.percent(comparison.a.accuracy))
    b_column.metric(f"Accuracy B, {other_dir.name}", dashboard.percent(comparison.b.accuracy),
                    delta=f"{comparison.b.accuracy - comparison.a.accuracy:+.1%} vs A")
    disagree_column.metric("Faces they answer differently", f"{len(comparison.disagreements):,} of {comparison.a.n:,}")
    table = comparison.table()
    st.dataframe(table, column_config={name: st.column_config.NumberColumn(format="%+.2f" if "B-A" in name else "%.2f")
                                       for name in table.columns if name != "support"})
    for column, (letter, scores, folder) in zip(st.columns(2), (("A", comparison.a, model_dir),
                                                                 ("B", comparison.b, other_dir))):
        column.pyplot(confusion_figure(scores, normalised=normalised,
                                       title=f"{letter}: {folder.name}, accuracy {scores.accuracy:.1%}"), width="stretch")
    disagreeing = comparison.disagreeing_faces(limit=SHOWN)
    st.subheader("Faces they disagree on")
    if not disagreeing:
        st.success("The two models give the same answer on every face.")
        return
    st.caption(f"The first {len(disagreeing)}: true emotion · A's answer · B's answer.")
    show_grid([face for face, *_ in disagreeing], [f"{true} · A: {a} · B: {b}" for _, true, a, b in disagreeing])
