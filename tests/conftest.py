"""Shared fixtures: a handful of real FER2013 faces, and scratch folders for runs and caches."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# Before core is imported anywhere: runs and caches go to a throwaway folder, so the tests never
# touch the real runs/ folder, the active-model choice or the user's dataset cache.
SCRATCH = Path(tempfile.mkdtemp(prefix="emovoice-tests-"))
os.environ["EMOVOICE_RUNS"] = str(SCRATCH / "runs")
os.environ["EMOVOICE_CACHE"] = str(SCRATCH / "cache")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from photos import SAMPLE_ZIP  # noqa: E402


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
def sample_zip() -> Path:
    return SAMPLE_ZIP


@pytest.fixture(scope="session")
def fer_faces() -> dict[str, list[bytes]]:
    """Real FER2013 test faces (48x48 JPEG bytes) by emotion."""
    faces: dict[str, list[bytes]] = {}
    with zipfile.ZipFile(SAMPLE_ZIP) as archive:
        for name in sorted(archive.namelist()):
            if name.endswith(".jpg"):
                faces.setdefault(name.split("/")[1], []).append(archive.read(name))
    return faces


@pytest.fixture
def cache_dir(tmp_path) -> Path:
    return tmp_path / "cache"
