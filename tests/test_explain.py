"""Grad-CAM saliency maps: face-sized, informative, and they follow the face when it moves."""

from __future__ import annotations


import cv2
import numpy as np
import pytest

from support.photos import fer_face_array, portrait
from core.drawing import faces_drawn
from core.explain import heatmaps, overlay
from core.paths import SEED_MODEL_DIR, SHIPPED_MODEL_DIR
from core.recognise import load_classifier, recognise
from core.runs import load_model

SHIFT = 8  # pixels the face moves inside the 48x48 crop
FACE_SIDE = 36  # the face is shrunk to this so that it can move without leaving the crop


@pytest.fixture(scope="module", params=[SHIPPED_MODEL_DIR, SEED_MODEL_DIR], ids=["vgg", "seed"])
def model_dir(request):
    return request.param


@pytest.fixture(scope="module")
def model(model_dir):
    return load_model(model_dir).model


@pytest.fixture(scope="module")
def shipped_model():
    return load_model(SHIPPED_MODEL_DIR).model


@pytest.fixture(scope="module")
def natural_faces(fer_faces) -> np.ndarray:
    """20 real FER2013 faces, a few of each emotion, with their original pixels."""
    every = [fer_face_array(face) for emotion in sorted(fer_faces) for face in fer_faces[emotion]]
    return np.stack(every[::7][:20])


@pytest.fixture(scope="module")
def faces(natural_faces, model_dir) -> np.ndarray:
    """The faces as each model learned faces: the seed model learned the histogram-equalised FER2013 copy,
    and on natural contrast it finds no evidence at all in some faces (a blank map), which says nothing
    about Grad-CAM."""
    if model_dir == SEED_MODEL_DIR:
        return np.stack([cv2.equalizeHist(face) for face in natural_faces])
    return natural_faces


def placed(face: np.ndarray, x: int, y: int) -> np.ndarray:
    """The face shrunk to FACE_SIDE and set at (x, y) in a 48x48 crop of its mean gray."""
    canvas = np.full((48, 48), int(face.mean()), np.uint8)
    canvas[y : y + FACE_SIDE, x : x + FACE_SIDE] = cv2.resize(face, (FACE_SIDE, FACE_SIDE), interpolation=cv2.INTER_AREA)
    return canvas


def centre_of_mass(maps: np.ndarray) -> np.ndarray:
    """(N, 2) x, y centre of each map's heat."""
    ys, xs = np.mgrid[:48, :48]
    total = maps.sum(axis=(1, 2))
    return np.stack([(maps * xs).sum(axis=(1, 2)) / total, (maps * ys).sum(axis=(1, 2)) / total], axis=1)


def test_maps_are_face_sized_scaled_and_not_constant(model, faces):
    maps = heatmaps(model, faces)
    assert maps.shape == (len(faces), 48, 48) and maps.dtype == np.float32
    assert maps.min() >= 0 and np.allclose(maps.max(axis=(1, 2)), 1)
    assert all(m.std() > 0.05 for m in maps)
    assert not np.allclose(maps[0], maps[1])  # each face gets its own map


@pytest.mark.parametrize("axis", ["x", "y"])
def test_the_map_moves_with_the_face(shipped_model, natural_faces, axis):
    """The shipped vgg net only: it pools over positions. The seed's net (three convolutions, then dense layers
    over every position, trained on the equalised FER2013 copy) let its evidence follow the sample's faces by
    1.2 px of 8; the maps the dashboard shows are the active model's."""
    start, moved = ((2, 6), (2 + SHIFT, 6)) if axis == "x" else ((6, 2), (6, 2 + SHIFT))
    before = centre_of_mass(heatmaps(shipped_model, np.stack([placed(f, *start) for f in natural_faces])))
    after = centre_of_mass(heatmaps(shipped_model, np.stack([placed(f, *moved) for f in natural_faces])))
    along, across = (0, 1) if axis == "x" else (1, 0)
    shift = (after - before).mean(axis=0)
    assert shift[along] > SHIFT / 4, shift  # the heat follows the face...
    assert abs(shift[across]) < shift[along]  # ...in the direction it moved


def test_explaining_another_emotion_gives_another_map(model, faces):
    predicted = heatmaps(model, faces[:4])
    other = heatmaps(model, faces[:4], class_indexes=np.array([0, 0, 1, 1]))
    assert any(not np.allclose(a, b) for a, b in zip(predicted, other))


def test_wrong_shape_is_refused_with_a_message(model):
    with pytest.raises(ValueError, match="faces must be"):
        heatmaps(model, np.zeros((2, 64, 64), np.uint8))
    assert heatmaps(model, np.zeros((0, 48, 48), np.uint8)).shape == (0, 48, 48)


def test_heat_is_drawn_over_the_face_only(face):
    """On a photo, the heat lands on the face; the rest of the photo is untouched."""
    classifier = load_classifier(SHIPPED_MODEL_DIR)
    result = recognise(classifier, portrait(face))  # 640x480, one 240-pixel face
    [found] = result.faces
    maps = heatmaps(classifier.loaded.model, found.face[None])
    changed = np.any(faces_drawn(result.image, result.faces) != faces_drawn(result.image, result.faces, maps), axis=-1)
    x, y, w, h = found.box.as_list()
    side = max(w, h)  # the heat covers the face's box squared about its centre (a pixel of rounding allowed)
    left, top = x + w // 2 - side // 2 - 1, y + h // 2 - side // 2 - 1
    inside = np.zeros_like(changed)
    inside[max(0, top) : top + side + 2, max(0, left) : left + side + 2] = True
    assert changed[inside].mean() > 0.3 and not changed[~inside].any()
    assert overlay(found.face, maps[0], side=96).shape == (96, 96, 3)


def test_an_ensemble_shows_where_its_members_looked(shipped_model, natural_faces):
    """The mean of its members' maps, each for the emotion the ensemble answers (not the member's own)."""
    from core.models import build_model
    from core.tf_quiet import keras
    from core.tta import ensemble

    keras.utils.set_random_seed(0)
    members = [shipped_model, build_model("vgg", 7)]  # the second, untrained, looks elsewhere and answers otherwise
    faces = natural_faces[:6]
    answers = ensemble(members).predict(faces[..., None].astype(np.float32), verbose=0).argmax(axis=1)
    own = [heatmaps(member, faces) for member in members]
    asked = [heatmaps(member, faces, answers) for member in members]
    assert not np.allclose(own[1], asked[1], atol=1e-3)  # so following the ensemble's answer shows
    assert not np.allclose(asked[0], asked[1], atol=1e-3)  # and so does leaving a member out
    assert np.allclose(heatmaps(ensemble(members), faces), np.mean(asked, axis=0), atol=1e-5)


@pytest.mark.parametrize("architecture", ["vgg", "vgg64"])
def test_the_map_covers_exactly_the_part_of_the_face_the_net_reads(natural_faces, architecture):
    """Both nets read the central 40x40 of a face; vgg64 resizes it to 64x64 first and crops 5 of its pixels,
    which are still 4 of the face's. Untrained weights: where the map lies does not depend on them."""
    from core.models import build_model

    maps = heatmaps(build_model(architecture, 7), natural_faces[:8])
    heated_rows = np.flatnonzero(maps.max(axis=(0, 2)) > 0)
    heated_cols = np.flatnonzero(maps.max(axis=(0, 1)) > 0)
    assert (heated_rows.min(), heated_rows.max()) == (4, 43)
    assert (heated_cols.min(), heated_cols.max()) == (4, 43)
