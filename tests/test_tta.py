"""Test-time augmentation in the graph: the views are the ones the literature names, and averaged."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from core.models import build_model
from core import tta  # imported whole: pytest would take a class named Test... for a test
from core.tta import CROP_SHIFT, TTA_MODES, ensemble, inference_model


def _faces(count: int = 3) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.uniform(0, 255, (count, 48, 48, 1)).astype(np.float32)


def _ten_crops(face: np.ndarray) -> list[np.ndarray]:
    """The ten views written out by hand: centre and corners of a reflect-padded face, and mirrors."""
    s = CROP_SHIFT
    padded = np.pad(face, ((s, s), (s, s), (0, 0)), mode="reflect")
    crops = [padded[y : y + 48, x : x + 48] for y, x in ((s, s), (0, 0), (0, 2 * s), (2 * s, 0), (2 * s, 2 * s))]
    return crops + [crop[:, ::-1] for crop in crops]


def test_ten_crop_views_are_the_centre_the_corners_and_their_mirrors():
    faces = _faces()
    views = keras.ops.convert_to_numpy(tta.TestTimeViews("ten-crop")(faces)).reshape(10, len(faces), 48, 48, 1)
    for index, face in enumerate(faces):
        assert np.allclose(views[:, index], np.stack(_ten_crops(face)))
    # A corner view really is the face moved: its centre 40x40 is the face's top-left 40x40.
    assert np.allclose(views[1, 0, 4:44, 4:44], faces[0, :40, :40])


@pytest.mark.parametrize("mode", TTA_MODES)
def test_inference_model_averages_the_model_over_the_views(mode):
    model = build_model("vgg", 7)
    faces = _faces()
    views = {"none": lambda f: [f], "flip": lambda f: [f, f[:, ::-1]], "ten-crop": _ten_crops}[mode]
    expected = np.stack([np.mean(model.predict(np.stack(views(face)), verbose=0), axis=0) for face in faces])
    assert np.allclose(inference_model(model, mode).predict(faces, verbose=0), expected, atol=1e-5)


def test_an_ensemble_averages_its_members():
    first, second = build_model("vgg", 7), build_model("vgg", 7)
    faces = _faces()
    expected = (first.predict(faces, verbose=0) + second.predict(faces, verbose=0)) / 2
    averaged = inference_model(ensemble([first, second]), "none")
    assert np.allclose(averaged.predict(faces, verbose=0), expected, atol=1e-6)


def test_an_unknown_mode_is_refused():
    with pytest.raises(ValueError, match="unknown test-time augmentation"):
        tta.TestTimeViews("twelve-crop")
