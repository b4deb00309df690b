"""Evaluate: how well a model recognises emotions on labelled faces it never trained on."""

import streamlit as st

import dashboard
from core.data import DatasetError, resolve_data_path
from core.evaluation import Scores, confusion_figure
from core.runs import ModelError

dashboard.page_setup("Evaluate", ":material/analytics:")

st.title(":material/analytics: Evaluate a model")

# -- what to evaluate on what ----------------------------------------------------------------------
models = dashboard.model_choices()
model_column, data_column = st.columns(2)
model_label = model_column.selectbox("Model", list(models), key="model")
model_dir = models[model_label]
data_kind = data_column.segmented_control("Test faces", ["Bundled sample", "Path on the server"],
                                          default="Bundled sample", required=True, key="data_kind")
if data_kind == "Bundled sample":
    data_path = dashboard.SAMPLE_ZIP
    data_column.caption("20 FER2013 test faces per emotion: a quick check, with wide error bars.")
else:
    typed = data_column.text_input("Dataset path (inside data/)", key="data_path",
                                   placeholder="fer2013.zip, fer2013/ or fer2013.csv",
                                   help="The test/ split is scored when there is one, otherwise every image.")
    if not typed.strip():
        st.info("Type the path of a labelled dataset in `data/` (e.g. the Kaggle FER2013 zip).")
        st.stop()
    try:
        data_path = resolve_data_path(typed)
    except DatasetError as error:
        st.error(str(error))
        st.stop()

try:
    dataset = dashboard.dataset_at(data_path)
    evaluation = dashboard.evaluation_of(model_dir, dataset)
except (DatasetError, ModelError, ValueError) as error:  # ValueError: none of the model's emotions in the data
    st.error(str(error))
    st.stop()
for warning in dataset.report.warnings():
    st.caption(f":material/warning: {warning}")

# -- scores ----------------------------------------------------------------------------------------
scores, seed_scores = evaluation.scores, evaluation.seed_scores
split = dataset.evaluation_split() or "all images"
accuracy_column, seed_column, count_column = st.columns(3)
accuracy_column.metric(f"Accuracy, {len(scores.classes)} emotions", dashboard.percent(scores.accuracy))
seed_column.metric("Accuracy on the seed's 5 emotions", dashboard.percent(seed_scores.accuracy if seed_scores else None))
count_column.metric("Faces scored", f"{scores.n:,}", help=f"split: {split}")

normalised = st.toggle("Row-normalised confusion matrix (share of each true emotion)", value=True, key="normalised")


def show_scores(scores: Scores, title: str) -> None:
    table_column, matrix_column = st.columns([2, 3])
    table_column.dataframe(scores.table(), column_config={
        name: st.column_config.NumberColumn(format="%.2f") for name in ("precision", "recall", "f1")})
    matrix_column.pyplot(confusion_figure(scores, normalised=normalised, title=title), width="stretch")


all_tab, seed_tab = st.tabs([f"The model's {len(scores.classes)} emotions", "The seed's 5 emotions"])
with all_tab:
    show_scores(scores, f"{model_dir.name}: accuracy {scores.accuracy:.1%} (n={scores.n})")
with seed_tab:
    if seed_scores is None:
        st.info("This model does not know all five of the seed's emotions.")
    else:
        st.caption("Only faces whose true emotion is one of the five; the prediction is the likeliest of the five.")
        show_scores(seed_scores, f"5 emotions: accuracy {seed_scores.accuracy:.1%} (n={seed_scores.n})")

# -- mistakes --------------------------------------------------------------------------------------
st.subheader("Misclassified faces")
mistakes = evaluation.misclassified(limit=24)
if not mistakes:
    st.success("No mistakes on these faces.")
else:
    st.caption(f"A random {len(mistakes)} of the model's wrong answers: true emotion → predicted (confidence).")
    grid = st.columns(8)
    for index, (face, true, predicted, confidence) in enumerate(mistakes):
        grid[index % 8].image(face, caption=f"{true} → {predicted} ({confidence:.0%})", width="stretch")
