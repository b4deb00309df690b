"""The answer drawn on the photo: labels inside the picture and apart, boxes where the faces are."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from core.drawing import faces_drawn, laid_out_labels
from core.emotions import EMOTIONS
from core.faces import Box
from core.recognise import FaceResult


def answer(box: Box, emotion: str, probability: float) -> FaceResult:
    rest = (1 - probability) / (len(EMOTIONS) - 1)
    return FaceResult(box, {name: probability if name == emotion else rest for name in EMOTIONS},
                      np.zeros((48, 48), np.uint8))


# Issue 24 #5, as seen on a stock photo of four faces and a selfie: faces side by side, touching the top, left
# and right edges of the photo, one right under another; labels ran together ("happy 91%3 surprise 97%") or
# were cut at the edge ("6 sa…").
CROWD = [answer(Box(0, 0, 150, 150), "surprise", 0.97), answer(Box(150, 0, 150, 150), "happy", 0.91),
         answer(Box(530, 10, 110, 130), "sad", 0.66), answer(Box(300, 5, 120, 140), "surprise", 0.97),
         answer(Box(0, 150, 150, 150), "neutral", 0.55), answer(Box(560, 400, 80, 80), "disgust", 0.51),
         answer(Box(420, 0, 110, 120), "happy", 0.88)]


@pytest.mark.parametrize("size", [(640, 480), (400, 480)], ids=["landscape", "narrow"])
def test_labels_of_faces_close_together_and_at_the_edges_stay_inside_and_apart(size):
    width, height = size
    labels, _ = laid_out_labels(CROWD, width, height, scale=1.0, thickness=2)
    assert [label.text.split()[0] for label in labels] == [str(n) for n in range(1, len(CROWD) + 1)]
    for label in labels:
        assert label.place.inside(width, height), label
    for one, other in itertools.combinations(labels, 2):
        assert not one.place.overlaps(other.place), (one, other)


def test_a_face_with_room_above_is_labelled_just_above_its_box():
    [label], _ = laid_out_labels([answer(Box(200, 200, 100, 100), "happy", 0.9)], 640, 480, 1.0, 2)
    assert label.place.y1 == 200 and label.place.x0 == 200


def test_boxes_given_in_a_large_photos_pixels_are_drawn_on_its_shrunk_picture():
    photo_size = (4096, 3072)  # boxes in these pixels; the picture is the photo at half its size
    picture = np.full((1536, 2048, 3), 128, np.uint8)
    face = answer(Box(2000, 1000, 400, 400), "happy", 0.9)
    drawn = faces_drawn(picture, [face], photo_size=photo_size)
    assert drawn.shape == picture.shape
    assert (drawn[600, 1000] != 128).any() and (drawn[600, 1000 + 90] == 128).all()  # its left edge, at x 1000
