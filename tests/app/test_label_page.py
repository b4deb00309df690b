"""Label page: a video becomes a timeline, a dominant emotion and its voice; a zip a table of faces; both a CSV."""

from __future__ import annotations

import io
import zipfile

from support.photos import encode, fer_face_array, portrait, write_video

PAGE = "pages/4_Label.py"
LABELLING_TIMEOUT_S = 300  # a run that labels a whole video does far more than a Try-It click (AppTest's 60 s)


def upload(app, name: str, data: bytes, mime: str):
    app.file_uploader(key="label_upload").set_value((name, data, mime))
    app.run(timeout=LABELLING_TIMEOUT_S)
    assert not app.exception, app.exception
    return app


def csv_of(app) -> list[str]:
    """The lines of the CSV the download button offers."""
    assert [button.proto.label for button in app.get("download_button")] == ["Download the CSV"]
    return app.session_state.label_result.result.csv.splitlines()


def test_a_video_gets_a_timeline_a_dominant_emotion_with_its_voice_and_a_csv(open_page, fer_face_jpeg, tmp_path):
    face = fer_face_array(fer_face_jpeg)
    app = upload(open_page(PAGE), "talk.mp4",
                 write_video(tmp_path / "clip.mp4", [portrait(face, [(100 + 4 * i, 120)]) for i in range(20)]).read_bytes(), "video/mp4")
    assert not app.error
    [heading] = [h.value for h in app.subheader if "Dominant emotion" in h.value]
    rows = csv_of(app)
    emotion = rows[1].split(",")[7]
    assert f"Dominant emotion: {emotion} (10 of 10 faces)" in heading
    assert any(f"A **{emotion}** voice" in caption.value for caption in app.caption)
    assert app.get("audio")
    assert app.get("vega_lite_chart")  # the timeline
    assert len(rows) == 1 + 10 and rows[1].startswith("talk.mp4,0.000,1,")  # 2 s at 5 fps, one face followed
    labels = app.session_state.label_result
    app.run(timeout=LABELLING_TIMEOUT_S)  # any widget reruns the page: the same upload is not labelled again
    assert app.session_state.label_result is labels and csv_of(app) == rows


def test_a_zip_gets_a_table_of_faces_with_thumbnails_and_a_chart(open_page, fer_face_jpeg, noise_png):
    face = fer_face_array(fer_face_jpeg)
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("happy/one.jpg", encode(portrait(face)))
        zipped.writestr("group.jpg", encode(portrait(face, [(60, 140), (380, 140)], side=200)))
        zipped.writestr("noise.png", noise_png)
        zipped.writestr("readme.txt", "not a photo")
    app = upload(open_page(PAGE), "photos.zip", archive.getvalue(), "application/zip")
    [table] = app.dataframe
    assert sorted(table.value["source"]) == ["group.jpg", "group.jpg", "happy/one.jpg", "noise.png"]
    assert table.value["thumbnail"].notna().sum() == 3  # every face has its picture; the noise has none
    assert table.value["thumbnail"].dropna().str.startswith("data:image/jpeg;base64,").all()
    assert any("skipped 1 file(s): not a photo" in md.value for md in app.markdown)
    assert app.get("vega_lite_chart")  # faces per emotion
    assert len(csv_of(app)) == 1 + 4


def test_a_damaged_video_or_an_empty_zip_is_one_red_line(open_page):
    app = upload(open_page(PAGE), "broken.mp4", b"\0" * 4000, "video/mp4")
    [error] = app.error
    assert error.value.startswith("That file cannot be labelled: broken.mp4: ") and "\n" not in error.value
    empty = io.BytesIO()
    zipfile.ZipFile(empty, "w").close()
    upload(app, "empty.zip", empty.getvalue(), "application/zip")
    [error] = app.error
    assert error.value == "That file cannot be labelled: no photos in empty.zip (it is empty)"


def test_labels_are_the_active_models_even_for_an_upload_labelled_before_it_changed(open_page, fer_face_jpeg,
                                                                                    trained_run):
    import shutil

    from core.paths import RUNS_DIR
    from core.runs import set_active

    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("happy/one.jpg", encode(portrait(fer_face_array(fer_face_jpeg))))
    app = upload(open_page(PAGE), "photos.zip", archive.getvalue(), "application/zip")
    assert "neutral" in csv_of(app)[0]  # the shipped model's seven emotions, one column each
    run = RUNS_DIR / "20990101-000000-seed"
    shutil.copytree(trained_run, run)
    try:
        set_active(run)  # the operator switches to a model of the seed's five emotions
        app.run()
        assert "neutral" not in csv_of(app)[0] and "happy" in csv_of(app)[0]
    finally:
        set_active(None)
        shutil.rmtree(run)
