"""Photo -> faces -> emotion probabilities per face: the one inference path.

Evaluation, the scripts and the dashboard all classify faces through `Classifier`,
so the preprocessing and test-time augmentation are the same everywhere.
"""

from __future__ import annotations

import hashlib
import os
import threading
import warnings
from dataclasses import dataclass

import numpy as np

from core.calibration import apply_temperature
from core.faces import MIN_FACE_SIDE, Box, find_face_views
from core.images import ImageError, decode_image, to_gray
from core.runs import MODEL_FILE, LoadedModel, write_atomic

MAX_FACES = 20  # a crowd photo is answered for its 20 largest faces


class Classifier:
    """A loaded model, ready to classify batches of 48x48 gray faces.

    It runs the model through TensorFlow Lite with XNNPACK, its weights stored as 8-bit integers
    (`quantized`, the default): about five times faster than the float model at the same batch, the
    answer the same on 99.5% of test/ faces and accuracy within 0.1 point
    (benchmarks/inference_options.py), which every photo, video frame and live reading pays for.
    `quantized=False` gives the trained Keras model's own probabilities (to 1e-6).
    """

    def __init__(self, loaded: LoadedModel, quantized: bool = True):
        import tensorflow as tf

        self.loaded = loaded
        self.quantized = quantized
        self.classes: tuple[str, ...] = loaded.classes
        self.tta = loaded.metadata.get("tta", "none")  # its views are part of the converted graph (core.tta)
        # Fitted on validation faces after training (core.calibration); 1.0 leaves the probabilities as they are.
        self.temperature = float(loaded.metadata.get("temperature", 1.0))
        with warnings.catch_warnings():  # tf.lite's interpreter warns it will move to ai-edge-litert
            warnings.simplefilter("ignore")
            self._interpreter = tf.lite.Interpreter(model_content=_tflite_model(loaded, quantized), num_threads=os.cpu_count())
        self._input = self._interpreter.get_input_details()[0]["index"]
        self._output = self._interpreter.get_output_details()[0]["index"]
        self._batch_shape: tuple[int, ...] | None = None
        self._lock = threading.Lock()  # an interpreter runs one batch at a time

    def probabilities(self, faces: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """(N, 48, 48) uint8 faces -> (N, classes) calibrated probabilities (TTA averaged, then the temperature)."""
        faces = np.asarray(faces, dtype=np.float32)[..., None]
        if len(faces) == 0:
            return np.zeros((0, len(self.classes)), dtype=np.float32)
        averaged = np.concatenate([self._forward(faces[i : i + batch_size]) for i in range(0, len(faces), batch_size)])
        return apply_temperature(averaged, self.temperature)

    def _forward(self, faces: np.ndarray) -> np.ndarray:
        with self._lock:
            if self._batch_shape != faces.shape:
                self._interpreter.resize_tensor_input(self._input, faces.shape)
                self._interpreter.allocate_tensors()
                self._batch_shape = faces.shape
            self._interpreter.set_tensor(self._input, np.ascontiguousarray(faces))
            self._interpreter.invoke()
            return self._interpreter.get_tensor(self._output).copy()


def _tflite_model(loaded: LoadedModel, quantized: bool) -> bytes:
    """The model with its test-time views, as TensorFlow Lite: converted once (a few seconds), then
    kept beside model.keras.

    The copy is named after a hash of model.keras and the views, so it can never stand in for
    another version of the model, whatever the files' dates (a git clone sets them all anew).
    """
    tta = loaded.metadata.get("tta", "none")
    weights = "int8" if quantized else "float"
    digest = hashlib.sha256((loaded.path / MODEL_FILE).read_bytes() + tta.encode()).hexdigest()[:16]
    cached = loaded.path / f"model-{digest}-{weights}.tflite"
    if cached.is_file():
        return cached.read_bytes()
    import tensorflow as tf

    from core.tta import inference_model

    converter = tf.lite.TFLiteConverter.from_keras_model(inference_model(loaded.model, tta))
    if quantized:  # weights to int8, activations stay float: no sample faces needed to convert
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    flat = converter.convert()
    try:
        for stale in loaded.path.glob(f"model-*-{weights}.tflite"):
            stale.unlink()
        write_atomic(cached, lambda partial: partial.write_bytes(flat))
    except OSError:
        pass  # a read-only model folder: convert again next time
    return flat


@dataclass
class FaceResult:
    box: Box
    probabilities: dict[str, float]  # emotion -> probability, in the model's class order
    face: np.ndarray  # the 48x48 crop the model saw (the unmoved one of its jittered views)

    @property
    def emotion(self) -> str:
        return max(self.probabilities, key=self.probabilities.get)

    def as_dict(self) -> dict:
        return {"box": self.box.as_list(), "emotion": self.emotion,
                "probabilities": {k: round(v, 4) for k, v in self.probabilities.items()}}


@dataclass
class Recognition:
    image: np.ndarray  # the decoded, upright RGB photo the boxes refer to
    faces: list[FaceResult]  # largest (most prominent) first
    faces_found: int

    @property
    def main_face(self) -> FaceResult | None:
        return self.faces[0] if self.faces else None

    def message(self) -> str | None:
        """What the user should be told besides the results, if anything."""
        if not self.faces:
            return ("no face found in the photo: use a well-lit, frontal face, or treat the whole image "
                    "as the face (--whole-image / the 'whole image' option) for a cropped face")
        if self.faces_found > len(self.faces):
            return f"{self.faces_found} faces found; showing the {len(self.faces)} largest"
        return None


def recognise(classifier: Classifier, photo: bytes | np.ndarray, whole_image: bool = False) -> Recognition:
    """Find the faces in a photo (encoded bytes or an RGB array) and classify each one, its probabilities
    averaged over the jittered views of core.faces.find_face_views.

    Raises core.images.ImageError for a photo that cannot be decoded.
    """
    image = decode_image(photo) if isinstance(photo, (bytes, bytearray)) else photo
    if min(image.shape[:2]) < MIN_FACE_SIDE:
        height, width = image.shape[:2]
        raise ImageError(f"the image is {width}x{height} pixels: too small to hold a face (at least {MIN_FACE_SIDE} a side)")
    kept, found = find_face_views(to_gray(image), whole_image, limit=MAX_FACES)
    probabilities = []
    if kept:  # every view of every face in one batch, then each face's views averaged
        views = classifier.probabilities(np.concatenate([face_views for _, face_views in kept]))
        ends = np.cumsum([len(face_views) for _, face_views in kept])
        probabilities = [part.mean(axis=0) for part in np.split(views, ends[:-1])]
    faces = [FaceResult(box, dict(zip(classifier.classes, map(float, scores))), face_views[0])
             for (box, face_views), scores in zip(kept, probabilities)]
    return Recognition(image, faces, found)


def load_classifier(model_dir=None, quantized: bool = True) -> Classifier:
    """The classifier for a model folder; None means the active model (the shipped one unless changed)."""
    from core.runs import active_model_dir, load_model

    return Classifier(load_model(model_dir or active_model_dir()), quantized)
