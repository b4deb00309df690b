"""The terminal interface, as independent scoring and users run it.

Each script is called in-process through its `main(argv)` (one TensorFlow start-up for the whole session), and
started once as a user types it, from a shell: `--help`, which must not wait for TensorFlow.
"""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.paths import SHIPPED_MODEL_DIR
from core.records import view_count
from core.voices import STRONG_CONFIDENCE
from support.photos import PROJECT_ROOT, SAMPLE_ZIP, encode, portrait
from support.scripts import SCRIPTS_DIR, error_lines, run_main, run_process
from support.training import sample_with_votes_as_both_splits, votes_csv

SCRIPTS = sorted(path.stem for path in SCRIPTS_DIR.glob("*.py"))
# What a script must not import before it has read its arguments: seconds of start-up for a typo or --help.
HEAVY_MODULES = ("tensorflow", "keras", "jax", "ray", "onnxruntime")


@pytest.mark.parametrize("script", SCRIPTS)
def test_every_script_starts_from_a_shell_and_reads_its_arguments_before_heavy_imports(script):
    started = run_process("-X", "importtime", f"scripts/{script}.py", "--help", timeout_s=120)
    assert started.returncode == 0, started.stderr[-2000:]
    assert "usage:" in started.stdout
    imported = {line.rsplit("|", 1)[-1].strip().split(".")[0] for line in started.stderr.splitlines()
                if line.startswith("import time:")}
    assert not imported & set(HEAVY_MODULES), f"{script} --help imports {sorted(imported & set(HEAVY_MODULES))}"


def output(capsys) -> str:
    return capsys.readouterr().out


@pytest.fixture(scope="module")
def fer_photo(tmp_path_factory, fer_face_jpeg) -> Path:
    path = tmp_path_factory.mktemp("photos") / "face.jpg"
    path.write_bytes(fer_face_jpeg)
    return path


def test_predict_from_a_shell_names_the_face_and_the_voice(fer_photo):
    """The README's command, as a user types it."""
    answered = run_process("scripts/predict.py", fer_photo)
    assert answered.returncode == 0, answered.stderr[-2000:]
    assert answered.stdout.startswith("face 1 at") and "voice:" in answered.stdout


def test_predict_json_names_faces_and_a_voice(fer_photo, capsys):
    assert run_main("predict", fer_photo, "--seed", "1", "--json") == 0
    answer = json.loads(output(capsys))
    face = answer["faces"][0]
    assert face["emotion"] in face["probabilities"] and len(face["box"]) == 4
    assert answer["voice"]["emotion"] == face["emotion"]
    assert Path(answer["voice"]["path"]).is_file()
    # Strong when the model is sure of the face; the speaker and gender come from the RAVDESS name.
    strong = face["probabilities"][face["emotion"]] >= STRONG_CONFIDENCE
    assert answer["voice"]["intensity"] == ("strong" if strong and face["emotion"] != "neutral" else "normal")
    assert answer["voice"]["gender"] in answer["voice"]["speaker"]
    assert run_main("predict", fer_photo, "--seed", "1", "--json") == 0
    assert json.loads(output(capsys))["voice"] == answer["voice"]


def test_predict_honours_the_gender_asked_for(fer_photo, capsys):
    for gender in ("female", "male"):
        assert run_main("predict", fer_photo, "--gender", gender, "--json") == 0
        assert json.loads(output(capsys))["voice"]["gender"] == gender


def test_predict_explain_writes_the_photo_with_heatmaps(tmp_path, capsys, face):
    photo = tmp_path / "portrait.png"
    photo.write_bytes(encode(portrait(face), "PNG"))
    out = tmp_path / "why.png"
    assert run_main("predict", photo, "--explain", out, "--json") == 0
    answer = json.loads(output(capsys))
    assert answer["explanation"] == str(out)
    drawn = np.asarray(Image.open(out).convert("RGB")).astype(int)
    assert drawn.shape[:2] == (480, 640)
    x, y, w, h = answer["faces"][0]["box"]
    colour = np.abs(drawn - drawn.mean(axis=-1, keepdims=True)).sum(axis=-1) > 30  # the gray photo has none
    assert colour[y : y + h, x : x + w].mean() > 0.5  # the heatmap covers the face
    assert not colour[:, : x - 40].any()  # and nothing left of it
    assert not list(tmp_path.glob(".*partial*"))  # written atomically: no temporary file left behind
    assert run_main("predict", photo, "--explain", tmp_path / "why.txt") == 2
    assert "--explain" in capsys.readouterr().err


@pytest.mark.parametrize("content", [b"", b"plain text, not a photo", None], ids=["empty", "text", "missing"])
def test_predict_bad_photo_is_one_line_without_traceback(tmp_path, content, capsys):
    photo = tmp_path / "bad.jpg"
    if content is not None:
        photo.write_bytes(content)
    assert run_main("predict", photo) == 2
    assert len(error_lines(capsys.readouterr().err)) == 1


def test_evaluate_json_contract(sample_zip, capsys):
    assert run_main("evaluate", "--data", sample_zip, "--json") == 0
    report = json.loads(output(capsys))
    assert set(report) >= {"n", "accuracy", "per_class", "confusion_matrix", "classes", "accuracy_5class", "n_5class"}
    assert report["n"] == 140 and report["n_5class"] == 100
    assert sum(map(sum, report["confusion_matrix"])) == 140
    assert set(report["per_class"]) == set(report["classes"])
    # which inference options produced these scores: the shipped model's own views and temperature, as saved
    shipped = json.loads((SHIPPED_MODEL_DIR / "metadata.json").read_text())
    assert report["inference"] == {"tta": shipped["tta"], "views": view_count(shipped["tta"]), "models": 1,
                                   "temperature": shipped["temperature"], "runtime": "TensorFlow Lite, 8-bit weights"}


EVALUATE_THEN_SAY_IF_TENSORFLOW_LOADED = """
import runpy, sys
sys.argv = ["scripts/evaluate.py", "--data", sys.argv[1]]
try:
    runpy.run_path("scripts/evaluate.py", run_name="__main__")
finally:
    print("tensorflow loaded:", "tensorflow" in sys.modules)
"""


def test_evaluate_starts_without_tensorflow_and_prints_nothing_but_its_report(sample_zip):
    """The shipped model's converted graph answers alone: loading TensorFlow cost a terminal evaluation ten
    seconds here. (A real process: in-process, TensorFlow was imported long before.)"""
    scored = run_process("-c", EVALUATE_THEN_SAY_IF_TENSORFLOW_LOADED, sample_zip)
    assert scored.returncode == 0, scored.stderr[-2000:]
    assert scored.stderr == "" and "accuracy" in scored.stdout
    assert scored.stdout.splitlines()[-1] == "tensorflow loaded: False"


def test_evaluate_compares_two_models_on_the_faces_both_know(sample_zip, capsys):
    assert run_main("evaluate", "--data", sample_zip, "--compare", PROJECT_ROOT / "models" / "seed", "--json") == 0
    report = json.loads(output(capsys))
    comparison = report["comparison"]
    assert comparison["classes"] == ["angry", "fear", "happy", "sad", "surprise"] and comparison["n"] == 100
    assert "disgust, neutral left out" in comparison["note"]
    assert comparison["accuracy"]["a"] == report["accuracy_5class"]  # A on the shared five is its 5-class score
    accuracy = comparison["accuracy"]
    assert accuracy["difference"] == pytest.approx(accuracy["b"] - accuracy["a"], abs=1e-4)
    assert sum(comparison["outcomes"].values()) == 100
    assert comparison["disagreements"] >= comparison["outcomes"]["only_a_right"] + comparison["outcomes"]["only_b_right"]
    happy = comparison["per_class"]["happy"]
    assert happy["recall_difference"] == pytest.approx(happy["recall_b"] - happy["recall_a"], abs=1e-4)
    for matrix in comparison["confusion_matrix"].values():
        assert np.array(matrix).shape == (5, 5) and np.array(matrix).sum() == 100
    assert report["calibration"]["temperature"] > 0 and 0 <= report["calibration"]["ece_after"] <= 1


def test_evaluate_refuses_a_missing_dataset(capsys):
    assert run_main("evaluate", "--data", "/nonexistent/fer.zip", "--json") == 2
    [line] = error_lines(capsys.readouterr().err)
    assert "does not exist" in line


def test_calibrate_fits_on_the_validation_split_and_refuses_data_without_train(tmp_path, sample_zip, capsys):
    model = tmp_path / "seed"
    shutil.copytree(PROJECT_ROOT / "models" / "seed", model)
    data = tmp_path / "faces.zip"  # the sample's test faces, posing as a train/ split
    with zipfile.ZipFile(sample_zip) as source, zipfile.ZipFile(data, "w") as target:
        for name in source.namelist():
            target.writestr(name.replace("test/", "train/", 1), source.read(name))
    assert run_main("calibrate", "--model", model, "--data", data, "--json") == 0
    report = json.loads(output(capsys))
    assert report["n"] == 10  # 10% of the 100 faces of the seed's five emotions
    assert json.loads((model / "metadata.json").read_text())["temperature"] == report["temperature"]
    assert run_main("calibrate", "--model", model, "--data", sample_zip) == 2
    [line] = error_lines(capsys.readouterr().err)
    assert "no train/ split or class folders" in line


def test_calibrate_fits_a_voted_dataset_against_the_taggers_majority_as_training_does(tmp_path, sample_zip, capsys):
    """A model trained on votes is calibrated to their majority: here every face's majority is happy,
    whatever its folder says, so the fit must be the one against "happy" for every validation face. A model
    trained on labels is calibrated to the labels, whatever votes lie beside the data."""
    from core.calibration import fit_temperature
    from core.data import load_dataset
    from core.recognise import load_classifier
    from core.training import split_faces

    model = tmp_path / "seed"
    shutil.copytree(PROJECT_ROOT / "models" / "seed", model)
    data = tmp_path / "faces.zip"
    with zipfile.ZipFile(sample_zip) as source, zipfile.ZipFile(data, "w") as target:
        names = [name.replace("test/", "train/", 1) for name in source.namelist() if name.endswith((".jpg", ".png"))]
        for name in names:
            target.writestr(name, source.read(name.replace("train/", "test/", 1)))
    (tmp_path / "ferplus.csv").write_bytes(votes_csv(names, ["happy"] * len(names), ["sad"] * len(names), [False] * len(names)))
    assert run_main("calibrate", "--model", model, "--data", data) == 0  # the seed model trained on labels
    assert "against their labels" in output(capsys)
    metadata = json.loads((model / "metadata.json").read_text())
    metadata["dataset"]["votes"] = "/another/machine/ferplus.csv"  # trained on votes elsewhere
    (model / "metadata.json").write_text(json.dumps(metadata))
    assert run_main("calibrate", "--model", model, "--data", data) == 0
    assert "against their FER+ majority (ferplus.csv)" in output(capsys)

    classes = load_classifier(model).classes
    validation = split_faces(load_dataset(data, cache_dir=tmp_path / "cache"), classes)[1]
    raw = load_classifier(model).raw_probabilities(validation.images)
    everyone_says_happy = np.full(len(raw), classes.index("happy"))
    stored = json.loads((model / "metadata.json").read_text())
    assert stored["calibration"]["n"] == len(raw) == 10
    assert stored["temperature"] == pytest.approx(fit_temperature(raw, everyone_says_happy), rel=1e-3)
    assert stored["temperature"] != pytest.approx(fit_temperature(raw, validation.labels), rel=1e-2)


def test_ensemble_scores_against_the_taggers_majority_when_votes_lie_beside_the_data(tmp_path, sample_zip, capsys):
    data = sample_with_votes_as_both_splits(sample_zip, tmp_path)
    votes = (tmp_path / "ferplus.csv").read_text().splitlines()
    seed = PROJECT_ROOT / "models" / "seed"
    assert run_main("ensemble", seed, seed, "--data", data, "--out", tmp_path / "ensemble") == 0
    metadata = json.loads((tmp_path / "ensemble" / "metadata.json").read_text())
    assert metadata["dataset"]["votes"].endswith("ferplus.csv")
    assert 0 < metadata["metrics"]["test_ferplus"]["n"] < metadata["metrics"]["test"]["n"]  # ties and the like left out
    (tmp_path / "elsewhere.csv").write_text(votes[0] + "\nother/happy/x.png,0,10,0,0,0,0,0,0,0,0\n")
    assert run_main("ensemble", seed, seed, "--data", data, "--out", tmp_path / "e2", "--votes", tmp_path / "elsewhere.csv") == 2
    [line] = error_lines(capsys.readouterr().err)
    assert "none of the faces" in line


def test_train_refuses_votes_that_name_none_of_the_faces_before_training(tmp_path, sample_zip, capsys):
    """Votes given, or a votes recipe, would otherwise train on FER2013's labels and say nothing."""
    data = sample_with_votes_as_both_splits(sample_zip, tmp_path)
    (tmp_path / "elsewhere.csv").write_text((tmp_path / "ferplus.csv").read_text().splitlines()[0]
                                            + "\nother/happy/x.png,0,10,0,0,0,0,0,0,0,0\n")
    runs = tmp_path / "runs"
    assert run_main("train", "--data", data, "--recipe", "ferplus", "--votes", tmp_path / "elsewhere.csv",
                    "--runs-dir", runs, "--quiet") == 2
    [line] = error_lines(capsys.readouterr().err)
    assert "none of the faces" in line and not runs.exists()

    # Found beside the data, unasked (a ferplus.csv left beside another dataset): warned, and the labels train.
    (tmp_path / "elsewhere.csv").replace(tmp_path / "ferplus.csv")
    assert run_main("train", "--data", data, "--arch", "seed", "--epochs", "1", "--runs-dir", runs, "--quiet") == 0
    assert "none of the faces" in capsys.readouterr().err
    [run] = runs.iterdir()
    assert json.loads((run / "metadata.json").read_text())["dataset"]["votes"] is None


@pytest.mark.slow
def test_a_run_stopped_by_sigterm_is_not_made_active(tmp_path):
    """`train.py --activate` stopped by a service manager keeps its best epoch so far, and does not serve it."""
    import signal
    import subprocess
    import sys
    import time

    from core.paths import RUNS_DIR
    from core.runs import active_model_dir, set_active

    def runs() -> set[Path]:
        return {folder for folder in RUNS_DIR.glob("*") if folder.is_dir()}

    before = runs()
    process = subprocess.Popen([sys.executable, "scripts/train.py", "--data", SAMPLE_ZIP, "--arch", "seed", "--epochs",
                                "200", "--batch-size", "16", "--activate", "--quiet"], cwd=PROJECT_ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not any((run / "state.json").exists() for run in runs() - before):
        assert process.poll() is None and time.monotonic() < deadline, "no epoch was saved"
        time.sleep(0.1)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    [run] = runs() - before
    try:
        assert process.returncode == 0 and "warning: not made active: the run is cancelled" in stderr
        assert "absl" not in stderr and "cuda" not in stderr  # TensorFlow's start-up lines are kept out
        assert active_model_dir() != run
    finally:
        set_active(None)
        shutil.rmtree(run)


def test_train_refuses_missing_photos_in_one_line(tmp_path, capsys):
    runs = tmp_path / "runs"
    assert run_main("train", "--data", SAMPLE_ZIP, "--photos", tmp_path / "nowhere.zip", "--runs-dir", runs,
                    "--quiet") == 2
    [line] = error_lines(capsys.readouterr().err)
    assert "nowhere.zip does not exist" in line
    assert not runs.exists()


def test_train_refuses_to_activate_a_run_the_product_would_not_find_before_training(tmp_path, capsys):
    """The product reads its active run from runs/: one written elsewhere could never become active."""
    runs = tmp_path / "runs"
    assert run_main("train", "--data", SAMPLE_ZIP, "--arch", "seed", "--runs-dir", runs, "--activate", "--quiet") == 2
    [line] = error_lines(capsys.readouterr().err)
    assert "--activate makes a run in" in line and str(runs) in line
    assert not runs.exists()  # refused before any training


@pytest.mark.parametrize("arguments, message", [
    ((), "--keep-start needs --init MODEL"),
    (("--init", "models/emovoice-vgg", "--keep-start", "1"), "--keep-start must be at least 0 and below 1"),
])
def test_train_refuses_a_share_of_no_model_or_all_of_it(tmp_path, arguments, message, capsys):
    runs = tmp_path / "runs"
    assert run_main("train", "--data", SAMPLE_ZIP, "--keep-start", "0.5", *arguments, "--runs-dir", runs,
                    "--quiet") == 2
    assert message in capsys.readouterr().err
    assert not runs.exists()


def test_build_dataset_reports_counts(sample_zip, tmp_path, capsys):
    assert run_main("build_dataset", sample_zip, "--cache-dir", tmp_path, "--json") == 0
    assert json.loads(output(capsys))["counts"]["test"]["happy"] == 20

