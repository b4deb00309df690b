"""Why this emotion: Grad-CAM saliency maps over 48x48 faces.

Grad-CAM (Selvaraju et al. 2017) weighs each channel of the last convolutional stage by
the mean gradient of the emotion's score (its logit) with respect to that channel, keeps
the positive evidence and scales it to the face: bright where the face pushed the model
towards the emotion it named. It needs gradients, so it runs the Keras model (TensorFlow);
classification itself stays on the faster TensorFlow Lite path in core.recognise.
"""

from __future__ import annotations

import cv2
import numpy as np

from core.emotions import INPUT_SIZE


def last_conv_layer(model) -> str:
    """Name of the last convolutional stage's output: the last Conv2D, or the batch-norm and
    activation layers right after it (same shape), so the map shows what survives the ReLU."""
    from core.tf_quiet import keras

    layers = model.layers
    conv = max((i for i, layer in enumerate(layers) if isinstance(layer, keras.layers.Conv2D)), default=None)
    if conv is None:
        raise ValueError(f"model {model.name!r} has no convolutional layer to explain")
    chosen = conv
    while chosen + 1 < len(layers) and layers[chosen + 1].output.shape == layers[conv].output.shape:
        chosen += 1
    return layers[chosen].name


def _input_frame(model, layer_name: str) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) pixels of the input that Cropping2D layers cut before `layer_name`:
    the conv maps cover only the rest of the face (the vgg model looks at the central 40x40). A crop after
    an in-graph resize (vgg64) is counted in the input's pixels."""
    from core.tf_quiet import keras

    frame, scale = np.zeros(4), 1.0
    for layer in model.layers:
        if layer.name == layer_name:
            break
        if isinstance(layer, keras.layers.Resizing):
            scale = INPUT_SIZE / layer.height
        if isinstance(layer, keras.layers.Cropping2D):
            (t, b), (l, r) = layer.cropping
            frame += scale * np.array([t, b, l, r])
    top, bottom, left, right = (int(round(side)) for side in frame)
    return top, bottom, left, right


def heatmaps(model, faces: np.ndarray, class_indexes: np.ndarray | None = None) -> np.ndarray:
    """Grad-CAM maps (N, 48, 48) float32 in 0..1 for (N, 48, 48) uint8 faces.

    `class_indexes`: the emotion to explain per face (default: the one the model predicts).
    The model's last layer must be a softmax Dense, as every architecture in core.models:
    its logits are recomputed from the layer's input, since softmax outputs saturate.
    """
    from core.tf_quiet import keras, tf

    faces = np.asarray(faces)
    if faces.ndim != 3 or faces.shape[1:] != (INPUT_SIZE, INPUT_SIZE):
        raise ValueError(f"faces must be (N, {INPUT_SIZE}, {INPUT_SIZE}); got {faces.shape}")
    if len(faces) == 0:
        return np.zeros((0, INPUT_SIZE, INPUT_SIZE), dtype=np.float32)
    members = [layer for layer in model.layers if isinstance(layer, keras.Model)]
    if members:  # an ensemble (core.tta.ensemble): where its members looked, for the emotion it answers
        if class_indexes is None:
            class_indexes = model.predict(faces[..., None].astype(np.float32), verbose=0).argmax(axis=1)
        return np.mean([heatmaps(member, faces, class_indexes) for member in members], axis=0)
    head = model.layers[-1]
    if not isinstance(head, keras.layers.Dense):
        raise ValueError(f"model {model.name!r} does not end in a Dense layer; Grad-CAM needs its logits")
    layer_name = last_conv_layer(model)
    probe = keras.Model(model.inputs, [model.get_layer(layer_name).output, head.input])
    views = tf.convert_to_tensor(faces[..., None].astype(np.float32))
    with tf.GradientTape() as tape:
        features, penultimate = probe(views, training=False)
        logits = tf.matmul(penultimate, head.kernel) + head.bias
        if class_indexes is None:
            class_indexes = tf.argmax(logits, axis=1)
        score = tf.gather(logits, tf.convert_to_tensor(class_indexes, dtype=tf.int64), axis=1, batch_dims=1)
    gradients = tape.gradient(score, features)
    weights = tf.reduce_mean(gradients, axis=(1, 2), keepdims=True)  # one weight per channel and face
    cams = tf.nn.relu(tf.reduce_sum(weights * features, axis=-1)).numpy()
    return np.stack([_to_face(cam, _input_frame(model, layer_name)) for cam in cams])


def _to_face(cam: np.ndarray, frame: tuple[int, int, int, int]) -> np.ndarray:
    """A conv-resolution map stretched over the part of the 48x48 face it covers, scaled to 0..1."""
    top, bottom, left, right = frame
    height, width = INPUT_SIZE - top - bottom, INPUT_SIZE - left - right
    full = np.zeros((INPUT_SIZE, INPUT_SIZE), dtype=np.float32)
    full[top : INPUT_SIZE - bottom, left : INPUT_SIZE - right] = cv2.resize(cam.astype(np.float32), (width, height),
                                                                           interpolation=cv2.INTER_CUBIC)
    full = np.maximum(full, 0)  # cubic interpolation overshoots below zero near sharp edges
    peak = full.max()
    return full / peak if peak > 0 else full


def overlay(face: np.ndarray, heatmap: np.ndarray, side: int = 192, alpha: float = 0.45) -> np.ndarray:
    """A gray face with its heatmap laid over it in colour (red: most looked at), as `side`-pixel RGB."""
    gray = cv2.resize(np.asarray(face, dtype=np.uint8), (side, side), interpolation=cv2.INTER_CUBIC)
    heat = cv2.resize(np.asarray(heatmap, dtype=np.float32), (side, side), interpolation=cv2.INTER_LINEAR)
    return blend(np.stack([gray] * 3, axis=-1), heat, alpha)


def blend(rgb: np.ndarray, heat: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """RGB image with a 0..1 map of the same size blended over it in the JET colour scale."""
    coloured = cv2.applyColorMap(np.uint8(np.clip(heat, 0, 1) * 255), cv2.COLORMAP_JET)[..., ::-1]
    return cv2.addWeighted(np.asarray(rgb, dtype=np.uint8), 1 - alpha, coloured, alpha, 0)
