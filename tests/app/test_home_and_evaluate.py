"""Home and Evaluate: the active model, the voice bank, and a model's scores on real FER2013 faces."""

from __future__ import annotations

import zipfile

from core.emotions import EMOTIONS


def test_home_shows_the_active_model_the_voice_bank_and_the_way_in(open_page):
    app = open_page("streamlit_app.py")
    metrics = {metric.label: metric.value for metric in app.metric}
    assert metrics["Architecture"] == "vgg" and metrics["Emotions"] == "7"
    assert metrics["Agrees with people"].endswith("%")  # against FER+'s majority on test/, from its metadata
    assert metrics["Test accuracy"].endswith("%")
    [voices] = app.dataframe
    assert len(voices.value) == len(EMOTIONS) and (voices.value["clips"] > 0).all()
    links = {link.proto.page for link in app.get("page_link")}
    assert {"Train", "Evaluate", "Try_It"} <= links  # the URL paths of pages/1_Train.py etc.


def test_evaluate_scores_the_shipped_model_on_the_bundled_sample(open_page):
    app = open_page("pages/2_Evaluate.py")
    metrics = {metric.label: metric.value for metric in app.metric}
    assert metrics["Faces scored"] == "140"  # 20 per emotion
    assert any(c.value.startswith("Inference: ") and "1 model" in c.value for c in app.caption)  # what scored it
    assert metrics["Accuracy, 7 emotions"].endswith("%")
    assert metrics["Accuracy on the seed's 5 emotions"].endswith("%")
    tables = [frame.value for frame in app.dataframe]
    # The model's emotions, then the same against the FER+ majority (the sample's votes), then the seed's five.
    assert [list(t.index) for t in tables] == [list(EMOTIONS), list(EMOTIONS), ["angry", "fear", "happy", "sad", "surprise"]]
    assert metrics["Agrees with people (FER+)"].endswith("%") and tables[1]["support"].sum() == 140
    assert list(tables[0].columns) == ["precision", "recall", "f1", "support"]
    assert tables[0]["support"].sum() == 140
    mistakes = [caption for image in app.image for caption in image.captions if "→" in caption]
    wrong = int(round(140 * (1 - float(metrics["Accuracy, 7 emotions"].rstrip("%")) / 100)))
    assert len(mistakes) == min(24, wrong)  # the grid of misclassified faces: "true → predicted (p%)"

    app.toggle(key="normalised").set_value(False).run()  # counts instead of shares
    assert not app.exception


def mistake_images(app) -> list[str]:
    """The URLs of the wrong answers' faces (their captions read "true → predicted"): a new picture, a new URL."""
    return [url for image in app.image for url, caption in zip(image.value, image.captions) if "→" in caption]


def test_evaluate_shows_calibration_heatmaps_on_mistakes_and_a_side_by_side(open_page):
    app = open_page("pages/2_Evaluate.py")
    metrics = {metric.label: metric.value for metric in app.metric}
    assert 0 <= float(metrics["ECE after"]) <= 1 and 0 <= float(metrics["ECE before"]) <= 1
    assert any("T = " in caption.value for caption in app.caption)  # the model's fitted temperature, named

    plain = mistake_images(app)
    app.toggle(key="explain_mistakes").set_value(True).run()
    assert not app.exception
    assert any("what made the model say" in caption.value for caption in app.caption)
    heated = mistake_images(app)
    assert len(heated) == len(plain) == 24 and not set(heated) & set(plain)  # the grid, every face now with heat

    app.selectbox(key="compare").set_value("Seed model (models/seed)").run()
    assert not app.exception
    metrics = {metric.label: metric.value for metric in app.metric}
    assert metrics["Accuracy A, emovoice-vgg"] == metrics["Accuracy on the seed's 5 emotions"]
    assert metrics["Accuracy B, seed"].endswith("%")
    different, total = metrics["Faces they answer differently"].split(" of ")
    assert total == "100"  # the 100 faces of the five emotions both models know
    assert any("disgust, neutral left out" in caption.value for caption in app.caption)
    comparison = app.dataframe[-1].value
    assert list(comparison.index) == ["angry", "fear", "happy", "sad", "surprise"]
    assert {"recall A", "recall B", "recall B-A", "precision B-A"} <= set(comparison.columns)
    disagreeing = [c for image in app.image for c in image.captions if "· A:" in c]
    assert len(disagreeing) == min(24, int(different))


def test_evaluate_refuses_paths_outside_the_data_folders(open_page):
    app = open_page("pages/2_Evaluate.py")
    app.segmented_control(key="data_kind").set_value("Path on the server").run()
    assert app.info  # asks for a path
    app.text_input(key="data_path").input("../../etc/passwd").run()
    assert "outside the dataset folders" in app.error[0].value
    app.text_input(key="data_path").input("missing.zip").run()
    assert "does not exist" in app.error[0].value
    assert not app.exception


def test_votes_put_beside_a_dataset_and_a_face_added_to_it_are_scored_on_the_next_run(open_page, sample_zip, tmp_path,
                                                                                      monkeypatch):
    """The page's own advice ("put ferplus.csv beside the dataset") works without a restart, and so does
    a face added deep in a folder dataset's class folders."""
    import shutil

    monkeypatch.setenv("EMOVOICE_DATA_ROOTS", str(tmp_path))
    shutil.copy(sample_zip, tmp_path / "mine.zip")
    app = open_page("pages/2_Evaluate.py")
    app.segmented_control(key="data_kind").set_value("Path on the server").run()
    app.text_input(key="data_path").input(str(tmp_path / "mine.zip")).run()
    assert not app.exception and any("have no FER+ votes" in info.value for info in app.info)
    shutil.copy(sample_zip.parent / "ferplus.csv", tmp_path / "ferplus.csv")
    app.run()
    assert "Agrees with people (FER+)" in {metric.label for metric in app.metric}

    folder = tmp_path / "faces"
    with zipfile.ZipFile(sample_zip) as archive:
        archive.extractall(folder, [name for name in archive.namelist() if name.startswith("test/")])
    app.text_input(key="data_path").input(str(folder)).run()
    assert {metric.label: metric.value for metric in app.metric}["Faces scored"] == "140"
    happy = folder / "test" / "happy"
    shutil.copy(next(happy.iterdir()), happy / "one-more.png")
    app.run()
    assert {metric.label: metric.value for metric in app.metric}["Faces scored"] == "141"


def test_a_visitors_model_choice_holds_when_the_operator_changes_the_active_model(open_page, trained_run):
    import shutil

    from core.paths import RUNS_DIR
    from core.runs import set_active

    run = RUNS_DIR / "20990101-000000-seed"
    shutil.copytree(trained_run, run)
    try:
        app = open_page("pages/2_Evaluate.py")
        [label] = [option for option in app.selectbox(key="model").options if run.name in option]
        app.selectbox(key="model").set_value(label).run()
        set_active(run)  # meanwhile, from the Train page or a terminal
        app.toggle(key="normalised").set_value(False).run()
        assert app.selectbox(key="model").value == label and not app.exception
        assert any(option.endswith("· active") and run.name in option for option in app.selectbox(key="model").options)
    finally:
        set_active(None)
        shutil.rmtree(run)
