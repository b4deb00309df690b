"""Train: a real background run on the bundled sample, one run at a time, and making it active."""

from __future__ import annotations

import io
import json
import shutil
import zipfile
from pathlib import Path

import numpy as np

import pytest

from core.background import cancel_training, current_training, wait_for
from core.paths import CACHE_DIR, DATA_DIR, RUNS_DIR, SHIPPED_MODEL_DIR
from core.runs import active_model_dir, load_model, set_active
from core.training import FINE_TUNE
from core.training.jobs import datasets_in
from support.photos import HAPPY_FACE, SAMPLE_ZIP, SURPRISED_FACE, encode, portrait
from support.training import copy_run

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


@pytest.fixture
def operator(monkeypatch):
    """The server was started by its operator (EMOVOICE_OPERATOR=1): its visitors may change the active model."""
    monkeypatch.setenv("EMOVOICE_OPERATOR", "1")


def chart_specs(app) -> list[str]:
    return [chart.proto.spec for chart in app.get("vega_lite_chart")]


def test_a_run_trains_in_the_background_while_a_second_tab_is_told_it_is_busy(open_page, monkeypatch):
    monkeypatch.delenv("EMOVOICE_OPERATOR", raising=False)  # a shared server: visitors, no operator
    first_tab = quick_seed_recipe(open_page(PAGE))
    second_tab = quick_seed_recipe(open_page(PAGE))

    first_tab.button(key="train").click().run()
    assert not first_tab.error, [e.value for e in first_tab.error]
    running = current_training()
    assert running is not None
    run_dir = running.run_dir
    assert any(run_dir.name in m.value for m in first_tab.markdown)  # its progress is shown

    second_tab.button(key="train").click().run()
    [busy] = second_tab.error
    assert "already in progress" in busy.value
    assert any(run_dir.name in m.value for m in second_tab.markdown)  # and the run that is going on
    assert current_training().run_dir == run_dir  # still the one run
    # The second visitor may watch the run, not stop it.
    assert not [button for button in second_tab.button if button.key == "cancel"]
    assert any("only that session, or the server's operator, can cancel it" in c.value for c in second_tab.caption)

    status = wait_for(run_dir, timeout_s=240)
    assert status.status == "finished", status.error
    assert status.accuracy("validation") is not None

    monkeypatch.setenv("EMOVOICE_OPERATOR", "1")  # the operator's server, to make the run active below
    first_tab.run()  # the page notices the end, shows the result and lists the run
    assert not first_tab.exception, first_tab.exception
    assert any(run_dir.name in s.value and "finished" in s.value for s in first_tab.success)
    table = first_tab.dataframe[0].value
    assert run_dir.name in table["run"].tolist()
    # The sample has no test/: its test scores read "–" in the table, as in the metrics, never "None".
    assert "None" not in table.astype(str).to_numpy().ravel().tolist() and "–" in table["test acc."].tolist()
    assert table.columns[2] == "status"
    # One epoch still draws its curves: a point per epoch, whole epoch numbers on the axis.
    specs = chart_specs(first_tab)
    assert specs and all('"point": true' in spec and '"format": "d"' in spec for spec in specs)

    try:
        # One epoch on 140 faces reads near chance: making it active takes a second, deliberate click.
        assert any("near chance" in w.value for w in first_tab.warning)
        assert first_tab.button(key="make_active_latest").disabled
        first_tab.checkbox(key=f"make_active_latest_{run_dir.name}_confirm").check().run()
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
    found = datasets_in(DATA_DIR)
    if found:  # a developer's data/ holds a dataset: it is offered instead
        assert app.text_input(key="data_path").value == found[0] and not app.info
    else:  # a fresh clone's data/ (CI's): where to get FER2013, and nothing to train on yet
        assert any("msambare/fer2013" in info.value and "fer2013.csv" in info.value for info in app.info)
        assert app.button(key="train").disabled
    app.text_input(key="data_path").input("/etc").run()
    assert "outside the dataset folders" in app.error[0].value
    assert app.button(key="train").disabled


def test_cancel_stops_the_run_and_only_its_own_visitor_or_the_operator_may(open_page, monkeypatch):
    monkeypatch.delenv("EMOVOICE_OPERATOR", raising=False)
    app = quick_seed_recipe(open_page(PAGE))
    app.slider(key="epochs_seed").set_value(50).run()
    app.button(key="train").click().run()
    run_dir = current_training().run_dir

    assert not cancel_training(visitor="another visitor")  # B cannot stop A's run
    assert not [button for button in open_page(PAGE).button if button.key == "cancel"]  # nor see Cancel
    assert not (run_dir / "cancel").exists()
    monkeypatch.setenv("EMOVOICE_OPERATOR", "1")  # the operator may, from any tab (A after a reload is a new tab)
    assert [button for button in open_page(PAGE).button if button.key == "cancel"]
    app.button(key="cancel").click().run()
    status = wait_for(run_dir, timeout_s=240)
    assert status.status == "cancelled"
    assert current_training() is None  # the lock is released: the next run may start

    app.run()
    assert any("was cancelled" in warning.value for warning in app.warning)


def test_an_uploaded_dataset_zip_enables_train(open_page):
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


def test_the_active_model_learns_uploaded_photos_and_keeps_a_share_of_itself(open_page, operator):
    app = open_page(PAGE)
    app.segmented_control(key="data_kind").set_value("Bundled sample").run()
    app.radio(key="start").set_value("active").run()
    assert app.slider(key="epochs_vgg_warm").value == FINE_TUNE["epochs"]
    assert app.slider(key="keep_start").value == FINE_TUNE["keep_start"]
    app.file_uploader(key="photos").set_value(("my-photos.zip", labelled_photos_zip(), "application/zip")).run()
    assert any("Faces to learn: happy 2, surprise 2" in caption.value for caption in app.caption)
    app.slider(key="epochs_vgg_warm").set_value(1)
    app.select_slider(key="batch_vgg_warm").set_value(32)
    app.run()
    assert not app.error and not app.exception, (app.error, app.exception)

    assert not list((CACHE_DIR / "uploads").glob("train-*"))  # chosen, not yet used: nothing saved
    app.button(key="train").click().run()
    run_dir = current_training().run_dir
    status = wait_for(run_dir, timeout_s=300)
    assert status.status == "finished", status.error
    assert not list((CACHE_DIR / "uploads").glob("train-*"))  # read by the run, then deleted
    metadata = json.loads((run_dir / "metadata.json").read_text())
    assert Path(metadata["initialised_from"]).resolve() == SHIPPED_MODEL_DIR.resolve()
    assert metadata["photos"]["faces"] == 4 and metadata["recipe"]["keep_start"] == FINE_TUNE["keep_start"]
    # The shipped weights' share averaged with the epoch's (one epoch: the checkpoint holds it as trained).
    from core.tf_quiet import keras

    shipped, learned = (load_model(folder).model.get_weights() for folder in (SHIPPED_MODEL_DIR, run_dir))
    trained = keras.saving.load_model(run_dir / "checkpoint.keras", compile=False).get_weights()
    kept = FINE_TUNE["keep_start"]
    assert any(not np.allclose(a, b) for a, b in zip(shipped, trained))
    for start, epoch, saved in zip(shipped, trained, learned):
        np.testing.assert_allclose(saved, kept * start + (1 - kept) * epoch, rtol=1e-5, atol=1e-6)
    try:  # made active, Home says what it learned
        set_active(run_dir)
        home = open_page("streamlit_app.py")
        assert any("fer2013-train-sample.zip and 4 labelled photos (" in caption.value for caption in home.caption)
    finally:
        set_active(None)


def test_a_photos_upload_that_is_not_a_zip_is_refused_before_training(open_page):
    app = open_page(PAGE)
    app.segmented_control(key="data_kind").set_value("Bundled sample").run()
    app.file_uploader(key="photos").set_value(("holiday photos.zip", b"not a zip at all", "application/zip")).run()
    [refused] = app.error
    assert "holiday photos.zip is not a readable zip" in refused.value and not app.exception  # told by its own name
    assert app.button(key="train").disabled
    assert not (CACHE_DIR / "uploads").exists() or not any((CACHE_DIR / "uploads").iterdir())  # and not kept


def test_choosing_uploads_saves_nothing_until_train_is_pressed(open_page):
    """A visitor who picks files and never trains leaves nothing on the server's disk."""
    app = open_page(PAGE)
    app.segmented_control(key="data_kind").set_value("Upload a zip or csv").run()
    before = sorted(CACHE_DIR.rglob("*")) if CACHE_DIR.exists() else []
    app.file_uploader(key="data_upload").set_value(("fer2013.zip", SAMPLE_ZIP.read_bytes(), "application/zip")).run()
    app.file_uploader(key="photos").set_value(("my-photos.zip", labelled_photos_zip(), "application/zip")).run()
    assert not app.exception and not app.error and not app.button(key="train").disabled
    assert any("Faces to learn" in caption.value for caption in app.caption)
    after = sorted(CACHE_DIR.rglob("*")) if CACHE_DIR.exists() else []
    assert [p for p in after if p not in before and p.is_file()] == []


def test_without_the_operator_no_visitor_changes_the_active_model(open_page, monkeypatch, trained_run):
    listed = copy_run(trained_run, RUNS_DIR / "20990101-000000-seed")
    try:
        monkeypatch.delenv("EMOVOICE_OPERATOR", raising=False)
        app = open_page(PAGE)
        assert app.dataframe  # the run is listed, and "Make active" is not offered: the page says why
        assert not [b for b in app.button if b.key in ("make_active_latest", "make_active_chosen")]
        assert any("EMOVOICE_OPERATOR=1" in c.value for c in app.caption)
        monkeypatch.setenv("EMOVOICE_OPERATOR", "1")  # the same page on the operator's server offers it
        assert [b for b in open_page(PAGE).button if b.key == "make_active_chosen"]
    finally:
        shutil.rmtree(listed)


def test_turning_the_votes_off_and_on_gives_each_recipe_its_own_learning_rate(open_page):
    """On votes the vgg network trains the FER+ recipe (Adam at 0.001); without them the vgg recipe (SGD at 0.02)."""
    app = open_page(PAGE)
    app.segmented_control(key="data_kind").set_value("Bundled sample").run()
    assert app.toggle(key="train_on_votes").value  # its votes lie beside it

    def rate():
        [slider] = [slider for slider in app.select_slider if slider.label == "Learning rate"]
        return slider.value, slider.help

    assert rate() == (0.001, "adam optimizer")
    app.toggle(key="train_on_votes").set_value(False).run()
    assert rate() == (0.02, "sgd optimizer")
    app.toggle(key="train_on_votes").set_value(True).run()
    assert rate() == (0.001, "adam optimizer")


def test_given_fer_plus_votes_the_page_offers_to_train_on_them(open_page):
    from support.training import votes_csv

    app = quick_seed_recipe(open_page(PAGE))
    assert app.toggle(key="train_on_votes").value  # the bundled training sample has its votes beside it
    with zipfile.ZipFile(SAMPLE_ZIP) as sample:
        names = [name for name in sample.namelist() if name.endswith((".jpg", ".png"))]
    emotions = [name.split("/")[1] for name in names]
    votes = votes_csv(names, emotions, ["neutral"] * len(names), [False] * len(names))
    app.segmented_control(key="data_kind").set_value("Upload a zip or csv").run()
    app.file_uploader(key="data_upload").set_value(("faces.zip", SAMPLE_ZIP.read_bytes(), "application/zip")).run()
    assert "train_on_votes" not in [toggle.key for toggle in app.toggle]  # an upload alone: no votes, no offer
    app.file_uploader(key="votes_upload").set_value(("ferplus.csv", votes, "text/csv")).run()
    assert app.toggle(key="train_on_votes").value  # offered, and on
    app.button(key="train").click().run()
    run_dir = current_training().run_dir
    status = wait_for(run_dir, timeout_s=240)
    assert status.status == "finished", status.error
    metadata = json.loads((run_dir / "metadata.json").read_text())
    assert metadata["dataset"]["votes"].endswith("ferplus.csv")
    assert not list((CACHE_DIR / "uploads").glob("train-*"))  # the staged votes went with the run


def test_a_watched_run_deleted_or_damaged_since_is_said_in_one_line(open_page, trained_run, tmp_path):
    from core.background import PROGRESS_FILE
    from core.records import TrainingStatus
    from core.runs import write_json

    app = open_page(PAGE)
    gone = tmp_path / "20990101-000000-vgg"  # the run this tab watched, deleted since
    app.session_state["watched_run"], app.session_state["shown_finished"] = gone, str(gone)
    app.run()
    assert not app.exception and any("can no longer be read: its folder is missing" in w.value for w in app.warning)
    assert not app.success  # not "finished"

    damaged = copy_run(trained_run, tmp_path / "20990101-000001-seed")  # finished, then its metadata hand-edited
    write_json(damaged / PROGRESS_FILE, TrainingStatus("finished").to_json())
    (damaged / "metadata.json").write_text("[]")
    app.session_state["watched_run"], app.session_state["shown_finished"] = damaged, str(damaged)
    app.run()
    assert not app.exception and any("metadata.json is damaged" in e.value for e in app.error)
