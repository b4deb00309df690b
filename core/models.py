"""Model factory: every architecture emovoice can train, chosen by name.

Models take a batch of 48x48 grayscale faces with pixel values 0..255 and return
softmax probabilities; scaling happens inside the model so that no caller can get
the preprocessing wrong.
"""

from __future__ import annotations

from core.emotions import INPUT_SIZE
from core.tf_quiet import keras

layers = keras.layers


def seed(num_classes: int) -> keras.Model:
    """The student project's CNN, layer for layer (about 64% on its 5 classes)."""
    inputs = keras.Input((INPUT_SIZE, INPUT_SIZE, 1), name="face")
    x = layers.Rescaling(1 / 255)(inputs)
    for filters in (32, 64, 64):
        x = layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
        x = layers.MaxPooling2D(2)(x)
        x = layers.Dropout(0.25)(x)
    x = layers.Flatten()(x)
    for units in (64, 128, 256):
        x = layers.Dense(units, activation="relu")(x)
        x = layers.Dropout(0.25)(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="emotion")(x)
    return keras.Model(inputs, outputs, name="seed")


def vgg(num_classes: int, widths: tuple[int, ...] = (32, 64, 128, 256), crop: int = 4,
        upsample: int | None = None) -> keras.Model:
    """VGG-style net: two 3x3 conv+BN+ReLU per stage, global average pooling head.

    The model looks at the central 40x40 of the face: training shifts the face by
    up to `crop` pixels, so the network learns the random crops that FER2013's best
    single models train on, while inference sees the centre crop. The pooled head
    keeps batch-1 latency low (a large dense head dominates it).

    `upsample`: the face is first resized to this side inside the graph (FER+'s VGG13 reads 64x64), so
    every caller still hands over 48x48 faces; the crop scales with it.
    """
    inputs = keras.Input((INPUT_SIZE, INPUT_SIZE, 1), name="face")
    x = layers.Rescaling(1 / 127.5, offset=-1)(inputs)
    if upsample:
        x = layers.Resizing(upsample, upsample, interpolation="bilinear", name="upsample")(x)
        crop = round(crop * upsample / INPUT_SIZE)
    x = layers.Cropping2D(crop)(x)
    for stage, filters in enumerate(widths):
        for _ in range(2):
            x = layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
            x = layers.BatchNormalization()(x)
            x = layers.ReLU()(x)
        x = layers.MaxPooling2D(2, name=f"pool{stage + 1}")(x)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(0.4)(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="emotion")(x)
    return keras.Model(inputs, outputs, name="vgg")


def vgg64(num_classes: int) -> keras.Model:
    """The vgg net on faces upsampled to 64x64, FER+'s input size: 1.8 times the pixels per layer."""
    return vgg(num_classes, upsample=64)


ARCHITECTURES = {"seed": seed, "vgg": vgg, "vgg64": vgg64}


def build_model(architecture: str, num_classes: int) -> keras.Model:
    """A fresh, uncompiled model of the named architecture."""
    try:
        factory = ARCHITECTURES[architecture]
    except KeyError:
        raise ValueError(f"unknown architecture {architecture!r}; choose one of {', '.join(ARCHITECTURES)}") from None
    return factory(num_classes)
