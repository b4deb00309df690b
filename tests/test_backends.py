"""Training on any Keras backend: `KERAS_BACKEND=jax python scripts/train.py`, as a GPU user runs it,
rehearsed under JAX on a CPU with two devices (data-parallel, as over two GPUs).

The run must load through the product's TensorFlow Lite path unchanged and give the probabilities JAX
gives for the same faces.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from support.photos import fer_face_array
from core.calibration import apply_temperature
from core.recognise import load_classifier

ROOT = Path(__file__).resolve().parent.parent

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="jax is not installed")]


def _run(args: list[str], env: dict[str, str]) -> str:
    done = subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=600, env=env, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.fixture
def train_zip(tmp_path, sample_zip) -> Path:
    """A FER2013-style zip with a train/ split: the bundled sample faces, twice over."""
    path = tmp_path / "tiny-fer.zip"
    with zipfile.ZipFile(sample_zip) as source, zipfile.ZipFile(path, "w") as target:
        for name in source.namelist():
            if name.endswith((".jpg", ".png")):
                _, emotion, file = name.split("/")
                for copy in (1, 2):
                    target.writestr(f"train/{emotion}/{copy}-{file}", source.read(name))
    return path


# One JAX process trains through the script's main(argv) (what `python scripts/train.py` calls) and then
# answers the faces with the trained model's TTA graph: one JAX start-up instead of two.
JAX_TRAIN_THEN_PREDICT = """
import json, sys
from pathlib import Path
import keras, numpy as np
sys.path.insert(0, ".")
from core.tta import inference_model
from scripts.train import main
data, runs, faces_file, answers_file = sys.argv[1:]
# 252 training faces: batches of 36 leave no smaller last batch for XLA to compile a second time.
assert main(["--data", data, "--epochs", "1", "--batch-size", "36", "--runs-dir", runs, "--quiet"]) == 0
[model_file] = Path(runs).glob("*/model.keras")
model = keras.saving.load_model(model_file)
tta = json.loads((model_file.parent / "metadata.json").read_text())["tta"]
faces = np.load(faces_file).astype("float32")[..., None]
np.save(answers_file, inference_model(model, tta).predict(faces, verbose=0))
"""


def test_train_script_trains_under_jax_on_two_devices_and_the_run_loads_through_tflite(tmp_path, train_zip, fer_faces):
    env = {**os.environ, "KERAS_BACKEND": "jax", "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    faces = np.stack([fer_face_array(face) for emotion in fer_faces for face in fer_faces[emotion][:2]])
    np.save(tmp_path / "faces.npy", faces)
    printed = _run(["-c", JAX_TRAIN_THEN_PREDICT, str(train_zip), str(tmp_path / "runs"), str(tmp_path / "faces.npy"),
                    str(tmp_path / "jax.npy")], env)
    run = Path(json.loads(printed)["run"])
    metadata = json.loads((run / "metadata.json").read_text())
    assert metadata["backend"] == "jax" and metadata["devices"] == 2 and metadata["epochs_trained"] == 1
    assert metadata["dataset"]["validation_images"] > 0 and "validation" in metadata["metrics"]

    classifier = load_classifier(run, quantized=False)  # this process: TensorFlow Lite, float weights
    expected = apply_temperature(np.load(tmp_path / "jax.npy"), classifier.temperature)
    assert np.allclose(classifier.probabilities(faces), expected, atol=1e-5)
