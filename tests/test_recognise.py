"""Photo -> faces -> emotions with the shipped model: one face, many, none, pre-cropped."""

from __future__ import annotations

import time

import numpy as np
import pytest

from support.photos import encode, fer_face_array, portrait
from core.calibration import apply_temperature
from core.faces import face_boxes
from core.images import to_gray
from core.recognise import MAX_FACES, Classifier, recognise


@pytest.fixture(scope="module")
def detectable(fer_faces):
    """Real FER faces that OpenCV finds once they are set in a larger photo."""
    return [f for e in ("happy", "surprise", "neutral") for f in fer_faces[e] if len(face_boxes(to_gray(portrait(f)))) == 1]


def test_the_fast_runtime_gives_the_keras_models_probabilities(classifier, fer_faces):
    """Faces are classified through TensorFlow Lite; with float weights the answers are the trained model's own,
    and the product's 8-bit weights move them by at most a few hundredths."""
    faces = np.stack([fer_face_array(face) for emotion in ("happy", "sad") for face in fer_faces[emotion][:3]])
    views = faces[..., None].astype(np.float32)
    expected = classifier.loaded.model(views, training=False).numpy()
    assert classifier.tta in ("none", "flip")  # the shipped models; ten-crop is checked in test_tta.py
    if classifier.tta == "flip":
        expected = (expected + classifier.loaded.model(views[:, :, ::-1], training=False).numpy()) / 2
    expected = apply_temperature(expected, classifier.temperature)
    exact = Classifier(classifier.loaded, quantized=False)
    assert np.allclose(exact.probabilities(faces), expected, atol=1e-5)
    assert np.allclose(exact.probabilities(faces[:1]), expected[:1], atol=1e-5)  # batch sizes change freely
    assert classifier.quantized
    quantized = classifier.probabilities(faces)
    assert np.abs(quantized - expected).max() < 0.03  # 0.021 at most over all of test/ (inference_options.py)
    assert (quantized.argmax(axis=1) == expected.argmax(axis=1)).all()


def test_fer_crop_is_taken_whole_and_classified(classifier, fer_faces):
    result = recognise(classifier, fer_faces["happy"][0])
    assert len(result.faces) == 1 and result.message() is None
    face = result.main_face
    assert face.box.as_list() == [0, 0, 48, 48]
    assert set(face.probabilities) == set(classifier.classes)
    assert abs(sum(face.probabilities.values()) - 1) < 1e-3
    assert face.emotion in classifier.classes


def test_portrait_face_is_found_and_boxed(classifier, detectable):
    photo = encode(portrait(detectable[0], [(260, 100)]))
    result = recognise(classifier, photo)
    assert len(result.faces) == 1
    x, y, w, h = result.main_face.box.as_list()
    assert 200 < x + w / 2 < 440 and 120 < y + h / 2 < 320 and 150 < w < 400


def test_boxes_are_in_the_photos_own_pixels_when_it_is_shrunk_to_be_read(classifier, detectable):
    """Issue 24 #2: a photo over 2048 pixels is read shrunk; its boxes were reported in the shrunk pixels."""
    import cv2

    small = portrait(detectable[0], [(260, 100)])  # 640x480, the face's centre at (380, 220)
    big = cv2.resize(small, (3200, 2400), interpolation=cv2.INTER_CUBIC)  # five times larger than it
    expected = [5 * v for v in recognise(classifier, encode(small)).main_face.box.as_list()]
    result = recognise(classifier, encode(big, quality=92))
    assert result.photo_size == (3200, 2400) and max(result.image.shape) == 2048
    x, y, w, h = result.main_face.box.as_list()
    assert abs(x + w / 2 - 5 * 380) < 150 and abs(y + h / 2 - 5 * 220) < 150  # on the face, not 2048/3200 of the way
    assert np.allclose([x, y, w, h], expected, atol=25)  # what the small photo's box says, five times over


def test_crowd_photo_reports_every_face_largest_first(classifier, detectable):
    import cv2

    canvas = np.full((900, 1600, 3), 120, np.uint8)
    for index in range(12):
        face = cv2.imdecode(np.frombuffer(detectable[index % len(detectable)], np.uint8), cv2.IMREAD_COLOR_RGB)
        side = 260 if index == 5 else 200
        row, col = divmod(index, 4)
        tile = cv2.resize(face, (side, side))
        canvas[20 + row * 290 : 20 + row * 290 + side, 20 + col * 390 : 20 + col * 390 + side] = tile
    result = recognise(classifier, canvas)
    assert len(result.faces) >= 8  # Haar misses a few low-resolution FER faces; most are found
    assert result.main_face.box.width == max(f.box.width for f in result.faces)
    assert len(result.faces) <= MAX_FACES


def test_visitors_detecting_at_the_same_time_get_their_own_faces(detectable):
    """The dashboard runs one thread per visitor: concurrent detections must not disturb each other."""
    from concurrent.futures import ThreadPoolExecutor

    photos = [to_gray(portrait(face, [(100 + 40 * (i % 5), 60 + 30 * (i % 4))], side=200 + 10 * (i % 6)))
              for i, face in enumerate(detectable * 3)]
    alone = [face_boxes(photo) for photo in photos]
    with ThreadPoolExecutor(4) as pool:
        together = list(pool.map(face_boxes, photos))
    assert together == alone


def test_no_face_says_so(classifier):
    noise = np.random.default_rng(0).integers(0, 255, (480, 640, 3), dtype=np.uint8)
    result = recognise(classifier, encode(noise))
    assert result.faces == [] and "no face" in result.message()
    whole = recognise(classifier, encode(noise), whole_image=True)
    assert len(whole.faces) == 1  # the option always answers


def test_tryit_path_is_fast_for_a_webcam_photo(classifier, detectable):
    photo = encode(portrait(detectable[0]))
    recognise(classifier, photo)  # warm-up: the first call sizes the model's buffers
    timings = []
    for _ in range(5):
        started = time.perf_counter()
        recognise(classifier, photo)
        timings.append(time.perf_counter() - started)
    assert np.median(timings) < 0.5  # the product target is 150 ms; generous here for a loaded CI machine
