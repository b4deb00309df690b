"""emovoice dashboard, Home: what the app does, the active model, the voice bank, the way in."""

import pandas as pd
import streamlit as st

import dashboard
from core.emotions import EMOTIONS

dashboard.page_setup("Home", ":material/theater_comedy:")

st.title(":material/theater_comedy: emovoice")
st.markdown(
    "Show emovoice a face and it **recognises the emotion** — angry, disgust, fear, happy, sad, "
    "surprise or neutral — then **plays a recorded voice** speaking with that same emotion, "
    "drawn at random from its voice bank."
)

st.page_link("pages/3_Try_It.py", label="**Try it** with your webcam or a photo", icon=":material/photo_camera:")
st.page_link("pages/2_Evaluate.py", label="**Evaluate** a model on labelled faces", icon=":material/analytics:")
st.page_link("pages/1_Train.py", label="**Train** a new model in the background", icon=":material/model_training:")

st.header("Active model", divider="gray")
model_dir, metadata = dashboard.active_metadata()
if metadata is None:
    st.error(f"The active model in {model_dir} cannot be read: restore models/emovoice-vgg "
             "or make another one active on the Train page.")
else:
    st.caption(f"`{model_dir.name}` — the model Try it uses. Make another one active on the Train page.")
    facts = dashboard.model_facts(metadata)
    architecture, emotions, accuracy = st.columns(3)
    architecture.metric("Architecture", facts["Architecture"])
    emotions.metric("Emotions", len(metadata["classes"]))
    accuracy.metric("Test accuracy", dashboard.percent(dashboard.test_metrics(metadata).get("accuracy")))
    st.caption(f"Emotions: {facts['Emotions']} · trained {facts['Trained']} on {facts['Training data']}"
               f" · test accuracy {facts['Test accuracy']} · 5-emotion accuracy {facts['5-emotion accuracy']}")

st.header("Voice bank", divider="gray")
bank = dashboard.voice_bank()
counts = bank.counts()
st.caption(f"{sum(counts.values())} clips in `{bank.folder.name}/`; each emotion needs at least one.")
voices = pd.DataFrame({"emotion": list(EMOTIONS), "clips": [counts[e] for e in EMOTIONS]})
st.dataframe(voices, hide_index=True, width="content")
for emotion in (e for e in EMOTIONS if counts[e] == 0):
    st.warning(f"No voice for **{emotion}**: add clips under `{bank.folder / emotion}/`.")
for warning in bank.warnings:
    st.caption(f":material/warning: {warning}")
