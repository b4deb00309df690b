"""The Label page's parts: the upload labelled once, its summary and voice, and the timeline or the table."""

from __future__ import annotations

import base64
import hashlib
import random
from dataclasses import dataclass

import altair as alt
import pandas as pd
import streamlit as st

import dashboard
from core.label_uploads import LabelledUpload, label_upload
from core.labelling import LabelError, Summary
from core.runs import ModelError, active_model_dir
from core.voices import NoVoiceError, choose_voice


@dataclass(frozen=True)
class _Labelled:
    """An upload's labels, kept across reruns: `upload` (its SHA-256 and name, and the model's folder and
    version) says which upload, labelled by which model, they are for."""

    upload: str
    result: LabelledUpload


def labelled(name: str, data: bytes) -> LabelledUpload:
    """The upload's labels: worked out once per upload, since a rerun (any widget) would label it again.
    A file that cannot be labelled, or a model that cannot load, ends the page with one red line."""
    model_dir = active_model_dir()  # the operator may change it between two visits: labels of the model now
    upload = f"{hashlib.sha256(data).hexdigest()}:{name}:{model_dir}:{dashboard.model_stamp(model_dir)}"
    kept = st.session_state.get("label_result")
    if isinstance(kept, _Labelled) and kept.upload == upload:
        return kept.result
    bar = st.progress(0.0, text="Labelling…")
    try:
        result = label_upload(name, data, dashboard.classifier_for(model_dir),
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
    st.session_state.label_result = _Labelled(upload, result)
    return result


def show_summary(summary: Summary) -> None:
    """What was read (notes as warnings), then the dominant emotion with a voice of it."""
    for line in summary.lines():
        if line not in summary.notes:
            st.write(line)
    for note in summary.notes:
        st.warning(note, icon=":material/warning:")
    if not summary.faces:
        return
    dominant = summary.emotions.most_common(1)[0][0]
    st.subheader(f"{dashboard.ICON[dominant]} Dominant emotion: {dominant} "
                 f"({summary.emotions[dominant]} of {summary.faces} faces)")
    try:
        clip = choose_voice(dashboard.voice_bank(), dominant, random.Random())
    except NoVoiceError as error:
        st.warning(str(error))
        return
    st.audio(str(clip.path), format=clip.mime_type)
    st.caption(f":material/volume_up: A **{clip.emotion}** voice · {clip.speaker or 'unknown speaker'}")


def show_timeline(result: LabelledUpload) -> None:
    """A video's faces over time: one dot per face read, fainter where the model was less sure."""
    table, summary = pd.DataFrame(result.rows), result.summary
    faces = table[table["emotion"] != ""] if len(table) else table
    if not len(faces):
        return
    timeline = faces.assign(time_s=faces["time_s"].astype(float), face="face " + faces["face"],
                            confidence=[float(row[row["emotion"]]) for _, row in faces.iterrows()])
    chart = alt.Chart(timeline).mark_circle(size=60).encode(
        x=alt.X("time_s:Q", title="time (s)"),
        y=alt.Y("emotion:N", sort=list(summary.classes), title=None),
        color=alt.Color("face:N", title="face"),
        opacity=alt.Opacity("confidence:Q", legend=None),
        tooltip=["face", "time_s", "emotion", "confidence"])
    st.altair_chart(chart, width="stretch")


def show_table(result: LabelledUpload) -> None:
    """Photos' faces: how many of each emotion, then one row per face with its thumbnail."""
    table, summary = pd.DataFrame(result.rows), result.summary
    if not len(table):
        return
    counts = pd.DataFrame({"emotion": list(summary.classes), "faces": [summary.emotions[e] for e in summary.classes]})
    st.bar_chart(counts, x="emotion", y="faces", horizontal=True)
    pictures = {row: "data:image/jpeg;base64," + base64.b64encode(jpeg).decode()
                for row, jpeg in result.thumbnails.items()}
    shown = table.assign(thumbnail=[pictures.get(index) for index in range(len(table))])
    st.dataframe(shown[["thumbnail", "source", "face", "emotion", *summary.classes]], hide_index=True,
                 column_config={"thumbnail": st.column_config.ImageColumn("face", width="small"),
                                "face": st.column_config.TextColumn("face no.")},
                 width="stretch")
