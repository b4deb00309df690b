"""Evaluate: how well a model recognises emotions on labelled faces it never trained on."""

import streamlit as st

import dashboard
from core.data import DatasetError
from core.runs import ModelError
from dashboard import evaluate_page

NO_COMPARISON = "No comparison"

st.title(":material/analytics: Evaluate a model")

models = dashboard.model_choices()
model_column, data_column = st.columns(2)
shown = dashboard.marking_active(models)
model_label = model_column.selectbox("Model", list(models), key="model", format_func=shown)
model_dir = models[model_label]
other_label = model_column.selectbox("Compare with", [NO_COMPARISON, *(m for m in models if m != model_label)],
                                     key="compare", format_func=shown, help="A second model, scored on the same faces.")
data_path = evaluate_page.chosen_test_faces(data_column)
if data_path is None:
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

evaluate_page.show_headline(evaluation, dataset, classifier)
normalised = st.toggle("Row-normalised confusion matrix (share of each true emotion)", value=True, key="normalised")
evaluate_page.show_score_tabs(evaluation, model_dir.name, normalised)

st.subheader("How far to trust its probabilities")
evaluate_page.show_calibration(evaluation, classifier)

st.subheader("Misclassified faces")
evaluate_page.show_mistakes(evaluation, model_dir)

if other_label != NO_COMPARISON:
    evaluate_page.show_side_by_side(evaluation, model_dir, models[other_label], dataset, normalised)
