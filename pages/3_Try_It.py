"""Try it: a face in, its emotion out, and a voice with the same emotion."""

import streamlit as st

import dashboard
from core.images import ImageError
from core.runs import ModelError, active_model_dir
from dashboard import try_it_page

st.title(":material/photo_camera: Try it")
st.caption("Take a snapshot or upload a photo: emovoice finds each face, names its emotion, "
           "and plays a voice with the emotion of the most prominent one.")

# Photo on the left, answer on the right: with the webcam's large preview the answer stays in view.
photo_column, answer_column = st.columns([2, 3], gap="large")
with photo_column:
    photo = try_it_page.chosen_photo()
if photo.data is None:
    answer_column.info("No photo yet.", icon=":material/photo:")
    st.stop()

model_dir = active_model_dir()
try:
    recognition = dashboard.recognition_of(photo.data, photo.whole_image, model_dir)
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
        st.button("Use the whole photo as the face", icon=":material/crop_free:", on_click=try_it_page.use_whole_image,
                  key="use_whole_image")
        st.image(recognition.image, caption="No face found in this photo", width=360, output_format="JPEG")
        st.stop()
    heatmaps = try_it_page.show_answer(recognition, photo, model_dir)

with photo_column:  # under the photo input, beside the annotated photo
    try_it_page.show_probabilities(recognition.faces, heatmaps)
