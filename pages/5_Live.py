"""Live: the webcam read continuously, each face boxed and labelled, and a voice when the emotion changes and holds."""

import streamlit as st
from streamlit_webrtc import WebRtcMode, webrtc_streamer

import dashboard
from core.live import HOLD_S
from core.runs import ModelError, active_model_dir
from dashboard.live_page import LiveProcessor, show_answer

st.title(":material/videocam: Live")
st.caption(f"Press START and look at the camera: every face is boxed and named as you move, and when your "
           f"expression changes and holds for {HOLD_S:.0f} seconds, a voice with that emotion answers.")

try:
    classifier = dashboard.classifier_for(active_model_dir())
except ModelError as error:
    st.error(f"The active model cannot be loaded: {error}")
    st.stop()
bank = dashboard.voice_bank()

gender = dashboard.voice_gender_choice()
picture, answer = st.columns([3, 2], gap="large")
with picture:
    # No ICE servers: the browser and this server meet on the local network (or the same machine), and
    # nothing is asked of a third party's STUN server. A dashboard served across the internet needs a TURN
    # server here.
    stream = webrtc_streamer(key="live", mode=WebRtcMode.SENDRECV, rtc_configuration={"iceServers": []},
                             media_stream_constraints={"video": True, "audio": False},
                             video_processor_factory=lambda: LiveProcessor(classifier, bank), async_processing=True)

with answer:
    if stream.state.playing:
        show_answer(stream, gender)
    else:
        st.info("Press START to switch the camera on.", icon=":material/videocam:")
