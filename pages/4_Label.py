"""Label: every face in a short video or a zip of photos, as a timeline or a table, and a CSV to keep."""

import base64
import hashlib
import random
from pathlib import Path

import altair as alt
import pandas as pd
import streamlit as st

import dashboard
from core.label_uploads import UPLOAD_SUFFIXES, label_upload
from core.labelling import LabelError
from core.runs import ModelError, active_model_dir
from core.voices import NoVoiceError, choose_voice

st.title(":material/label: Label")
st.caption("A short video or a zip of photos: every face, its emotion, and a CSV with one row per face. "
           "For long videos, big folders or a Ray cluster, use `python scripts/label.py` (see docs/labelling.md).")

upload = st.file_uploader("A video (mp4, webm, mov, avi) or a .zip of photos", key="label_upload",
                          type=[suffix.lstrip(".") for suffix in UPLOAD_SUFFIXES])
if upload is None:
    st.info("No video or zip yet.", icon=":material/upload_file:")
    st.stop()

data = upload.getvalue()
key = hashlib.sha256(data).hexdigest() + upload.name
if st.session_state.get("label_result", {}).get("key") != key:  # a rerun does not label the same upload again
    bar = st.progress(0.0, text="Labelling…")
    try:
        labelled = label_upload(upload.name, data, dashboard.classifier_for(active_model_dir()),
                                progress=lambda done, total: bar.progress(done / total if total else 0.0,
                                                                          text=f"Labelling… {done}/{total}"))
    except LabelError as error:  # an empty zip, a damaged video, an unknown codec: one line, never a traceback
        bar.empty()
        st.error(f"That file cannot be labelled: {error}", icon=":material/broken_image:")
        st.stop()
    except ModelError as error:
        bar.empty()
        st.error(f"The active model cannot be loaded: {error}")
        st.stop()
    bar.empty()
    st.session_state.label_result = {"key": key, "labelled": labelled}
result = st.session_state.label_result["labelled"]
summary = result.summary
table = pd.DataFrame(result.rows)
csv_name = f"{Path(result.name).stem}-labels.csv"

for line in summary.lines():
    if line not in summary.notes:
        st.write(line)
for note in summary.notes:
    st.warning(note, icon=":material/warning:")

if summary.faces:
    dominant = summary.emotions.most_common(1)[0][0]
    st.subheader(f"{dashboard.ICON[dominant]} Dominant emotion: {dominant} "
                 f"({summary.emotions[dominant]} of {summary.faces} faces)")
    try:
        clip = choose_voice(dashboard.voice_bank(), dominant, random.Random())
        st.audio(str(clip.path), format=clip.mime_type)
        st.caption(f":material/volume_up: A **{clip.emotion}** voice · {clip.speaker or 'unknown speaker'}")
    except NoVoiceError as error:
        st.warning(str(error))

faces = table[table["emotion"] != ""] if len(table) else table
if result.video and len(faces):
    timeline = faces.assign(time_s=faces["time_s"].astype(float), face="face " + faces["face"],
                            confidence=[float(row[row["emotion"]]) for _, row in faces.iterrows()])
    chart = alt.Chart(timeline).mark_circle(size=60).encode(
        x=alt.X("time_s:Q", title="time (s)"),
        y=alt.Y("emotion:N", sort=list(summary.classes), title=None),
        color=alt.Color("face:N", title="face"),
        opacity=alt.Opacity("confidence:Q", legend=None),
        tooltip=["face", "time_s", "emotion", "confidence"])
    st.altair_chart(chart, width="stretch")
elif not result.video and len(table):
    counts = pd.DataFrame({"emotion": list(summary.classes), "faces": [summary.emotions[e] for e in summary.classes]})
    st.bar_chart(counts, x="emotion", y="faces", horizontal=True)
    pictures = {row: "data:image/jpeg;base64," + base64.b64encode(jpeg).decode()
                for row, jpeg in result.thumbnails.items()}
    shown = table.assign(thumbnail=[pictures.get(index) for index in range(len(table))])
    st.dataframe(shown[["thumbnail", "source", "face", "emotion", *summary.classes]], hide_index=True,
                 column_config={"thumbnail": st.column_config.ImageColumn("face", width="small"),
                                "face": st.column_config.TextColumn("face no.")},
                 width="stretch")

st.download_button("Download the CSV", result.csv, file_name=csv_name,
                   mime="text/csv", icon=":material/download:", key="label_csv")
