"""How much training augmentation blurs a face, and how a trained model reads the faces it makes.

    python benchmarks/augment_blur.py --data ../shared/data/fer2013/fer2013.zip --model models/emovoice-vgg

On FER2013's validation faces: sharpness (the mean absolute Laplacian, as OpenCV computes it) of the
faces as they are, after the augmenter's geometry (core.training.RandomWarp: one affine warp) and after
Keras' RandomTranslation, RandomRotation and RandomZoom in a row with the same ranges (three
resamplings, what training used before); and --model's accuracy on each, without test-time augmentation.
A net trained on blurred faces is then shown sharp ones: the blur is a gap between training and use.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from core.data import load_dataset
from core.emotions import INPUT_SIZE
from core.runs import load_model
from core.tf_quiet import keras
from core.training import RandomWarp, sharpness, training_and_validation


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="FER2013 zip or folder")
    parser.add_argument("--model", type=Path, default=Path("models/emovoice-vgg"))
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    classifier = load_model(args.model)
    _, (images, labels) = training_and_validation(load_dataset(args.data), classifier.classes)
    faces = images.astype(np.float32)[..., None]
    shift = 4 / INPUT_SIZE
    geometries = {
        "as they are": None,
        "one warp (RandomWarp, training now)": RandomWarp(seed=args.seed),
        "three Keras layers in a row (before)": keras.Sequential([
            keras.layers.RandomTranslation(shift, shift, fill_mode="reflect", seed=args.seed),
            keras.layers.RandomRotation(10 / 360, fill_mode="reflect", seed=args.seed + 1),
            keras.layers.RandomZoom(0.1, fill_mode="reflect", seed=args.seed + 2)]),
    }
    print(f"{len(faces)} FER2013 validation faces; accuracy of {args.model} (no test-time augmentation)\n")
    print("| faces | sharpness | accuracy |\n|---|---|---|")
    for name, geometry in geometries.items():
        seen = faces if geometry is None else np.concatenate(
            [keras.ops.convert_to_numpy(geometry(faces[i:i + 512], training=True)) for i in range(0, len(faces), 512)])
        said = classifier.model.predict(seen, batch_size=512, verbose=0).argmax(axis=1)
        print(f"| {name} | {sharpness(seen):.1f} | {np.mean(said == labels):.1%} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
