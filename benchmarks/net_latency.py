"""Time per face of candidate networks before training one: can a bigger net stay within 1 ms a face?

    python benchmarks/net_latency.py
    python benchmarks/net_latency.py --models runs/ENSEMBLE    # trained models against the shipped one

Each candidate is built with untrained weights (time does not depend on them) and saved as a model folder
that borrows the shipped model's metadata (its emotions and test-time views), then timed through the
product's own path (core.recognise.Classifier: TensorFlow Lite, 8-bit weights, batch 1). The candidates
take turns, round after round, so that a machine that gets busier or quieter affects them alike: read the
ratios to vgg, which come from one run, and scale the shipped model's measured time by them
(benchmarks/benchmark.py).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.models import vgg, vgg64  # noqa: E402
from core.paths import SHIPPED_MODEL_DIR  # noqa: E402
from core.recognise import load_classifier  # noqa: E402
from core.runs import METADATA_FILE, MODEL_FILE  # noqa: E402

BASELINE = "vgg (shipped network)"
CANDIDATES = {
    BASELINE: lambda classes: vgg(classes),
    "vgg64 (64x64 input)": lambda classes: vgg64(classes),
    "vgg, 1.25x wider": lambda classes: vgg(classes, widths=(40, 80, 160, 320)),
    "vgg, 1.5x wider": lambda classes: vgg(classes, widths=(48, 96, 192, 384)),
    "vgg, 2x wider": lambda classes: vgg(classes, widths=(64, 128, 256, 512)),
}


def ms_per_face(classifier, face: np.ndarray, calls: int) -> float:
    classifier.probabilities(face)  # the first call sizes the interpreter
    started = time.perf_counter()
    for _ in range(calls):
        classifier.probabilities(face)
    return (time.perf_counter() - started) / calls * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=200, help="batch-1 calls per candidate and round")
    parser.add_argument("--models", nargs="+", type=Path, metavar="FOLDER",
                        help="time these trained models (an ensemble too; each with its own views) against the shipped one")
    args = parser.parse_args()

    classes = len(load_classifier(SHIPPED_MODEL_DIR).classes)
    face = np.random.default_rng(0).integers(0, 256, (1, 48, 48), dtype=np.uint8)
    with tempfile.TemporaryDirectory() as scratch:
        classifiers = {}
        if args.models:
            classifiers[BASELINE] = load_classifier(SHIPPED_MODEL_DIR)
            for classifier in map(load_classifier, args.models):
                classifiers[f"{classifier.path.name} ({classifier.tta} views)"] = classifier
        for name, build in ({} if args.models else CANDIDATES).items():
            folder = Path(scratch) / str(len(classifiers))
            folder.mkdir()
            shutil.copy(SHIPPED_MODEL_DIR / METADATA_FILE, folder / METADATA_FILE)
            build(classes).save(folder / MODEL_FILE)
            classifiers[name] = load_classifier(folder)
        times: dict[str, list[float]] = {name: [] for name in classifiers}
        for _ in range(args.rounds):
            for name, classifier in classifiers.items():
                times[name].append(ms_per_face(classifier, face, args.calls))

    base = statistics.median(times[BASELINE])
    views = "each with its own views" if args.models else "with the shipped views"
    print(f"batch-1 time per face, median of {args.rounds} rounds of {args.calls} calls (int8, {views})\n")
    print("| network | ms per face | ratio to vgg |\n|---|---|---|")
    for name, measured in times.items():
        print(f"| {name} | {statistics.median(measured):.2f} | {statistics.median(measured) / base:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
