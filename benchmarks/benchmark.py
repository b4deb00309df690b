"""Accuracy and speed of the seed model and the shipped model, measured in one run on one machine.

    python benchmarks/benchmark.py --data ../shared/data/fer2013/fer2013.zip

For each model: accuracy on test/ (7 classes, and the seed's 5), batch-1 latency
of classifying one face (median over repeated calls of the product's inference
path, core.recognise.Classifier, test-time augmentation included), and the whole Try-It path for a
640x480 photo with one face (decode, detect, crop, classify, choose a voice).
Timings on a shared machine are noisy: read them as ratios between the models.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from core.data import load_dataset  # noqa: E402
from core.evaluation import evaluate  # noqa: E402
from core.paths import SAMPLES_DIR, SEED_MODEL_DIR, SHIPPED_MODEL_DIR, VOICES_DIR  # noqa: E402
from core.recognise import load_classifier, recognise  # noqa: E402
from core.voices import VoicePicker, load_voice_bank  # noqa: E402


def median_ms(call, repeats: int) -> float:
    call()  # warm-up: the first call sizes the model's buffers
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        timings.append(time.perf_counter() - started)
    return statistics.median(timings) * 1000


def webcam_photo(face: np.ndarray) -> bytes:
    """A 640x480 JPEG with one face in the middle, as a webcam snapshot frames it."""
    import cv2

    canvas = np.full((480, 640), 120, np.uint8)
    canvas[120:360, 200:440] = cv2.resize(face, (240, 240), interpolation=cv2.INTER_CUBIC)
    return cv2.imencode(".jpg", canvas)[1].tobytes()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(SAMPLES_DIR / "fer2013-sample.zip"), help="dataset with a test/ split")
    parser.add_argument("--models", nargs="+", type=Path, default=[SEED_MODEL_DIR, SHIPPED_MODEL_DIR])
    parser.add_argument("--repeats", type=int, default=300)
    args = parser.parse_args()

    dataset = load_dataset(args.data)
    bank = load_voice_bank(VOICES_DIR)
    rows = []
    for model_dir in args.models:
        classifier = load_classifier(model_dir)
        evaluation = evaluate(classifier, dataset)
        five = evaluation.seed_scores
        one_face = evaluation.images[:1]
        latency = median_ms(lambda: classifier.probabilities(one_face), args.repeats)
        photos = [webcam_photo(face) for face in evaluation.images[:20]]
        picker = VoicePicker(bank, seed=0)

        def try_it(photo=photos[0]):
            result = recognise(classifier, photo)
            if result.main_face:
                picker.draw(result.main_face.emotion)

        tryit = statistics.median(median_ms(lambda p=p: try_it(p), 3) for p in photos)
        size_mb = (model_dir / "model.keras").stat().st_size / 2**20
        rows.append((model_dir.name, classifier.metadata.architecture, len(classifier.classes),
                     evaluation.scores.accuracy if len(classifier.classes) == 7 else None,
                     None if five is None else five.accuracy, evaluation.scores.n, latency, tryit, size_mb,
                     classifier.loaded.model.count_params()))

    print(f"data: {args.data} ({dataset.evaluation_split() or 'all'} split); latency: median of {args.repeats} batch-1 calls")
    print()
    print("| model | architecture | classes | accuracy (7) | accuracy (seed's 5) | test images | 1 face, batch 1 | Try-It path, 640x480 | file | parameters |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, arch, classes, acc7, acc5, n, latency, tryit, size, params in rows:
        print(f"| {name} | {arch} | {classes} | {'-' if acc7 is None else f'{acc7:.1%}'} | "
              f"{'-' if acc5 is None else f'{acc5:.1%}'} | {n} | {latency:.2f} ms | {tryit:.1f} ms | {size:.1f} MB | {params / 1e6:.2f} M |")
    if len(rows) == 2:
        print(f"\nlatency ratio {rows[1][0]} / {rows[0][0]}: {rows[1][6] / rows[0][6]:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
