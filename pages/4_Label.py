"""Label: every face in a short video or a zip of photos, as a timeline or a table, and a CSV to keep."""

import base64
import hashlib
import io
import random
import tempfile
import zipfile
from pathlib import Path

import altair as alt
import pandas as pd
import streamlit as st
from PIL import Image

import dashboard
from core.data import read_member
from core.images import ImageError, decode_image
from core.labelling import LabelError, label, plan_input, read_rows
from core.runs import ModelError, active_model_dir
from core.video import VIDEO_EXTENSIONS
from core.voices import NoVoiceError, choose_voice

MAX_VIDEO_S = 300  # longer videos belong to scripts/label.py: the page would be busy for minutes
MAX_THUMBNAILS = 100  # faces shown with their picture; the CSV has them all
THUMBNAIL_SIDE = 64

dashboard.page_setup("Label", ":material/label:")
st.title(":material/label: Label")
st.caption("A short video or a zip of photos: every face, its emotion, and a CSV with one row per face. "
           "For long videos, big folders or a Ray cluster, use `python scripts/label.py` (see the README).")

upload = st.file_uploader("A video (mp4, webm, mov, avi) or a .zip of photos", key="label_upload",
                          type=[suffix.lstrip(".") for suffix in sorted(VIDEO_EXTENSIONS)] + ["zip"])
if upload is None:
    st.info("No video or zip yet.", icon=":material/upload_file:")
    st.stop()


def run_labelling(name: str, data: bytes) -> dict:
    """Label the upload from a scratch folder; the result is kept per upload, so a rerun does not label again."""
    with tempfile.TemporaryDirectory(prefix="emovoice-label-") as scratch:
        source = Path(scratch) / Path(name).name
        source.write_bytes(data)
        try:
            plan = plan_input(source)
        except LabelError as error:  # the message names the upload, not the scratch folder
            raise LabelError(str(error).replace(f"{scratch}/", "")) from None
        if plan.video and plan.video.info.duration_s > MAX_VIDEO_S:
            raise LabelError(f"the video lasts {plan.video.info.duration_s / 60:.0f} minutes; this page labels up to "
                             f"{MAX_VIDEO_S // 60}. Use: python scripts/label.py {name} --out labels.csv")
        bar = st.progress(0.0, text="Labelling…")
        summary = label(source, Path(scratch) / "labels.csv", classifier=dashboard.classifier_for(active_model_dir()),
                        progress=lambda done, total: bar.progress(done / total if total else 0.0,
                                                                  text=f"Labelling… {done}/{total}"))
        bar.empty()
        # Sources named after the upload (photos by their path in the zip), not after the scratch folder.
        csv_text = (Path(scratch) / "labels.csv").read_text().replace(f"{source}/", "").replace(str(source), name)
        rows = read_rows(csv_text)
        thumbnails = {} if plan.video else thumbnails_of(source, rows)
    return {"name": name, "video": plan.video is not None, "csv": csv_text, "rows": rows, "summary": summary,
            "thumbnails": thumbnails}


def thumbnails_of(archive_path: Path, rows: list[dict]) -> dict[int, str]:
    """Row index -> a small JPEG of that face as a data URI, for the first MAX_THUMBNAILS faces."""
    thumbnails = {}
    with zipfile.ZipFile(archive_path) as archive:
        for index, row in enumerate(rows):
            if len(thumbnails) == MAX_THUMBNAILS:
                break
            if not row["emotion"]:
                continue
            try:
                image = decode_image(read_member(archive, row["source"]))
            except (ImageError, KeyError, zipfile.BadZipFile, RuntimeError):
                continue
            x, y, width, height = (int(row[k]) for k in ("x", "y", "width", "height"))
            face = Image.fromarray(image[max(0, y) : y + height, max(0, x) : x + width])
            face.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE))
            jpeg = io.BytesIO()
            face.convert("RGB").save(jpeg, format="JPEG")
            thumbnails[index] = "data:image/jpeg;base64," + base64.b64encode(jpeg.getvalue()).decode()
    return thumbnails


data = upload.getvalue()
key = hashlib.sha256(data).hexdigest() + upload.name
if st.session_state.get("label_result", {}).get("key") != key:
    try:
        st.session_state.label_result = {"key": key, **run_labelling(upload.name, data)}
    except LabelError as error:  # an empty zip, a damaged video, an unknown codec: one line, never a traceback
        st.error(f"That file cannot be labelled: {error}", icon=":material/broken_image:")
        st.stop()
    except ModelError as error:
        st.error(f"The active model cannot be loaded: {error}")
        st.stop()
result = st.session_state.label_result
summary, rows = result["summary"], result["rows"]
table = pd.DataFrame(rows)
csv_name = f"{Path(result['name']).stem}-labels.csv"

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
if result["video"] and len(faces):
    timeline = faces.assign(time_s=faces["time_s"].astype(float), face="face " + faces["face"],
                            confidence=[float(row[row["emotion"]]) for _, row in faces.iterrows()])
    chart = alt.Chart(timeline).mark_circle(size=60).encode(
        x=alt.X("time_s:Q", title="time (s)"),
        y=alt.Y("emotion:N", sort=list(summary.classes), title=None),
        color=alt.Color("face:N", title="face"),
        opacity=alt.Opacity("confidence:Q", legend=None),
        tooltip=["face", "time_s", "emotion", "confidence"])
    st.altair_chart(chart, width="stretch")
elif not result["video"] and len(table):
    counts = pd.DataFrame({"emotion": list(summary.classes), "faces": [summary.emotions[e] for e in summary.classes]})
    st.bar_chart(counts, x="emotion", y="faces", horizontal=True)
    shown = table.assign(thumbnail=[result["thumbnails"].get(index) for index in range(len(table))])
    st.dataframe(shown[["thumbnail", "source", "face", "emotion", *summary.classes]], hide_index=True,
                 column_config={"thumbnail": st.column_config.ImageColumn("face", width="small"),
                                "face": st.column_config.TextColumn("face no.")},
                 width="stretch")

st.download_button("Download the CSV", result["csv"], file_name=csv_name,
                   mime="text/csv", icon=":material/download:", key="label_csv")
