"""Fixtures for the dashboard's tests: the real shipped model and photos made from real FER2013 faces.

Runs and caches go to the scratch folder that tests/conftest.py sets up.
"""

from __future__ import annotations

import numpy as np
import pytest

from support.photos import PROJECT_ROOT, encode, fer_face_array, portrait


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
