"""Live: the webcam read continuously, each face boxed and labelled, and a voice when the emotion changes and holds."""

import av
import streamlit as st
from streamlit_webrtc import WebRtcMode, webrtc_streamer

import dashboard
from core.live import HOLD_S, LiveSession
from core.runs import ModelError, active_model_dir

POLL_S = 0.5  # how often the page looks for a new emotion or voice (core.live.VOICE_GAP_S allows for it)

st.title(":material/videocam: Live")
st.caption(f"Press START and look at the camera: every face is boxed and named as you move, and when your "
           f"expression changes and holds for {HOLD_S:.0f} seconds, a voice with that emotion answers.")

try:
    classifier = dashboard.classifier_for(active_model_dir())
except ModelError as error:
    st.error(f"The active model cannot be loaded: {error}")
    st.stop()
bank = dashboard.voice_bank()


class LiveProcessor:
    """streamlit-webrtc's side of core.live.LiveSession: video frames in and out, one session per START."""

    def __init__(self):
        self.session = LiveSession(classifier, bank)

    def recv(self, frame: av.VideoFrame) -> av.VideoFrame:
        drawn = self.session.process(frame.to_ndarray(format="rgb24"))
        return av.VideoFrame.from_ndarray(drawn, format="rgb24")

    async def recv_queued(self, frames: list[av.VideoFrame]) -> list[av.VideoFrame]:
        # Only the newest of the frames that queued up while the last one was drawn: on a busy machine the
        # picture stays current instead of falling further behind (streamlit-webrtc's own fallback does the
        # same, but logs a warning for every frame it drops).
        return [self.recv(frames[-1])]


gender = dashboard.voice_gender_choice()
picture, answer = st.columns([3, 2], gap="large")
with picture:
    # No ICE servers: the browser and this server meet on the local network (or the same machine), and
    # nothing is asked of a third party's STUN server. A dashboard served across the internet needs a TURN
    # server here.
    context = webrtc_streamer(key="live", mode=WebRtcMode.SENDRECV, rtc_configuration={"iceServers": []},
                              media_stream_constraints={"video": True, "audio": False},
                              video_processor_factory=LiveProcessor, async_processing=True)


@st.fragment(run_every=POLL_S)
def show_answer() -> None:
    processor = context.video_processor
    if processor is None:
        st.info("Starting the camera…", icon=":material/videocam:")
        return
    processor.session.gender = gender  # the next voice honours a change made while streaming
    state = processor.session.state()
    if state.emotion is None:
        st.subheader(":material/face: No face in view")
    else:
        st.subheader(f"{dashboard.ICON[state.emotion]} {state.emotion} ({state.confidence:.0%})")
    st.caption(f"{state.frames_per_s:.1f} frames a second · faces read {state.readings_per_s:.1f} times a second")
    voice = state.voice
    if voice is None:
        st.write(f"A voice answers once an expression has held for {HOLD_S:.0f} seconds.")
    elif voice.clip is None:
        st.warning(voice.error)
    else:
        st.write(f":material/volume_up: {'Now playing' if voice.playing(state.now) else 'Last voice'}: "
                 f"**{voice.emotion}** · {voice.clip.described}")
        # The same clip on every poll leaves the player as it is; a new clip (a new URL) starts at once.
        st.audio(str(voice.clip.path), format=voice.clip.mime_type, autoplay=True)


with answer:
    if context.state.playing:
        show_answer()
    else:
        st.info("Press START to switch the camera on.", icon=":material/videocam:")
