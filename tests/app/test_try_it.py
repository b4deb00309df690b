"""Try it: photo in, emotion and voice out; every bad photo answered with a one-line message."""

from __future__ import annotations

import numpy as np

from support.photos import encode, fer_face_array, portrait
from core.emotions import EMOTIONS
from core.voices import STRONG_CONFIDENCE

PAGE = "pages/3_Try_It.py"


def upload(app, name: str, data: bytes, mime: str = "image/jpeg"):
    app.file_uploader(key="upload").set_value((name, data, mime))
    app.run()
    assert not app.exception, app.exception
    return app


def main_emotion(app) -> str:
    """The emotion the page names for the most prominent face."""
    [heading] = [h.value for h in app.subheader if "Most prominent face" in h.value]
    return next(emotion for emotion in EMOTIONS if f": {emotion} (" in heading)


def playing(app) -> str:
    [audio] = app.get("audio")
    assert audio.proto.autoplay
    return audio.proto.url


def voice_caption(app) -> str:
    [caption] = [c.value for c in app.caption if "voice" in c.value and "RAVDESS" in c.value]
    return caption


def test_a_fer_face_gets_an_emotion_and_a_voice_of_that_emotion(open_page, fer_face_jpeg):
    app = upload(open_page(PAGE), "face.jpg", fer_face_jpeg)
    emotion = main_emotion(app)
    assert playing(app)
    assert f"A **{emotion}** voice" in voice_caption(app)
    assert not app.error and not app.warning
    assert len(app.get("progress")) == len(EMOTIONS)  # one bar per emotion for the one face


def test_the_voice_is_as_strong_as_the_face_and_of_the_gender_asked_for(open_page, fer_face_jpeg):
    app = upload(open_page(PAGE), "face.jpg", fer_face_jpeg)
    [heading] = [h.value for h in app.subheader if "Most prominent face" in h.value]
    confidence = int(heading.rsplit("(", 1)[1].rstrip("%)")) / 100
    sure = confidence >= STRONG_CONFIDENCE and main_emotion(app) != "neutral"  # RAVDESS has no strong neutral
    assert f"**{'strong' if sure else 'normal'}**" in voice_caption(app)
    for label, gender in (("Female", "female"), ("Male", "male")):
        app.segmented_control(key="voice_gender").set_value(label).run()
        assert f"({gender})" in voice_caption(app) and playing(app)


def test_the_heatmap_toggle_shows_what_the_model_looked_at(open_page, two_faces_jpeg):
    app = upload(open_page(PAGE), "two.jpg", two_faces_jpeg)
    assert not [i for i in app.image for c in i.captions if "looked at" in c]
    app.toggle(key="explain").set_value(True).run()
    assert not app.exception
    looked_at = [c for i in app.image for c in i.captions if "What the model looked at" in c]
    assert len(looked_at) == 2  # one per face, in its expander
    assert any("red heat" in c for i in app.image for c in i.captions)  # and over the photo


def test_another_voice_plays_a_different_clip_of_the_same_emotion(open_page, fer_face_jpeg):
    app = upload(open_page(PAGE), "face.jpg", fer_face_jpeg)
    emotion, first = main_emotion(app), playing(app)
    app.button(key="another_voice").click().run()
    assert playing(app) != first
    assert main_emotion(app) == emotion
    assert any(f"A **{emotion}** voice" in caption.value for caption in app.caption)


def test_a_portrait_and_a_group_photo_get_a_box_per_face(open_page, portrait_jpeg, two_faces_jpeg):
    app = upload(open_page(PAGE), "portrait.jpg", portrait_jpeg)
    assert main_emotion(app) and playing(app)
    assert [e.label for e in app.expander][0].startswith("Face 1:")
    assert len(app.expander) == 1

    upload(app, "two.jpg", two_faces_jpeg)
    assert [e.label[:7] for e in app.expander] == ["Face 1:", "Face 2:"]
    assert playing(app)


def test_no_face_warns_and_whole_image_option_answers_anyway(open_page, noise_png):
    app = upload(open_page(PAGE), "noise.png", noise_png, "image/png")
    assert any("No face found" in w.value for w in app.warning)
    assert not app.get("audio")

    assert not [w.value for w in app.warning if "--" in w.value]  # issue 24 #8: no command-line flag on a web page

    app.button(key="use_whole_image").click().run()  # one click instead of finding the checkbox
    assert app.checkbox(key="whole_image").value
    assert main_emotion(app) and playing(app)


def test_the_whole_photo_choice_applies_to_that_photo_only(open_page, noise_png, two_faces_jpeg):
    """Issue 24 #4: after "Use the whole photo as the face", the next photo (two people) was read as one face."""
    app = upload(open_page(PAGE), "noise.png", noise_png, "image/png")
    app.button(key="use_whole_image").click().run()
    assert app.checkbox(key="whole_image").value and len(app.expander) == 1

    upload(app, "two.jpg", two_faces_jpeg)
    assert not app.checkbox(key="whole_image").value
    assert [e.label[:7] for e in app.expander] == ["Face 1:", "Face 2:"]


def test_ticked_before_any_photo_the_whole_image_option_applies_to_the_first(open_page, two_faces_jpeg):
    app = open_page(PAGE)
    app.checkbox(key="whole_image").check().run()
    upload(app, "two.jpg", two_faces_jpeg)
    assert app.checkbox(key="whole_image").value and len(app.expander) == 1


def test_the_uploader_states_the_photo_limit_not_the_servers(open_page):
    """Issue 24 #8: the uploader said "200MB per file" (the server's cap, for dataset zips); photos stop at 20 MB."""
    from core.images import MAX_FILE_BYTES

    assert open_page(PAGE).get("file_uploader")[0].proto.max_upload_size_mb == MAX_FILE_BYTES // 2**20 == 20


def test_corrupt_empty_and_oversized_files_get_a_message_then_a_good_photo_works(open_page, fer_face_jpeg):
    app = open_page(PAGE)
    for name, data, expected in [
        ("corrupt.jpg", b"not an image", "unsupported format"),
        ("truncated.jpg", fer_face_jpeg[: len(fer_face_jpeg) // 3], "damaged or truncated"),
        ("huge.png", b"\x89PNG\r\n\x1a\n" + bytes(21 * 2**20), "the limit is 20 MB"),
    ]:
        upload(app, name, data)
        [error] = app.error
        assert expected in error.value, (name, error.value)
        assert not app.get("audio")

    upload(app, "face.jpg", fer_face_jpeg)
    assert not app.error
    assert main_emotion(app) and playing(app)


def test_tiny_and_big_photos_work(open_page, fer_face_jpeg, portrait_jpeg):
    app = upload(open_page(PAGE), "speck.png", encode(np.full((6, 5, 3), 90, np.uint8), "PNG"))
    assert "too small to hold a face" in app.error[0].value  # 6x5 pixels: no face to read
    upload(app, "thumbnail.png", encode(np.full((24, 24, 3), 90, np.uint8), "PNG"))
    assert main_emotion(app)  # a thumbnail is taken as one face

    big = np.asarray(portrait(fer_face_array(fer_face_jpeg), [(200, 120)]).repeat(8, axis=0).repeat(8, axis=1))
    upload(app, "big.jpg", encode(big))  # 5120x3840, downscaled by core before detection
    assert main_emotion(app)


def test_webcam_snapshot(open_page, portrait_jpeg):
    app = open_page(PAGE)
    app.segmented_control(key="photo_source").set_value("Webcam").run()
    app.camera_input(key="camera").set_value(("snapshot.jpg", portrait_jpeg, "image/jpeg")).run()
    assert not app.exception
    assert main_emotion(app) and playing(app)

