"""The Live page's parts: the frames' side of a live session, and the answer beside the picture."""

from __future__ import annotations

import av
import streamlit as st

import dashboard
from streamlit_webrtc import WebRtcStreamerContext

from core.live import HOLD_S, LiveSession
from core.recognise import Classifier
from core.voices import VoiceBank

POLL_S = 0.5  # how often the answer looks for a new emotion or voice (core.live.VOICE_GAP_S allows for it)


class LiveProcessor:
    """streamlit-webrtc's side of core.live.LiveSession: video frames in and out, one session per START."""

    def __init__(self, classifier: Classifier, bank: VoiceBank):
        self.session = LiveSession(classifier, bank)

    def recv(self, frame: av.VideoFrame) -> av.VideoFrame:
        drawn = self.session.process(frame.to_ndarray(format="rgb24"))
        return av.VideoFrame.from_ndarray(drawn, format="rgb24")

    async def recv_queued(self, frames: list[av.VideoFrame]) -> list[av.VideoFrame]:
        # Only the newest of the frames that queued up while the last one was drawn: on a busy machine the
        # picture stays current instead of falling further behind (streamlit-webrtc's own fallback does the
        # same, but logs a warning for every frame it drops).
        return [self.recv(frames[-1])]


@st.fragment(run_every=POLL_S)
def show_answer(stream: WebRtcStreamerContext, gender: str | None) -> None:
    """The emotion in view, the reading rates, and the last voice: redrawn every POLL_S while streaming.
    Given the stream, not its processor: a rerun of the fragment alone gets the arguments of the page's last
    run, when the camera may not have started yet."""
    processor = stream.video_processor
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
    elif not voice.clip.path.is_file():  # the bank changed on disk since START read it
        st.warning(f"The voice clip {voice.clip.path.name} has gone from the voice bank: press STOP and START "
                   "to read the bank again.")
    else:
        st.write(f":material/volume_up: {'Now playing' if voice.playing(state.now) else 'Last voice'}: "
                 f"**{voice.emotion}** · {voice.clip.described}")
        # The same clip on every poll leaves the player as it is; a new clip (a new URL) starts at once.
        st.audio(str(voice.clip.path), format=voice.clip.mime_type, autoplay=True)
