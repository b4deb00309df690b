"""Test-time augmentation, built into the model's graph: several views of each face, averaged.

Building the views into the graph keeps one definition for every caller: the TensorFlow Lite
model the product runs (one call per batch, all views at once) and Keras on any backend at the
end of training. `ensemble` averages several models the same way.
"""

from __future__ import annotations

from core.records import TTA_MODES, view_count
from core.tf_quiet import keras

layers, ops = keras.layers, keras.ops

CROP_SHIFT = 4  # the vgg net looks at the central 40x40 of a 48x48 face; ten-crop also takes its corners


class TestTimeViews(layers.Layer):
    """(N, H, W, 1) faces -> (V*N, H, W, 1): every face in each view, view after view.

    ten-crop is the FER2013 literature's: the centre and the four corner crops, each also
    mirrored. The nets crop their input's centre themselves, so a corner crop is the face
    shifted by CROP_SHIFT pixels each way (borders reflected) with the same net on top.
    """

    def __init__(self, mode: str, **kwargs):
        super().__init__(**kwargs)
        if mode not in TTA_MODES:
            raise ValueError(f"unknown test-time augmentation {mode!r}: use one of {', '.join(TTA_MODES)}")
        self.mode = mode

    def call(self, faces):
        if self.mode == "none":
            return faces
        if self.mode == "flip":
            return ops.concatenate([faces, ops.flip(faces, axis=2)], axis=0)
        s, size = CROP_SHIFT, faces.shape[1]
        padded = ops.pad(faces, [[0, 0], [s, s], [s, s], [0, 0]], mode="reflect")
        crops = [padded[:, y : y + size, x : x + size, :] for y, x in ((s, s), (0, 0), (0, 2 * s), (2 * s, 0), (2 * s, 2 * s))]
        return ops.concatenate(crops + [ops.flip(crop, axis=2) for crop in crops], axis=0)

    def compute_output_shape(self, input_shape):
        batch = input_shape[0] and input_shape[0] * view_count(self.mode)
        return (batch, *input_shape[1:])

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}


class MeanOverViews(layers.Layer):
    """(V*N, C) scores, view after view -> (N, C), the mean over the V views."""

    def __init__(self, views: int, **kwargs):
        super().__init__(**kwargs)
        self.views = views

    def call(self, scores):
        return ops.mean(ops.reshape(scores, (self.views, -1, scores.shape[-1])), axis=0)

    def compute_output_shape(self, input_shape):
        return (input_shape[0] and input_shape[0] // self.views, input_shape[-1])

    def get_config(self):
        return {**super().get_config(), "views": self.views}


def inference_model(model: keras.Model, mode: str) -> keras.Model:
    """`model` answering, for each face, its mean probabilities over `mode`'s views."""
    faces = keras.Input(model.inputs[0].shape[1:], name="face")
    scores = model(TestTimeViews(mode)(faces))
    return keras.Model(faces, MeanOverViews(view_count(mode))(scores), name=f"{model.name}_{mode}")


def ensemble(models: list[keras.Model]) -> keras.Model:
    """One model answering the mean of several models' probabilities (snapshots or seeds of a recipe)."""
    # Snapshots of one architecture share a name, which a graph allows only once.
    members = [keras.Model(m.inputs[0], m.outputs[0], name=f"{m.name}_{i + 1}") for i, m in enumerate(models)]
    faces = keras.Input(models[0].inputs[0].shape[1:], name="face")
    return keras.Model(faces, layers.Average()([member(faces) for member in members]), name=f"{models[0].name}_ensemble")
