"""Score a model on a labelled dataset: accuracy, per-class table, confusion matrix.

    python scripts/evaluate.py --data ../shared/data/fer2013/fer2013.zip --json
    python scripts/evaluate.py --data my_faces/ --model runs/20261125-083000-vgg --figures out/
    python scripts/evaluate.py --data samples/fer2013-sample.zip --compare models/seed --json

When the data has a test/ split, that split is scored; otherwise every image. With
--compare, a second model is scored on the same faces and the two are compared on the
emotions both know (the seed model knows 5 of the shipped model's 7).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.calibration import apply_temperature, calibration_report, reliability_figure  # noqa: E402
from core.data import DatasetError, load_dataset  # noqa: E402
from core.evaluation import compare, confusion_figure, describe_inference, evaluate, inference_options, recall_figure  # noqa: E402
from core.paths import SHIPPED_MODEL_DIR  # noqa: E402
from core.recognise import load_classifier  # noqa: E402
from core.runs import ModelError  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="folder, .zip or fer2013.csv")
    parser.add_argument("--model", type=Path, default=SHIPPED_MODEL_DIR, help="model folder (default: the shipped model)")
    parser.add_argument("--split", default="auto", help="split to score: test, train, private, all (default: test if present, else all)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--figures", type=Path, help="write confusion-matrix, recall and reliability PNGs to this folder")
    parser.add_argument("--compare", type=Path, metavar="MODEL_B", help="a second model folder to compare on the same faces")
    args = parser.parse_args()
    split = None if args.split == "all" else args.split
    try:
        classifier = load_classifier(args.model)
        dataset = load_dataset(args.data)
        evaluation = evaluate(classifier, dataset, split)
        comparison = compare(evaluation, evaluate(load_classifier(args.compare), dataset, split)) if args.compare else None
    except (DatasetError, ModelError, ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for warning in dataset.report.warnings():
        print(f"warning: {warning}", file=sys.stderr)

    report = evaluation.summary()
    report["inference"] = inference_options(classifier)
    # The classifier's probabilities are calibrated; dividing by 1/T undoes it, for the "before" figures.
    temperature = classifier.temperature
    raw = apply_temperature(evaluation.probabilities, 1 / temperature)
    report["calibration"] = calibration_report(raw, evaluation.labels, temperature)
    if comparison:
        report["comparison"] = {"model_a": str(args.model), "model_b": str(args.compare), **comparison.summary()}
    if args.figures:
        args.figures.mkdir(parents=True, exist_ok=True)
        confusion_figure(evaluation.scores).savefig(args.figures / "confusion_matrix.png", dpi=110)
        recall_figure(evaluation.scores).savefig(args.figures / "recall.png", dpi=110)
        if evaluation.seed_scores:
            confusion_figure(evaluation.seed_scores).savefig(args.figures / "confusion_matrix_5class.png", dpi=110)
        reliability_figure(raw, evaluation.labels, temperature).savefig(args.figures / "reliability.png", dpi=110)
    if args.json:
        print(json.dumps(report))
        return 0
    print(f"model {classifier.loaded.path.name} on {args.data}: {report['n']} images")
    print(f"inference: {describe_inference(report['inference'])}")
    print(f"accuracy: {report['accuracy']:.2%}")
    if report["accuracy_5class"] is not None:
        print(f"accuracy on the seed's 5 emotions: {report['accuracy_5class']:.2%} (n={report['n_5class']})")
    print(evaluation.scores.table().round(3).to_string())
    calibration = report["calibration"]
    print(f"calibration: temperature {temperature:g}, ECE {calibration['ece_before']:.3f} before, "
          f"{calibration['ece_after']:.3f} after")
    if comparison:
        summary = comparison.summary()
        print(f"\nA = {args.model}, B = {args.compare}. {comparison.note}")
        print(f"accuracy: A {summary['accuracy']['a']:.2%}, B {summary['accuracy']['b']:.2%} "
              f"(B-A {summary['accuracy']['difference']:+.2%}); they disagree on {summary['disagreements']} faces")
        print(comparison.table().round(3).to_string())
    return 0


if __name__ == "__main__":
    sys.exit(main())
