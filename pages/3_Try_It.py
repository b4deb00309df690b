"""Try it: a face in, its emotion out, and a voice with the same emotion."""

import hashlib
import random

import numpy as np
import streamlit as st

import dashboard
from core.drawing import faces_drawn
from core.explain import overlay
from core.images import MAX_FILE_BYTES, ImageError
from core.recognise import FaceResult
from core.runs import ModelError, active_model_dir
from core.voices import STRONG_CONFIDENCE, NoVoiceError, VoiceBank, choose_voice, intensity_for



def draw_voice(bank: VoiceBank, emotion: str, intensity: str, gender: str | None, answer_key: str) -> None:
    """Pick a clip of `emotion` other than the one playing, and remember it for this answer."""
    playing = st.session_state.get("voice")
    previous = playing["clip"] if playing and playing["emotion"] == emotion else None
    try:
        clip = choose_voice(bank, emotion, random.Random(), previous=previous, intensity=intensity, gender=gender)
    except NoVoiceError as error:
        st.session_state.voice = {"answer": answer_key, "emotion": emotion, "clip": None, "error": str(error)}
        return
    st.session_state.voice = {"answer": answer_key, "emotion": emotion, "clip": clip, "error": None}


def use_whole_image() -> None:
    st.session_state.whole_image = True  # for this photo only: a new photo starts with detection again


def show_probabilities(faces: list[FaceResult], heatmaps) -> None:
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


st.title(":material/photo_camera: Try it")
st.caption("Take a snapshot or upload a photo: emovoice finds each face, names its emotion, "
           "and plays a voice with the emotion of the most prominent one.")

# -- the photo -------------------------------------------------------------------------------------
# Photo on the left, answer on the right: with the webcam's large preview the answer stays in view.
photo_column, answer_column = st.columns([2, 3], gap="large")
with photo_column:
    source = st.segmented_control("Photo from", ["Upload a photo", "Webcam"], default="Upload a photo", required=True,
                                  key="photo_source")
    if source == "Webcam":  # the camera is only switched on when asked for
        photo = st.camera_input("Look at the camera and take a snapshot", key="camera")
    else:
        # HEIC (iPhone) and AVIF are let through so that core can say what to send instead, in a sentence;
        # the uploader's own refusal is only a red icon.
        photo = st.file_uploader("A photo with one or more faces", key="upload",
                                 max_upload_size=MAX_FILE_BYTES // 2**20,  # the photo limit, not the server's
                                 type=["jpg", "jpeg", "png", "webp", "bmp", "gif", "tif", "tiff", "heic", "heif", "avif"])
    photo_bytes = photo.getvalue() if photo is not None else None
    photo_digest = hashlib.sha256(photo_bytes).hexdigest() if photo_bytes is not None else None
    # "The whole image is the face" holds for the photo it was chosen for (ticked before any photo, for the one
    # that comes): another photo starts with detection.
    said_of = st.session_state.get("whole_image_photo")
    if photo_digest != said_of:
        if said_of is not None:
            st.session_state.whole_image = False
        st.session_state.whole_image_photo = photo_digest
    whole_image = st.checkbox("The whole image is the face", key="whole_image",
                              help="For a photo already cropped to one face, like FER2013's 48x48 faces: skip face detection.")
    explain = st.toggle("Show what the model looked at", key="explain",
                        help="A Grad-CAM heatmap over each face: red where the face pushed the model "
                             "towards the emotion it named.")
    gender = dashboard.voice_gender_choice()
if photo is None:
    answer_column.info("No photo yet.", icon=":material/photo:")
    st.stop()

model_dir = active_model_dir()
try:
    recognition = dashboard.recognition_of(photo_bytes, whole_image, model_dir)
except ImageError as error:  # a corrupt, empty, huge or unsupported file: say which, never a traceback
    answer_column.error(f"That photo cannot be used: {error}.", icon=":material/broken_image:")
    st.stop()
except ModelError as error:
    answer_column.error(f"The active model cannot be loaded: {error}")
    st.stop()


with answer_column:
    if message := recognition.message():
        st.warning(message.capitalize(), icon=":material/warning:")
    if recognition.main_face is None:
        st.button("Use the whole photo as the face", icon=":material/crop_free:", on_click=use_whole_image,
                  key="use_whole_image")
        st.image(recognition.image, caption="No face found in this photo", width=360, output_format="JPEG")
        st.stop()

    # -- the answer: emotion and voice ---------------------------------------------------------------
    main_emotion = recognition.main_face.emotion
    confidence = recognition.main_face.probabilities[main_emotion]
    intensity = intensity_for(confidence)  # a face the model is sure of gets a strong voice
    answer_key = f"{photo_digest}:{whole_image}:{model_dir}:{gender}"
    bank = dashboard.voice_bank()
    voice = st.session_state.get("voice")
    if voice is None or voice["answer"] != answer_key:  # a new photo or preference: a new voice, played at once
        draw_voice(bank, main_emotion, intensity, gender, answer_key)
        voice = st.session_state.voice

    st.subheader(f"{dashboard.ICON[main_emotion]} Most prominent face: {main_emotion} ({confidence:.0%})")
    clip = voice["clip"]
    if clip is None:
        st.warning(voice["error"])
    else:
        st.audio(str(clip.path), format=clip.mime_type, autoplay=True)
    if clip is not None:
        why = (f"the model is {'at least' if intensity == 'strong' else 'less than'} {STRONG_CONFIDENCE:.0%} sure"
               if clip.intensity == intensity else f"the voice bank has no {intensity} {main_emotion} voice")
        strength = f" · **{clip.intensity}** ({why})" if clip.intensity else ""
        st.caption(f":material/volume_up: A **{clip.emotion}** voice{strength} · {clip.described}")
    st.button("Another voice", icon=":material/shuffle:", on_click=draw_voice, key="another_voice",
              args=(bank, main_emotion, intensity, gender, answer_key), disabled=bank.count(main_emotion) < 2)
    heatmaps = None
    if explain:
        heatmaps = dashboard.heatmaps_of(np.stack([face.face for face in recognition.faces]),
                                         [face.emotion for face in recognition.faces], model_dir)
    # JPEG: a photo encodes several times faster than as PNG, and travels smaller.
    st.image(faces_drawn(recognition.image, recognition.faces, heatmaps, photo_size=recognition.photo_size),
             width="stretch", output_format="JPEG",
             caption=f"{len(recognition.faces)} face(s); the red box picks the voice"
                     + ("; red heat: what the model looked at" if explain else ""))

with photo_column:  # under the photo input, beside the annotated photo
    show_probabilities(recognition.faces, heatmaps)
