"""Evaluate: how well a model recognises emotions on labelled faces it never trained on."""

import streamlit as st

import numpy as np

import dashboard
from core.calibration import BINS, calibration_report, reliability_figure, undo_temperature
from core.data import DatasetError, resolve_data_path
from core.evaluation import Scores, compare, confusion_figure, inference_of
from core.explain import overlay
from core.runs import ModelError

NO_COMPARISON = "No comparison"
GRID = 8  # faces per row in the grids of faces


st.title(":material/analytics: Evaluate a model")

# -- what to evaluate on what ----------------------------------------------------------------------
models = dashboard.model_choices()
model_column, data_column = st.columns(2)
model_label = model_column.selectbox("Model", list(models), key="model")
model_dir = models[model_label]
other_label = model_column.selectbox("Compare with", [NO_COMPARISON, *(m for m in models if m != model_label)],
                                     key="compare", help="A second model, scored on the same faces.")
data_kind = data_column.segmented_control("Test faces", ["Bundled sample", "Path on the server"],
                                          default="Bundled sample", required=True, key="data_kind")
if data_kind == "Bundled sample":
    data_path = dashboard.SAMPLE_ZIP
    data_column.caption("20 FER2013 test faces per emotion, with their FER+ votes: a quick check, with wide error bars.")
else:
    typed = data_column.text_input("Dataset path (inside data/)", key="data_path",
                                   placeholder="fer2013.zip, fer2013/ or fer2013.csv",
                                   help="The test/ split is scored when there is one, otherwise every image. "
                                        "FER+ votes beside it (ferplus.csv, or fer2013new.csv beside fer2013.csv) "
                                        "are scored too.")
    if not typed.strip():
        st.info("Type the path of a labelled dataset in `data/` (e.g. the Kaggle FER2013 zip). "
                "Datasets reach `data/` through the server's owner.")
        st.stop()
    try:
        data_path = resolve_data_path(typed)
    except DatasetError as error:
        st.error(str(error))
        st.stop()

try:
    dataset = dashboard.voted_dataset_at(data_path)
    evaluation = dashboard.evaluation_of(model_dir, dataset)
    classifier = dashboard.classifier_for(model_dir)
except (DatasetError, ModelError, ValueError, OSError) as error:  # ValueError: none of the model's emotions, bad votes
    st.error(str(error))
    st.stop()
for warning in dataset.report.warnings():
    st.caption(f":material/warning: {warning}")

# -- scores ----------------------------------------------------------------------------------------
scores, seed_scores, ferplus_scores = evaluation.scores, evaluation.seed_scores, evaluation.ferplus_scores
split = dataset.evaluation_split() or "all images"
ferplus_column, accuracy_column, seed_column, count_column = st.columns(4)
ferplus_column.metric("Agrees with people (FER+)", dashboard.percent(ferplus_scores.accuracy if ferplus_scores else None),
                      help="The majority of ten taggers' votes per face (FER+); ties and unknown, not-a-face or "
                           "contempt majorities left out" + (f": {ferplus_scores.n:,} faces." if ferplus_scores else
                                                             ". These faces have no votes."))
accuracy_column.metric(f"Accuracy, {len(scores.classes)} emotions", dashboard.percent(scores.accuracy),
                       help="Against the dataset's own label: one tagger per face for FER2013.")
seed_column.metric("Accuracy on the seed's 5 emotions", dashboard.percent(seed_scores.accuracy if seed_scores else None))
count_column.metric("Faces scored", f"{scores.n:,}", help=f"split: {split}")
st.caption(f"Inference: {inference_of(classifier)}.")

normalised = st.toggle("Row-normalised confusion matrix (share of each true emotion)", value=True, key="normalised")


def show_scores(scores: Scores, title: str) -> None:
    table_column, matrix_column = st.columns([2, 3])
    table_column.dataframe(scores.table(), column_config={
        name: st.column_config.NumberColumn(format="%.2f") for name in ("precision", "recall", "f1")})
    matrix_column.pyplot(confusion_figure(scores, normalised=normalised, title=title), width="stretch")


all_tab, ferplus_tab, seed_tab = st.tabs([f"The model's {len(scores.classes)} emotions", "Against the FER+ majority",
                                          "The seed's 5 emotions"])
with all_tab:
    show_scores(scores, f"{model_dir.name}: accuracy {scores.accuracy:.1%} (n={scores.n})")
with ferplus_tab:
    if ferplus_scores is None:
        st.info("These faces have no FER+ votes. Put FER+'s fer2013new.csv beside fer2013.csv, or a ferplus.csv "
                "(image path, then FER+'s ten vote columns) beside the dataset.")
    else:
        st.caption("Rows: the emotion most of the ten taggers chose.")
        show_scores(ferplus_scores, f"FER+ majority: agreement {ferplus_scores.accuracy:.1%} (n={ferplus_scores.n})")
with seed_tab:
    if seed_scores is None:
        st.info("This model does not know all five of the seed's emotions.")
    else:
        st.caption("Only faces whose true emotion is one of the five; the prediction is the likeliest of the five.")
        show_scores(seed_scores, f"5 emotions: accuracy {seed_scores.accuracy:.1%} (n={seed_scores.n})")

# -- calibration ---------------------------------------------------------------------------------
st.subheader("How far to trust its probabilities")
# The classifier's probabilities are calibrated; the "before" figures need them as the net gave them.
temperature = classifier.temperature
calibrated, calibration_labels = evaluation.calibration_faces()
raw = undo_temperature(calibrated, temperature)
calibration = calibration_report(raw, calibration_labels, temperature)
figure_column, text_column = st.columns([3, 2])
figure_column.pyplot(reliability_figure(raw, calibration_labels, temperature), width="stretch")
before_column, after_column = text_column.columns(2)
before_column.metric("ECE before", f"{calibration['ece_before']:.3f}")
after_column.metric("ECE after", f"{calibration['ece_after']:.3f}",
                    delta=f"{calibration['ece_after'] - calibration['ece_before']:+.3f}", delta_color="inverse")
fitted = (f"The model's temperature, T = {temperature:g}, was fitted on its validation faces; it changes no answer, "
          "only the probabilities, which choose a strong or a normal voice on Try it."
          if classifier.metadata.calibration is not None else
          "This model has no fitted temperature yet: `scripts/calibrate.py` fits one.")
fitted_on = classifier.metadata.calibration or {}
on_validation = (f" On its {fitted_on['n']:,} validation faces the fit took it from {fitted_on['ece_before']:.3f} to "
                 f"{fitted_on['ece_after']:.3f}." if {"n", "ece_before", "ece_after"} <= set(fitted_on) else "")
text_column.caption("Expected calibration error: the gap between how sure the model says it is and how often it is "
                    f"right, averaged over {BINS} confidence bins"
                    + (", right meaning the taggers' majority (FER+)" if evaluation.votes is not None else "")
                    + f". {fitted}{on_validation}"
                    + (f" With {scores.n:,} faces the bins are noisy: the error can rise after calibration here "
                       "by chance alone; the validation figure is the one to trust." if scores.n < 1000 else ""))

# -- mistakes --------------------------------------------------------------------------------------
st.subheader("Misclassified faces")
mistakes = evaluation.misclassified(limit=24)
if not mistakes:
    st.success("No mistakes on these faces.")
else:
    explain = st.toggle("Show what the model looked at", key="explain_mistakes",
                        help="A Grad-CAM heatmap over each face: red where the face pushed the model "
                             "towards its wrong answer.")
    st.caption(f"A random {len(mistakes)} of the model's wrong answers: true emotion → predicted (confidence)."
               + (" Red: what made the model say the predicted emotion." if explain else ""))
    faces = np.stack([face for face, *_ in mistakes])
    if explain:
        faces = [overlay(face, heat, side=96) for face, heat in
                 zip(faces, dashboard.heatmaps_of(faces, [predicted for _, _, predicted, _ in mistakes], model_dir))]
    grid = st.columns(GRID)
    for index, ((_, true, predicted, confidence), face) in enumerate(zip(mistakes, faces)):
        grid[index % GRID].image(face, caption=f"{true} → {predicted} ({confidence:.0%})", width="stretch")

# -- side by side ----------------------------------------------------------------------------------
if other_label == NO_COMPARISON:
    st.stop()
other_dir = models[other_label]
st.header(f"Side by side: A = {model_dir.name}, B = {other_dir.name}", divider="gray")
try:
    comparison = compare(evaluation, dashboard.evaluation_of(other_dir, dataset))
except (ModelError, ValueError) as error:
    st.error(str(error))
    st.stop()
st.caption(comparison.note)
a_column, b_column, disagree_column = st.columns(3)
a_column.metric(f"Accuracy A, {model_dir.name}", dashboard.percent(comparison.a.accuracy))
b_column.metric(f"Accuracy B, {other_dir.name}", dashboard.percent(comparison.b.accuracy),
                delta=f"{comparison.b.accuracy - comparison.a.accuracy:+.1%} vs A")
disagree_column.metric("Faces they answer differently", f"{len(comparison.disagreements):,} of {comparison.a.n:,}")
st.dataframe(comparison.table(), column_config={
    name: st.column_config.NumberColumn(format="%+.2f" if "B-A" in name else "%.2f")
    for name in comparison.table().columns if name != "support"})
left, right = st.columns(2)
left.pyplot(confusion_figure(comparison.a, normalised=normalised, title=f"A: {model_dir.name}, "
                             f"accuracy {comparison.a.accuracy:.1%}"), width="stretch")
right.pyplot(confusion_figure(comparison.b, normalised=normalised, title=f"B: {other_dir.name}, "
                              f"accuracy {comparison.b.accuracy:.1%}"), width="stretch")
disagreeing = comparison.disagreeing_faces(limit=24)
st.subheader("Faces they disagree on")
if not disagreeing:
    st.success("The two models give the same answer on every face.")
else:
    st.caption(f"The first {len(disagreeing)}: true emotion · A's answer · B's answer.")
    grid = st.columns(GRID)
    for index, (face, true, answer_a, answer_b) in enumerate(disagreeing):
        grid[index % GRID].image(face, caption=f"{true} · A: {answer_a} · B: {answer_b}", width="stretch")
