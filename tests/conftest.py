"""Shared fixtures: a handful of real FER2013 faces, one trained run, and scratch folders for runs and caches."""

from __future__ import annotations

import os
import shutil
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pytest

# Before core is imported anywhere: runs and caches go to a throwaway folder, so the tests never
# touch the real runs/ folder, the active-model choice or the user's dataset cache.
SCRATCH = Path(tempfile.mkdtemp(prefix="emovoice-tests-"))
os.environ["EMOVOICE_RUNS"] = str(SCRATCH / "runs")
os.environ["EMOVOICE_CACHE"] = str(SCRATCH / "cache")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

# Before anything loads TensorFlow, as streamlit_app.py does: the Live page's WebRTC brings pylibsrtp, which
# segfaults when first imported into a process that already holds TensorFlow, and the tests run the Home
# page (which imports it) in this process after other tests have loaded models.
import pylibsrtp  # noqa: E402, F401

from support.photos import HAPPY_FACE, SAMPLE_ZIP, fer_face_array  # noqa: E402
from support.training import sample, trained_run  # noqa: E402, F401  (fixtures for every test file)


@pytest.fixture(scope="session", autouse=True)
def scratch_folder():
    yield SCRATCH
    from core.background import cancel_training, current_training, wait_for

    running = current_training()  # a failed test may leave a worker behind: stop it, then clean up
    if running is not None:
        cancel_training()
        wait_for(running.run_dir, timeout_s=60)
    shutil.rmtree(SCRATCH, ignore_errors=True)


@pytest.fixture(scope="session")
def sample_zip() -> Path:
    return SAMPLE_ZIP


@pytest.fixture(scope="session")
def fer_faces() -> dict[str, list[bytes]]:
    """Real FER2013 test faces (48x48 JPEG bytes) by emotion."""
    faces: dict[str, list[bytes]] = {}
    with zipfile.ZipFile(SAMPLE_ZIP) as archive:
        for name in sorted(archive.namelist()):
            if name.endswith((".jpg", ".png")):
                faces.setdefault(name.split("/")[1], []).append(archive.read(name))
    return faces


@pytest.fixture(scope="session")
def fer_face_jpeg() -> bytes:
    """A 48x48 gray FER2013 face that the detector finds once enlarged, as the sample zip holds it."""
    with zipfile.ZipFile(SAMPLE_ZIP) as archive:
        return archive.read(HAPPY_FACE)


@pytest.fixture(scope="session")
def face(fer_face_jpeg) -> np.ndarray:
    """The same face as a 48x48 array."""
    return fer_face_array(fer_face_jpeg)


@pytest.fixture(scope="session")
def classifier():
    """The active model, as Try it loads it: the shipped one on a fresh clone."""
    from core.recognise import load_classifier

    return load_classifier()


@pytest.fixture
def cache_dir(tmp_path) -> Path:
    return tmp_path / "cache"
