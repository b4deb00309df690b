"""The Try it page's parts: the photo and its options, the voice drawn for the answer, and each face's bars."""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import streamlit as st

import dashboard
from core.drawing import faces_drawn
from core.explain import overlay
from core.images import MAX_FILE_BYTES
from core.recognise import FaceResult, Recognition
from core.voices import STRONG_CONFIDENCE, Clip, NoVoiceError, VoiceBank, choose_voice, intensity_for

# HEIC (iPhone) and AVIF are let through so that core can say what to send instead, in a sentence;
# the uploader's own refusal is only a red icon.
PHOTO_TYPES = ["jpg", "jpeg", "png", "webp", "bmp", "gif", "tif", "tiff", "heic", "heif", "avif"]


@dataclass(frozen=True)
class Photo:
    """The photo chosen and how to read it: `whole_image` skips face detection; `explain` asks for heatmaps."""

    data: bytes | None
    digest: str | None  # its SHA-256: what an answer, and "the whole image is the face", belong to
    whole_image: bool
    explain: bool
    gender: str | None


@dataclass(frozen=True)
class Voice:
    """The clip answering one photo (`answer`: the photo and options it answers), or why there is none."""

    answer: str
    emotion: str
    clip: Clip | None
    error: str | None = None


def chosen_photo() -> Photo:
    """A snapshot or an upload, with its options; the camera is only switched on when asked for."""
    source = st.segmented_control("Photo from", ["Upload a photo", "Webcam"], default="Upload a photo", required=True,
                                  key="photo_source")
    if source == "Webcam":
        photo = st.camera_input("Look at the camera and take a snapshot", key="camera")
    else:
        photo = st.file_uploader("A photo with one or more faces", key="upload", type=PHOTO_TYPES,
                                 max_upload_size=MAX_FILE_BYTES // 2**20)  # the photo limit, not the server's
    data = photo.getvalue() if photo is not None else None
    digest = hashlib.sha256(data).hexdigest() if data is not None else None
    # "The whole image is the face" holds for the photo it was chosen for (ticked before any photo, for the one
    # that comes): another photo starts with detection.
    said_of = st.session_state.get("whole_image_photo")
    if digest != said_of:
        if said_of is not None:
            st.session_state.whole_image = False
        st.session_state.whole_image_photo = digest
    whole_image = st.checkbox("The whole image is the face", key="whole_image",
                              help="For a photo already cropped to one face, like FER2013's 48x48 faces: skip face detection.")
    explain = st.toggle("Show what the model looked at", key="explain",
                        help="A Grad-CAM heatmap over each face: red where the face pushed the model "
                             "towards the emotion it named.")
    return Photo(data, digest, whole_image, explain, dashboard.voice_gender_choice())


def use_whole_image() -> None:
    st.session_state.whole_image = True  # for this photo only: a new photo starts with detection again


def draw_voice(bank: VoiceBank, emotion: str, intensity: str, gender: str | None, answer: str) -> None:
    """Pick a clip of `emotion` other than the one playing, and remember it for this answer."""
    playing: Voice | None = st.session_state.get("voice")
    previous = playing.clip if playing and playing.emotion == emotion else None
    try:
        clip = choose_voice(bank, emotion, random.Random(), previous=previous, intensity=intensity, gender=gender)
    except NoVoiceError as error:
        st.session_state.voice = Voice(answer, emotion, None, str(error))
        return
    st.session_state.voice = Voice(answer, emotion, clip)


def show_answer(recognition: Recognition, photo: Photo, model_dir: Path) -> np.ndarray | None:
    """The most prominent face's emotion, a voice of that emotion (played at once) and the annotated photo.
    Returns the heatmaps drawn, when asked for, so that each face's bars can show them too."""
    main_emotion = recognition.main_face.emotion
    confidence = recognition.main_face.probabilities[main_emotion]
    intensity = intensity_for(confidence)  # a face the model is sure of gets a strong voice
    answer = f"{photo.digest}:{photo.whole_image}:{model_dir}:{photo.gender}:{dashboard.voice_bank_stamp()}"
    bank = dashboard.voice_bank()
    voice: Voice | None = st.session_state.get("voice")
    if voice is None or voice.answer != answer:  # a new photo or preference: a new voice
        draw_voice(bank, main_emotion, intensity, photo.gender, answer)
        voice = st.session_state.voice

    st.subheader(f"{dashboard.ICON[main_emotion]} Most prominent face: {main_emotion} ({confidence:.0%})")
    clip = voice.clip
    if clip is None:
        st.warning(voice.error)
    else:
        st.audio(str(clip.path), format=clip.mime_type, autoplay=True)
        why = (f"the model is {'at least' if intensity == 'strong' else 'less than'} {STRONG_CONFIDENCE:.0%} sure"
               if clip.intensity == intensity else f"the voice bank has no {intensity} {main_emotion} voice")
        strength = f" · **{clip.intensity}** ({why})" if clip.intensity else ""
        st.caption(f":material/volume_up: A **{clip.emotion}** voice{strength} · {clip.described}")
    st.button("Another voice", icon=":material/shuffle:", on_click=draw_voice, key="another_voice",
              args=(bank, main_emotion, intensity, photo.gender, answer), disabled=bank.count(main_emotion) < 2)
    heatmaps = None
    if photo.explain:
        heatmaps = dashboard.heatmaps_of(np.stack([face.face for face in recognition.faces]),
                                         [face.emotion for face in recognition.faces], model_dir)
    # JPEG: a photo encodes several times faster than as PNG, and travels smaller.
    st.image(faces_drawn(recognition.image, recognition.faces, heatmaps, photo_size=recognition.photo_size),
             width="stretch", output_format="JPEG",
             caption=f"{len(recognition.faces)} face(s); the red box picks the voice"
                     + ("; red heat: what the model looked at" if photo.explain else ""))
    return heatmaps


def show_probabilities(faces: list[FaceResult], heatmaps: np.ndarray | None) -> None:
    """Each face's emotion probabilities as bars, likeliest first; the face that picks the voice open.
    With heatmaps, each face's crop shows what the model looked at."""
    for number, face in enumerate(faces, 1):
        emotion = face.emotion
        with st.expander(f"Face {number}: {dashboard.ICON[emotion]} {emotion} ({face.probabilities[emotion]:.0%})",
                         expanded=number == 1):
            if heatmaps is not None:
                st.image(overlay(face.face, heatmaps[number - 1]), width=160,
                         caption=f"What the model looked at to say {emotion} (red: most)")
            for name, probability in sorted(face.probabilities.items(), key=lambda item: -item[1]):
                st.progress(probability, text=f"{name} {probability:.0%}")
