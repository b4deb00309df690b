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
TRAIN_SCRIPT = ROOT / "scripts" / "train.py"

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


def test_train_script_trains_under_jax_on_two_devices_and_the_run_loads_through_tflite(tmp_path, train_zip, fer_faces):
    env = {**os.environ, "KERAS_BACKEND": "jax", "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    printed = _run([str(TRAIN_SCRIPT), "--data", str(train_zip), "--epochs", "1", "--batch-size", "32",
                    "--runs-dir", str(tmp_path / "runs"), "--quiet"], env)
    run = Path(json.loads(printed)["run"])
    metadata = json.loads((run / "metadata.json").read_text())
    assert metadata["backend"] == "jax" and metadata["devices"] == 2 and metadata["epochs_trained"] == 1
    assert metadata["dataset"]["validation_images"] > 0 and "validation" in metadata["metrics"]

    faces = np.stack([fer_face_array(face) for emotion in fer_faces for face in fer_faces[emotion][:2]])
    np.save(tmp_path / "faces.npy", faces)
    _run(["-c", "import sys, keras, numpy as np; sys.path.insert(0, '.');"
          "from core.tta import inference_model;"
          f"model = keras.saving.load_model('{run}/model.keras');"
          f"faces = np.load('{tmp_path}/faces.npy').astype('float32')[..., None];"
          f"np.save('{tmp_path}/jax.npy', inference_model(model, '{metadata['tta']}').predict(faces, verbose=0))"], env)

    classifier = load_classifier(run, quantized=False)  # this process: TensorFlow Lite, float weights
    expected = apply_temperature(np.load(tmp_path / "jax.npy"), classifier.temperature)
    assert np.allclose(classifier.probabilities(faces), expected, atol=1e-5)
