"""Label: every face in a short video or a zip of photos, as a timeline or a table, and a CSV to keep."""

from pathlib import Path

import streamlit as st

from core.label_uploads import UPLOAD_SUFFIXES
from dashboard import label_page

st.title(":material/label: Label")
st.caption("A short video or a zip of photos: every face, its emotion, and a CSV with one row per face. "
           "For long videos, big folders or a Ray cluster, use `python scripts/label.py` (see docs/labelling.md).")

upload = st.file_uploader("A video (mp4, webm, mov, avi) or a .zip of photos", key="label_upload",
                          type=[suffix.lstrip(".") for suffix in UPLOAD_SUFFIXES])
if upload is None:
    st.info("No video or zip yet.", icon=":material/upload_file:")
    st.stop()

result = label_page.labelled(upload.name, upload.getvalue())
label_page.show_summary(result.summary)
if result.video:
    label_page.show_timeline(result)
else:
    label_page.show_table(result)

st.download_button("Download the CSV", result.csv, file_name=f"{Path(result.name).stem}-labels.csv",
                   mime="text/csv", icon=":material/download:", key="label_csv",
                   on_click="ignore")  # no rerun: the voice and the page stay as they are
