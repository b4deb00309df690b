"""What each inference option buys on test/ and what it costs per face, in one run.

    python benchmarks/inference_options.py --data ../shared/data/fer2013/fer2013.zip \
        --models models/emovoice-vgg runs/NEW_RUN [--tta flip]

For each test-time augmentation (none, flip, ten-crop), with float and with 8-bit weights, and for each
given model alone and all of them averaged (an ensemble of snapshots or seeds, one TensorFlow Lite graph):
accuracy on test/ (7 emotions and the seed's 5; against the FER+ majority too when the votes, ferplus.csv or
fer2013new.csv, lie beside the data), how often the answer differs from the float model's, and
the median time to classify one face at batch 1 through the product's inference path
(core.recognise.Classifier). test/ is for reporting only: pick the option
on validation faces (--split val uses the models' own validation split of train/).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from core.data import load_dataset  # noqa: E402
from core.evaluation import majority_scores, score, seed_subset_scores  # noqa: E402
from core.recognise import Classifier  # noqa: E402
from core.runs import LoadedModel, load_model, save_model  # noqa: E402
from core.training import split_faces  # noqa: E402
from core.training.faces import Faces  # noqa: E402
from core.tta import TTA_MODES, ensemble  # noqa: E402
from core.votes import attach_found_votes  # noqa: E402


def batch_one_ms(classifier: Classifier, face: np.ndarray, repeats: int) -> float:
    classifier.probabilities(face)  # sizes the interpreter's buffers
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        classifier.probabilities(face)
        timings.append(time.perf_counter() - started)
    return statistics.median(timings) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True)
    parser.add_argument("--models", nargs="+", type=Path, required=True)
    parser.add_argument("--split", choices=["test", "val"], default="test")
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--tta", nargs="+", choices=TTA_MODES, default=list(TTA_MODES), help="only these views")
    args = parser.parse_args()

    loaded = [load_model(path) for path in args.models]
    classes = loaded[0].classes
    dataset = load_dataset(args.data)
    attach_found_votes(dataset)
    if args.split == "test":
        faces = Faces(*dataset.select_with_votes("test", classes))
    else:  # the faces every training run of the shipped recipe holds out
        faces = split_faces(dataset, classes)[1]
    images, labels = faces.images, faces.labels
    candidates = [(path.name, model) for path, model in zip(args.models, loaded)]
    if len(loaded) > 1:
        name = f"ensemble of {len(loaded)}"
        candidates.append((name, LoadedModel(ensemble([m.model for m in loaded]), {"name": name, "architecture": name},
                                             Path())))

    print(f"{args.data}, {args.split}: {len(labels)} faces; latency: median of {args.repeats} batch-1 calls\n")
    print("| model | test-time augmentation | weights | accuracy (7) | accuracy (seed's 5) | FER+ majority | "
          "answers unlike float | largest probability change | ms per face |")
    print("|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as scratch:
        for index, (name, candidate) in enumerate(candidates):
            folder = Path(scratch) / str(index)  # the classifier keeps its converted graph beside the model
            save_model(candidate.model, folder / "model.keras")
            for mode in args.tta:
                metadata = {**candidate.metadata, "classes": list(classes), "tta": mode, "temperature": 1.0}
                float_probabilities = None
                for quantized in (False, True):
                    classifier = Classifier(LoadedModel(candidate.model, metadata, folder), quantized)
                    probabilities = classifier.probabilities(images)
                    if float_probabilities is None:
                        float_probabilities = probabilities
                    unlike = np.mean(probabilities.argmax(axis=1) != float_probabilities.argmax(axis=1))
                    change = np.abs(probabilities - float_probabilities).max()
                    five = seed_subset_scores(probabilities, labels, classes)
                    ferplus = majority_scores(probabilities, faces.votes if faces.has_votes else None, classes)
                    latency = batch_one_ms(classifier, images[:1], args.repeats)
                    print(f"| {name} | {mode} | {'8-bit' if quantized else 'float'} | "
                          f"{score(probabilities, labels, classes).accuracy:.1%} | "
                          f"{'-' if five is None else f'{five.accuracy:.1%}'} | "
                          f"{'-' if ferplus is None else f'{ferplus.accuracy:.1%}'} | {unlike:.1%} | {change:.3f} | "
                          f"{latency:.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
