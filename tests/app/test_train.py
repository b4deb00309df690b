"""Train: a real background run on the bundled sample, one run at a time, and making it active."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np

from core.background import current_training, wait_for
from core.paths import SHIPPED_MODEL_DIR
from core.runs import active_model_dir, load_model, set_active
from core.training import FINE_TUNE
from photos import HAPPY_FACE, SAMPLE_ZIP, SURPRISED_FACE, encode, portrait

PAGE = "pages/1_Train.py"


def quick_seed_recipe(app):
    """The bundled sample, the seed network, one epoch of small batches: seconds, not hours."""
    app.segmented_control(key="data_kind").set_value("Bundled sample").run()
    app.radio(key="architecture").set_value("seed").run()
    app.slider(key="epochs_seed").set_value(1)
    app.select_slider(key="batch_seed").set_value(16)
    app.run()
    assert not app.exception, app.exception
    return app


def test_a_run_trains_in_the_background_while_a_second_tab_is_told_it_is_busy(open_page):
    first_tab = quick_seed_recipe(open_page(PAGE))
    second_tab = quick_seed_recipe(open_page(PAGE))

    first_tab.button(key="train").click().run()
    assert not first_tab.error, [e.value for e in first_tab.error]
    running = current_training()
    assert running is not None
    run_dir = Path(running["run_dir"])
    assert any(run_dir.name in m.value for m in first_tab.markdown)  # its progress is shown

    second_tab.button(key="train").click().run()
    [busy] = second_tab.error
    assert "already in progress" in busy.value
    assert any(run_dir.name in m.value for m in second_tab.markdown)  # and the run that is going on
    assert current_training()["run_dir"] == run_dir  # still the one run

    progress = wait_for(run_dir, timeout_s=240)
    assert progress["status"] == "finished", progress.get("error")
    assert progress["metrics"]["validation"]["accuracy"] is not None

    first_tab.run()  # the page notices the end, shows the result and lists the run
    assert not first_tab.exception, first_tab.exception
    assert any(run_dir.name in s.value and "finished" in s.value for s in first_tab.success)
    assert run_dir.name in first_tab.dataframe[0].value["run"].tolist()

    try:
        first_tab.button(key="make_active_latest").click().run()
        assert active_model_dir() == run_dir
        home = open_page("streamlit_app.py")
        assert any(run_dir.name in caption.value for caption in home.caption)
        assert {metric.label: metric.value for metric in home.metric}["Architecture"] == "seed"
    finally:
        set_active(None)


def test_no_data_path_explains_where_to_get_fer2013(open_page):
    app = open_page(PAGE)
    app.segmented_control(key="data_kind").set_value("Path on the server").run()
    if not app.text_input(key="data_path").value:  # data/ holds no dataset on this machine
        assert any("msambare/fer2013" in info.value and "fer2013.csv" in info.value for info in app.info)
        assert app.button(key="train").disabled
    app.text_input(key="data_path").input("/etc").run()
    assert "outside the dataset folders" in app.error[0].value
    assert app.button(key="train").disabled


def test_cancel_stops_the_run(open_page):
    app = quick_seed_recipe(open_page(PAGE))
    app.slider(key="epochs_seed").set_value(50).run()
    app.button(key="train").click().run()
    run_dir = Path(current_training()["run_dir"])

    app.button(key="cancel").click().run()
    progress = wait_for(run_dir, timeout_s=240)
    assert progress["status"] == "cancelled"
    assert current_training() is None  # the lock is released: the next run may start

    app.run()
    assert any("was cancelled" in warning.value for warning in app.warning)


def test_an_uploaded_dataset_zip_can_be_trained_on(open_page):
    app = open_page(PAGE)
    app.segmented_control(key="data_kind").set_value("Upload a zip or csv").run()
    assert app.button(key="train").disabled  # nothing uploaded yet
    app.file_uploader[0].set_value(("fer2013.zip", SAMPLE_ZIP.read_bytes(), "application/zip")).run()
    assert not app.error and not app.exception
    assert not app.button(key="train").disabled


def labelled_photos_zip() -> bytes:
    """Four portraits in class folders, as a user zips their own photos."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(SAMPLE_ZIP) as sample, zipfile.ZipFile(buffer, "w") as photos:
        for emotion, member in (("happy", HAPPY_FACE), ("surprise", SURPRISED_FACE)):
            for n, side in enumerate((200, 300)):
                photos.writestr(f"{emotion}/{emotion}_{n}.jpg", encode(portrait(sample.read(member), side=side)))
    return buffer.getvalue()


def test_the_active_model_learns_uploaded_photos_and_keeps_a_share_of_itself(open_page):
    app = open_page(PAGE)
    app.segmented_control(key="data_kind").set_value("Bundled sample").run()
    app.radio(key="start").set_value("active").run()
    assert app.slider(key="epochs_vgg_warm").value == 3 and app.slider(key="keep_start").value == FINE_TUNE["keep_start"]
    app.file_uploader(key="photos").set_value(("my-photos.zip", labelled_photos_zip(), "application/zip")).run()
    assert any("Faces to learn: happy 2, surprise 2" in caption.value for caption in app.caption)
    app.slider(key="epochs_vgg_warm").set_value(1)
    app.select_slider(key="batch_vgg_warm").set_value(32)
    app.run()
    assert not app.error and not app.exception, (app.error, app.exception)

    app.button(key="train").click().run()
    run_dir = Path(current_training()["run_dir"])
    progress = wait_for(run_dir, timeout_s=300)
    assert progress["status"] == "finished", progress.get("error")
    metadata = json.loads((run_dir / "metadata.json").read_text())
    assert Path(metadata["initialised_from"]).resolve() == SHIPPED_MODEL_DIR.resolve()
    assert metadata["photos"]["faces"] == 4 and metadata["recipe"]["keep_start"] == FINE_TUNE["keep_start"]
    # A share of the shipped weights averaged with the new ones: neither model's weights alone.
    shipped, learned = (load_model(folder).model.get_weights() for folder in (SHIPPED_MODEL_DIR, run_dir))
    assert any(not np.allclose(a, b) for a, b in zip(shipped, learned))
    try:  # made active, Home says what it learned
        set_active(run_dir)
        home = open_page("streamlit_app.py")
        assert any("fer2013-sample.zip and 4 labelled photos (" in caption.value for caption in home.caption)
    finally:
        set_active(None)


def test_a_photos_upload_that_is_not_a_zip_is_refused_before_training(open_page):
    app = open_page(PAGE)
    app.segmented_control(key="data_kind").set_value("Bundled sample").run()
    app.file_uploader(key="photos").set_value(("photo.zip", b"not a zip at all", "application/zip")).run()
    [refused] = app.error
    assert "not a readable zip" in refused.value and not app.exception
    assert app.button(key="train").disabled
