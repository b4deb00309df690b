"""Fixtures for the dashboard's tests: the real shipped model, real FER2013 faces, scratch folders.

Runs and caches go to a throwaway folder (EMOVOICE_RUNS, EMOVOICE_CACHE), so the tests never
touch the real runs/ folder, the active-model choice or the user's dataset cache.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pytest

from photos import HAPPY_FACE, PROJECT_ROOT, SAMPLE_ZIP, encode, fer_face_array, portrait

SCRATCH = Path(tempfile.mkdtemp(prefix="emovoice-app-tests-"))
os.environ["EMOVOICE_RUNS"] = str(SCRATCH / "runs")
os.environ["EMOVOICE_CACHE"] = str(SCRATCH / "cache")

if "core.paths" in sys.modules:
    # core was imported before this conftest (by another test folder in the same session) and
    # read the environment already: point its module-level folders at the scratch ones too.
    for module_name, names in {"core.paths": ("RUNS_DIR", "CACHE_DIR"), "core.runs": ("RUNS_DIR",),
                               "core.background": ("RUNS_DIR",), "core.data": ("CACHE_DIR",)}.items():
        if module_name in sys.modules:
            for name in names:
                setattr(sys.modules[module_name], name, SCRATCH / ("runs" if name == "RUNS_DIR" else "cache"))


@pytest.fixture(scope="session", autouse=True)
def scratch_folder():
    yield SCRATCH
    from core.background import cancel_training, current_training, wait_for

    running = current_training()  # a failed test may leave a worker behind: stop it, then clean up
    if running is not None:
        cancel_training()
        wait_for(running["run_dir"], timeout_s=60)
    shutil.rmtree(SCRATCH, ignore_errors=True)


@pytest.fixture(scope="session")
def fer_face_jpeg() -> bytes:
    """A 48x48 gray FER2013 face, as the JPEG bytes the sample zip holds."""
    with zipfile.ZipFile(SAMPLE_ZIP) as archive:
        return archive.read(HAPPY_FACE)


@pytest.fixture(scope="session")
def portrait_jpeg(fer_face_jpeg) -> bytes:
    """One face in the middle of a 640x480 photo."""
    return encode(portrait(fer_face_array(fer_face_jpeg), [(200, 120)]))


@pytest.fixture(scope="session")
def two_faces_jpeg(fer_face_jpeg) -> bytes:
    return encode(portrait(fer_face_array(fer_face_jpeg), [(60, 140), (380, 140)], side=200))


@pytest.fixture(scope="session")
def noise_png() -> bytes:
    """A 640x480 photo of random noise: no face in it."""
    return encode(np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8), "PNG")


@pytest.fixture
def open_page():
    """Run a dashboard page in AppTest: open_page("pages/3_Try_It.py") -> AppTest after its first run."""
    from streamlit.testing.v1 import AppTest

    def run(page: str) -> AppTest:
        app = AppTest.from_file(str(PROJECT_ROOT / page), default_timeout=60)
        app.run()
        assert not app.exception, app.exception
        return app

    return run
