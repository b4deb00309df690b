"""Shared fixtures: a handful of real FER2013 faces, one trained run, and scratch folders for runs and caches."""

from __future__ import annotations

import os
import shutil
import tempfile
import zipfile
from pathlib import Path

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

from support.photos import SAMPLE_ZIP  # noqa: E402


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
def sample_dataset(tmp_path_factory):
    """The bundled sample (140 FER2013 test faces, 20 per emotion) as core.data loads it, once a session."""
    from core.data import load_dataset

    return load_dataset(SAMPLE_ZIP, cache_dir=tmp_path_factory.mktemp("sample-cache"))


@pytest.fixture(scope="session")
def trained_run(sample_dataset, tmp_path_factory) -> Path:
    """One finished run folder, trained once a session: the seed architecture, 1 epoch on the sample.

    For tests that need *a* trained model (to warm-start from, to damage, to load, to score). It is shared:
    read it, or copy it (shutil.copytree) before changing it. Tests of training itself train their own.
    """
    from core.training import recipe, train

    run_dir = tmp_path_factory.mktemp("trained") / "seed-1-epoch"
    train(recipe("seed", epochs=1, batch_size=32), sample_dataset, run_dir)
    return run_dir


@pytest.fixture(scope="session")
def fer_faces() -> dict[str, list[bytes]]:
    """Real FER2013 test faces (48x48 JPEG bytes) by emotion."""
    faces: dict[str, list[bytes]] = {}
    with zipfile.ZipFile(SAMPLE_ZIP) as archive:
        for name in sorted(archive.namelist()):
            if name.endswith((".jpg", ".png")):
                faces.setdefault(name.split("/")[1], []).append(archive.read(name))
    return faces


@pytest.fixture
def cache_dir(tmp_path) -> Path:
    return tmp_path / "cache"
