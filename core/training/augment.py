"""Augmentation (one affine warp, lighting, erasing) and the shuffled training batches it runs on."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from core.emotions import INPUT_SIZE
from core.tf_quiet import keras

layers = keras.layers


@keras.saving.register_keras_serializable(package="emovoice")
class RandomWarp(layers.Layer):
    """Random mirror, shift, rotation and zoom of each face as one affine warp.

    One resampling: Keras' RandomTranslation, RandomRotation and RandomZoom in a row resample a face
    three times and blur it to under half its sharpness, so a net trained on them reads the sharp faces
    it is shown afterwards worse (benchmarks/augment_blur.py).
    """

    def __init__(self, shift: float = 4.0, degrees: float = 10.0, zoom: float = 0.1, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.shift, self.degrees, self.zoom, self.seed = shift, degrees, zoom, seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, faces, training=True):
        if not training:
            return faces
        n = keras.ops.shape(faces)[0]

        def uniform(low: float, high: float):
            return keras.random.uniform((n,), low, high, seed=self.seed_generator)

        angle = uniform(-self.degrees, self.degrees) * (math.pi / 180)
        scale = uniform(1 - self.zoom, 1 + self.zoom)
        mirror = keras.ops.where(uniform(0.0, 1.0) < 0.5, -1.0, 1.0)
        cos, sin = keras.ops.cos(angle) / scale, keras.ops.sin(angle) / scale
        # Where each output pixel reads from, about the face's centre: (a0 a1 a2; b0 b1 b2)
        a0, a1, b0, b1 = cos * mirror, -sin, sin * mirror, cos
        centre = (INPUT_SIZE - 1) / 2
        a2 = centre - (a0 + a1) * centre + uniform(-self.shift, self.shift)
        b2 = centre - (b0 + b1) * centre + uniform(-self.shift, self.shift)
        zeros = keras.ops.zeros_like(a0)
        transform = keras.ops.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], axis=1)
        return keras.ops.image.affine_transform(faces, transform, interpolation="bilinear", fill_mode="reflect")

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        return {**super().get_config(), "shift": self.shift, "degrees": self.degrees, "zoom": self.zoom, "seed": self.seed}


def augmenter(seed: int) -> keras.Sequential:
    """Random mirror, shift (up to 4 px), rotation (10 deg), zoom (10%), lighting and erasing.

    Keras' own operations, so the same recipe trains on every backend. They run on the training
    batches only (see `Batches`): the saved model never carries them.
    """
    return keras.Sequential([
        RandomWarp(shift=4.0, degrees=10.0, zoom=0.1, seed=seed),  # the nets look at the central 40x40: a 4 px shift is a random crop
        layers.RandomContrast(0.3, seed=seed + 4),  # contrast 0.7-1.3
        layers.RandomBrightness(30 / 255, value_range=(0, 255), seed=seed + 5),  # +-30 grey levels
        layers.RandomErasing(factor=(0.5, 0.5), scale=(0.02, 0.2), value_range=(0, 255), seed=seed + 6),
    ], name="augment")


def class_weights(labels: np.ndarray, num_classes: int, balance: float) -> np.ndarray:
    """Each emotion's loss weight, lifting rare ones (FER2013 has 16 times fewer disgust faces than happy ones).

    An emotion weighs (1 / its count) ** balance, scaled so that the average face still weighs 1
    and the learning rate means what it meant unweighted. Balance 0 weighs every emotion 1.
    """
    counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
    weights = np.where(counts > 0, 1 / np.maximum(counts, 1), 0.0) ** balance
    return (weights * counts.sum() / (counts * weights).sum()).astype(np.float32)


def _as_one_call(augment: keras.Sequential) -> Callable[[np.ndarray], object]:
    """The layers in training mode; under TensorFlow traced into one graph, three times faster than op by op."""
    if keras.backend.backend() == "tensorflow":
        from core.tf_quiet import tf

        return tf.function(lambda faces: augment(faces, training=True), reduce_retracing=True)
    return lambda faces: augment(faces, training=True)


class Batches(keras.utils.PyDataset):
    """Shuffled training batches (faces, one-hot labels, loss weights), augmented in a worker thread.

    The thread augments the next batches while the net trains on this one, as tf.data's threads
    did, on every backend; augmentation layers inside the trained graph ran in series with each
    step and made an epoch about a quarter slower (benchmarks/train_speed.py).
    """

    def __init__(self, faces: np.ndarray, targets: np.ndarray, weights: np.ndarray, batch_size: int,
                 augment: keras.Sequential | None, seed: int):
        super().__init__(workers=1, use_multiprocessing=False, max_queue_size=4)  # one thread: the layers' seeds advance in order
        self.faces, self.targets, self.weights = faces, targets, weights
        self.batch_size, self.augment = batch_size, None if augment is None else _as_one_call(augment)
        self.rng = np.random.default_rng(seed)
        self.order = self.rng.permutation(len(faces))

    def __len__(self) -> int:
        return math.ceil(len(self.faces) / self.batch_size)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        take = self.order[index * self.batch_size : (index + 1) * self.batch_size]
        faces = self.faces[take]
        if self.augment is not None:
            faces = keras.ops.convert_to_numpy(self.augment(faces))
        return faces, self.targets[take], self.weights[take]

    def on_epoch_end(self) -> None:  # Keras stops the worker before calling this
        self.order = self.rng.permutation(len(self.faces))


def sharpness(faces: np.ndarray) -> float:
    """Mean absolute Laplacian of faces (N, H, W, 1): how much fine detail they keep (OpenCV's 3x3 kernel,
    its border too, in numpy so that a training-only machine needs no OpenCV)."""
    padded = np.pad(faces[..., 0].astype(np.float32), ((0, 0), (1, 1), (1, 1)), mode="reflect")
    laplacian = (padded[:, :-2, 1:-1] + padded[:, 2:, 1:-1] + padded[:, 1:-1, :-2] + padded[:, 1:-1, 2:]
                 - 4 * padded[:, 1:-1, 1:-1])
    return float(np.abs(laplacian).mean())
