"""The terminal interface, as independent scoring and users run it."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from photos import PROJECT_ROOT as ROOT

SCRIPTS = ["build_dataset", "train", "evaluate", "predict", "build_voice_bank"]


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
    again = json.loads(run("scripts/predict.py", fer_photo, "--seed", "1", "--json").stdout)
    assert again["voice"] == answer["voice"]


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


def test_evaluate_refuses_a_missing_dataset():
    result = run("scripts/evaluate.py", "--data", "/nonexistent/fer.zip", "--json", check=False)
    assert result.returncode == 2 and "does not exist" in result.stderr and "Traceback" not in result.stderr


def test_build_dataset_reports_counts(sample_zip, tmp_path):
    report = json.loads(run("scripts/build_dataset.py", sample_zip, "--cache-dir", tmp_path, "--json").stdout)
    assert report["counts"]["test"]["happy"] == 20
