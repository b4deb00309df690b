"""The terminal interface, as independent scoring and users run it."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.paths import SHIPPED_MODEL_DIR
from core.runs import read_metadata
from core.tta import view_count
from core.voices import STRONG_CONFIDENCE
from photos import HAPPY_FACE, SAMPLE_ZIP, encode, portrait
from photos import PROJECT_ROOT as ROOT

SCRIPTS = ["build_dataset", "train", "evaluate", "predict", "build_voice_bank", "calibrate"]


def run(*args, check=True) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, *map(str, args)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    if check and result.returncode != 0:
        raise AssertionError(f"exit {result.returncode}: {result.stderr[-2000:]}")
    return result


@pytest.mark.parametrize("script", SCRIPTS)
def test_every_script_has_help(script):
    assert "usage:" in run(f"scripts/{script}.py", "--help").stdout


@pytest.fixture(scope="module")
def fer_photo(tmp_path_factory) -> Path:
    with zipfile.ZipFile(ROOT / "samples" / "fer2013-sample.zip") as archive:
        name = next(n for n in archive.namelist() if n.startswith("test/happy/"))
        path = tmp_path_factory.mktemp("photos") / "face.jpg"
        path.write_bytes(archive.read(name))
    return path


def test_predict_json_names_faces_and_a_voice(fer_photo):
    answer = json.loads(run("scripts/predict.py", fer_photo, "--seed", "1", "--json").stdout)
    face = answer["faces"][0]
    assert face["emotion"] in face["probabilities"] and len(face["box"]) == 4
    assert answer["voice"]["emotion"] == face["emotion"]
    assert Path(answer["voice"]["path"]).is_file()
    # Strong when the model is sure of the face; the speaker and gender come from the RAVDESS name.
    strong = face["probabilities"][face["emotion"]] >= STRONG_CONFIDENCE
    assert answer["voice"]["intensity"] == ("strong" if strong and face["emotion"] != "neutral" else "normal")
    assert answer["voice"]["gender"] in answer["voice"]["speaker"]
    again = json.loads(run("scripts/predict.py", fer_photo, "--seed", "1", "--json").stdout)
    assert again["voice"] == answer["voice"]


def test_predict_honours_the_gender_asked_for(fer_photo):
    for gender in ("female", "male"):
        answer = json.loads(run("scripts/predict.py", fer_photo, "--gender", gender, "--json").stdout)
        assert answer["voice"]["gender"] == gender


def test_predict_explain_writes_the_photo_with_heatmaps(tmp_path):
    photo = tmp_path / "portrait.png"
    with zipfile.ZipFile(SAMPLE_ZIP) as archive:
        photo.write_bytes(encode(portrait(archive.read(HAPPY_FACE)), "PNG"))
    out = tmp_path / "why.png"
    answer = json.loads(run("scripts/predict.py", photo, "--explain", out, "--json").stdout)
    assert answer["explanation"] == str(out)
    drawn = np.asarray(Image.open(out).convert("RGB")).astype(int)
    assert drawn.shape[:2] == (480, 640)
    x, y, w, h = answer["faces"][0]["box"]
    colour = np.abs(drawn - drawn.mean(axis=-1, keepdims=True)).sum(axis=-1) > 30  # the gray photo has none
    assert colour[y : y + h, x : x + w].mean() > 0.5  # the heatmap covers the face
    assert not colour[:, : x - 40].any()  # and nothing left of it
    assert not list(tmp_path.glob(".*partial*"))  # written atomically: no temporary file left behind
    bad = run("scripts/predict.py", photo, "--explain", tmp_path / "why.txt", check=False)
    assert bad.returncode == 2 and "--explain" in bad.stderr and "Traceback" not in bad.stderr


def test_predict_human_output(fer_photo):
    out = run("scripts/predict.py", fer_photo).stdout
    assert out.startswith("face 1 at") and "voice:" in out


@pytest.mark.parametrize("content", [b"", b"plain text, not a photo", None])
def test_predict_bad_photo_is_one_line_without_traceback(tmp_path, content):
    photo = tmp_path / "bad.jpg"
    if content is not None:
        photo.write_bytes(content)
    result = run("scripts/predict.py", photo, check=False)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1


def test_evaluate_json_contract(sample_zip):
    report = json.loads(run("scripts/evaluate.py", "--data", sample_zip, "--json").stdout)
    assert set(report) >= {"n", "accuracy", "per_class", "confusion_matrix", "classes", "accuracy_5class", "n_5class"}
    assert report["n"] == 140 and report["n_5class"] == 100
    assert sum(map(sum, report["confusion_matrix"])) == 140
    assert set(report["per_class"]) == set(report["classes"])
    # which inference options produced these scores: the shipped model's own views and temperature
    shipped = read_metadata(SHIPPED_MODEL_DIR)
    assert report["inference"] == {"tta": shipped["tta"], "views": view_count(shipped["tta"]), "models": 1,
                                   "temperature": shipped["temperature"], "runtime": "TensorFlow Lite, 8-bit weights"}


def test_evaluate_compares_two_models_on_the_faces_both_know(sample_zip):
    report = json.loads(run("scripts/evaluate.py", "--data", sample_zip, "--compare", "models/seed", "--json").stdout)
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


def test_calibrate_fits_on_the_validation_split_and_refuses_data_without_train(tmp_path, sample_zip):
    model = tmp_path / "seed"
    shutil.copytree(ROOT / "models" / "seed", model)
    data = tmp_path / "faces.zip"  # the sample's test faces, posing as a train/ split
    with zipfile.ZipFile(sample_zip) as source, zipfile.ZipFile(data, "w") as target:
        for name in source.namelist():
            target.writestr(name.replace("test/", "train/", 1), source.read(name))
    report = json.loads(run("scripts/calibrate.py", "--model", model, "--data", data, "--json").stdout)
    assert report["n"] == 10  # 10% of the 100 faces of the seed's five emotions
    assert json.loads((model / "metadata.json").read_text())["temperature"] == report["temperature"]
    refused = run("scripts/calibrate.py", "--model", model, "--data", sample_zip, check=False)
    assert refused.returncode == 2 and "no 'train' split" in refused.stderr and "Traceback" not in refused.stderr


def test_train_refuses_missing_photos_in_one_line(tmp_path):
    result = run("scripts/train.py", "--data", SAMPLE_ZIP, "--photos", tmp_path / "nowhere.zip", "--quiet", check=False)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("error:") and "nowhere.zip does not exist" in result.stderr
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("arguments, message", [
    ((), "--keep-start needs --init MODEL"),
    (("--init", "models/emovoice-vgg", "--keep-start", "1"), "--keep-start must be at least 0 and below 1"),
])
def test_train_refuses_a_share_of_no_model_or_all_of_it(tmp_path, arguments, message):
    result = run("scripts/train.py", "--data", SAMPLE_ZIP, "--keep-start", "0.5", *arguments,
                 "--runs-dir", tmp_path / "runs", "--quiet", check=False)
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "runs").exists()


def test_photo_folds_refuses_a_model_already_taught_the_photos(tmp_path):
    """Scored on photos it learned, a model would look better than it is on people it never saw."""
    from core.data import source_fingerprint

    photos = tmp_path / "photos"
    (photos / "happy").mkdir(parents=True)
    with zipfile.ZipFile(SAMPLE_ZIP) as sample:
        (photos / "happy" / "Ann_Smith_0001.jpg").write_bytes(encode(portrait(sample.read(HAPPY_FACE))))
    model = tmp_path / "taught"
    shutil.copytree(ROOT / "models" / "seed", model)
    metadata = read_metadata(model)
    (model / "metadata.json").write_text(json.dumps({**metadata, "photos": {"fingerprint": source_fingerprint(photos)}}))
    result = run("benchmarks/photo_folds.py", "--data", SAMPLE_ZIP, "--photos", photos, "--model", model, check=False)
    assert result.returncode == 2 and "was taught these photos" in result.stderr and "Traceback" not in result.stderr


def test_evaluate_refuses_a_missing_dataset():
    result = run("scripts/evaluate.py", "--data", "/nonexistent/fer.zip", "--json", check=False)
    assert result.returncode == 2 and "does not exist" in result.stderr and "Traceback" not in result.stderr


def test_build_dataset_reports_counts(sample_zip, tmp_path):
    report = json.loads(run("scripts/build_dataset.py", sample_zip, "--cache-dir", tmp_path, "--json").stdout)
    assert report["counts"]["test"]["happy"] == 20
