"""Photo -> faces -> emotion probabilities per face: the one inference path.

Evaluation, the scripts and the dashboard all classify faces through `Classifier`,
so the preprocessing and test-time augmentation are the same everywhere.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.calibration import apply_temperature
from core.faces import MIN_FACE_SIDE, Box, cropped_faces
from core.images import DecodedPhoto, ImageError, decode_photo, to_gray
from core.runs import MODEL_FILE, LoadedModel, ModelError, parse_run, read_metadata, write_atomic
from core.tf_quiet import native_stderr_silenced

MAX_FACES = 20  # a crowd photo is answered for its 20 largest faces


class Classifier:
    """A model, ready to classify batches of 48x48 gray faces.

    It runs the model through TensorFlow Lite with XNNPACK, its weights stored as 8-bit integers
    (`quantized`, the default): about five times faster than the float model at the same batch, the
    answer the same on 99.5% of test/ faces and accuracy within 0.1 point
    (benchmarks/inference_options.py), which every photo, video frame and live reading pays for.
    `quantized=False` gives the trained Keras model's own probabilities (to 1e-6).

    `model` is a model folder or an already loaded model. From a folder whose converted model is
    cached beside model.keras, nothing of Keras or TensorFlow is loaded until `loaded` is asked for
    (Grad-CAM, evaluation's details): a terminal prediction starts in a fraction of the time.
    """

    def __init__(self, model: LoadedModel | str | os.PathLike, quantized: bool = True):
        self._loaded = model if isinstance(model, LoadedModel) else None
        self._loading = threading.Lock()  # visitors' threads asking for the Keras model at once load it once
        self.path = Path(model.path if isinstance(model, LoadedModel) else model)
        if self.path.suffix == ".keras":
            self.path = self.path.parent
        self.metadata = parse_run(model.metadata if isinstance(model, LoadedModel) else read_metadata(self.path),
                                  self.path)
        self.quantized = quantized
        self.classes: tuple[str, ...] = tuple(self.metadata.classes)
        self.tta = self.metadata.tta  # its views are part of the converted graph (core.tta)
        # Fitted on validation faces after training (core.calibration); 1.0 leaves the probabilities as they are.
        self.temperature = float(self.metadata.temperature)
        if not (self.path / MODEL_FILE).is_file():
            raise ModelError(f"{self.path} has no {MODEL_FILE}")
        try:
            self._interpreter = _interpreter(_tflite_model(self, quantized))
        except (ValueError, RuntimeError):  # a damaged converted copy: convert model.keras again
            with contextlib.suppress(OSError):
                _tflite_path(self, quantized).unlink(missing_ok=True)
            self._interpreter = _interpreter(_tflite_model(self, quantized))
        self._input = self._interpreter.get_input_details()[0]["index"]
        output = self._interpreter.get_output_details()[0]
        self._output = output["index"]
        if output["shape"][-1] != len(self.classes):
            raise ModelError(f"{self.path / MODEL_FILE} outputs {output['shape'][-1]} scores but its metadata names "
                             f"{len(self.classes)} emotions")
        self._batch_shape: tuple[int, ...] | None = None
        self._lock = threading.Lock()  # an interpreter runs one batch at a time

    @property
    def loaded(self) -> LoadedModel:
        """The Keras model and its metadata, loaded on first use (it imports TensorFlow: seconds)."""
        with self._loading:
            if self._loaded is None:
                from core.runs import load_model

                self._loaded = load_model(self.path)
        return self._loaded

    def probabilities(self, faces: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """(N, 48, 48) uint8 faces -> (N, classes) calibrated probabilities (TTA averaged, then the temperature)."""
        return apply_temperature(self.raw_probabilities(faces, batch_size), self.temperature)

    def raw_probabilities(self, faces: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """(N, 48, 48) uint8 faces -> (N, classes) probabilities before the temperature (TTA averaged): what a
        temperature is fitted on."""
        faces = np.asarray(faces, dtype=np.float32)[..., None]
        if len(faces) == 0:
            return np.zeros((0, len(self.classes)), dtype=np.float32)
        return np.concatenate([self._forward(faces[i : i + batch_size]) for i in range(0, len(faces), batch_size)])

    def _forward(self, faces: np.ndarray) -> np.ndarray:
        with self._lock:
            if self._batch_shape != faces.shape:
                self._interpreter.resize_tensor_input(self._input, faces.shape)
                self._interpreter.allocate_tensors()
                self._batch_shape = faces.shape
            self._interpreter.set_tensor(self._input, np.ascontiguousarray(faces))
            self._interpreter.invoke()
            return self._interpreter.get_tensor(self._output).copy()


def _interpreter(flat: bytes):
    """A TensorFlow Lite interpreter for a converted model. LiteRT (ai-edge-litert) runs it without
    TensorFlow: 0.3 s to import instead of 5 (benchmarks/startup.py), the same answers to the last bit;
    TensorFlow's own interpreter stands in where LiteRT is not installed."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        with warnings.catch_warnings():  # tf.lite's warns it will move to LiteRT
            warnings.simplefilter("ignore")
            from core.tf_quiet import tf

            Interpreter = tf.lite.Interpreter
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        interpreter = Interpreter(model_content=flat, num_threads=os.cpu_count())
    with native_stderr_silenced():  # the first allocation logs "Created TensorFlow Lite XNNPACK delegate"
        interpreter.allocate_tensors()
    return interpreter


def _tflite_path(classifier: Classifier, quantized: bool) -> Path:
    weights = "int8" if quantized else "float"
    digest = hashlib.sha256((classifier.path / MODEL_FILE).read_bytes() + classifier.tta.encode()).hexdigest()[:16]
    return classifier.path / f"model-{digest}-{weights}.tflite"


def _tflite_model(classifier: Classifier, quantized: bool) -> bytes:
    """The model with its test-time views, as TensorFlow Lite: converted once (a few seconds), then
    kept beside model.keras.

    The copy is named after a hash of model.keras and the views, so it can never stand in for
    another version of the model, whatever the files' dates (a git clone sets them all anew).
    """
    cached = _tflite_path(classifier, quantized)
    if cached.is_file():
        return cached.read_bytes()
    from core.tf_quiet import tf
    from core.tta import inference_model

    converter = tf.lite.TFLiteConverter.from_keras_model(inference_model(classifier.loaded.model, classifier.tta))
    if quantized:  # weights to int8, activations stay float: no sample faces needed to convert
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    # The converter's log lines (native) and the graph's signature (printed by Keras on stdout, where it
    # would spoil predict.py --json): neither is for the user.
    with native_stderr_silenced(), contextlib.redirect_stdout(sys.stderr):
        flat = converter.convert()
    try:
        for stale in classifier.path.glob(f"model-*-{'int8' if quantized else 'float'}.tflite"):
            stale.unlink()
        write_atomic(cached, lambda partial: partial.write_bytes(flat))
    except OSError:
        pass  # a read-only model folder: convert again next time
    return flat


@dataclass
class FaceResult:
    box: Box  # in the photo's own pixels
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
    image: np.ndarray  # the decoded, upright RGB photo, shrunk to at most core.images.MAX_SIDE a side
    faces: list[FaceResult]  # largest (most prominent) first
    faces_found: int
    photo_size: tuple[int, int]  # (width, height) of the photo itself: the pixels the boxes are in

    @property
    def main_face(self) -> FaceResult | None:
        return self.faces[0] if self.faces else None

    def message(self) -> str | None:
        """What the user should be told besides the results, if anything (the page or script adds how to
        read the whole photo as one face: a button there, a flag here)."""
        if not self.faces:
            return "no face found in the photo: use a well-lit, frontal face, or read the whole photo as one face"
        if self.faces_found > len(self.faces):
            return f"{self.faces_found} faces found; showing the {len(self.faces)} largest"
        return None


def recognise(classifier: Classifier, photo: bytes | np.ndarray, whole_image: bool = False) -> Recognition:
    """Find the faces in a photo (encoded bytes or an RGB array) and classify each one, its probabilities
    averaged over the jittered views of core.faces.cropped_faces. Boxes are in the photo's own pixels,
    however much it was shrunk to be read.

    Raises core.images.ImageError for a photo that cannot be decoded.
    """
    if isinstance(photo, (bytes, bytearray)):
        decoded = decode_photo(bytes(photo))
    else:
        decoded = DecodedPhoto(photo, photo.shape[1], photo.shape[0])
    if min(decoded.width, decoded.height) < MIN_FACE_SIDE:
        raise ImageError(f"the image is {decoded.width}x{decoded.height} pixels: too small to hold a face "
                         f"(at least {MIN_FACE_SIDE} a side)")
    image = decoded.pixels
    found = cropped_faces(to_gray(image), whole_image, limit=MAX_FACES)
    probabilities = []
    if found.faces:  # every view of every face in one batch, then each face's views averaged
        views = classifier.probabilities(np.concatenate([crop.views for crop in found.faces]))
        ends = np.cumsum([len(crop.views) for crop in found.faces])
        probabilities = [part.mean(axis=0) for part in np.split(views, ends[:-1])]
    scale_x, scale_y = decoded.scale
    faces = [FaceResult(crop.box.scaled(scale_x, scale_y, decoded.width, decoded.height),
                        dict(zip(classifier.classes, map(float, scores))), crop.face)
             for crop, scores in zip(found.faces, probabilities)]
    return Recognition(image, faces, found.found, (decoded.width, decoded.height))


def load_classifier(model_dir=None, quantized: bool = True) -> Classifier:
    """The classifier for a model folder; None means the active model (the shipped one unless changed)."""
    from core.runs import active_model_dir

    return Classifier(Path(model_dir or active_model_dir()), quantized)
