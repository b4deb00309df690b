"""Score a model on a labelled dataset: accuracy, per-class table, confusion matrix.

    python scripts/evaluate.py --data ../shared/data/fer2013/fer2013.zip --json
    python scripts/evaluate.py --data my_faces/ --model runs/20261125-083000-vgg --figures out/
    python scripts/evaluate.py --data samples/fer2013-sample.zip --compare models/seed --json
    python scripts/evaluate.py --data fer2013.csv --votes fer2013new.csv     # FER+'s majority too

When the data has a test/ split, that split is scored; otherwise every image. With
--compare, a second model is scored on the same faces and the two are compared on the
emotions both know (the seed model knows 5 of the shipped model's 7). With FER+ votes
(--votes, or found beside the data: ferplus.csv, or fer2013new.csv beside fer2013.csv), the
agreement with the taggers' majority is reported beside the dataset's own labels.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.paths import SHIPPED_MODEL_DIR  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="folder, .zip or fer2013.csv")
    parser.add_argument("--votes", type=Path, metavar="CSV", help="FER+ votes (fer2013new.csv or ferplus.csv); "
                        "found beside --data when not given")
    parser.add_argument("--model", type=Path, default=SHIPPED_MODEL_DIR, help="model folder (default: the shipped model)")
    parser.add_argument("--split", default="auto", help="split to score: test, train, private, all (default: test if present, else all)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--figures", type=Path, help="write confusion-matrix, recall and reliability PNGs to this folder")
    parser.add_argument("--compare", type=Path, metavar="MODEL_B", help="a second model folder to compare on the same faces")
    args = parser.parse_args(argv)
    split = None if args.split == "all" else args.split

    from core.calibration import calibration_report, reliability_figure, undo_temperature
    from core.data import DatasetError, load_dataset
    from core.evaluation import compare, confusion_figure, evaluate, inference_of, recall_figure
    from core.recognise import load_classifier
    from core.runs import ModelError
    from core.votes import VotesError, attach_found_votes

    try:
        classifier = load_classifier(args.model)
        dataset = load_dataset(args.data)
        votes = attach_found_votes(dataset, args.votes)
        evaluation = evaluate(classifier, dataset, split)
        comparison = compare(evaluation, evaluate(load_classifier(args.compare), dataset, split)) if args.compare else None
    except (DatasetError, ModelError, VotesError, ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for warning in dataset.report.warnings():
        print(f"warning: {warning}", file=sys.stderr)

    report = evaluation.summary()
    inference = inference_of(classifier)
    report["inference"] = asdict(inference)
    # The classifier's probabilities are calibrated; the "before" figures need them as the net gave them.
    temperature = classifier.temperature
    calibrated, calibration_labels = evaluation.calibration_faces()
    raw = undo_temperature(calibrated, temperature)
    calibration = calibration_report(raw, calibration_labels, temperature)
    report["calibration"] = asdict(calibration)
    if comparison:
        report["comparison"] = {"model_a": str(args.model), "model_b": str(args.compare), **comparison.summary()}
    if args.figures:
        figures = {"confusion_matrix.png": confusion_figure(evaluation.scores), "recall.png": recall_figure(evaluation.scores),
                   "reliability.png": reliability_figure(raw, calibration_labels, temperature)}
        if evaluation.seed_scores:
            figures["confusion_matrix_5class.png"] = confusion_figure(evaluation.seed_scores)
        if evaluation.ferplus_scores:
            figures["confusion_matrix_ferplus.png"] = confusion_figure(
                evaluation.ferplus_scores, title=f"against the FER+ majority (n={evaluation.ferplus_scores.n})")
        try:
            args.figures.mkdir(parents=True, exist_ok=True)
            for name, figure in figures.items():
                save_figure(figure, args.figures / name)
        except OSError as error:
            print(f"error: cannot write the figures to {args.figures} ({error.strerror or error})", file=sys.stderr)
            return 2
    if args.json:
        print(json.dumps(report))
        return 0
    print(f"model {classifier.path.name} on {args.data}: {report['n']} images")
    print(f"inference: {inference}")
    print(f"accuracy: {report['accuracy']:.2%}")
    if "accuracy_ferplus" in report:
        print(f"agreement with the FER+ majority: {report['accuracy_ferplus']:.2%} (n={report['n_ferplus']}, votes {votes})")
    if report["accuracy_5class"] is not None:
        print(f"accuracy on the seed's 5 emotions: {report['accuracy_5class']:.2%} (n={report['n_5class']})")
    print(evaluation.scores.table().round(3).to_string())
    print(f"calibration: temperature {temperature:g}, ECE {calibration.ece_before:.3f} before, "
          f"{calibration.ece_after:.3f} after")
    if comparison:
        summary = comparison.summary()
        print(f"\nA = {args.model}, B = {args.compare}. {comparison.note}")
        print(f"accuracy: A {summary['accuracy']['a']:.2%}, B {summary['accuracy']['b']:.2%} "
              f"(B-A {summary['accuracy']['difference']:+.2%}); they disagree on {summary['disagreements']} faces")
        print(comparison.table().round(3).to_string())
    return 0


def save_figure(figure, path: Path) -> None:
    """A PNG written whole or not at all."""
    from core.runs import write_atomic

    write_atomic(path, lambda partial: figure.savefig(partial, format="png", dpi=110))


if __name__ == "__main__":
    sys.exit(main())
