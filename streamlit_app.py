"""emovoice dashboard: the pages in the sidebar (`st.navigation`), and Home: what the app does, the active model,
the voice bank and the way in.

    streamlit run streamlit_app.py
"""

# First, before anything loads TensorFlow: the Live page's WebRTC (streamlit_webrtc -> aiortc -> pylibsrtp,
# which carries its own OpenSSL). Imported into a process that already holds TensorFlow, it crashes the whole
# server with a segfault in srtp_init: issue 24's two "segfault at 8" sightings, both on opening Live after
# other pages had loaded a model. `python -c "import tensorflow; import pylibsrtp"` shows it in one line.
import streamlit_webrtc  # noqa: F401, I001

from pathlib import Path

import pandas as pd
import streamlit as st

import dashboard
from core.emotions import EMOTIONS

# The browser tab's icon, served by this server. A ":material/...:" page icon would be fetched by every
# visitor's browser from fonts.gstatic.com, and nothing may be downloaded at run time (the icons *in* the
# pages are drawn with the Material Symbols font that Streamlit bundles, so they stay).
FAVICON = Path(__file__).resolve().parent / "assets" / "favicon.png"


def home() -> None:
    st.title(":material/theater_comedy: emovoice")
    st.markdown(
        "Show emovoice a face and it **recognises the emotion** — angry, disgust, fear, happy, sad, "
        "surprise or neutral — then **plays a recorded voice** speaking with that same emotion, "
        "drawn at random from its voice bank."
    )
    st.page_link(TRY_IT, label="**Try it** with your webcam or a photo")
    st.page_link(LIVE, label="**Live**: the webcam read as you move, a voice when your expression changes")
    st.page_link(LABEL, label="**Label** a video or a zip of photos: every face, its emotion, a CSV")
    st.page_link(EVALUATE, label="**Evaluate** a model on labelled faces")
    st.page_link(TRAIN, label="**Train** a new model in the background")

    st.header("Active model", divider="gray")
    model_dir, metadata = dashboard.active_metadata()
    if metadata is None:
        st.error(f"The active model in {model_dir} cannot be read: restore models/emovoice-vgg "
                 "or make another one active on the Train page.")
    else:
        st.caption(f"`{model_dir.name}` — the model Try it uses. Make another one active on the Train page.")
        facts = dashboard.model_facts(metadata)
        architecture, emotions, people, accuracy = st.columns(4)
        architecture.metric("Architecture", facts["Architecture"])
        emotions.metric("Emotions", len(metadata.classes))
        people.metric("Agrees with people", facts["Agrees with people"],
                      help="On FER2013's test faces, how often it names the emotion most of ten taggers chose (FER+).")
        accuracy.metric("Test accuracy", dashboard.percent(metadata.accuracy("test")),
                        help="On FER2013's test faces, against FER2013's own label (one tagger per face).")
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


# The sidebar, in reading order. url_path keeps the addresses the pages had (/Train, /Try_It, ...).
HOME = st.Page(home, title="Home", icon=":material/home:", default=True)
TRAIN = st.Page("pages/1_Train.py", title="Train", icon=":material/model_training:", url_path="Train")
EVALUATE = st.Page("pages/2_Evaluate.py", title="Evaluate", icon=":material/analytics:", url_path="Evaluate")
TRY_IT = st.Page("pages/3_Try_It.py", title="Try it", icon=":material/photo_camera:", url_path="Try_It")
LABEL = st.Page("pages/4_Label.py", title="Label", icon=":material/label:", url_path="Label")
LIVE = st.Page("pages/5_Live.py", title="Live", icon=":material/videocam:", url_path="Live")

# The favicon before the navigation: Streamlit's frontend makes the current page's icon the favicon
# unless the page config has already named one.
st.set_page_config(page_icon=str(FAVICON), layout="wide")
page = st.navigation([HOME, TRAIN, EVALUATE, TRY_IT, LABEL, LIVE])
st.set_page_config(page_title=f"{page.title} · emovoice")
page.run()
